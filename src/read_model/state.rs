//! The domain's [`State`] answered from the read model, for handlers and projector alike.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{
    Email, GroupDetails, GroupIdentifier, GroupName, GroupRef, GroupType, KeyUse, Reach, Removal,
    State, UserDetails, UserIdentifier, UserRef, Username,
};
use crate::sqlite::Rows;

pub struct SqliteState<'c> {
    conn: &'c Connection,
    mirror: Option<&'c Mirror>,
}

/// What `apply` reads most, kept in memory: the groups by id, the users by id, username
/// and email, who is a direct member of which group, each group's version, and which
/// groups have a parent. It answers for a read model only while it holds exactly what
/// that model holds: a model that started empty with it, whose one writer notes in it
/// every change it makes there (a rebuild; see `projector::apply_mirrored`).
///
/// The memberships are the exception: a change to them is kept here, not written, until
/// a statement is about to read the `members` table, or the rebuild ends (see
/// [`Mirror::write_members`]). A rebuild's removals mostly undo additions it made earlier,
/// which then cost no write at all, and what is left is written in key order.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Mirror {
    pub(crate) groups: HashMap<Uuid, GroupRef>,
    pub(crate) users: HashMap<Uuid, UserRef>,
    members: HashSet<(Uuid, Uuid)>,
    /// The changes to `members` the table does not have yet: `true` a membership to
    /// insert, `false` one to delete. In a cell because the statements that read the
    /// table, before which they are written, run with the mirror shared.
    unwritten: RefCell<HashMap<(Uuid, Uuid), bool>>,
    /// Each group's `version` and `last_change`, as its row holds them.
    pub(crate) versions: HashMap<Uuid, (u64, Uuid)>,
    /// The users' ids by `username_key` and by `email_key`.
    pub(crate) usernames: HashMap<String, Uuid>,
    pub(crate) emails: HashMap<String, Uuid>,
    /// How many parents each group with any has (`child_groups` by child).
    pub(crate) parents: HashMap<Uuid, usize>,
}

impl Mirror {
    pub(crate) fn add_user(&mut self, user: UserRef) {
        self.usernames.insert(user.username.key(), user.id);
        self.emails.insert(user.email.key(), user.id);
        self.users.insert(user.id, user);
    }

    pub(crate) fn remove_user(&mut self, id: Uuid) {
        if let Some(user) = self.users.remove(&id) {
            self.usernames.remove(&user.username.key());
            self.emails.remove(&user.email.key());
        }
    }

    pub(crate) fn add_member(&mut self, group: Uuid, user: Uuid) {
        let key = (group, user);
        self.members.insert(key);
        let unwritten = self.unwritten.get_mut();
        // A deletion not yet written is undone: the table still has the row.
        if unwritten.remove(&key) != Some(false) {
            unwritten.insert(key, true);
        }
    }

    pub(crate) fn remove_member(&mut self, group: Uuid, user: Uuid) {
        let key = (group, user);
        self.members.remove(&key);
        let unwritten = self.unwritten.get_mut();
        // An insertion not yet written is undone: the table never had the row.
        if unwritten.remove(&key) != Some(true) {
            unwritten.insert(key, false);
        }
    }

    /// Writes the changes to memberships kept back (see [`Mirror`]) into `conn`'s
    /// `members`, in key order, so that the table holds what the mirror does.
    pub(crate) fn write_members(&self, conn: &Connection) -> rusqlite::Result<()> {
        let mut unwritten = self.unwritten.borrow_mut();
        if unwritten.is_empty() {
            return Ok(());
        }
        let mut changes: Vec<((Uuid, Uuid), bool)> = unwritten.drain().collect();
        changes.sort_unstable();
        let (inserted, deleted): (Vec<_>, Vec<_>) = changes.into_iter().partition(|c| c.1);
        let mut delete =
            conn.prepare_cached("DELETE FROM members WHERE group_id = ?1 AND user_id = ?2")?;
        for ((group, user), _) in deleted {
            delete.execute(params![group, user])?;
        }
        MEMBER_ROWS.insert(conn, &inserted, |statement, at, ((group, user), _)| {
            statement.raw_bind_parameter(at, group)?;
            statement.raw_bind_parameter(at + 1, user)
        })
    }

