//! Message catalogues: every string the portal shows comes from `i18n/{ko,en}.toml`, never from
//! a template. Korean is the default; English is one click (`?lang=en`, remembered in a cookie).

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, header};

/// The portal's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ko,
    En,
}

/// The cookie remembering the chosen language.
pub const LANG_COOKIE: &str = "haechi_lang";

const KO_TOML: &str = include_str!("../../i18n/ko.toml");
const EN_TOML: &str = include_str!("../../i18n/en.toml");

/// A parsed catalogue. A syntax error leaves it empty, which shows raw keys rather than crash;
/// the catalogue tests make sure that never ships.
#[derive(Debug, Default)]
pub struct Catalog {
    map: HashMap<String, String>,
}

impl Catalog {
    fn parse(text: &str) -> Catalog {
        Catalog { map: toml::from_str(text).unwrap_or_default() }
    }

    /// Every key, for completeness checks.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

const PROBLEMS_KO_TOML: &str = include_str!("../../i18n/problems.ko.toml");

/// The Korean wording of scenario problems, by code, and the value kinds they name.
#[derive(Debug, Default, serde::Deserialize)]
struct ProblemCatalog {
    codes: HashMap<String, String>,
    words: HashMap<String, String>,
}

static PROBLEMS_KO: LazyLock<ProblemCatalog> = LazyLock::new(|| toml::from_str(PROBLEMS_KO_TOML).unwrap_or_default());

static KO: LazyLock<Catalog> = LazyLock::new(|| Catalog::parse(KO_TOML));
static EN: LazyLock<Catalog> = LazyLock::new(|| Catalog::parse(EN_TOML));

impl Lang {
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    #[must_use]
    pub fn catalog(self) -> &'static Catalog {
        match self {
            Lang::Ko => &KO,
            Lang::En => &EN,
        }
    }

    fn parse(s: &str) -> Option<Lang> {
        match s.trim() {
            "ko" => Some(Lang::Ko),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// `?lang=` first (and a cookie to remember it), then the cookie, then Korean: the portal
    /// is Korean-first whatever the browser prefers.
    #[must_use]
    pub fn negotiate(query: Option<&str>, headers: &HeaderMap) -> (Lang, Option<HeaderValue>) {
        let asked = query
            .and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "lang").map(|(_, v)| v.into_owned())
            })
            .and_then(|v| Lang::parse(&v));
        if let Some(lang) = asked {
            let cookie = HeaderValue::from_str(&format!(
                "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                lang.code()
            ))
            .ok();
            return (lang, cookie);
        }
        let from_cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == LANG_COOKIE)
            .and_then(|(_, v)| Lang::parse(v));
        (from_cookie.unwrap_or(Lang::Ko), None)
    }
}

/// The Korean words for an order refusal's code (the API's `reason_ko`; the portal words it in
/// the page's language from the same catalogue entries).
#[must_use]
pub fn reason_ko(code: &str) -> &'static str {
    Tr::new(Lang::Ko).lookup(&format!("order.reason.{code}")).unwrap_or("주문이 거부되었습니다.")
}

/// What templates call: `t.get("login.title")`.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    lang: Lang,
}

