//! The questions the HTTP API asks, answered as views shaped like the API's models.

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::filter::{Filter, Over};
use super::state::{IS_ADMINISTRATOR, IS_DIRECT_ADMINISTRATOR, group_type};
use crate::auth::{Bearer, Credential};
use crate::domain::{Actor, Custom, GroupType, Outcome, Profile, Scope, Username};

/// A user as the API shows it. Credentials never leave the read model.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    #[serde(flatten)]
    pub profile: Profile,
    pub credentials: serde_json::Value,
    pub status: serde_json::Value,
    pub created: String,
    pub modified: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub group_type: GroupType,
    pub custom: Custom,
    pub created: String,
    /// How many changes the group has had: its ETag, not part of the model.
    #[serde(skip)]
    pub version: u64,
    /// The group's id in an identity provider (SCIM `externalId`): not part of the model.
    #[serde(skip)]
    pub external_id: Option<String>,
}

const USER_COLUMNS: &str =
    "u.id, u.username, u.email, u.profile, u.created, u.modified, u.suspended";

fn user_view(row: &Row) -> rusqlite::Result<UserView> {
    let profile: String = row.get(3)?;
    let profile = serde_json::from_str(&profile).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(UserView {
        id: row.get(0)?,
        username: row.get(1)?,
        email: row.get(2)?,
        profile,
        credentials: json!({ "provider": { "type": "contensis", "name": "contensis" } }),
        // Accounts are suspended, never locked: failed logins are throttled by address.
        status: json!({
            "suspended": row.get::<_, bool>(6)?,
            "locked": false,
            "passwordResetRequired": false,
        }),
        created: row.get(4)?,
        modified: row.get(5)?,
    })
}

impl UserView {
    pub fn load(conn: &Connection, id: Uuid) -> anyhow::Result<Option<Self>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1");
        Ok(conn
            .prepare_cached(&sql)?
            .query_row([id], user_view)
            .optional()?)
    }
}

const GROUP_COLUMNS: &str =
    "g.id, g.name, g.description, g.type, g.custom, g.created, g.version, g.external_id";

fn group_view(row: &Row) -> rusqlite::Result<GroupView> {
    let custom: String = row.get(4)?;
    Ok(GroupView {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        group_type: group_type(&row.get::<_, String>(3)?)?,
        custom: serde_json::from_str(&custom).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
        })?,
        created: row.get(5)?,
        version: row.get(6)?,
        external_id: row.get(7)?,
    })
}

impl GroupView {
    pub fn load(conn: &Connection, id: Uuid) -> anyhow::Result<Option<Self>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.id = ?1");
        Ok(conn
            .prepare_cached(&sql)?
            .query_row([id], group_view)
            .optional()?)
    }
}

/// One page of a list: the rows of `from_where` (`FROM ... WHERE ...` over the `keys`,
/// `?1`, `?2`...), counted, then selected as `columns` in `order` from `offset`, at most
/// `limit`.
#[allow(clippy::too_many_arguments)]
fn page<T>(
    conn: &Connection,
    columns: &str,
    from_where: &str,
    order: &str,
    keys: &[&dyn rusqlite::ToSql],
    offset: u64,
    limit: u64,
    row: fn(&Row) -> rusqlite::Result<T>,
) -> anyhow::Result<(u64, Vec<T>)> {
    let total: u64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) {from_where}"))?
        .query_row(keys, |r| r.get(0))?;
    let (limit_at, offset_at) = (keys.len() + 1, keys.len() + 2);
    let sql = format!(
        "SELECT {columns} {from_where} ORDER BY {order} LIMIT ?{limit_at} OFFSET ?{offset_at}"
    );
    let mut bound: Vec<&dyn rusqlite::ToSql> = keys.to_vec();
    bound.extend([&limit as &dyn rusqlite::ToSql, &offset]);
    let items = conn
        .prepare_cached(&sql)?
        .query_map(bound.as_slice(), row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((total, items))
}

