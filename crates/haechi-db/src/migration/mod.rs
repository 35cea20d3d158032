//! Embedded migrations, run at start and by `haechi migrate`. One file per migration, never
//! edited once released: a change is a new migration.

use sea_orm_migration::prelude::*;

mod m20261127_000001_accounts;
mod m20261127_000002_scenarios_runs;
mod m20261127_000003_collection;
mod m20261207_000004_fair_runs_and_storage;
mod m20261207_000005_market_sessions;
mod m20261207_000006_sweeps;
mod m20261207_000007_paper;
mod m20261207_000008_paper_mirror;
mod m20261208_000009_guard;

#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_accounts::Migration),
            Box::new(m20261127_000002_scenarios_runs::Migration),
            Box::new(m20261127_000003_collection::Migration),
            Box::new(m20261207_000004_fair_runs_and_storage::Migration),
            Box::new(m20261207_000005_market_sessions::Migration),
            Box::new(m20261207_000006_sweeps::Migration),
            Box::new(m20261207_000007_paper::Migration),
            Box::new(m20261207_000008_paper_mirror::Migration),
            Box::new(m20261208_000009_guard::Migration),
        ]
    }
}
