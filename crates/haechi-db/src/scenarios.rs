//! Scenarios and their immutable versions and shares.

use crate::entity::{run, scenario, scenario_share, scenario_version, user};
use crate::repo::Page;
use crate::{Db, DbError, now_ms};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

pub type Scenario = scenario::Model;
pub type ScenarioVersion = scenario_version::Model;

/// The content of a new version. `spec` is the validated scenario as JSON; `name`,
/// `description` and `strategy` are copied from it for listing.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub name: String,
    pub description: Option<String>,
    pub strategy: String,
    pub spec: String,
    pub author_id: i64,
    pub message: String,
}

/// Which scenarios a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScenarioScope {
    /// Owned and shared with the viewer.
    #[default]
    All,
    Owned,
    Shared,
}

#[derive(Debug, Clone, Default)]
pub struct ScenarioQuery {
    pub viewer_id: i64,
    /// Whether the viewer has the analyst role (scenarios shared with all analysts).
    pub viewer_is_analyst: bool,
    pub scope: ScenarioScope,
    /// Case-insensitive substring of the name or description.
    pub search: Option<String>,
    pub strategy: Option<String>,
    /// Only soft-deleted scenarios (the owner's bin) instead of live ones.
    pub deleted: bool,
    pub page: u64,
    pub per_page: u64,
}

/// How a viewer may use a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Owner,
    /// Shared read-only.
    Reader,
}

/// A share as shown to the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareEntry {
    pub user_id: i64,
    pub email: String,
}

/// `LIKE` pattern matching `s` literally anywhere (escaping `%`, `_` and the escape char).
fn contains_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn shared_condition(viewer_id: i64, analyst: bool) -> Condition {
    let mut c = Condition::any().add(
        scenario::Column::Id.in_subquery(
            Query::select()
                .column(scenario_share::Column::ScenarioId)
                .from(scenario_share::Entity)
                .and_where(scenario_share::Column::UserId.eq(viewer_id))
                .take(),
        ),
    );
    if analyst {
        c = c.add(scenario::Column::SharedWithAnalysts.eq(true));
    }
    Condition::all().add(scenario::Column::OwnerId.ne(viewer_id)).add(c)
}