/// Whether the user is in System Administrators, directly or through child groups. A
/// direct member is found by key; otherwise a walk up from the user's own groups, which
/// stays small however many groups there are.
pub fn is_administrator(conn: &Connection, user: Uuid) -> anyhow::Result<bool> {
    let is = |sql: &str| -> rusqlite::Result<bool> {
        conn.prepare_cached(sql)?
            .query_row([user], |row| row.get(0))
    };
    Ok(is(IS_DIRECT_ADMINISTRATOR)? || is(&IS_ADMINISTRATOR)?)
}

/// Scopes as the users table keeps them: space-separated.
pub fn scopes_text(scopes: &[Scope]) -> String {
    let names: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
    names.join(" ")
}

fn scopes_of_text(text: &str) -> Vec<Scope> {
    text.split_whitespace().filter_map(Scope::parse).collect()
}

/// The scopes of a user's API client (none for most users).
pub fn scopes_of(conn: &Connection, user: Uuid) -> anyhow::Result<Vec<Scope>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT scopes FROM users WHERE id = ?1")?
        .query_row([user], |row| row.get(0))
        .optional()?;
    Ok(scopes_of_text(&text.unwrap_or_default()))
}

/// An API client as listed: its id, its account, its scopes, and when it was made.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    pub client_id: String,
    pub user_id: Uuid,
    pub username: String,
    pub scopes: Vec<Scope>,
    pub created: String,
}

const CLIENT_COLUMNS: &str = "client_id, id, username, scopes, created";

fn client_row(row: &Row) -> rusqlite::Result<ClientView> {
    Ok(ClientView {
        client_id: row.get(0)?,
        user_id: row.get(1)?,
        username: row.get(2)?,
        scopes: scopes_of_text(&row.get::<_, String>(3)?),
        created: row.get(4)?,
    })
}

/// Every API client's account, the bootstrap client's included, by client id.
pub fn list_clients(conn: &Connection) -> anyhow::Result<Vec<ClientView>> {
    let sql = format!(
        "SELECT {CLIENT_COLUMNS} FROM users WHERE client_id IS NOT NULL ORDER BY client_id"
    );
    let clients = conn
        .prepare_cached(&sql)?
        .query_map([], client_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(clients)
}

/// The API client with this id, by the index on client ids.
pub fn client(conn: &Connection, client_id: &str) -> anyhow::Result<Option<ClientView>> {
    let sql = format!("SELECT {CLIENT_COLUMNS} FROM users WHERE client_id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([client_id], client_row)
        .optional()?)
}

/// Whether the user is an API client's account (the bootstrap client's among them).
pub fn is_service_account(conn: &Connection, user: Uuid) -> anyhow::Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1 AND client_id IS NOT NULL)",
        )?
        .query_row([user], |row| row.get(0))?)
}

/// What a client login needs to know of its account, by the account's id.
pub fn login_of(conn: &Connection, user: Uuid) -> anyhow::Result<Option<Login>> {
    conn.prepare_cached(
        "SELECT u.id, p.hash, p.version, u.suspended, u.suspensions FROM users u
         JOIN passwords p ON p.user_id = u.id WHERE u.id = ?1",
    )?
    .query_row([user], login_row)
    .optional()
    .map_err(Into::into)
}

fn login_row(row: &Row) -> rusqlite::Result<Login> {
    Ok(Login {
        user: row.get(0)?,
        hash: row.get(1)?,
        version: row.get(2)?,
        status: AccountStatus {
            suspended: row.get(3)?,
            suspensions: row.get(4)?,
        },
    })
}

/// The service account bound to an API client.
pub fn service_account(conn: &Connection, client_id: &str) -> anyhow::Result<Option<Uuid>> {
    conn.prepare_cached("SELECT id FROM users WHERE client_id = ?1")?
        .query_row([client_id], |row| row.get(0))
        .optional()
        .map_err(Into::into)
}

