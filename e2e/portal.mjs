// Browser end-to-end test of the Haechi portal in headless Chromium (Debian's, via
// playwright-core). Started by crates/haechi/tests/e2e.rs against a fresh `haechi serve`:
//   HAECHI_E2E_URL    the server's base URL
//   HAECHI_E2E_SHOTS  folder for one screenshot per page (CI keeps them)
//   HAECHI_CHROMIUM   the browser binary (default /usr/bin/chromium)
// Exits non-zero at the first expectation that does not hold, naming it.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";

const base = process.env.HAECHI_E2E_URL;
const shots = process.env.HAECHI_E2E_SHOTS ?? "screenshots";
const executablePath = process.env.HAECHI_CHROMIUM ?? "/usr/bin/chromium";
if (!base) throw new Error("HAECHI_E2E_URL is not set");
mkdirSync(shots, { recursive: true });

function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
  console.log(`ok - ${what}`);
}

// RFC 6238 with SHA-1, 6 digits, 30-second steps: what an authenticator app computes from the
// secret the security page shows.
function totp(secret, unixSeconds) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(code).padStart(6, "0");
}

// Accessibility: axe-core's WCAG 2.0/2.1 A and AA rules (labels, accessible names, contrast,
// landmarks, ARIA). axe is injected as a script, which the portal's CSP rightly refuses, so
// audits run in separate contexts that bypass CSP; the main context keeps checking that nothing
// violates it.
const axePath = fileURLToPath(new URL("./node_modules/axe-core/axe.min.js", import.meta.url));
// Each audited page is also saved as a screenshot, so CI keeps one of every page.
async function audit(browser, storageState, pages) {
  const context = await browser.newContext({ locale: "ko-KR", viewport: { width: 1280, height: 800 }, bypassCSP: true, storageState });
  const p = await context.newPage();
  for (const [path, what, prepare, name] of pages) {
    await p.goto(`${base}${path}`);
    if (prepare) await prepare(p);
    if (name) await shot(p, name);
    await p.addScriptTag({ path: axePath });
    const result = await p.evaluate(() =>
      window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
    );
    const bad = result.violations.map(
      (v) => `${v.id} (${v.impact}) at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`,
    );
    expect(bad.length === 0, `${what} passes axe's WCAG 2.1 AA rules${bad.length ? `: ${bad.join("; ")}` : ""}`);
  }
  await context.close();
}