    pub(crate) fn add_parent(&mut self, child: Uuid) {
        *self.parents.entry(child).or_default() += 1;
    }

    pub(crate) fn remove_parent(&mut self, child: Uuid) {
        if let Some(count) = self.parents.get_mut(&child) {
            *count -= 1;
            if *count == 0 {
                self.parents.remove(&child);
            }
        }
    }

    /// The user `id` names, as [`SqliteState::user`] finds it in the read model.
    fn user(&self, id: &UserIdentifier) -> Option<&UserRef> {
        let found = match id {
            UserIdentifier::Id(id) => Some(id),
            UserIdentifier::Username(name) => self.usernames.get(&name.key()),
            UserIdentifier::Email(email) => {
                let key = email.key();
                self.emails.get(&key).or_else(|| self.usernames.get(&key))
            }
        };
        found.and_then(|id| self.users.get(id))
    }
}

impl Mirror {
    /// What `conn`'s read model holds of what a mirror keeps: to check one against it.
    #[cfg(test)]
    pub(crate) fn of(conn: &Connection) -> anyhow::Result<Self> {
        let mut mirror = Self::default();
        let mut groups = conn.prepare("SELECT id, name, type, version, last_change FROM groups")?;
        let row = |row: &Row| Ok((group_ref(row)?, row.get(3)?, row.get(4)?));
        for group in groups.query_map([], row)? {
            let (group, version, last_change) = group?;
            mirror.versions.insert(group.id, (version, last_change));
            mirror.groups.insert(group.id, group);
        }
        let mut users = conn.prepare("SELECT id, username, email FROM users")?;
        for user in users.query_map([], user_ref)? {
            mirror.add_user(user?);
        }
        let mut children = conn.prepare("SELECT child_id FROM child_groups")?;
        for child in children.query_map([], |row| row.get(0))? {
            mirror.add_parent(child?);
        }
        let mut members = conn.prepare("SELECT group_id, user_id FROM members")?;
        for member in members.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))? {
            mirror.members.insert(member?);
        }
        Ok(mirror)
    }
}

impl<'c> SqliteState<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Self { conn, mirror: None }
    }

    /// The state of `conn`, whose groups, users and memberships `mirror` holds too.
    pub(crate) fn mirrored(conn: &'c Connection, mirror: &'c Mirror) -> Self {
        Self {
            conn,
            mirror: Some(mirror),
        }
    }
}

static MEMBER_ROWS: LazyLock<Rows> =
    LazyLock::new(|| Rows::new("INSERT INTO members (group_id, user_id)", 2));

/// The groups below `?1` at any depth. UNION, not UNION ALL, so a cycle cannot loop.
const BELOW: &str = "WITH RECURSIVE below(id) AS (
        SELECT child_id FROM child_groups WHERE parent_id = ?1
        UNION SELECT c.child_id FROM child_groups c JOIN below b ON c.parent_id = b.id
    )";

/// Whether the tree of group `?1` keeps a member who is not suspended once the removal's parts are skipped: `?2`
/// a group left out, `?3`/`?4` an edge, `?5`/`?6` a membership, `?7` a user. From the tree
/// down to its members by the members' key (CROSS JOIN keeps that order): a system group's
/// tree is small, the members table is not.
pub(super) const KEEPS_A_MEMBER: &str = "WITH RECURSIVE tree(id) AS (
        SELECT ?1
        UNION SELECT c.child_id FROM tree t CROSS JOIN child_groups c ON c.parent_id = t.id
        WHERE c.child_id <> ?2 AND NOT (c.parent_id = ?3 AND c.child_id = ?4)
    )
    SELECT EXISTS (
        SELECT 1 FROM tree t CROSS JOIN members m ON m.group_id = t.id
        CROSS JOIN users usr ON usr.id = m.user_id
        WHERE m.user_id <> ?7 AND NOT (m.group_id = ?5 AND m.user_id = ?6) AND NOT usr.suspended
    )";

