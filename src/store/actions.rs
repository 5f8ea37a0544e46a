//! Actions: the stored scripts of an organization.

use super::events::{self, NewEvent, Written};
use super::{org_lock, unique_or_internal, Store};
use crate::domain::fold::fold;
use crate::error::{ApiError, ApiResult, Kind};
use entity::{action, action_version, flow, flow_trigger_action};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Statement,
};

pub use entity::enums::ActionState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionInput {
    pub name: String,
    pub script: String,
    pub timeout_nanos: i64,
    pub allowed_to_fail: bool,
}

fn name_taken() -> ApiError {
    ApiError::new(Kind::AlreadyExists, "V3-DKcYh", "Action already exists")
}

async fn name_in_use(txn: &DatabaseTransaction, org: i64, folded: &str, except: Option<i64>) -> ApiResult<bool> {
    // Written by hand: sea-query spent more on rendering this count than SQLite on running it.
    let sql = "SELECT 1 AS found FROM actions WHERE org_id = $1 AND name_folded = $2 AND id <> $3 LIMIT 1";
    // Ids are positive: 0 excludes no action.
    let values = vec![org.into(), folded.into(), except.unwrap_or(0).into()];
    Ok(txn.query_one(super::stmt(txn.get_database_backend(), sql, values)).await?.is_some())
}

fn action_event(
    action_id: i64,
    org: i64,
    creator: i64,
    event_type: &'static str,
    payload: serde_json::Value,
) -> NewEvent<'static> {
    NewEvent {
        aggregate_type: crate::store::events::Aggregate::Action,
        aggregate_id: action_id.to_string(),
        event_type,
        resource_owner: org,
        creator,
        payload,
    }
}

pub async fn create(store: &Store, org: i64, creator: i64, input: ActionInput) -> ApiResult<(i64, Written)> {
    let id = store.new_id();
    // No organization lock: the action is new (nobody else can write it), and the name's
    // uniqueness in the organization is the unique index's (a concurrent create of the same name
    // fails on it with the same error as the check below).
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                let stored_input = input.clone();
                let folded = fold(&input.name);
                if name_in_use(txn, org, &folded, None).await? {
                    return Err(name_taken());
                }
                let written = events::append_first(
                    txn,
                    action_event(
                        id,
                        org,
                        creator,
                        "action.added",
                        serde_json::json!({
                            "name": input.name, "script": input.script,
                            "timeout": input.timeout_nanos, "allowedToFail": input.allowed_to_fail,
                        }),
                    ),
                )
                .await?;
                let row = action::ActiveModel {
                    id: Set(id),
                    org_id: Set(org),
                    name: Set(input.name),
                    name_folded: Set(folded),
                    script: Set(input.script),
                    timeout_nanos: Set(input.timeout_nanos),
                    allowed_to_fail: Set(input.allowed_to_fail),
                    state: Set(ActionState::Active),
                    sequence: Set(written.sequence),
                    created_at: Set(written.created_at),
                    changed_at: Set(written.created_at),
                    version: Set(1),
                };
                super::texts::insert(txn, &row).await.map_err(|e| unique_or_internal(e, name_taken()))?;
                record_version(txn, id, org, 1, &stored_input, written).await?;
                Ok((id, written))
            })
        })
        .await
}

pub async fn get<C: ConnectionTrait>(conn: &C, org: i64, id: i64) -> ApiResult<Option<action::Model>> {
    super::texts::select_one::<action::Entity, _>(
        conn,
        vec![(action::Column::Id, id.into()), (action::Column::OrgId, org.into())],
    )
    .await
}

pub async fn update(store: &Store, org: i64, creator: i64, id: i64, input: ActionInput) -> ApiResult<Changed> {
    store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                let Some(current) = get(txn, org, id).await? else {
                    return Err(ApiError::not_found("COMMAND-Sfg2t", "Action not found"));
                };
                if content(&current) == input {
                    return Err(ApiError::precondition("ACTION-dg4t2", "No changes"));
                }
                let payload = serde_json::json!({
                    "name": input.name, "script": input.script,
                    "timeout": input.timeout_nanos, "allowedToFail": input.allowed_to_fail,
                });
                replace_content(txn, current, creator, input, "action.changed", payload).await
            })
        })
        .await
}

