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

/// One event of the feed as the read model keeps it: its position in the log (where the
/// event itself is read), its type and its outcome (`applied` or a refusal's code).
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub position: i64,
    pub event_type: String,
    pub outcome: String,
}

/// One event of the feed as shown: its entry and the event as the log holds it.
#[derive(Debug, Clone)]
pub struct FeedItem {
    pub entry: FeedEntry,
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
        let FeedEntry {
            position, outcome, ..
        } = &self.entry;
        let applied = Outcome::from_code(outcome) == Some(Outcome::Applied);
        let shown = Shown {
            position: position.to_string(),
            outcome: if applied { "applied" } else { "rejected" },
            code: (!applied).then_some(outcome.as_str()),
            event: serde_json::from_str(&self.event).context("reading an event of the feed")?,
        };
        Ok(serde_json::to_string(&shown)?)
    }
}

#[derive(Debug, Clone)]
pub struct FeedPage<T = FeedItem> {
    pub items: Vec<T>,
    /// Where the next page starts (`after`): past every event this page looked at.
    pub next: Option<i64>,
    /// The page stopped at the most it looks at: more events follow `next` already.
    pub more: bool,
}

impl FeedPage<FeedEntry> {
    /// Where the page's events are in the log.
    pub fn positions(&self) -> Vec<i64> {
        self.items.iter().map(|entry| entry.position).collect()
    }

    /// The page with its events, read from the log at [`FeedPage::positions`].
    pub fn with_events(self, events: Vec<Vec<u8>>) -> anyhow::Result<FeedPage> {
        anyhow::ensure!(events.len() == self.items.len(), "one event per entry");
        let items = (self.items.into_iter().zip(events))
            .map(|(entry, event)| {
                Ok(FeedItem {
                    entry,
                    event: String::from_utf8(event).context("an event of the feed")?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(FeedPage {
            items,
            next: self.next,
            more: self.more,
        })
    }
}

/// Up to `limit` events after `after` (from the start if `None`) that `filter` keeps.
pub fn feed_page(
    conn: &Connection,
    after: Option<i64>,
    limit: u64,
    filter: &FeedFilter,
) -> anyhow::Result<FeedPage<FeedEntry>> {
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
        conditions.push(format!("f.type IN ({})", marks.join(", ")));
    }
    for (column, id) in [("f.group_id", filter.group), ("f.user_id", filter.user)] {
        if let Some(id) = id {
            keys.push(Box::new(id));
            conditions.push(format!("{column} = ?{}", keys.len()));
        }
    }
    if !filter.include_rejected {
        conditions.push("f.outcome = 'applied'".into());
    }
    keys.push(Box::new(limit as i64));
    let limit_at = keys.len();
    let kept = match conditions.is_empty() {
        true => "1".to_owned(),
        false => conditions.join(" AND "),
    };
    // The window looked at (positions only, from the primary key), then the entries of it
    // the filter keeps.
    let sql = format!(
        "WITH window AS (
             SELECT position FROM feed WHERE position > ?1 ORDER BY position LIMIT ?2
         )
         SELECT f.position, f.type, f.outcome
         FROM window w CROSS JOIN feed f ON f.position = w.position
         WHERE {kept} ORDER BY f.position LIMIT ?{limit_at}"
    );
    let bound: Vec<&dyn ToSql> = keys.iter().map(|k| k.as_ref()).collect();
    let items: Vec<FeedEntry> = conn
        .prepare_cached(&sql)?
        .query_map(bound.as_slice(), |row| {
            Ok(FeedEntry {
                position: row.get(0)?,
                event_type: row.get(1)?,
                outcome: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // The window's end, and whether it was full (more events after it).
    let (window_end, window_len): (Option<i64>, u64) = conn
        .prepare_cached(
            "SELECT MAX(position), COUNT(*) FROM
                 (SELECT position FROM feed WHERE position > ?1 ORDER BY position LIMIT ?2)",
        )?
        .query_row(rusqlite::params![after, SCANNED_MAX as i64], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let (next, more) = match items.len() as u64 == limit {
        true => (items.last().map(|item| item.position), true),
        // Fewer than asked: every event of the window was looked at.
        false => (
            window_end.or((after >= 0).then_some(after)),
            window_len == SCANNED_MAX,
        ),
    };
    Ok(FeedPage { items, next, more })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read model whose feed has `n` events at positions 1..=n, every 7th a
    /// `MemberRemoved` of `group`, the others `MemberAdded`.
    fn feed_of(n: i64, group: Uuid) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::read_model::open_for_writing(&dir.path().join("read.db")).unwrap();
        let mut insert = conn
            .prepare(
                "INSERT INTO feed (position, type, group_id, outcome)
                 VALUES (?1, ?2, ?3, 'applied')",
            )
            .unwrap();
        for position in 1..=n {
            let kind = if position % 7 == 0 {
                "MemberRemoved"
            } else {
                "MemberAdded"
            };
            insert
                .execute(rusqlite::params![position, kind, group])
                .unwrap();
        }
        drop(insert);
        (dir, conn)
    }

    #[test]
    fn pages_follow_on_with_no_gap_or_repeat_whatever_the_filter_keeps() {
        let group = Uuid::new_v4();
        let (_dir, conn) = feed_of(25_000, group);
        let removals = FeedFilter {
            types: vec!["MemberRemoved".into()],
            ..FeedFilter::default()
        };
        let (mut after, mut seen) = (None, Vec::new());
        loop {
            let page = feed_page(&conn, after, 1000, &removals).unwrap();
            seen.extend(page.items.iter().map(|item| item.position));
            if page.items.is_empty() && !page.more {
                break;
            }
            assert!(page.next > after, "the page moves on");
            after = page.next;
        }
        let expected: Vec<i64> = (1..=25_000).filter(|p| p % 7 == 0).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_filter_that_keeps_nothing_of_a_full_window_says_there_is_more() {
        let (_dir, conn) = feed_of(25_000, Uuid::new_v4());
        let other_group = FeedFilter {
            group: Some(Uuid::new_v4()),
            ..FeedFilter::default()
        };
        let first = feed_page(&conn, None, 100, &other_group).unwrap();
        assert!(first.items.is_empty());
        assert_eq!((first.next, first.more), (Some(SCANNED_MAX as i64), true));
        let last = feed_page(&conn, Some(20_000), 100, &other_group).unwrap();
        assert_eq!((last.next, last.more), (Some(25_000), false));
        let past = feed_page(&conn, Some(25_000), 100, &other_group).unwrap();
        assert_eq!((past.next, past.more), (Some(25_000), false));
    }
}
