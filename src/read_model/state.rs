//! The domain's [`State`] answered from the read model, for handlers and projector alike.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::domain::{
    Email, GroupIdentifier, GroupName, GroupRef, GroupType, State, UserIdentifier, UserRef,
    Username,
};

pub struct SqliteState<'c>(pub &'c Connection);

/// The groups below `?1` at any depth. UNION, not UNION ALL, so a cycle cannot loop.
const BELOW: &str = "WITH RECURSIVE below(id) AS (
        SELECT child_id FROM child_groups WHERE parent_id = ?1
        UNION SELECT c.child_id FROM child_groups c JOIN below b ON c.parent_id = b.id
    )";

pub(super) fn group_type(text: &str) -> rusqlite::Result<GroupType> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

pub(super) fn uuid(row: &Row, index: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(index)?;
    Uuid::try_parse(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
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
        id: uuid(row, 0)?,
        name: parsed(1, GroupName::parse(row.get::<_, String>(1)?))?,
        group_type: group_type(&row.get::<_, String>(2)?)?,
    })
}

fn user_ref(row: &Row) -> rusqlite::Result<UserRef> {
    Ok(UserRef {
        id: uuid(row, 0)?,
        username: parsed(1, Username::parse(row.get::<_, String>(1)?))?,
        email: parsed(2, Email::parse(row.get::<_, String>(2)?))?,
    })
}

impl State for SqliteState<'_> {
    fn group(&self, id: &GroupIdentifier) -> anyhow::Result<Option<GroupRef>> {
        let (sql, key) = match id {
            GroupIdentifier::Id(id) => ("id = ?1", id.to_string()),
            GroupIdentifier::Name(name) => ("name_key = ?1", name.key()),
        };
        let sql = format!("SELECT id, name, type FROM groups WHERE {sql}");
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_row([key], group_ref)
            .optional()?)
    }

    fn user(&self, id: &UserIdentifier) -> anyhow::Result<Option<UserRef>> {
        let (sql, key) = match id {
            UserIdentifier::Id(id) => ("id = ?1", id.to_string()),
            UserIdentifier::Username(name) => ("username_key = ?1", name.key()),
            UserIdentifier::Email(email) => ("email_key = ?1", email.key()),
        };
        let sql = format!("SELECT id, username, email FROM users WHERE {sql}");
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_row([key], user_ref)
            .optional()?)
    }

    fn is_direct_member(&self, group: Uuid, user: Uuid) -> anyhow::Result<bool> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM members WHERE group_id = ?1 AND user_id = ?2)",
            )?
            .query_row(params![group.to_string(), user.to_string()], |row| {
                row.get(0)
            })?)
    }

    fn is_direct_child(&self, parent: Uuid, child: Uuid) -> anyhow::Result<bool> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM child_groups WHERE parent_id = ?1 AND child_id = ?2)",
            )?
            .query_row(params![parent.to_string(), child.to_string()], |row| {
                row.get(0)
            })?)
    }

    fn is_below(&self, group: Uuid, ancestor: Uuid) -> anyhow::Result<bool> {
        let sql = format!("{BELOW} SELECT EXISTS (SELECT 1 FROM below WHERE id = ?2)");
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_row(params![ancestor.to_string(), group.to_string()], |row| {
                row.get(0)
            })?)
    }

    fn member_through(&self, group: Uuid, user: Uuid) -> anyhow::Result<Option<GroupRef>> {
        let sql = format!(
            "{BELOW} SELECT g.id, g.name, g.type FROM below b
             JOIN members m ON m.group_id = b.id AND m.user_id = ?2
             JOIN groups g ON g.id = b.id
             ORDER BY g.name_key LIMIT 1"
        );
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_row(params![group.to_string(), user.to_string()], group_ref)
            .optional()?)
    }

    fn has_member_without_child(&self, group: Uuid, child: Uuid) -> anyhow::Result<bool> {
        let sql = "WITH RECURSIVE tree(id) AS (
                SELECT ?1
                UNION SELECT c.child_id FROM child_groups c JOIN tree t ON c.parent_id = t.id
                WHERE NOT (c.parent_id = ?1 AND c.child_id = ?2)
            )
            SELECT EXISTS (SELECT 1 FROM members m JOIN tree t ON m.group_id = t.id)";
        Ok(self
            .0
            .prepare_cached(sql)?
            .query_row(params![group.to_string(), child.to_string()], |row| {
                row.get(0)
            })?)
    }

    fn has_member_other_than(&self, group: Uuid, user: Uuid) -> anyhow::Result<bool> {
        let sql = format!(
            "{BELOW} SELECT EXISTS (
                SELECT 1 FROM members
                WHERE (group_id = ?1 OR group_id IN (SELECT id FROM below)) AND user_id <> ?2
            )"
        );
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_row(params![group.to_string(), user.to_string()], |row| {
                row.get(0)
            })?)
    }
}