async fn insert_version(
    c: &impl sea_orm::ConnectionTrait,
    scenario_id: i64,
    version: i32,
    spec: String,
    author_id: i64,
    message: String,
    at: i64,
) -> Result<ScenarioVersion, DbError> {
    Ok(scenario_version::ActiveModel {
        scenario_id: Set(scenario_id),
        version: Set(version),
        size_bytes: Set(i64::try_from(spec.len()).unwrap_or(i64::MAX)),
        spec: Set(spec),
        author_id: Set(author_id),
        message: Set(message),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(c)
    .await?)
}

impl Db {
    /// Creates a scenario with its first version.
    ///
    /// # Errors
    /// The driver's error; nothing is stored then.
    pub async fn create_scenario(&self, owner_id: i64, v: NewVersion) -> Result<(Scenario, ScenarioVersion), DbError> {
        let now = now_ms();
        let tx = self.connection().begin().await?;
        let s = scenario::ActiveModel {
            owner_id: Set(owner_id),
            name: Set(v.name),
            description: Set(v.description),
            strategy: Set(v.strategy),
            current_version: Set(1),
            shared_with_analysts: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
            ..Default::default()
        }
        .insert(&tx)
        .await?;
        let ver = insert_version(&tx, s.id, 1, v.spec, v.author_id, v.message, now).await?;
        tx.commit().await?;
        Ok((s, ver))
    }

    /// The scenario with `id`, deleted or not, whoever owns it.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn scenario_by_id(&self, id: i64) -> Result<Option<Scenario>, DbError> {
        Ok(scenario::Entity::find_by_id(id).one(self.connection()).await?)
    }

    /// The scenario if `viewer` may read it: its owner (deleted or not), or a reader it is
    /// shared with (live scenarios only). `None` hides whether it exists.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn scenario_for(
        &self,
        id: i64,
        viewer_id: i64,
        viewer_is_analyst: bool,
    ) -> Result<Option<(Scenario, Access)>, DbError> {
        let Some(s) = self.scenario_by_id(id).await? else { return Ok(None) };
        if s.owner_id == viewer_id {
            return Ok(Some((s, Access::Owner)));
        }
        if s.deleted_at.is_some() {
            return Ok(None);
        }
        if s.shared_with_analysts && viewer_is_analyst {
            return Ok(Some((s, Access::Reader)));
        }
        let shared = scenario_share::Entity::find_by_id((id, viewer_id)).one(self.connection()).await?.is_some();
        Ok(shared.then_some((s, Access::Reader)))
    }

    /// Counts the live scenarios a user owns (for the per-user quota).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn count_owned_scenarios(&self, owner_id: i64) -> Result<u64, DbError> {
        Ok(scenario::Entity::find()
            .filter(scenario::Column::OwnerId.eq(owner_id))
            .filter(scenario::Column::DeletedAt.is_null())
            .count(self.connection())
            .await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn list_scenarios(&self, q: &ScenarioQuery) -> Result<Page<Scenario>, DbError> {
        let owned = scenario::Column::OwnerId.eq(q.viewer_id);
        let shared = shared_condition(q.viewer_id, q.viewer_is_analyst);
        let mut cond = match (q.scope, q.deleted) {
            // Only owners see their bin.
            (_, true) => Condition::all().add(owned).add(scenario::Column::DeletedAt.is_not_null()),
            (ScenarioScope::Owned, false) => Condition::all().add(owned),
            (ScenarioScope::Shared, false) => shared,
            (ScenarioScope::All, false) => Condition::any().add(owned).add(shared),
        };
        if !q.deleted {
            cond = Condition::all().add(cond).add(scenario::Column::DeletedAt.is_null());
        }
        if let Some(s) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            let pat = contains_pattern(&s.to_lowercase());
            cond = cond.add(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(scenario::Column::Name)))
                            .like(LikeExpr::new(pat.clone()).escape('\\')),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col(scenario::Column::Description)))
                            .like(LikeExpr::new(pat).escape('\\')),
                    ),
            );
        }
        if let Some(st) = &q.strategy {
            cond = cond.add(scenario::Column::Strategy.eq(st.as_str()));
        }
        let pager = scenario::Entity::find()
            .filter(cond)
            .order_by_desc(scenario::Column::UpdatedAt)
            .order_by_desc(scenario::Column::Id)
            .paginate(self.connection(), Ord::max(q.per_page, 1));
        Ok(Page { total: pager.num_items().await?, items: pager.fetch_page(q.page).await? })
    }

    /// Adds a version and makes it current. With `base_version`, the change is refused
    /// ([`DbError::Conflict`]) if someone else saved a version since.
    ///
    /// # Errors
    /// [`DbError::Conflict`] on a lost update; the driver's error.
    pub async fn add_scenario_version(
        &self,
        scenario_id: i64,
        base_version: Option<i32>,
        v: NewVersion,
    ) -> Result<(Scenario, ScenarioVersion), DbError> {
        let tx = self.connection().begin().await?;
        let now = now_ms();
        // The write comes first: on SQLite a transaction that reads and then writes must upgrade
        // its lock, which fails at once (no busy wait) when another connection wrote in between
        // (an audit row, a session touch); a first write waits for the lock instead.
        // Compare-and-set on the version number: two concurrent saves cannot both win.
        let mut update = scenario::Entity::update_many()
            .col_expr(scenario::Column::CurrentVersion, Expr::col(scenario::Column::CurrentVersion).add(1))
            .col_expr(scenario::Column::Name, Expr::value(v.name))
            .col_expr(scenario::Column::Description, Expr::value(v.description))
            .col_expr(scenario::Column::Strategy, Expr::value(v.strategy))
            .col_expr(scenario::Column::UpdatedAt, Expr::value(now))
            .filter(scenario::Column::Id.eq(scenario_id));
        if let Some(b) = base_version {
            update = update.filter(scenario::Column::CurrentVersion.eq(b));
        }
        let res = update.exec(&tx).await?;
        if res.rows_affected != 1 {
            let exists = scenario::Entity::find_by_id(scenario_id).one(&tx).await?.is_some();
            return Err(if exists {
                DbError::Conflict("a newer version of this scenario")
            } else {
                DbError::NotFound("scenario")
            });
        }
        let s = scenario::Entity::find_by_id(scenario_id).one(&tx).await?.ok_or(DbError::NotFound("scenario"))?;
        let next = s.current_version;
        let ver = insert_version(&tx, scenario_id, next, v.spec, v.author_id, v.message, now).await?;
        tx.commit().await?;
        Ok((s, ver))
    }

    /// Every version, newest first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn scenario_versions(&self, scenario_id: i64) -> Result<Vec<ScenarioVersion>, DbError> {
        Ok(scenario_version::Entity::find()
            .filter(scenario_version::Column::ScenarioId.eq(scenario_id))
            .order_by_desc(scenario_version::Column::Version)
            .all(self.connection())
            .await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn scenario_version(&self, scenario_id: i64, version: i32) -> Result<Option<ScenarioVersion>, DbError> {
        Ok(scenario_version::Entity::find()
            .filter(scenario_version::Column::ScenarioId.eq(scenario_id))
            .filter(scenario_version::Column::Version.eq(version))
            .one(self.connection())
            .await?)
    }

    /// Soft-deletes (`true`) or undeletes (`false`). Returns whether anything changed.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn set_scenario_deleted(&self, scenario_id: i64, deleted: bool) -> Result<bool, DbError> {
        let now = now_ms();
        let mut q = scenario::Entity::update_many()
            .col_expr(scenario::Column::DeletedAt, Expr::value(deleted.then_some(now)))
            .col_expr(scenario::Column::UpdatedAt, Expr::value(now))
            .filter(scenario::Column::Id.eq(scenario_id));
        q = if deleted {
            q.filter(scenario::Column::DeletedAt.is_null())
        } else {
            q.filter(scenario::Column::DeletedAt.is_not_null())
        };
        Ok(q.exec(self.connection()).await?.rows_affected == 1)
    }

    /// Bytes a user keeps stored: every version of every scenario they own (the bin included:
    /// it is still stored) and every run report. For the stored-bytes quota.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn stored_bytes(&self, owner_id: i64) -> Result<u64, DbError> {
        // SUM of integers is DECIMAL on MySQL: cast back so both backends decode an i64.
        let int = match self.backend() {
            crate::Backend::Sqlite => "INTEGER",
            crate::Backend::MySql => "SIGNED",
        };
        let sum = |col: Expr| {
            Expr::expr(Func::cast_as(
                Func::coalesce([Expr::expr(Func::sum(col)), Expr::val(0)]),
                sea_orm::sea_query::Alias::new(int),
            ))
        };
        let versions: Option<i64> = scenario_version::Entity::find()
            .select_only()
            .column_as(sum(Expr::col((scenario_version::Entity, scenario_version::Column::SizeBytes))), "n")
            .filter(
                scenario_version::Column::ScenarioId.in_subquery(
                    Query::select()
                        .column(scenario::Column::Id)
                        .from(scenario::Entity)
                        .and_where(scenario::Column::OwnerId.eq(owner_id))
                        .take(),
                ),
            )
            .into_tuple()
            .one(self.connection())
            .await?;
        let reports: Option<i64> = run::Entity::find()
            .select_only()
            .column_as(sum(Expr::col((run::Entity, run::Column::ReportBytes))), "n")
            .filter(run::Column::OwnerId.eq(owner_id))
            .into_tuple()
            .one(self.connection())
            .await?;
        let total = versions.unwrap_or(0).saturating_add(reports.unwrap_or(0));
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Deletes a scenario in the bin for good, with its versions, shares and runs. Returns the
    /// deleted runs' report prefixes (for the caller to remove from object storage), or
    /// `None` when the scenario is not in the bin.
    ///
    /// # Errors
    /// The driver's error; nothing is deleted then.
    pub async fn purge_scenario(&self, scenario_id: i64) -> Result<Option<Vec<String>>, DbError> {
        let txn = self.connection().begin().await?;
        let binned = scenario::Entity::find_by_id(scenario_id)
            .filter(scenario::Column::DeletedAt.is_not_null())
            .one(&txn)
            .await?
            .is_some();
        if !binned {
            return Ok(None);
        }
        let prefixes: Vec<Option<String>> = run::Entity::find()
            .select_only()
            .column(run::Column::ReportKey)
            .filter(run::Column::ScenarioId.eq(scenario_id))
            .into_tuple()
            .all(&txn)
            .await?;
        // Children first: the schema cascades, but saying it keeps this correct on a
        // connection with foreign keys off.
        run::Entity::delete_many().filter(run::Column::ScenarioId.eq(scenario_id)).exec(&txn).await?;
        scenario_share::Entity::delete_many()
            .filter(scenario_share::Column::ScenarioId.eq(scenario_id))
            .exec(&txn)
            .await?;
        scenario_version::Entity::delete_many()
            .filter(scenario_version::Column::ScenarioId.eq(scenario_id))
            .exec(&txn)
            .await?;
        scenario::Entity::delete_by_id(scenario_id).exec(&txn).await?;
        txn.commit().await?;
        Ok(Some(prefixes.into_iter().flatten().collect()))
    }

    /// Replaces the scenario's shares.
    ///
    /// # Errors
    /// The driver's error; the old shares stay then.
    pub async fn set_scenario_shares(
        &self,
        scenario_id: i64,
        user_ids: &[i64],
        with_analysts: bool,
    ) -> Result<(), DbError> {
        let now = now_ms();
        let tx = self.connection().begin().await?;
        scenario_share::Entity::delete_many()
            .filter(scenario_share::Column::ScenarioId.eq(scenario_id))
            .exec(&tx)
            .await?;
        if !user_ids.is_empty() {
            scenario_share::Entity::insert_many(user_ids.iter().map(|u| scenario_share::ActiveModel {
                scenario_id: Set(scenario_id),
                user_id: Set(*u),
                created_at: Set(now),
            }))
            .exec(&tx)
            .await?;
        }
        scenario::Entity::update_many()
            .col_expr(scenario::Column::SharedWithAnalysts, Expr::value(with_analysts))
            .filter(scenario::Column::Id.eq(scenario_id))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Who a scenario is shared with, by email.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn scenario_shares(&self, scenario_id: i64) -> Result<Vec<ShareEntry>, DbError> {
        let rows: Vec<(i64, String)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::Email)
            .filter(
                user::Column::Id.in_subquery(
                    Query::select()
                        .column(scenario_share::Column::UserId)
                        .from(scenario_share::Entity)
                        .and_where(scenario_share::Column::ScenarioId.eq(scenario_id))
                        .take(),
                ),
            )
            .order_by_asc(user::Column::Email)
            .into_tuple()
            .all(self.connection())
            .await?;
        Ok(rows.into_iter().map(|(user_id, email)| ShareEntry { user_id, email }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