/// A write that recorded a new version of an action.
#[derive(Debug, Clone, Copy)]
pub struct Changed {
    pub written: Written,
    pub version: i64,
}

/// The content a version records.
pub fn content(a: &action::Model) -> ActionInput {
    ActionInput {
        name: a.name.clone(),
        script: a.script.clone(),
        timeout_nanos: a.timeout_nanos,
        allowed_to_fail: a.allowed_to_fail,
    }
}

/// Gives `current` new content as its next version (name uniqueness checked), with the event.
async fn replace_content(
    txn: &DatabaseTransaction,
    current: action::Model,
    creator: i64,
    input: ActionInput,
    event_type: &'static str,
    payload: serde_json::Value,
) -> ApiResult<Changed> {
    let (id, org) = (current.id, current.org_id);
    let folded = fold(&input.name);
    if folded != current.name_folded && name_in_use(txn, org, &folded, Some(id)).await? {
        return Err(name_taken());
    }
    let written = events::append(txn, action_event(id, org, creator, event_type, payload)).await?;
    let version = current.version + 1;
    let mut am: action::ActiveModel = current.into();
    am.name = Set(input.name.clone());
    am.name_folded = Set(folded);
    am.script = Set(input.script.clone());
    am.timeout_nanos = Set(input.timeout_nanos);
    am.allowed_to_fail = Set(input.allowed_to_fail);
    am.sequence = Set(written.sequence);
    am.changed_at = Set(written.created_at);
    am.version = Set(version);
    super::texts::update(txn, &am).await.map_err(|e| unique_or_internal(e, name_taken()))?;
    record_version(txn, id, org, version, &input, written).await?;
    Ok(Changed { written, version })
}

/// How many versions of an action are kept (the newest).
pub const KEPT_VERSIONS: i64 = 50;

/// Stores a version and drops those that fall out of the kept window.
async fn record_version(
    txn: &DatabaseTransaction,
    action_id: i64,
    org: i64,
    version: i64,
    input: &ActionInput,
    written: Written,
) -> ApiResult<()> {
    let row = action_version::ActiveModel {
        action_id: Set(action_id),
        version: Set(version),
        org_id: Set(org),
        name: Set(input.name.clone()),
        script: Set(input.script.clone()),
        timeout_nanos: Set(input.timeout_nanos),
        allowed_to_fail: Set(input.allowed_to_fail),
        sequence: Set(written.sequence),
        created_at: Set(written.created_at),
    };
    super::texts::insert(txn, &row).await?;
    if version > KEPT_VERSIONS {
        action_version::Entity::delete_many()
            .filter(action_version::Column::ActionId.eq(action_id))
            .filter(action_version::Column::Version.lte(version - KEPT_VERSIONS))
            .exec(txn)
            .await?;
    }
    Ok(())
}

pub fn version_not_found() -> ApiError {
    ApiError::not_found("ACTION-v3rs0", "Action version not found")
}

/// The kept versions of an action of `org`, newest first (None: no such action).
pub async fn versions<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    id: i64,
) -> ApiResult<Option<Vec<action_version::Model>>> {
    if get(conn, org, id).await?.is_none() {
        return Ok(None);
    }
    let rows = action_version::Entity::find()
        .filter(action_version::Column::ActionId.eq(id))
        .filter(action_version::Column::OrgId.eq(org))
        .order_by_desc(action_version::Column::Version)
        .all(conn)
        .await?;
    Ok(Some(rows))
}

/// One kept version of an action of `org`.
pub async fn version<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    id: i64,
    version: i64,
) -> ApiResult<Option<action_version::Model>> {
    Ok(action_version::Entity::find_by_id((id, version))
        .filter(action_version::Column::OrgId.eq(org))
        .one(conn)
        .await?)
}