/// What a password login needs to know of a user.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: Uuid,
    pub hash: String,
    /// How many times the password has been set: the tokens' credential version.
    pub version: u64,
    pub status: AccountStatus,
}

/// Whether a user may have a token now, and what its tokens carry of that.
#[derive(Debug, Clone, Copy)]
pub struct AccountStatus {
    pub suspended: bool,
    /// How many times it has been suspended (see [`crate::auth::Bearer::suspensions`]).
    pub suspensions: u64,
}

pub fn account_status(conn: &Connection, user: Uuid) -> anyhow::Result<Option<AccountStatus>> {
    conn.prepare_cached("SELECT suspended, suspensions FROM users WHERE id = ?1")?
        .query_row([user], |row| {
            Ok(AccountStatus {
                suspended: row.get(0)?,
                suspensions: row.get(1)?,
            })
        })
        .optional()
        .map_err(Into::into)
}

/// The user and password for a login by username or email (case-insensitive).
pub fn password_hash(conn: &Connection, login_key: &str) -> anyhow::Result<Option<Login>> {
    conn.prepare_cached(
        "SELECT u.id, p.hash, p.version, u.suspended, u.suspensions FROM users u
         JOIN passwords p ON p.user_id = u.id
         WHERE u.username_key = ?1 OR u.email_key = ?1",
    )?
    .query_row([login_key], login_row)
    .optional()
    .map_err(Into::into)
}

/// The bootstrap client as its tokens are checked: its id, and the digest of its secret.
#[derive(Debug, Clone)]
pub struct ClientCredential {
    pub client_id: String,
    pub digest: u64,
}

/// Whether a verified token still stands: its user exists, is not suspended and was not
/// suspended since the token was issued, the token is not revoked, and its credential is
/// unchanged. Counts above the stored ones are of a token another instance issued after a
/// change this one has yet to read.
/// The token's user as an actor when it stands, and its scopes, read from the same row.
pub fn token_stands(
    conn: &Connection,
    bearer: &Bearer,
    client: &ClientCredential,
) -> anyhow::Result<Option<Standing>> {
    let found = conn
        .prepare_cached(
            "SELECT u.suspended OR u.suspensions > ?4, u.client_id IS ?3,
                    (SELECT version FROM passwords WHERE user_id = u.id),
                    EXISTS (SELECT 1 FROM revoked_tokens WHERE token_id = ?2),
                    u.username, u.scopes
             FROM users u WHERE u.id = ?1",
        )?
        .query_row(
            params![
                bearer.user,
                bearer.token_id,
                client.client_id,
                bearer.suspensions
            ],
            |row| {
                Ok((
                    row.get::<_, bool>(0)?,
                    row.get::<_, bool>(1)?,
                    row.get::<_, Option<u64>>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((suspended, is_client, password_version, revoked, username, scopes)) = found else {
        return Ok(None);
    };
    let credential_holds = match bearer.credential {
        Credential::Client(digest) => is_client && digest == client.digest,
        Credential::Password(version) => password_version.is_some_and(|stored| version >= stored),
    };
    if suspended || revoked || !credential_holds {
        return Ok(None);
    }
    let actor = Actor {
        user_id: bearer.user,
        username: Username::parse(username)?,
    };
    Ok(Some(Standing {
        actor,
        scopes: scopes_of_text(&scopes),
    }))
}

/// A token that stands: its user as an actor, and the scopes its API client has (none
/// for a user's own token).
#[derive(Debug, Clone)]
pub struct Standing {
    pub actor: Actor,
    pub scopes: Vec<Scope>,
}

/// The password hash of a user, if it has a password.
pub fn password_of(conn: &Connection, user: Uuid) -> anyhow::Result<Option<String>> {
    conn.prepare_cached("SELECT hash FROM passwords WHERE user_id = ?1")?
        .query_row([user], |row| row.get(0))
        .optional()
        .map_err(Into::into)
}

/// One key of an `order`: a column expression named by the API's property, and its way.
#[derive(Debug, Clone, Copy)]
pub struct Sort {
    column: &'static str,
    descending: bool,
}

/// The user properties a list may be ordered by, and their columns.
const USER_SORTS: [(&str, &str); 6] = [
    ("username", "u.username_key"),
    ("email", "u.email_key"),
    ("firstname", "lower(json_extract(u.profile, '$.firstname'))"),
    ("lastname", "lower(json_extract(u.profile, '$.lastname'))"),
    ("created", "u.created"),
    ("modified", "u.modified"),
];

/// The group properties a list may be ordered by, and their columns.
const GROUP_SORTS: [(&str, &str); 3] = [
    ("name", "g.name_key"),
    ("type", "g.type"),
    ("created", "g.created"),
];

/// Which resource a list is of: it names the properties an `order` may use.
#[derive(Debug, Clone, Copy)]
pub enum Listed {
    Users,
    Groups,
}

impl Listed {
    fn sorts(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Users => &USER_SORTS,
            Self::Groups => &GROUP_SORTS,
        }
    }

    /// The properties an `order` may name, for error messages.
    pub fn sortable(self) -> Vec<&'static str> {
        self.sorts().iter().map(|(name, _)| *name).collect()
    }

    /// The sort for a property (case-insensitive), `-` first for descending.
    pub fn sort(self, property: &str) -> Option<Sort> {
        let (name, descending) = match property.strip_prefix('-') {
            Some(name) => (name, true),
            None => (property, false),
        };
        self.sorts()
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, column)| Sort { column, descending })
    }
}