const GROUPS_OF_USER: &str = "SELECT group_id FROM members WHERE user_id = ?1";

/// The walks of [`system_groups_above`] that requests and events run, made once.
static ABOVE_EVERY_SYSTEM_GROUP: LazyLock<String> =
    LazyLock::new(|| system_groups_above("SELECT id FROM groups WHERE type = 'sys'"));
static ABOVE_GROUP: LazyLock<String> = LazyLock::new(|| system_groups_above("SELECT ?1"));
static ABOVE_GROUPS_OF_USER: LazyLock<String> =
    LazyLock::new(|| system_groups_above(GROUPS_OF_USER));

/// Whether user `?1` is in System Administrators, through child groups or directly.
pub(super) static IS_ADMINISTRATOR: LazyLock<String> =
    LazyLock::new(|| format!("SELECT EXISTS ({})", *ABOVE_GROUPS_OF_USER));

/// Whether user `?1` is a direct member of a system group: the common case of
/// [`IS_ADMINISTRATOR`], by key.
pub(super) const IS_DIRECT_ADMINISTRATOR: &str =
    "SELECT EXISTS (SELECT 1 FROM members m CROSS JOIN groups g ON g.id = m.group_id
                    WHERE m.user_id = ?1 AND g.type = 'sys')";

/// Whether group `?1` is a system group or has a parent: otherwise no system group is at
/// or above it.
const MAY_BE_IN_SYSTEM_GROUP: &str =
    "SELECT g.type = 'sys' OR EXISTS (SELECT 1 FROM child_groups c WHERE c.child_id = g.id)
     FROM groups g WHERE g.id = ?1";

/// The system groups among the groups `seed` selects and their ancestors, walked upwards
/// (CROSS JOIN keeps that order, so the walk never starts from the whole groups table).
fn system_groups_above(seed: &str) -> String {
    format!(
        "WITH RECURSIVE up(id) AS (
            {seed}
            UNION SELECT c.parent_id FROM up u CROSS JOIN child_groups c ON c.child_id = u.id
        )
        SELECT g.id, g.name, g.type FROM up CROSS JOIN groups g ON g.id = up.id
        WHERE g.type = 'sys' ORDER BY g.name_key"
    )
}

pub(super) fn group_type(text: &str) -> rusqlite::Result<GroupType> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// Stored names were validated when their event was written; a failure here is corruption.
pub(super) fn parsed<T, E>(index: usize, value: Result<T, E>) -> rusqlite::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    value.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
    })
}

fn group_ref(row: &Row) -> rusqlite::Result<GroupRef> {
    Ok(GroupRef {
        id: row.get(0)?,
        name: parsed(1, GroupName::parse(row.get::<_, String>(1)?))?,
        group_type: group_type(&row.get::<_, String>(2)?)?,
    })
}

fn user_ref(row: &Row) -> rusqlite::Result<UserRef> {
    Ok(UserRef {
        id: row.get(0)?,
        username: parsed(1, Username::parse(row.get::<_, String>(1)?))?,
        email: parsed(2, Email::parse(row.get::<_, String>(2)?))?,
    })
}

/// A JSON column, written by the projector from a typed value.
fn json<T: serde::de::DeserializeOwned>(row: &Row, index: usize) -> rusqlite::Result<T> {
    parsed(index, serde_json::from_str(&row.get::<_, String>(index)?))
}

