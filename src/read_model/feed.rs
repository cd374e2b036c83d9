//! The feed: the events this instance's projector has applied, in log order, each with
//! its outcome, read a page at a time after a position. Positions are log offsets, the
//! same on every instance reading the same log.

use anyhow::Context;
use rusqlite::{Connection, ToSql};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::domain::Outcome;

/// How many events one page looks at, at most, whatever its filter keeps: a filter that
/// keeps few events still answers at once, and its `next` goes past what it looked at.
const SCANNED_MAX: u64 = 10_000;

/// Which events a page holds.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    /// Event types (`MemberRemoved`); none means every type.
    pub types: Vec<String>,
    pub group: Option<Uuid>,
    pub user: Option<Uuid>,
    /// Whether events that lost a race or were refused when applied are kept.
    pub include_rejected: bool,
}

/// One event of the feed: its position, its outcome (`applied` or a refusal's code), and
/// the event as the log holds it.
#[derive(Debug, Clone)]
pub struct FeedItem {
    pub position: i64,
    pub event_type: String,
    pub outcome: String,
    pub event: String,
}

impl FeedItem {
    /// The item as every reader of the feed shows it (a page, a stream's message, `events
    /// tail --json`): `{"position", "outcome", "code", "event"}`, its position as text
    /// (it is opaque), `outcome` `applied` or `rejected` with the refusal's `code`, and
    /// the event byte for byte as the log holds it.
    pub fn to_json(&self) -> anyhow::Result<String> {
        #[derive(Serialize)]
        struct Shown<'a> {
            position: String,
            outcome: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            code: Option<&'a str>,
            event: &'a RawValue,
        }
        let applied = Outcome::from_code(&self.outcome) == Some(Outcome::Applied);
        let shown = Shown {
            position: self.position.to_string(),
            outcome: if applied { "applied" } else { "rejected" },
            code: (!applied).then_some(self.outcome.as_str()),
            event: serde_json::from_str(&self.event).context("reading an event of the feed")?,
        };
        Ok(serde_json::to_string(&shown)?)
    }
}

#[derive(Debug, Clone)]
pub struct FeedPage {
    pub items: Vec<FeedItem>,
    /// Where the next page starts (`after`): past every event this page looked at.
    pub next: Option<i64>,
}

/// Up to `limit` events after `after` (from the start if `None`) that `filter` keeps.
pub fn feed_page(
    conn: &Connection,
    after: Option<i64>,
    limit: u64,
    filter: &FeedFilter,
) -> anyhow::Result<FeedPage> {
    let after = after.unwrap_or(-1);
    let mut conditions = Vec::new();
    let mut keys: Vec<Box<dyn ToSql>> = vec![Box::new(after), Box::new(SCANNED_MAX as i64)];
    if !filter.types.is_empty() {
        let marks: Vec<String> = (filter.types.iter())
            .map(|t| {
                keys.push(Box::new(t.clone()));
                format!("?{}", keys.len())
            })
            .collect();
        conditions.push(format!("type IN ({})", marks.join(", ")));
    }
    for (column, id) in [("group_id", filter.group), ("user_id", filter.user)] {
        if let Some(id) = id {
            keys.push(Box::new(id.to_string()));
            conditions.push(format!("{column} = ?{}", keys.len()));
        }
    }
    if !filter.include_rejected {
        conditions.push("outcome = 'applied'".into());
    }
    keys.push(Box::new(limit as i64));
    let limit_at = keys.len();
    let kept = match conditions.is_empty() {
        true => "1".to_owned(),
        false => conditions.join(" AND "),
    };
    // The window looked at, then the events of it the filter keeps.
    let sql = format!(
        "WITH window AS (
             SELECT * FROM feed WHERE position > ?1 ORDER BY position LIMIT ?2
         )
         SELECT position, type, outcome, event FROM window WHERE {kept}
         ORDER BY position LIMIT ?{limit_at}"
    );
    let bound: Vec<&dyn ToSql> = keys.iter().map(|k| k.as_ref()).collect();
    let items: Vec<FeedItem> = conn
        .prepare_cached(&sql)?
        .query_map(bound.as_slice(), |row| {
            Ok(FeedItem {
                position: row.get(0)?,
                event_type: row.get(1)?,
                outcome: row.get(2)?,
                event: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let next = match items.len() as u64 == limit {
        true => items.last().map(|item| item.position),
        // Fewer than asked: every event of the window was looked at.
        false => conn
            .prepare_cached(
                "SELECT MAX(position) FROM
                     (SELECT position FROM feed WHERE position > ?1 ORDER BY position LIMIT ?2)",
            )?
            .query_row(rusqlite::params![after, SCANNED_MAX as i64], |row| {
                row.get::<_, Option<i64>>(0)
            })?
            .or((after >= 0).then_some(after)),
    };
    Ok(FeedPage { items, next })
}