/// Gives an action the content of one of its kept versions, as a new version. `check` validates
/// that content as an UpdateAction would (limits may have changed since it was recorded).
pub async fn rollback(
    store: &Store,
    org: i64,
    creator: i64,
    id: i64,
    to: i64,
    check: impl FnOnce(&ActionInput) -> ApiResult<()> + Send + 'static,
) -> ApiResult<Changed> {
    store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                let Some(current) = get(txn, org, id).await? else {
                    return Err(ApiError::not_found("COMMAND-Sfg2t", "Action not found"));
                };
                let target = version(txn, org, id, to).await?.ok_or_else(version_not_found)?;
                let input = ActionInput {
                    name: target.name,
                    script: target.script,
                    timeout_nanos: target.timeout_nanos,
                    allowed_to_fail: target.allowed_to_fail,
                };
                check(&input)?;
                if content(&current) == input {
                    return Err(ApiError::precondition(
                        "ACTION-r0llb",
                        "The action already has the content of this version",
                    ));
                }
                let payload = serde_json::json!({
                    "fromVersion": to.to_string(), "version": (current.version + 1).to_string(),
                    "name": input.name, "script": input.script,
                    "timeout": input.timeout_nanos, "allowedToFail": input.allowed_to_fail,
                });
                replace_content(txn, current, creator, input, "action.rolledback", payload).await
            })
        })
        .await
}

/// Whether the action of `org` exists (for telling an unknown action from an unknown version).
pub async fn exists<C: ConnectionTrait>(conn: &C, org: i64, id: i64) -> ApiResult<bool> {
    Ok(get(conn, org, id).await?.is_some())
}

/// Deactivates (`active = false`) or reactivates an action.
pub async fn set_state(store: &Store, org: i64, creator: i64, id: i64, active: bool) -> ApiResult<Written> {
    store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                let current = get(txn, org, id).await?;
                let (from, to, event_type) = if active {
                    (ActionState::Inactive, ActionState::Active, "action.reactivated")
                } else {
                    (ActionState::Active, ActionState::Inactive, "action.deactivated")
                };
                let Some(current) = current else {
                    return Err(if active {
                        ApiError::not_found("COMMAND-Aa22g", "Action not found")
                    } else {
                        ApiError::not_found("COMMAND-NRmhu", "Action not found")
                    });
                };
                if current.state != from {
                    return Err(if active {
                        ApiError::precondition("COMMAND-J53zh", "Action is not inactive")
                    } else {
                        ApiError::precondition("COMMAND-Dgj92", "Action is not active")
                    });
                }
                let written =
                    events::append(txn, action_event(id, org, creator, event_type, serde_json::json!({}))).await?;
                let mut am: action::ActiveModel = current.into();
                am.state = Set(to);
                am.sequence = Set(written.sequence);
                am.changed_at = Set(written.created_at);
                am.update(txn).await?;
                Ok(written)
            })
        })
        .await
}

/// Deletes an action and removes it from every trigger of its org, in one transaction.
pub async fn delete(store: &Store, org: i64, creator: i64, id: i64) -> ApiResult<()> {
    store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                if get(txn, org, id).await?.is_none() {
                    return Err(ApiError::not_found("COMMAND-Dgh4h", "Action not found"));
                }
                events::append(txn, action_event(id, org, creator, "action.removed", serde_json::json!({}))).await?;
                let mut flow_types: Vec<i32> = flow_trigger_action::Entity::find()
                    .select_only()
                    .column(flow_trigger_action::Column::FlowType)
                    .filter(flow_trigger_action::Column::OrgId.eq(org))
                    .filter(flow_trigger_action::Column::ActionId.eq(id))
                    .into_tuple()
                    .all(txn)
                    .await?;
                flow_types.sort_unstable();
                flow_types.dedup();
                flow_trigger_action::Entity::delete_many()
                    .filter(flow_trigger_action::Column::ActionId.eq(id))
                    .exec(txn)
                    .await?;
                for flow_type in flow_types {
                    let written = events::append(
                        txn,
                        NewEvent {
                            aggregate_type: crate::store::events::Aggregate::Org,
                            aggregate_id: org.to_string(),
                            event_type: "org.flow.trigger_actions.cascade.removed",
                            resource_owner: org,
                            creator,
                            payload: serde_json::json!({"flowType": flow_type, "actionId": id.to_string()}),
                        },
                    )
                    .await?;
                    flow::Entity::update_many()
                        .col_expr(flow::Column::Sequence, Expr::value(written.sequence))
                        .col_expr(flow::Column::ChangedAt, Expr::value(written.created_at))
                        .filter(flow::Column::OrgId.eq(org))
                        .filter(flow::Column::FlowType.eq(flow_type))
                        .exec(txn)
                        .await?;
                }
                action::Entity::delete_by_id(id).exec(txn).await?;
                action_version::Entity::delete_many().filter(action_version::Column::ActionId.eq(id)).exec(txn).await?;
                Ok(())
            })
        })
        .await
}