impl State for SqliteState<'_> {
    fn user_details(&self, user: Uuid) -> anyhow::Result<Option<UserDetails>> {
        Ok(self
            .conn
            .prepare_cached("SELECT username, email, profile, suspended FROM users WHERE id = ?1")?
            .query_row([user], |row| {
                Ok(UserDetails {
                    username: parsed(0, Username::parse(row.get::<_, String>(0)?))?,
                    email: parsed(1, Email::parse(row.get::<_, String>(1)?))?,
                    profile: json(row, 2)?,
                    suspended: row.get(3)?,
                })
            })
            .optional()?)
    }

    fn group_details(&self, group: Uuid) -> anyhow::Result<Option<GroupDetails>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, name, description, type, custom, external_id FROM groups
                 WHERE id = ?1",
            )?
            .query_row([group], |row| {
                Ok(GroupDetails {
                    group_id: row.get(0)?,
                    name: parsed(1, GroupName::parse(row.get::<_, String>(1)?))?,
                    description: row.get(2)?,
                    group_type: group_type(&row.get::<_, String>(3)?)?,
                    custom: json(row, 4)?,
                    external_id: row.get(5)?,
                })
            })
            .optional()?)
    }

    fn is_token_revoked(&self, token: Uuid) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE token_id = ?1)")?
            .query_row([token], |row| row.get(0))?)
    }

    fn group(&self, id: &GroupIdentifier) -> anyhow::Result<Option<GroupRef>> {
        if let (Some(mirror), GroupIdentifier::Id(id)) = (self.mirror, id) {
            return Ok(mirror.groups.get(id).cloned());
        }
        let (sql, key) = match id {
            GroupIdentifier::Id(id) => ("id = ?1", id.to_sql()?),
            GroupIdentifier::Name(name) => ("name_key = ?1", ToSqlOutput::from(name.key())),
        };
        let sql = format!("SELECT id, name, type FROM groups WHERE {sql}");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([key], group_ref)
            .optional()?)
    }

    fn user(&self, id: &UserIdentifier) -> anyhow::Result<Option<UserRef>> {
        if let Some(mirror) = self.mirror {
            return Ok(mirror.user(id).cloned());
        }
        let (sql, key) = match id {
            UserIdentifier::Id(id) => ("id = ?1", id.to_sql()?),
            UserIdentifier::Username(name) => ("username_key = ?1", ToSqlOutput::from(name.key())),
            // An email, else a username that looks like one; the decisions keep them from
            // naming two users.
            UserIdentifier::Email(email) => (
                "email_key = ?1 OR username_key = ?1 ORDER BY email_key = ?1 DESC LIMIT 1",
                ToSqlOutput::from(email.key()),
            ),
        };
        let sql = format!("SELECT id, username, email FROM users WHERE {sql}");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([key], user_ref)
            .optional()?)
    }

    fn is_direct_member(&self, group: Uuid, user: Uuid) -> anyhow::Result<bool> {
        if let Some(mirror) = self.mirror {
            return Ok(mirror.members.contains(&(group, user)));
        }
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM members WHERE group_id = ?1 AND user_id = ?2)",
            )?
            .query_row(params![group, user], |row| row.get(0))?)
    }

    fn idempotent_request(&self, actor: Uuid, key: &str) -> anyhow::Result<Option<KeyUse>> {
        let found: Option<(String, Uuid, i64)> = self
            .conn
            .prepare_cached(
                "SELECT fingerprint, correlation_id, time_ns FROM idempotency
                 WHERE actor_id = ?1 AND key = ?2",
            )?
            .query_row(params![actor, key], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        found
            .map(|(fingerprint, correlation_id, time_ns)| {
                Ok(KeyUse {
                    fingerprint,
                    correlation_id,
                    time: OffsetDateTime::from_unix_timestamp_nanos(time_ns.into())?,
                })
            })
            .transpose()
    }

    fn group_version(&self, group: Uuid) -> anyhow::Result<Option<u64>> {
        if let Some(mirror) = self.mirror {
            return Ok(mirror.versions.get(&group).map(|&(version, _)| version));
        }
        Ok(self
            .conn
            .prepare_cached("SELECT version FROM groups WHERE id = ?1")?
            .query_row([group], |row| row.get(0))
            .optional()?)
    }

    fn last_change(&self, group: Uuid) -> anyhow::Result<Option<Uuid>> {
        if let Some(mirror) = self.mirror {
            return Ok(mirror.versions.get(&group).map(|&(_, change)| change));
        }
        Ok(self
            .conn
            .prepare_cached("SELECT last_change FROM groups WHERE id = ?1")?
            .query_row([group], |row| row.get(0))
            .optional()?)
    }

    fn is_direct_child(&self, parent: Uuid, child: Uuid) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM child_groups WHERE parent_id = ?1 AND child_id = ?2)",
            )?
            .query_row(params![parent, child], |row| row.get(0))?)
    }

    fn is_below(&self, group: Uuid, ancestor: Uuid) -> anyhow::Result<bool> {
        let sql = format!("{BELOW} SELECT EXISTS (SELECT 1 FROM below WHERE id = ?2)");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![ancestor, group], |row| row.get(0))?)
    }

    fn member_through(&self, group: Uuid, user: Uuid) -> anyhow::Result<Option<GroupRef>> {
        self.members_written()?;
        let sql = format!(
            "{BELOW} SELECT g.id, g.name, g.type FROM below b
             JOIN members m ON m.group_id = b.id AND m.user_id = ?2
             JOIN groups g ON g.id = b.id
             ORDER BY g.name_key LIMIT 1"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![group, user], group_ref)
            .optional()?)
    }

    fn groups_of(&self, user: Uuid) -> anyhow::Result<Vec<GroupRef>> {
        self.members_written()?;
        self.refs(
            "SELECT g.id, g.name, g.type FROM members m JOIN groups g ON g.id = m.group_id
             WHERE m.user_id = ?1 ORDER BY g.name_key",
            user,
            group_ref,
        )
    }

    fn members_of(&self, group: Uuid) -> anyhow::Result<Vec<UserRef>> {
        self.members_written()?;
        self.refs(
            "SELECT u.id, u.username, u.email FROM members m JOIN users u ON u.id = m.user_id
             WHERE m.group_id = ?1 ORDER BY u.username_key",
            group,
            user_ref,
        )
    }

    fn children_of(&self, group: Uuid) -> anyhow::Result<Vec<GroupRef>> {
        self.refs(
            "SELECT g.id, g.name, g.type FROM child_groups c JOIN groups g ON g.id = c.child_id
             WHERE c.parent_id = ?1 ORDER BY g.name_key",
            group,
            group_ref,
        )
    }

    fn parents_of(&self, group: Uuid) -> anyhow::Result<Vec<GroupRef>> {
        self.refs(
            "SELECT g.id, g.name, g.type FROM child_groups c JOIN groups g ON g.id = c.parent_id
             WHERE c.child_id = ?1 ORDER BY g.name_key",
            group,
            group_ref,
        )
    }

    fn left_empty(&self, removal: &Removal) -> anyhow::Result<Option<GroupRef>> {
        // Skipped ids absent from a removal are an empty blob, which matches no row.
        let skipped = removal.skipped();
        let key = |id: Option<Uuid>| id.map_or(Vec::new(), |id| id.as_bytes().to_vec());
        let pair = |p: Option<(Uuid, Uuid)>| (key(p.map(|p| p.0)), key(p.map(|p| p.1)));
        let (edge_parent, edge_child) = pair(skipped.edge);
        let (member_group, member_user) = pair(skipped.membership);
        // Only the system groups at or above what the removal touches can lose a member.
        let (reached, from) = match removal.reach() {
            Reach::Everywhere => (&*ABOVE_EVERY_SYSTEM_GROUP, None),
            Reach::Group(group) if !self.may_be_in_system_group(group)? => return Ok(None),
            Reach::Group(group) => (&*ABOVE_GROUP, Some(group)),
            Reach::GroupsOf(user) => (&*ABOVE_GROUPS_OF_USER, Some(user)),
        };
        self.members_written()?;
        let mut statement = self.conn.prepare_cached(reached)?;
        let system = match from {
            None => statement.query_map([], group_ref)?,
            Some(from) => statement.query_map([from], group_ref)?,
        }
        .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut has_member = self.conn.prepare_cached(KEEPS_A_MEMBER)?;
        for group in system {
            let kept: bool = has_member.query_row(
                params![
                    group.id,
                    key(skipped.group),
                    edge_parent,
                    edge_child,
                    member_group,
                    member_user,
                    key(skipped.user),
                ],
                |row| row.get(0),
            )?;
            if !kept {
                return Ok(Some(group));
            }
        }
        Ok(None)
    }
}