/// `ORDER BY` for the given keys, then the id, so that the order is total and a page
/// never repeats or skips a row of the same snapshot.
fn order_by(sorts: &[Sort], id: &str) -> String {
    let mut keys: Vec<String> = sorts
        .iter()
        .map(|s| format!("{} {}", s.column, if s.descending { "DESC" } else { "ASC" }))
        .collect();
    keys.push(id.to_owned());
    keys.join(", ")
}

/// A `LIKE` pattern that finds `text` anywhere, with the wildcards in it escaped.
fn contains(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Which users a list is of.
#[derive(Debug, Clone, Copy)]
pub enum Users {
    All,
    /// The direct members of a group; with `inherited`, also those of every group below.
    MembersOf {
        group: Uuid,
        inherited: bool,
    },
}

/// Which groups a list is of.
#[derive(Debug, Clone, Copy)]
pub enum Groups {
    All,
    /// The direct child groups; with `inherited`, every group below; with `include_self`,
    /// the group too.
    ChildrenOf {
        group: Uuid,
        inherited: bool,
        include_self: bool,
    },
    /// The groups a user is a direct member of; with `inherited`, also every group those
    /// are inside.
    OfUser {
        user: Uuid,
        inherited: bool,
    },
}

/// The parameters of a list: the search pattern, then the id the list is scoped to, then
/// a filter's, which are numbered from 3.
fn keys<'a>(
    pattern: &'a Option<String>,
    id: &'a Option<Uuid>,
    filtered: &'a [rusqlite::types::Value],
) -> Vec<&'a dyn rusqlite::ToSql> {
    let mut keys: Vec<&dyn rusqlite::ToSql> = match (id, filtered.is_empty()) {
        (Some(id), _) => vec![pattern, id],
        (None, false) => vec![pattern, &rusqlite::types::Null],
        (None, true) => vec![pattern],
    };
    keys.extend(filtered.iter().map(|value| value as &dyn rusqlite::ToSql));
    keys
}

/// `FROM ... WHERE ...` of a list of users: its scope, its search, its filter.
fn users_where(scope: &str, search: &str, condition: &str) -> String {
    format!("FROM users u WHERE {scope}{search} AND {condition}")
}

fn groups_where(scope: &str, search: &str, condition: &str) -> String {
    format!("FROM groups g WHERE {scope}{search} AND {condition}")
}

