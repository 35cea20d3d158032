//! Behaviour of `Objects` on every backend at hand: always a temp folder, and also the S3 bucket
//! named by HAECHI_TEST_S3_URL when it is set (`source .ci/s3.sh` starts moto for that).

use bytes::Bytes;
use haechi_objects::testkit::{TestObjects, TestObjectsGuard};
use haechi_objects::{ObjectInfo, Objects, ObjectsError};

async fn backends() -> Vec<(Objects, TestObjectsGuard)> {
    let mut all = vec![TestObjects::local()];
    if let Some(s3) = TestObjects::s3_from_env().await {
        all.push(s3);
    } else {
        eprintln!("HAECHI_TEST_S3_URL is not set: S3 not covered by this run");
    }
    all
}

fn is_invalid<T>(r: &Result<T, ObjectsError>, key: &str) -> bool {
    matches!(r, Err(ObjectsError::InvalidKey(k)) if k == key)
}

fn keys(infos: &[ObjectInfo]) -> Vec<&str> {
    infos.iter().map(|i| i.key.as_str()).collect()
}

#[tokio::test]
async fn put_get_and_overwrite() {
    for (o, _guard) in backends().await {
        let d = o.describe();
        o.put("reports/r1/report.html", Bytes::from_static(b"<h1>first</h1>")).await.unwrap();
        assert_eq!(o.get("reports/r1/report.html").await.unwrap(), Bytes::from_static(b"<h1>first</h1>"), "{d}");
        // A retried job writes the same key again: whole replacement, including a shorter body.
        o.put("reports/r1/report.html", Bytes::from_static(b"2nd")).await.unwrap();
        assert_eq!(o.get("reports/r1/report.html").await.unwrap(), Bytes::from_static(b"2nd"), "{d}");
        o.put("empty", Bytes::new()).await.unwrap();
        assert_eq!(o.get("empty").await.unwrap(), Bytes::new(), "{d}");
        let big = Bytes::from((0..3_000_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        o.put("raw/big.bin", big.clone()).await.unwrap();
        assert_eq!(o.get("raw/big.bin").await.unwrap(), big, "{d}");
    }
}

#[tokio::test]
async fn missing_objects() {
    for (o, _guard) in backends().await {
        let d = o.describe();
        assert!(matches!(o.get("nope/x.csv").await, Err(ObjectsError::NotFound(k)) if k == "nope/x.csv"), "{d}");
        assert!(!o.exists("nope/x.csv").await.unwrap(), "{d}");
        o.put("nope/y.csv", Bytes::from_static(b"y")).await.unwrap();
        assert!(o.exists("nope/y.csv").await.unwrap(), "{d}");
        // A "directory" is not an object.
        assert!(!o.exists("nope").await.unwrap(), "{d}");
        assert!(matches!(o.get("nope").await, Err(ObjectsError::NotFound(_))), "{d}");
        assert_eq!(o.list("absent").await.unwrap(), vec![], "{d}");
        assert_eq!(o.delete_prefix("absent").await.unwrap(), 0, "{d}");
    }
}

#[tokio::test]
async fn list_is_sorted_relative_and_segment_wise() {
    for (o, _guard) in backends().await {
        let d = o.describe();
        for key in ["b/2.txt", "a/x/1.txt", "a/1.txt", "ab/1.txt", "a/x/0.txt", "top.txt"] {
            o.put(key, Bytes::from(key.to_owned())).await.unwrap();
        }
        let all = o.list("").await.unwrap();
        assert_eq!(keys(&all), ["a/1.txt", "a/x/0.txt", "a/x/1.txt", "ab/1.txt", "b/2.txt", "top.txt"], "{d}");
        assert_eq!(all[0], ObjectInfo { key: "a/1.txt".into(), size: 7 }, "{d}");
        // "a" must not match "ab/…"; a trailing slash means the same.
        assert_eq!(keys(&o.list("a").await.unwrap()), ["a/1.txt", "a/x/0.txt", "a/x/1.txt"], "{d}");
        assert_eq!(keys(&o.list("a/").await.unwrap()), ["a/1.txt", "a/x/0.txt", "a/x/1.txt"], "{d}");
        assert_eq!(keys(&o.list("a/x").await.unwrap()), ["a/x/0.txt", "a/x/1.txt"], "{d}");
    }
}

#[tokio::test]
async fn delete_prefix_removes_only_that_prefix() {
    for (o, _guard) in backends().await {
        let d = o.describe();
        for key in ["run/1/a", "run/1/b/c", "run/10/a", "run/2/a"] {
            o.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        assert_eq!(o.delete_prefix("run/1").await.unwrap(), 2, "{d}");
        assert_eq!(keys(&o.list("").await.unwrap()), ["run/10/a", "run/2/a"], "{d}");
        assert_eq!(o.delete_prefix("run/1").await.unwrap(), 0, "{d}");
        assert_eq!(o.delete_prefix("").await.unwrap(), 2, "{d}");
        assert_eq!(o.list("").await.unwrap(), vec![], "{d}");
        // The store stays usable after being emptied (the local root folder is kept).
        o.check().await.unwrap();
        o.put("again", Bytes::from_static(b"1")).await.unwrap();
        assert_eq!(o.get("again").await.unwrap(), Bytes::from_static(b"1"), "{d}");
    }
}

#[tokio::test]
async fn invalid_keys_are_rejected_before_any_request() {
    for (o, _guard) in backends().await {
        let d = o.describe();
        for bad in ["", "/abs", "a/../b", "..", "a//b", "trailing/", "sp ace", "a#1"] {
            assert!(is_invalid(&o.put(bad, Bytes::new()).await, bad), "put {bad:?} on {d}");
            assert!(is_invalid(&o.get(bad).await, bad), "get {bad:?} on {d}");
            assert!(is_invalid(&o.exists(bad).await, bad), "exists {bad:?} on {d}");
        }
        for bad in ["/", "../x", "a//b"] {
            assert!(matches!(o.list(bad).await, Err(ObjectsError::InvalidKey(_))), "list {bad:?} on {d}");
            assert!(matches!(o.delete_prefix(bad).await, Err(ObjectsError::InvalidKey(_))), "delete {bad:?} on {d}");
        }
        // Nothing was written by the rejected calls.
        assert_eq!(o.list("").await.unwrap(), vec![], "{d}");
    }
}

#[tokio::test]
async fn check_and_clones_share_the_store() {
    for (o, _guard) in backends().await {
        o.check().await.unwrap();
        let clone = o.clone();
        clone.put("shared", Bytes::from_static(b"s")).await.unwrap();
        assert!(o.exists("shared").await.unwrap());
        assert!(!format!("{o:?}").contains("test\""), "Debug must not show keys: {o:?}");
    }
}

#[tokio::test]
async fn local_check_fails_when_the_folder_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let o = Objects::open(&haechi_objects::ObjectStoreConfig { url: root.display().to_string(), ..Default::default() })
        .unwrap();
    o.check().await.unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    assert!(matches!(o.check().await, Err(ObjectsError::Backend { op: "check", .. })));
}

#[tokio::test]
async fn s3_guard_deletes_its_prefix() {
    let Some((o, guard)) = TestObjects::s3_from_env().await else {
        eprintln!("HAECHI_TEST_S3_URL is not set: skipped");
        return;
    };
    o.put("k/1", Bytes::from_static(b"1")).await.unwrap();
    // describe() is "s3://bucket/prefix @ endpoint": reopen the same prefix after cleanup.
    let description = o.describe();
    let (url, endpoint) = description.split_once(" @ ").unwrap();
    drop(guard);
    let cfg = haechi_objects::ObjectStoreConfig {
        url: url.to_owned(),
        s3_endpoint: Some(endpoint.to_owned()),
        s3_access_key: Some("test".into()),
        s3_secret_key: Some("test".into()),
        s3_path_style: true,
        s3_allow_http: true,
        ..Default::default()
    };
    let reopened = Objects::open(&cfg).unwrap();
    assert_eq!(reopened.list("").await.unwrap(), vec![]);
}

/// The variable set but nothing listening: the kit must fail, not fall back to a folder.
#[tokio::test]
#[should_panic(expected = "does not answer")]
async fn unreachable_s3_fails_loudly() {
    // Port 9 (discard) on loopback: nothing listens there in CI.
    let _ = TestObjects::s3("http://127.0.0.1:9/haechi-test").await;
}

/// A running server but a bucket that does not exist fails the same way.
#[tokio::test]
#[should_panic(expected = "does not answer")]
async fn missing_bucket_fails_loudly() {
    let Ok(url) = std::env::var("HAECHI_TEST_S3_URL") else {
        // Without a server this case is the one above; keep the expected panic.
        panic!("does not answer (no HAECHI_TEST_S3_URL: nothing to check)");
    };
    let base = url.trim_end_matches('/').rsplit_once('/').map_or(url.as_str(), |(b, _)| b).to_owned();
    let _ = TestObjects::s3(&format!("{base}/haechi-no-such-bucket")).await;
}