impl SqliteState<'_> {
    /// Before a statement that reads `members`: with a mirror, writes the memberships it
    /// keeps back, so that the statement reads what the mirror holds.
    fn members_written(&self) -> rusqlite::Result<()> {
        self.mirror
            .map_or(Ok(()), |mirror| mirror.write_members(self.conn))
    }

    /// Whether the group is a system group or below one, at any depth.
    pub fn in_system_group(&self, group: Uuid) -> anyhow::Result<bool> {
        if !self.may_be_in_system_group(group)? {
            return Ok(false);
        }
        let mut statement = self.conn.prepare_cached(&ABOVE_GROUP)?;
        Ok(statement.exists([group])?)
    }

    /// Whether the group is a system group or has a parent: a lookup by key (or in the
    /// mirror), which lets almost every removal skip the walk up the tree.
    fn may_be_in_system_group(&self, group: Uuid) -> anyhow::Result<bool> {
        if let Some(mirror) = self.mirror {
            let found = mirror.groups.get(&group).map(|found| {
                found.group_type == GroupType::Sys || mirror.parents.contains_key(&group)
            });
            return Ok(found.unwrap_or(false));
        }
        let found = self
            .conn
            .prepare_cached(MAY_BE_IN_SYSTEM_GROUP)?
            .query_row([group], |row| row.get(0))
            .optional()?;
        // A group that is gone has nothing to lose; the walk would find nothing either.
        Ok(found.unwrap_or(false))
    }

    /// The rows of `sql` over `?1 = id`.
    fn refs<T>(
        &self,
        sql: &str,
        id: Uuid,
        row: fn(&Row) -> rusqlite::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_map([id], row)?
            .collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table a hot statement may read only by key: scanning any of them would make
    /// a removal's cost grow with the data set.
    const LARGE: [&str; 4] = ["users", "groups", "members", "child_groups"];

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut statement = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("a statement to explain");
        let width = statement.parameter_count();
        let args = vec![""; width];
        statement
            .query_map(rusqlite::params_from_iter(args), |row| row.get(3))
            .expect("a plan")
            .collect::<rusqlite::Result<_>>()
            .expect("plan rows")
    }

    #[test]
    fn the_statements_of_every_removal_search_large_tables_by_key() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let conn =
            crate::read_model::open_for_writing(&dir.path().join("read.db")).expect("a read model");
        let statements = [
            KEEPS_A_MEMBER,
            &ABOVE_GROUP,
            &ABOVE_GROUPS_OF_USER,
            &IS_ADMINISTRATOR,
            IS_DIRECT_ADMINISTRATOR,
            MAY_BE_IN_SYSTEM_GROUP,
        ];
        for sql in statements {
            let plan = plan(&conn, sql);
            // Aliases scanned in these statements are the small walks (up, tree), never
            // a table; a table appears as `SCAN <table>` or `SCAN <alias>` of a table.
            for line in &plan {
                let scanned = line
                    .strip_prefix("SCAN ")
                    .map(|rest| rest.split(' ').next());
                if let Some(Some(name)) = scanned {
                    assert!(
                        ["up", "u", "tree", "t", "CONSTANT"].contains(&name)
                            && !LARGE.contains(&name),
                        "{sql}\nscans {name}: {plan:#?}"
                    );
                }
            }
        }
    }
}