let n = 0;
async function shot(page, name) {
  n += 1;
  const file = `${shots}/${String(n).padStart(2, "0")}-${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const context = await browser.newContext({ locale: "ko-KR", viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const consoleErrors = [];
  // Script errors and CSP violations; a form answered 422 is expected and not counted.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(m.text());
  });
  page.on("response", (r) => {
    if (r.request().resourceType() !== "document" && r.status() >= 400) consoleErrors.push(`${r.status()} ${r.url()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // Registration: the API's validation, shown next to the fields.
  await page.goto(`${base}/register`);
  expect((await page.getAttribute("html", "lang")) === "ko", "the portal speaks Korean by default");
  await shot(page, "register");
  await page.fill("#email", "not-an-email");
  await page.fill("#display_name", "브라우저");
  await page.fill("#password", "short");
  await page.click("button[type=submit]");
  expect(await page.isVisible("#email-error"), "an invalid email is flagged at its field");
  expect(await page.isVisible("#password-error"), "a weak password is flagged at its field");
  expect((await page.getAttribute("#email", "aria-invalid")) === "true", "the field is marked invalid for assistive tech");
  const focused = await page.evaluate(() => document.activeElement?.getAttribute("role"));
  expect(focused === "alert", "focus moves to the error summary (portal.js)");
  await shot(page, "register-errors");
  await page.fill("#email", "e2e@example.com");
  await page.fill("#password", "a long and private passphrase");
  await page.click("button[type=submit]");
  await page.waitForURL(/\/login\?registered=1$/);
  expect(await page.isVisible("[role=status]"), "the sign-in page confirms the new account");
  await shot(page, "login-after-register");

  // Sign in and see the dashboard.
  await page.fill("#email", "e2e@example.com");
  await page.fill("#password", "a long and private passphrase");
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);
  expect((await page.textContent("h1")).includes("브라우저님"), "the dashboard greets the user by name");
  expect(await page.isVisible("text=최근 실행"), "the dashboard lists the latest runs");
  await shot(page, "dashboard");

  // A scenario from the form: one field per setting; a mistake is reported, in Korean, next to
  // the field it concerns; the fix is saved.
  await page.click("header a[href='/scenarios']");
  await page.click("main a[href='/scenarios/new']");
  // The click only starts the navigation: a Tab pressed before the form has loaded lands on the
  // old page (CI saw exactly that once).
  await page.waitForURL(/\/scenarios\/new$/);
  await page.waitForSelector("#f-name");
  // Keyboard: the first Tab reaches the skip link, and focus then follows the form's reading order.
  await page.keyboard.press("Tab");
  expect((await page.evaluate(() => document.activeElement.className)) === "skip", "the first Tab reaches the skip link");
  await page.focus("#f-name");
  const order = [];
  for (let i = 0; i < 3; i += 1) {
    await page.keyboard.press("Tab");
    order.push(await page.evaluate(() => document.activeElement.id));
  }
  expect(order.join(",") === "f-description,f-capital,f-benchmark", `Tab follows the reading order (${order})`);
  await page.fill("#f-name", "E2E 이동평균");
  await page.fill("#f-capital", "10,000,000");
  await page.fill("#f-benchmark", "KS11");
  await page.fill("#f-period-start", "2019-06-03");
  await page.fill("#f-period-end", "2021-12-30");
  await page.check("input[name='universe.kind'][value=tickers]");
  await page.fill("#f-universe-tickers", "100010, 100020, 100030");
  await page.selectOption("#f-strategy-type", "rebalance");
  expect(await page.isVisible("#f-rebalance-weights"), "choosing rebalance shows its weights");
  expect(!(await page.isVisible("#f-sma_cross-fast")), "and hides the other strategies' settings");
  await page.selectOption("#f-strategy-type", "sma_cross");
  expect(await page.isVisible("#f-sma_cross-fast") && !(await page.isVisible("#f-rebalance-weights")), "sma_cross shows its own");
  await page.fill("#f-sma_cross-fast", "30");
  await page.fill("#f-sma_cross-slow", "20");
  await page.click("#save-form");
  expect(await page.isVisible("#scenario-errors"), "an invalid scenario is refused with its problems listed");
  const slowError = await page.textContent("#f-sma_cross-slow-error");
  expect(slowError.includes("단기 이동평균 값(30)보다 커야 합니다"), `the problem is shown at the field, in Korean: ${slowError}`);
  expect((await page.getAttribute("#f-sma_cross-slow", "aria-invalid")) === "true", "and the field is marked invalid");
  expect((await page.inputValue("#f-name")) === "E2E 이동평균", "what was typed is kept");
  await shot(page, "scenario-error");
  await page.setViewportSize({ width: 390, height: 844 });
  expect(
    !(await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1)),
    "the scenario form fits a phone's width",
  );
  await shot(page, "scenario-form-phone");
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.fill("#f-sma_cross-fast", "5");
  await page.click("#save-form");
  await page.waitForURL(/\/scenarios\/\d+\?created=1$/);
  expect((await page.inputValue("#f-sma_cross-fast")) === "5", "the saved scenario opens in the form");
  await page.click("#toml-view summary");
  expect((await page.inputValue("#toml")).includes("fast = 5"), "and in the TOML view");
  await shot(page, "scenario");

  // Run it and watch the progress to the end: the page turns into the report by itself.
  await page.click("#run-scenario");
  await page.waitForURL(/\/runs\/\d+$/);
  const runId = Number(page.url().split("/").pop());
  expect(await page.isVisible("#run-progress"), "the run page shows its progress while it runs");
  await page.waitForFunction(() => Number(document.getElementById("run-progress")?.value ?? 100) > 0, null, { timeout: 30000 });
  await shot(page, "run-progress");
  await page.waitForSelector("svg.chart polyline.equity", { timeout: 60000 });
  expect(await page.isVisible("svg.chart polyline.equity"), "the run finished and the report shows the equity curve");
  expect(await page.isVisible("svg.chart polygon.drawdown"), "and the drawdown");
  expect(await page.isVisible("table.heat"), "and the monthly heat map");
  await page.hover("svg.chart rect.hover >> nth=40");
  const readout = await page.textContent("#chart-readout");
  expect(/\d{4}-\d{2}-\d{2} · ₩/.test(readout), `hovering the chart shows that day's value (${readout})`);
  await shot(page, "report");
  await page.goto(`${base}/`);
  expect(await page.isVisible(`a[href="/runs/${runId}"]`), "the dashboard lists the run with a link to its report");

  // A second run of the same scenario, then both compared.
  const scenarioHref = await page.evaluate(async (id) => {
    const r = await (await fetch(`/api/v1/runs/${id}`)).json();
    return `/scenarios/${r.scenario_id}`;
  }, runId);
  await page.goto(`${base}${scenarioHref}`);
  await page.click("#run-scenario");
  await page.waitForSelector("svg.chart polyline.equity", { timeout: 60000 });
  await page.goto(`${base}/`);
  const picks = page.locator("input[name=ids]");
  expect((await picks.count()) >= 2, "both finished runs can be picked");
  await picks.nth(0).check();
  await picks.nth(1).check();
  await page.click("#compare-runs");
  await page.waitForURL(/\/runs\/compare\?/);
  expect((await page.locator("svg.chart polyline.series").count()) === 2, "the comparison draws one line per run");
  expect((await page.locator("#compare-table thead th").count()) === 3, "and a column of figures per run");
  await shot(page, "compare");
  const compareHref = page.url().slice(base.length);
  await page.goto(`${base}/`);

  await audit(browser, undefined, [
    ["/login", "the sign-in page", null, "login"],
    ["/register", "the registration page"],
  ]);
  await audit(browser, await context.storageState(), [
    ["/", "the dashboard"],
    ["/scenarios", "the scenario list", null, "scenario-list"],
    ["/scenarios/new", "the scenario form"],
    [
      "/scenarios/new",
      "the scenario form showing problems",
      async (p) => {
        await p.fill("#f-sma_cross-fast", "30");
        await p.fill("#f-sma_cross-slow", "20");
        await p.click("#save-form");
        await p.waitForSelector("#scenario-errors");
      },
    ],
    [scenarioHref, "the scenario page"],
    [`${scenarioHref}?diff=1`, "the scenario page with a diff", null, "scenario-diff"],
    [`/runs/${runId}`, "the report"],
    [compareHref, "the comparison"],
    ["/account", "the security page", null, "account"],
  ]);

  // Without JavaScript the core forms still work: a scenario from the form (every strategy's
  // fieldset shows), its run, and the run page refreshing itself into the report.
  const plain = await browser.newContext({
    locale: "ko-KR",
    viewport: { width: 1280, height: 800 },
    javaScriptEnabled: false,
    storageState: await context.storageState(),
  });
  const np = await plain.newPage();
  await np.goto(`${base}/scenarios/new`);
  expect(await np.isVisible("#f-rebalance-weights"), "without JavaScript every strategy's settings show");
  await np.fill("#f-name", "자바스크립트 없이");
  await np.fill("#f-period-start", "2019-06-03");
  await np.fill("#f-period-end", "2020-12-30");
  await np.selectOption("#f-strategy-type", "buy_and_hold");
  await np.click("#save-form");
  await np.waitForURL(/\/scenarios\/\d+\?created=1$/);
  expect((await np.inputValue("#f-name")) === "자바스크립트 없이", "a scenario is saved from the form without JavaScript");
  await np.click("#run-scenario");
  await np.waitForURL(/\/runs\/\d+$/);
  await np.waitForSelector("svg.chart polyline.equity", { timeout: 60000 });
  expect(await np.isVisible("svg.chart polyline.equity"), "and its run page refreshes itself into the report");
  await plain.close();

  // Two-factor authentication from the security page: read the key, compute the code.
  await page.click("a[href='/account']");
  await page.click("#mfa-start");
  expect(await page.isVisible(".qr svg"), "the security page shows a QR code");
  const secret = (await page.textContent("#totp-secret")).trim();
  await shot(page, "mfa-enrol");
  const now = Math.floor(Date.now() / 1000);
  await page.fill("#code", totp(secret, now));
  await page.click("form[action='/account/mfa/confirm'] button");
  expect((await page.locator("#recovery-codes li").count()) === 10, "ten recovery codes are shown once");
  await shot(page, "mfa-recovery-codes");

  // Out, and in again with the code.
  await page.click("form[action='/logout'] button");
  await page.waitForURL(/\/login$/);
  await page.fill("#email", "e2e@example.com");
  await page.fill("#password", "a long and private passphrase");
  await page.click("button[type=submit]");
  expect(await page.isVisible("#totp_code"), "sign-in now asks for the code");
  await shot(page, "login-mfa");
  await page.fill("#password", "a long and private passphrase");
  await page.fill("#totp_code", totp(secret, now + 30));
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);
  expect((await page.textContent("h1")).includes("브라우저님"), "signed in with the second factor");

  // Phone width: nothing overflows sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  expect(!overflow, "the dashboard fits a phone's width");
  await shot(page, "dashboard-phone");
  await page.setViewportSize({ width: 1280, height: 800 });

  // English, and back.
  await page.click("a[hreflang=en]");
  expect((await page.textContent("h1")).startsWith("Hello"), "the language switch shows English");
  await shot(page, "dashboard-en");
  await page.click("a[hreflang=ko]");
  expect((await page.getAttribute("html", "lang")) === "ko", "and back to Korean");

  // Sign out with the form (its CSRF token comes from the page).
  await page.click("form[action='/logout'] button");
  await page.waitForURL(/\/login$/);
  await page.goto(`${base}/`);
  expect(page.url().endsWith("/login"), "signed out: the dashboard sends to sign-in");
  await shot(page, "signed-out");

  // An administrator opens the access log and filters it.
  const admin = await (await browser.newContext({ locale: "ko-KR", viewport: { width: 1280, height: 800 } })).newPage();
  await admin.goto(`${base}/login`);
  await admin.fill("#email", "admin@e2e.local");
  await admin.fill("#password", "correct horse battery staple e2e");
  await admin.click("button[type=submit]");
  await admin.waitForURL(`${base}/`);
  await admin.click("a[href='/admin/logs']");
  expect((await admin.locator("#log-table tbody tr").count()) > 5, "the access log lists requests");
  await admin.fill("#status", "422");
  await admin.click("form.filters button");
  const statuses = await admin.locator("#log-table tbody td.num:nth-child(6)").allTextContents();
  expect(statuses.length > 0 && statuses.every((s) => s.trim() === "422"), `the status filter applies (${statuses})`);
  await shot(admin, "admin-access-log");
  await admin.click("a[href='/admin/users']");
  expect(await admin.isVisible("#users-table"), "the administrator sees the users and their roles");
  await shot(admin, "admin-users");
  await audit(browser, await admin.context().storageState(), [
    ["/admin/users", "the user administration"],
    ["/admin/logs", "the access log"],
    ["/admin/logs?log=audit", "the audit log", null, "admin-audit-log"],
  ]);

  expect(consoleErrors.length === 0, `no script errors, CSP violations or failed assets (${consoleErrors.join("; ")})`);
} finally {
  await browser.close();
}
