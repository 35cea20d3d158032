/// Errors of the queue API.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("sqlite queue: {0}")]
    Sqlite(#[from] sqlx::Error),
    #[error("sqlite queue setup: {0}")]
    SqliteSetup(#[from] apalis_sqlite::Error),
    #[error("redis queue: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis queue: {0}")]
    RedisBackend(#[from] apalis_redis::Error),
    #[error("redis at {url} did not answer within {secs} s")]
    RedisTimeout { url: String, secs: u64 },
    #[error("enqueue failed: {0}")]
    Enqueue(String),
    #[error("job registry: {0}")]
    Registry(String),
    #[error("invalid worker options: {0}")]
    InvalidOptions(String),
    #[error("worker failed: {0}")]
    Worker(String),
}