impl Tr {
    #[must_use]
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// The string for `key`; the key itself when missing, visibly, never an empty gap.
    #[must_use]
    pub fn get<'k>(&self, key: &'k str) -> &'k str
    where
        'static: 'k,
    {
        self.lang.catalog().map.get(key).map_or(key, String::as_str)
    }

    /// The string for a key built at run time (`reject.{code}`), `None` when the catalogue has none.
    #[must_use]
    pub fn lookup(&self, key: &str) -> Option<&'static str> {
        self.lang.catalog().map.get(key).map(String::as_str)
    }

    /// `get` for a key built at run time: the key itself when missing.
    #[must_use]
    pub fn get_dyn<'k>(&self, key: &'k str) -> &'k str {
        self.lookup(key).unwrap_or(key)
    }

    /// A validation problem in the page's language: the Korean sentence for its code, or the
    /// API's English message (English pages, and problems without a code).
    #[must_use]
    pub fn problem(&self, e: &haechi_app::FieldProblem) -> String {
        let template = match (self.lang, e.code.as_deref()) {
            (Lang::Ko, Some(code)) => PROBLEMS_KO.codes.get(code),
            _ => None,
        };
        let Some(template) = template else { return e.message.clone() };
        let mut out = template.clone();
        for (name, value) in &e.params {
            let value = if haechi_sim::scenario::WORD_PARAMS.contains(&name.as_str()) {
                PROBLEMS_KO.words.get(value).unwrap_or(value)
            } else {
                value
            };
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    /// `get(key)` with `{name}` placeholders filled.
    #[must_use]
    pub fn fill(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.get(key).to_owned();
        for (k, v) in args {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    #[must_use]
    pub fn lang(&self) -> &'static str {
        self.lang.code()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn both_catalogues_parse_and_have_the_same_keys() {
        let ko: BTreeSet<_> = toml::from_str::<HashMap<String, String>>(KO_TOML).unwrap().into_keys().collect();
        let en: BTreeSet<_> = toml::from_str::<HashMap<String, String>>(EN_TOML).unwrap().into_keys().collect();
        assert!(ko.len() > 20);
        assert_eq!(ko.difference(&en).collect::<Vec<_>>(), Vec::<&String>::new(), "in ko.toml only");
        assert_eq!(en.difference(&ko).collect::<Vec<_>>(), Vec::<&String>::new(), "in en.toml only");
    }

    /// Every refusal the order API can answer is worded in both languages, so neither the API's
    /// `reason_ko` nor the portal falls back to a generic sentence or a raw code.
    #[test]
    fn every_order_refusal_is_worded_in_both_languages() {
        let codes = haechi_app::paper::Refusal::CODES
            .into_iter()
            .chain(haechi_core::RejectReason::ALL.map(haechi_core::RejectReason::code));
        for code in codes {
            for lang in [Lang::Ko, Lang::En] {
                assert!(Tr::new(lang).lookup(&format!("order.reason.{code}")).is_some(), "{lang:?} lacks {code}");
            }
            assert_ne!(reason_ko(code), "주문이 거부되었습니다.", "{code}");
        }
    }

    /// Every `t.get("…")` in the templates and `msg("…")` in the portal code names a
    /// key that exists: a typo would otherwise show the raw key on the page.
    #[test]
    fn every_key_used_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = Vec::new();
        for d in ["templates/portal", "src/portal"] {
            for e in std::fs::read_dir(dir.join(d)).unwrap() {
                let path = e.unwrap().path();
                // This file's own tests use a deliberately missing key.
                if path.file_name().is_some_and(|n| n == "i18n.rs") {
                    continue;
                }
                sources.push(std::fs::read_to_string(path).unwrap());
            }
        }
        let mut used = BTreeSet::new();
        for src in &sources {
            for part in src.split("\"").collect::<Vec<_>>().windows(2) {
                let (before, lit) = (part[0], part[1]);
                let is_key = lit.contains('.') && lit.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
                if is_key && (before.ends_with("get(") || before.ends_with("fill(") || before.ends_with("msg(")) {
                    used.insert(lit.to_owned());
                }
            }
        }
        assert!(used.len() > 20, "{used:?}");
        for key in &used {
            for lang in [Lang::Ko, Lang::En] {
                assert!(lang.catalog().map.contains_key(key), "{key} missing from {}.toml", lang.code());
            }
        }
    }

    /// Every scenario problem code has a Korean sentence using exactly the English
    /// template's placeholders, and every value kind a Korean word.
    #[test]
    fn every_scenario_problem_has_korean_wording() {
        let placeholders = |t: &str| {
            let mut v: Vec<String> =
                t.split('{').skip(1).filter_map(|s| s.split('}').next()).map(str::to_owned).collect();
            v.sort();
            v.dedup();
            v
        };
        let ko: ProblemCatalog = toml::from_str(PROBLEMS_KO_TOML).unwrap();
        for (code, english) in haechi_sim::scenario::PROBLEM_CODES {
            let korean = ko.codes.get(*code).unwrap_or_else(|| panic!("{code} missing from problems.ko.toml"));
            assert_eq!(placeholders(korean), placeholders(english), "{code}");
        }
        assert_eq!(ko.codes.len(), haechi_sim::scenario::PROBLEM_CODES.len(), "a code no longer used");
        for (word, _) in haechi_sim::scenario::WORDS {
            assert!(ko.words.contains_key(*word), "{word} missing from problems.ko.toml");
        }
        let e = haechi_app::FieldProblem {
            field: "strategy.slow".into(),
            message: "must be greater than strategy.fast (60), found 20".into(),
            code: Some("must_exceed".into()),
            params: [("other", "strategy.fast"), ("limit", "60"), ("value", "20")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        assert_eq!(Tr::new(Lang::Ko).problem(&e), "strategy.fast 값(60)보다 커야 합니다. (입력: 20)");
        assert_eq!(Tr::new(Lang::En).problem(&e), e.message);
        let typed = haechi_app::FieldProblem {
            code: Some("wrong_type".into()),
            params: [("expected", "whole_number"), ("found", "string")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..haechi_app::FieldProblem::new("capital", "must be a whole number, found a string")
        };
        assert_eq!(Tr::new(Lang::Ko).problem(&typed), "형식이 맞지 않습니다. 필요한 값: 정수, 입력한 값: 문자열");
    }

    /// Keys the portal builds at run time, checked against the lists they come from.
    #[test]
    fn every_rejection_reason_has_a_label() {
        for reason in haechi_core::RejectReason::ALL {
            for lang in [Lang::Ko, Lang::En] {
                let key = format!("reject.{}", reason.code());
                assert!(Tr::new(lang).lookup(&key).is_some(), "{key} missing from {}.toml", lang.code());
            }
        }
    }

    #[test]
    fn korean_by_default_english_on_request_and_remembered() {
        let none = HeaderMap::new();
        assert_eq!(Lang::negotiate(None, &none).0, Lang::Ko);
        let (lang, cookie) = Lang::negotiate(Some("lang=en"), &none);
        assert_eq!(lang, Lang::En);
        assert!(cookie.unwrap().to_str().unwrap().starts_with("haechi_lang=en"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; haechi_lang=en"));
        assert_eq!(Lang::negotiate(None, &h).0, Lang::En);
        assert_eq!(Lang::negotiate(Some("lang=xx"), &h).0, Lang::En, "an unknown code changes nothing");
        assert_eq!(Tr::new(Lang::Ko).fill("dashboard.welcome", &[("name", "민지")]), "민지님, 안녕하세요");
        assert_eq!(Tr::new(Lang::En).get("no.such.key"), "no.such.key");
    }
}