/// How a text query compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMethod {
    Equals,
    EqualsIgnoreCase,
    StartsWith,
    StartsWithIgnoreCase,
    Contains,
    ContainsIgnoreCase,
    EndsWith,
    EndsWithIgnoreCase,
}

impl TextMethod {
    pub fn from_number(n: i64) -> Option<Self> {
        use TextMethod::*;
        [
            Equals,
            EqualsIgnoreCase,
            StartsWith,
            StartsWithIgnoreCase,
            Contains,
            ContainsIgnoreCase,
            EndsWith,
            EndsWithIgnoreCase,
        ]
        .get(usize::try_from(n).ok()?)
        .copied()
    }

    fn ignores_case(self) -> bool {
        use TextMethod::*;
        matches!(self, EqualsIgnoreCase | StartsWithIgnoreCase | ContainsIgnoreCase | EndsWithIgnoreCase)
    }

    /// The comparison done in memory (lists kept small enough not to need the database), with the
    /// same folding as the stored `name_folded` copies. The wanted text is folded here, once for
    /// all the rows it is compared with (it may be long; the rows' names are short).
    pub fn matcher(self, wanted: &str) -> TextMatch {
        let wanted = if self.ignores_case() { fold(wanted) } else { wanted.to_string() };
        TextMatch { method: self, wanted }
    }
}

/// A text query ready to be compared with many values: [`TextMethod::matcher`].
pub struct TextMatch {
    method: TextMethod,
    wanted: String,
}

impl TextMatch {
    pub fn is_match(&self, value: &str) -> bool {
        use TextMethod::*;
        let folded;
        let v = if self.method.ignores_case() {
            folded = fold(value);
            folded.as_str()
        } else {
            value
        };
        let w = self.wanted.as_str();
        match self.method {
            Equals | EqualsIgnoreCase => v == w,
            StartsWith | StartsWithIgnoreCase => v.starts_with(w),
            Contains | ContainsIgnoreCase => v.contains(w),
            EndsWith | EndsWithIgnoreCase => v.ends_with(w),
        }
    }
}

