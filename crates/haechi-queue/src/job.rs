//! What travels through the queue and who executes it: a job is an [`Envelope`] (a `kind`
//! string and a JSON payload) on a named queue; a [`Registry`] maps each kind to its
//! [`JobHandler`]. This crate knows no kind itself, so new kinds need no change here.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{AttemptInfo, HandlerError, JobError};

/// The stored form of every job: which handler it is for and its arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    pub kind: String,
    pub payload: serde_json::Value,
}

/// Any JSON decodes: something that is not `{"kind": "…", "payload": …}` (a job pushed before
/// envelopes existed, say `{"run_id": 7}`) becomes an envelope of no kind, which the worker
/// fails with a clear message. A decoding error would instead leave the job locked by apalis,
/// unprocessed, and handed from worker to worker forever.
impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Envelope, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if let serde_json::Value::Object(map) = &value
            && map.len() == 2
            && let (Some(serde_json::Value::String(kind)), Some(payload)) = (map.get("kind"), map.get("payload"))
        {
            return Ok(Envelope { kind: kind.clone(), payload: payload.clone() });
        }
        Ok(Envelope { kind: String::new(), payload: value })
    }
}

impl Envelope {
    /// Wraps a typed job.
    ///
    /// # Errors
    /// [`JobError::Enqueue`] when the job does not serialise to JSON.
    pub fn of<J: Job>(job: &J) -> Result<Envelope, JobError> {
        let payload = serde_json::to_value(job).map_err(|e| JobError::Enqueue(format!("{} job: {e}", J::KIND)))?;
        Ok(Envelope { kind: J::KIND.to_owned(), payload })
    }
}

/// The backend's id of one enqueued job (the same through all its attempts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A typed job: its kind, the queue it goes on, and its payload (the struct itself, as JSON).
///
/// Kinds are dotted lower-case names (`run`, `kis.daily`); queue names are lower-case words
/// (`runs`, `etl`). A kind belongs to exactly one queue.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    const KIND: &'static str;
    const QUEUE: &'static str;
}

/// What a handler learns about the execution it is called for.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job_id: JobId,
    pub attempt: AttemptInfo,
    pub(crate) stopping: watch::Receiver<bool>,
}

impl JobContext {
    /// Whether the worker has been asked to stop. Long handlers may give up early (returning
    /// [`HandlerError::Retryable`]) so the job goes back to the queue instead of holding the
    /// shutdown; short ones can ignore it and are waited for.
    #[must_use]
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once the worker has been asked to stop.
    pub async fn stopping(&self) {
        let mut rx = self.stopping.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Executes jobs of one kind. Each attempt runs on its own tokio task (so a panic or a hog
/// does not stall the worker's heartbeats) under a tracing span with the job id and kind.
pub trait JobHandler: Send + Sync + 'static {
    type Job: Job;

    fn handle(&self, job: Self::Job, ctx: JobContext) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Called instead of `handle` when a job comes back after its attempts were already used
    /// up by crashed workers (e.g. a run that kills its worker every time), so the job's
    /// subject can be marked failed. `ctx.attempt.attempt` is the number of attempts recorded.
    fn exhausted(&self, job: Self::Job, ctx: JobContext) -> impl Future<Output = ()> + Send {
        let _ = (job, ctx);
        async {}
    }

    /// Time limit of one attempt when it differs from the worker's (`WorkerOptions::timeout`).
    fn timeout(&self) -> Option<Duration> {
        None
    }
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// [`JobHandler`] with the payload still in JSON, so handlers of different job types fit in
/// one map.
pub(crate) trait ErasedHandler: Send + Sync {
    fn handle(&self, payload: serde_json::Value, ctx: JobContext) -> BoxFuture<Result<(), HandlerError>>;
    fn exhausted(&self, payload: serde_json::Value, ctx: JobContext) -> BoxFuture<()>;
    fn timeout(&self) -> Option<Duration>;
}

struct Typed<H>(Arc<H>);

fn decode<J: Job>(payload: serde_json::Value) -> Result<J, HandlerError> {
    serde_json::from_value(payload)
        .map_err(|e| HandlerError::Permanent(format!("the payload is not a valid `{}` job: {e}", J::KIND)))
}

impl<H: JobHandler> ErasedHandler for Typed<H> {
    fn handle(&self, payload: serde_json::Value, ctx: JobContext) -> BoxFuture<Result<(), HandlerError>> {
        let handler = self.0.clone();
        Box::pin(async move { handler.handle(decode::<H::Job>(payload)?, ctx).await })
    }

    fn exhausted(&self, payload: serde_json::Value, ctx: JobContext) -> BoxFuture<()> {
        let handler = self.0.clone();
        Box::pin(async move {
            // An undecodable payload was already failed permanently on its first attempt;
            // there is nothing to mark here.
            if let Ok(job) = decode::<H::Job>(payload) {
                handler.exhausted(job, ctx).await;
            }
        })
    }

    fn timeout(&self) -> Option<Duration> {
        self.0.timeout()
    }
}

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) queue: &'static str,
    pub(crate) handler: Arc<dyn ErasedHandler>,
}

/// Job kinds and their handlers; which queues a worker serves follows from it.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Entry>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.kinds.iter().map(|(k, e)| (k, e.queue))).finish()
    }
}

/// Lower-case ASCII letters, digits, `_` and `-`, in dot-separated parts for kinds.
fn valid_name(name: &str, dots: bool) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
        && (dots || !name.contains('.'))
}