/// A filter's condition over the list's rows, and its parameters, from `?3`.
fn filtered(
    filter: Option<&Filter>,
    over: Over,
) -> anyhow::Result<(String, Vec<rusqlite::types::Value>)> {
    match filter {
        Some(filter) => Ok(super::filter::compile(filter, over, 3)?),
        None => Ok(("1".to_owned(), Vec::new())),
    }
}

/// The groups below `?2`, at any depth.
const BELOW: &str = "WITH RECURSIVE below(id) AS (
        SELECT child_id FROM child_groups WHERE parent_id = ?2
        UNION SELECT c.child_id FROM child_groups c JOIN below b ON c.parent_id = b.id
    ) SELECT id FROM below";

/// `q` over users: username, email, first and last name contain it.
const USER_SEARCH: &str = "(?1 IS NULL
        OR u.username LIKE ?1 ESCAPE '\\' OR u.email LIKE ?1 ESCAPE '\\'
        OR json_extract(u.profile, '$.firstname') LIKE ?1 ESCAPE '\\'
        OR json_extract(u.profile, '$.lastname') LIKE ?1 ESCAPE '\\')";

/// `q` over groups: the name contains it.
const GROUP_SEARCH: &str = "(?1 IS NULL OR g.name LIKE ?1 ESCAPE '\\')";

/// One page of a list: searched (`q`), filtered, ordered, from `offset`, at most `limit`.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub search: Option<String>,
    /// A filter that must hold too.
    pub filter: Option<Filter>,
    pub sorts: Vec<Sort>,
    pub offset: u64,
    pub limit: u64,
}

/// A page of users and the total that match: `q` is a case-insensitive "contains" over
/// username, email, first name and last name; `filter`, if any, must hold too.
pub fn list_users(
    conn: &Connection,
    which: Users,
    request: &ListRequest,
) -> anyhow::Result<(u64, Vec<UserView>)> {
    let q = request.search.as_deref();
    let search = USER_SEARCH;
    let pattern = q.map(contains);
    let (scope, id) = match which {
        Users::All => (String::new(), None),
        Users::MembersOf { group, inherited } => {
            let groups = if inherited {
                format!("SELECT ?2 UNION SELECT id FROM ({BELOW})")
            } else {
                "SELECT ?2".to_owned()
            };
            let scope =
                format!("u.id IN (SELECT user_id FROM members WHERE group_id IN ({groups})) AND ");
            (scope, Some(group))
        }
    };
    let (condition, params) = filtered(request.filter.as_ref(), Over::Users)?;
    page(
        conn,
        USER_COLUMNS,
        &users_where(&scope, search, &condition),
        &order_by(&request.sorts, "u.id"),
        &keys(&pattern, &id, &params),
        request.offset,
        request.limit,
        user_view,
    )
}

/// A page of groups and the total that match: `q` is a case-insensitive "contains" over
/// the name; `filter`, if any, must hold too.
pub fn list_groups(
    conn: &Connection,
    which: Groups,
    request: &ListRequest,
) -> anyhow::Result<(u64, Vec<GroupView>)> {
    let q = request.search.as_deref();
    let search = GROUP_SEARCH;
    let pattern = q.map(contains);
    let (groups, id) = match which {
        Groups::All => (None, None),
        Groups::ChildrenOf {
            group,
            inherited,
            include_self,
        } => {
            let below = if inherited {
                format!("SELECT id FROM ({BELOW})")
            } else {
                "SELECT child_id FROM child_groups WHERE parent_id = ?2".to_owned()
            };
            let groups = if include_self {
                format!("SELECT ?2 UNION {below}")
            } else {
                below
            };
            (Some(groups), Some(group))
        }
        Groups::OfUser { user, inherited } => {
            let direct = "SELECT group_id FROM members WHERE user_id = ?2";
            let groups = if inherited {
                format!(
                    "SELECT id FROM (WITH RECURSIVE mine(id) AS (
                        {direct}
                        UNION SELECT c.parent_id FROM child_groups c JOIN mine m ON c.child_id = m.id
                    ) SELECT id FROM mine)"
                )
            } else {
                direct.to_owned()
            };
            (Some(groups), Some(user))
        }
    };
    let scope = groups
        .map(|groups| format!("g.id IN ({groups}) AND "))
        .unwrap_or_default();
    let (condition, params) = filtered(request.filter.as_ref(), Over::Groups)?;
    page(
        conn,
        GROUP_COLUMNS,
        &groups_where(&scope, search, &condition),
        &order_by(&request.sorts, "g.id"),
        &keys(&pattern, &id, &params),
        request.offset,
        request.limit,
        group_view,
    )
}