pub enum ActionFilter {
    Id(i64),
    /// An id that cannot exist (unparsable): matches nothing.
    Nothing,
    Name(String, TextMethod),
    State(ActionState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Unspecified,
    Name,
    Id,
    State,
}

pub struct ListParams {
    pub offset: u64,
    pub limit: u64,
    pub asc: bool,
    pub sort: SortColumn,
    pub filters: Vec<ActionFilter>,
}

/// A custom SQL condition written with `?` placeholders, numbered for PostgreSQL.
fn cust(backend: DatabaseBackend, sql: &str, values: Vec<String>) -> SimpleExpr {
    if backend != DatabaseBackend::Postgres {
        return Expr::cust_with_values(sql, values);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    Expr::cust_with_values(out, values)
}

/// The condition of a text query on a table's `name` (or its folded copy `name_folded`); none
/// where it matches every row (a non-equality method with an empty text).
pub(crate) fn name_condition(backend: DatabaseBackend, value: &str, method: TextMethod) -> Option<SimpleExpr> {
    use TextMethod::*;
    // Case-insensitive methods compare the stored folded copy with the folded value.
    let (column, value) = match method {
        Equals | StartsWith | Contains | EndsWith => ("\"name\"", value.to_string()),
        _ => ("\"name_folded\"", fold(value)),
    };
    let pg = backend == DatabaseBackend::Postgres;
    let v = || value.clone();
    // Plain string functions instead of LIKE: no pattern escaping, case-sensitive on SQLite too,
    // and faster than LIKE on both backends.
    match method {
        Equals | EqualsIgnoreCase => Some(cust(backend, &format!("{column} = ?"), vec![v()])),
        _ if value.is_empty() => None,
        StartsWith | StartsWithIgnoreCase if pg => {
            Some(cust(backend, &format!("left({column}, char_length(?)) = ?"), vec![v(), v()]))
        }
        StartsWith | StartsWithIgnoreCase => {
            Some(cust(backend, &format!("substr({column}, 1, length(?)) = ?"), vec![v(), v()]))
        }
        EndsWith | EndsWithIgnoreCase if pg => {
            Some(cust(backend, &format!("right({column}, char_length(?)) = ?"), vec![v(), v()]))
        }
        EndsWith | EndsWithIgnoreCase => Some(cust(
            backend,
            &format!("(length({column}) >= length(?) AND substr({column}, -length(?)) = ?)"),
            vec![v(), v(), v()],
        )),
        Contains | ContainsIgnoreCase if pg => Some(cust(backend, &format!("strpos({column}, ?) > 0"), vec![v()])),
        Contains | ContainsIgnoreCase => Some(cust(backend, &format!("instr({column}, ?) > 0"), vec![v()])),
    }
}

/// One page of actions with the number of matches and the position of the newest event, all
/// read by one statement (one snapshot).
pub struct Page {
    pub total: u64,
    pub position: i64,
    pub rows: Vec<action::Model>,
}

/// The columns of a page row, in the order `list` aggregates them.
const PAGE_COLUMNS: &str = "a.\"id\", a.\"org_id\", a.\"name\", a.\"name_folded\", a.\"script\", a.\"timeout_nanos\", \
    a.\"allowed_to_fail\", a.\"state\", a.\"sequence\", a.\"created_at\", a.\"changed_at\", a.\"version\"";

/// A page row as the JSON functions give it: an array of `PAGE_COLUMNS`, in order (serde reads a
/// struct from an array field by field).
#[derive(serde::Deserialize)]
struct PageRow {
    id: i64,
    org_id: i64,
    name: String,
    name_folded: String,
    script: String,
    timeout_nanos: i64,
    allowed_to_fail: Flag,
    state: i32,
    sequence: i64,
    created_at: i64,
    changed_at: i64,
    version: i64,
}

/// A boolean as the JSON functions give it: `true`/`false` (PostgreSQL) or 0/1 (SQLite).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Int(i64),
}

impl TryFrom<PageRow> for action::Model {
    type Error = ApiError;