pub(crate) fn check_queue_name(name: &str) -> Result<(), JobError> {
    if valid_name(name, false) {
        Ok(())
    } else {
        Err(JobError::Registry(format!("queue name {name:?}: use lower-case letters, digits, `_` and `-`")))
    }
}

impl Registry {
    #[must_use]
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds the handler of `H::Job::KIND`.
    ///
    /// # Errors
    /// [`JobError::Registry`] when the kind is already registered or a name is malformed.
    pub fn register<H: JobHandler>(&mut self, handler: Arc<H>) -> Result<&mut Registry, JobError> {
        let (kind, queue) = (H::Job::KIND, H::Job::QUEUE);
        if !valid_name(kind, true) {
            return Err(JobError::Registry(format!(
                "job kind {kind:?}: use lower-case letters, digits, `_`, `-` and dots"
            )));
        }
        check_queue_name(queue)?;
        if self.kinds.contains_key(kind) {
            return Err(JobError::Registry(format!("job kind {kind:?} is registered twice")));
        }
        self.kinds.insert(kind, Entry { queue, handler: Arc::new(Typed(handler)) });
        Ok(self)
    }

    /// [`Registry::register`] for chaining.
    ///
    /// # Errors
    /// As [`Registry::register`].
    pub fn with<H: JobHandler>(mut self, handler: Arc<H>) -> Result<Registry, JobError> {
        self.register(handler)?;
        Ok(self)
    }

    /// The queues the registered kinds go on, sorted.
    #[must_use]
    pub fn queues(&self) -> Vec<&'static str> {
        let mut q: Vec<&'static str> = self.kinds.values().map(|e| e.queue).collect();
        q.sort_unstable();
        q.dedup();
        q
    }

    /// `(kind, queue)` of every registered kind, sorted by kind.
    #[must_use]
    pub fn kinds(&self) -> Vec<(&'static str, &'static str)> {
        self.kinds.iter().map(|(k, e)| (*k, e.queue)).collect()
    }

    /// The entry of `kind`, with the kind as a `'static` string (for metric labels).
    pub(crate) fn get(&self, kind: &str) -> Option<(&'static str, &Entry)> {
        self.kinds.get_key_value(kind).map(|(k, e)| (*k, e))
    }

    /// The kinds registered for `queue`, for messages.
    pub(crate) fn kinds_on(&self, queue: &str) -> Vec<&'static str> {
        self.kinds.iter().filter(|(_, e)| e.queue == queue).map(|(k, _)| *k).collect()
    }
}

/// A single handler is a registry of one kind, so a caller with one job type can pass its
/// handler where a registry is expected.
impl<H: JobHandler> From<Arc<H>> for Registry {
    fn from(handler: Arc<H>) -> Registry {
        let mut r = Registry::new();
        // Cannot fail for a first entry with well-formed names; a malformed name fails every
        // job of the kind clearly instead (unknown kind).
        let _ = r.register(handler);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct A;
    impl Job for A {
        const KIND: &'static str = "a.one";
        const QUEUE: &'static str = "first";
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct B;
    impl Job for B {
        const KIND: &'static str = "b";
        const QUEUE: &'static str = "second";
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct Bad;
    impl Job for Bad {
        const KIND: &'static str = "Bad Kind";
        const QUEUE: &'static str = "second";
    }

    struct H<J>(std::marker::PhantomData<J>);
    impl<J: Job + Sync> JobHandler for H<J> {
        type Job = J;
        async fn handle(&self, _job: J, _ctx: JobContext) -> Result<(), HandlerError> {
            Ok(())
        }
    }
    fn h<J>() -> Arc<H<J>> {
        Arc::new(H(std::marker::PhantomData))
    }

    #[test]
    fn registry_maps_kinds_to_queues_and_refuses_duplicates() {
        let r = Registry::new().with(h::<A>()).unwrap().with(h::<B>()).unwrap();
        assert_eq!(r.queues(), ["first", "second"]);
        assert_eq!(r.kinds(), [("a.one", "first"), ("b", "second")]);
        assert_eq!(r.kinds_on("second"), ["b"]);
        let dup = r.clone().with(h::<A>()).unwrap_err();
        assert!(dup.to_string().contains("\"a.one\" is registered twice"), "{dup}");
        let bad = Registry::new().with(h::<Bad>()).unwrap_err();
        assert!(bad.to_string().contains("Bad Kind"), "{bad}");
    }

    #[test]
    fn anything_not_an_envelope_decodes_to_no_kind() {
        let e: Envelope = serde_json::from_str(r#"{"kind":"run","payload":{"run_id":7}}"#).unwrap();
        assert_eq!(e, Envelope { kind: "run".into(), payload: serde_json::json!({"run_id": 7}) });
        let legacy: Envelope = serde_json::from_str(r#"{"run_id":7}"#).unwrap();
        assert_eq!(legacy, Envelope { kind: String::new(), payload: serde_json::json!({"run_id": 7}) });
        let odd: Envelope = serde_json::from_str("[1,2]").unwrap();
        assert_eq!(odd.kind, "");
    }

    #[test]
    fn names() {
        assert!(valid_name("kis.daily", true));
        assert!(!valid_name("kis.daily", false));
        assert!(valid_name("runs", false));
        for bad in ["", ".", "a..b", "A", "a b", "a:b"] {
            assert!(!valid_name(bad, true), "{bad:?}");
        }
    }
}