/// One change to a group, from its event: who did what, when, in which request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: String,
    pub actor: serde_json::Value,
    /// The logId of the request that made the change.
    pub log_id: Uuid,
    pub data: serde_json::Value,
}

/// The history item of an event, from the event as the log holds it.
pub fn history_item(event: &[u8]) -> anyhow::Result<HistoryItem> {
    let mut event: serde_json::Value =
        serde_json::from_slice(event).context("reading a group's event")?;
    let mut take = |field: &str| event.get_mut(field).map(serde_json::Value::take);
    let id = |value: Option<serde_json::Value>| {
        value
            .and_then(|v| v.as_str().and_then(|s| Uuid::try_parse(s).ok()))
            .context("a history event without its ids")
    };
    Ok(HistoryItem {
        event_id: id(take("id"))?,
        log_id: id(take("correlationId"))?,
        event_type: take("type")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        time: take("time")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        actor: take("actor").unwrap_or_default(),
        data: take("data").unwrap_or_default(),
    })
}

/// A page of a group's changes, newest first, with their total: where each change's
/// event is in the log (see [`history_item`]).
pub fn list_history(
    conn: &Connection,
    group: Uuid,
    offset: u64,
    limit: u64,
) -> anyhow::Result<(u64, Vec<i64>)> {
    page(
        conn,
        "h.position",
        "FROM feed h WHERE h.group_id = ?1 AND h.outcome = 'applied' AND h.type <> 'GroupDeleted'",
        "h.position DESC",
        &[&group],
        offset,
        limit,
        |row| row.get(0),
    )
}

/// What became of the request that first used an idempotency key.
pub struct KeyUseOutcomes {
    /// What the request was about: its first event's aggregate.
    pub aggregate: Uuid,
    /// How many events of the request carry the key.
    pub expected: usize,
    /// The outcomes of those applied so far, in log order.
    pub outcomes: Vec<(Uuid, Outcome)>,
}