    fn try_from(r: PageRow) -> ApiResult<Self> {
        let state = ActionState::try_from_value(&r.state)
            .map_err(|_| ApiError::internal(format!("action {}: unknown state {}", r.id, r.state)))?;
        Ok(action::Model {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            name_folded: r.name_folded,
            script: r.script,
            timeout_nanos: r.timeout_nanos,
            allowed_to_fail: match r.allowed_to_fail {
                Flag::Bool(b) => b,
                Flag::Int(i) => i != 0,
            },
            state,
            sequence: r.sequence,
            created_at: r.created_at,
            changed_at: r.changed_at,
            version: r.version,
        })
    }
}

pub async fn list(store: &Store, org: i64, params: ListParams) -> ApiResult<Page> {
    let backend = store.backend;
    let pg = backend == DatabaseBackend::Postgres;
    let mut cond = Condition::all();
    for f in &params.filters {
        cond = match f {
            ActionFilter::Id(id) => cond.add(action::Column::Id.eq(*id)),
            ActionFilter::Nothing => cond.add(Expr::cust("1 = 0")),
            ActionFilter::State(s) => cond.add(action::Column::State.eq(*s)),
            ActionFilter::Name(value, method) => match name_condition(backend, value, *method) {
                Some(c) => cond.add(c),
                None => cond,
            },
        };
    }
    // One statement: with a filter, the matches' sort keys come from the covering index
    // (org_id, name_folded, name, state, id) once, materialized, so the filter is evaluated once
    // for the total and the page; only the page's rows are read in full, and they come back as one JSON array in one
    // result row (the SQLite driver hands every result row from its thread to the caller: a
    // hundred rows were a hundred hand-offs). The order is the databases' (names bytewise:
    // SQLite's BINARY, PostgreSQL's "C" collation) and is applied again to the array here.
    let filtered = !cond.is_empty();
    let matches = action::Entity::find()
        .select_only()
        .column(action::Column::Id)
        .column(action::Column::Name)
        .column(action::Column::State)
        .filter(action::Column::OrgId.eq(org))
        .filter(cond)
        .build(backend);
    let dir = if params.asc { "ASC" } else { "DESC" };
    let name = if pg { "\"name\" COLLATE \"C\"" } else { "\"name\"" };
    let order = match params.sort {
        SortColumn::Unspecified | SortColumn::Id => format!("\"id\" {dir}"),
        SortColumn::Name => format!("{name} {dir}, \"id\" {dir}"),
        SortColumn::State => format!("\"state\" {dir}, \"id\" {dir}"),
    };
    // PostgreSQL reads each page row by its key (a join made it hash the whole table when it
    // guessed many matches); SQLite's join already does, and its JSON values would lose their
    // JSON type through a subquery.
    let page = if pg {
        format!(
            "(SELECT json_agg((SELECT json_build_array({PAGE_COLUMNS}) FROM \"actions\" a WHERE a.\"id\" = p.\"id\"))::text FROM p)"
        )
    } else {
        format!(
            "(SELECT json_group_array(json_array({PAGE_COLUMNS})) FROM p JOIN \"actions\" a ON a.\"id\" = p.\"id\")"
        )
    };
    // Without a filter there is nothing to evaluate twice: the matches are inlined into the
    // count and the page, which then use whichever index suits each.
    let materialized = if filtered { "MATERIALIZED" } else { "NOT MATERIALIZED" };
    let sql = format!(
        "WITH m AS {materialized} ({inner}), \
         p AS (SELECT \"id\" FROM m ORDER BY {order} LIMIT {limit} OFFSET {offset}) \
         SELECT (SELECT count(*) FROM m) AS total, \
         ({position}) AS position, \
         {page} AS page",
        inner = matches.sql,
        position = events::last_position_query().build(backend).sql,
        limit = params.limit.min(i64::MAX as u64),
        offset = params.offset.min(i64::MAX as u64),
    );
    let statement = Statement::from_sql_and_values(backend, sql, matches.values.map(|v| v.0).unwrap_or_default());
    let row =
        store.db.query_one(statement).await?.ok_or_else(|| ApiError::internal("the list statement returned no row"))?;
    let total: i64 = row.try_get("", "total")?;
    let position: Option<i64> = row.try_get("", "position")?;
    let page: Option<String> = row.try_get("", "page")?;
    let parsed: Vec<PageRow> = match page.as_deref() {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|e| ApiError::internal(format!("the list page: {e}")))?,
    };
    let mut rows = parsed.into_iter().map(action::Model::try_from).collect::<ApiResult<Vec<_>>>()?;
    rows.sort_unstable_by(|a, b| {
        let by = match params.sort {
            SortColumn::Unspecified | SortColumn::Id => std::cmp::Ordering::Equal,
            SortColumn::Name => a.name.as_bytes().cmp(b.name.as_bytes()),
            SortColumn::State => a.state.to_value().cmp(&b.state.to_value()),
        }
        .then(a.id.cmp(&b.id));
        if params.asc {
            by
        } else {
            by.reverse()
        }
    });
    Ok(Page { total: u64::try_from(total).unwrap_or(0), position: position.unwrap_or(0), rows })
}