/// What became of the request that first used `key` for `actor`.
pub fn key_use_outcomes(
    conn: &Connection,
    actor: Uuid,
    key: &str,
) -> anyhow::Result<KeyUseOutcomes> {
    let (aggregate, expected, events): (Uuid, usize, String) = conn
        .prepare_cached(
            "SELECT aggregate_id, expected, events FROM idempotency
             WHERE actor_id = ?1 AND key = ?2",
        )?
        .query_row(rusqlite::params![actor, key], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    let ids: Vec<Uuid> = serde_json::from_str(&events)?;
    let mut outcome = conn.prepare_cached("SELECT outcome FROM outcomes WHERE event_id = ?1")?;
    let outcomes = ids
        .into_iter()
        .map(|id| {
            let code: String = outcome.query_row([id], |row| row.get(0))?;
            let outcome = Outcome::from_code(&code)
                .ok_or_else(|| anyhow::anyhow!("an unknown outcome {code}"))?;
            Ok((id, outcome))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(KeyUseOutcomes {
        aggregate,
        expected,
        outcomes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_model::filter::{Attribute, Op, Operand, compile};

    /// Whether the plan of `sql` reads a table whole (`SCAN u` or `SCAN g`).
    fn scans(conn: &Connection, sql: &str) -> Vec<String> {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let args = vec![""; statement.parameter_count()];
        let plan: Vec<String> = statement
            .query_map(rusqlite::params_from_iter(args), |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        plan.into_iter()
            .filter(|line| line.starts_with("SCAN"))
            .collect()
    }

    #[test]
    fn a_filter_on_ids_compares_them_as_the_text_the_service_writes() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::read_model::open_for_writing(&dir.path().join("read.db")).unwrap();
        let (a, b) = (Uuid::from_u128(0xa1 << 64), Uuid::from_u128(0xb2 << 64));
        for (id, name) in [(a, "a"), (b, "b")] {
            conn.execute(
                "INSERT INTO users (id, username, username_key, email, email_key, profile,
                                    created, modified)
                 VALUES (?1, ?2, ?2, ?2, ?2, '{}', 't', 't')",
                rusqlite::params![id, name],
            )
            .unwrap();
        }
        let kept = |filter: Filter| {
            let (condition, params) = compile(&filter, Over::Users, 1).unwrap();
            let sql = format!("SELECT id FROM users u WHERE {condition} ORDER BY id");
            let mut statement = conn.prepare(&sql).unwrap();
            let rows = statement.query_map(rusqlite::params_from_iter(params), |row| row.get(0));
            rows.unwrap()
                .collect::<rusqlite::Result<Vec<Uuid>>>()
                .unwrap()
        };
        let found = |op, text| kept(Filter::Compare(Attribute::Id, op, Operand::Text(text)));
        assert_eq!(kept(Filter::Present(Attribute::Id)), [a, b]);
        assert_eq!(found(Op::Eq, a.to_string()), [a]);
        assert!(found(Op::Eq, a.to_string().to_uppercase()).is_empty());
        assert!(found(Op::Eq, "not an id".into()).is_empty());
        assert_eq!(found(Op::Ne, a.to_string()), [b]);
        assert_eq!(found(Op::Sw, "00000000-0000-00b2".into()), [b]);
        assert_eq!(found(Op::Co, "00a1-0000".into()), [a]);
        assert_eq!(found(Op::Ew, a.to_string()[30..].to_owned()), [a, b]);
        assert_eq!(found(Op::Gt, a.to_string()), [b]);
        assert_eq!(found(Op::Le, a.to_string()), [a]);
    }

    #[test]
    fn an_equality_filter_on_an_indexed_attribute_reads_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::read_model::open_for_writing(&dir.path().join("read.db")).unwrap();
        let text = || Operand::Text("x".into());
        for (attribute, over) in [
            (Attribute::Username, Over::Users),
            (Attribute::Email, Over::Users),
            (Attribute::Id, Over::Users),
            (Attribute::ExternalId, Over::Users),
            (Attribute::Name, Over::Groups),
            (Attribute::ExternalId, Over::Groups),
            (Attribute::Id, Over::Groups),
        ] {
            let filter = Filter::Compare(attribute, Op::Eq, text());
            let (condition, _) = compile(&filter, over, 3).unwrap();
            let from_where = match over {
                Over::Users => users_where("", USER_SEARCH, &condition),
                Over::Groups => groups_where("", GROUP_SEARCH, &condition),
            };
            let sql = format!("SELECT COUNT(*) {from_where}");
            assert_eq!(
                scans(&conn, &sql),
                Vec::<String>::new(),
                "{attribute:?}: {sql}"
            );
        }
        // A "contains" has no index to read: the check sees the scan.
        let contains = Filter::Compare(Attribute::Username, Op::Co, text());
        let (condition, _) = compile(&contains, Over::Users, 3).unwrap();
        let sql = format!(
            "SELECT COUNT(*) {}",
            users_where("", USER_SEARCH, &condition)
        );
        assert_eq!(scans(&conn, &sql).len(), 1, "{sql}");
    }
}
