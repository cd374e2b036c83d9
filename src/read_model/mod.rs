//! The read model: a SQLite database derived from the log, which answers every query and
//! every check. Deleting it is safe: the projector rebuilds it from the log.
//!
//! Architecture Invariant: only the projector writes here; handlers get read-only
//! connections through [`ReadModel::read`], off the async executor.

mod feed;
pub mod filter;
mod queries;
mod state;
mod unsynced;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

pub use feed::{FeedEntry, FeedFilter, FeedItem, FeedPage, feed_page};
pub use queries::{
    AccountStatus, ClientCredential, ClientView, GroupView, Groups, HistoryItem, KeyUseOutcomes,
    ListRequest, Listed, Login, Sort, Standing, UserView, Users, account_status, client,
    history_item, is_administrator, is_service_account, key_use_outcomes, list_clients,
    list_groups, list_history, list_users, login_of, password_hash, password_of, scopes_of,
    scopes_text, service_account, token_stands,
};
pub(crate) use state::Mirror;
pub use state::SqliteState;
pub use unsynced::Unsynced;

/// Ids are kept as their 16 bytes (rusqlite binds a `Uuid` as a blob), not as 36
/// characters of text: less than half the bytes in every row and index that holds one.
/// Every table is STRICT, so a value written with another type (an id bound as text) is
/// refused rather than stored as a row that no lookup by id would find. A lookup that
/// binds an id as text finds nothing: reads bind the `Uuid`, never its text.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS users (
        id BLOB PRIMARY KEY,
        username TEXT NOT NULL,
        username_key TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL UNIQUE,
        client_id TEXT,
        -- The API client's scopes, space-separated (`scim events:read`); empty for most.
        scopes TEXT NOT NULL DEFAULT '',
        profile TEXT NOT NULL,
        suspended INTEGER NOT NULL DEFAULT 0,
        -- How many times the user has been suspended: tokens issued before the last
        -- suspension stop for good, even once it is reinstated.
        suspensions INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL,
        modified TEXT NOT NULL
    ) STRICT;
    CREATE TABLE IF NOT EXISTS groups (
        id BLOB PRIMARY KEY,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        description TEXT,
        custom TEXT NOT NULL,
        created TEXT NOT NULL,
        -- How many changes the group has had (its ETag), and the request (logId) whose
        -- event made the last one.
        version INTEGER NOT NULL DEFAULT 1,
        last_change BLOB NOT NULL,
        -- The group's id in an identity provider (SCIM `externalId`), as sent.
        external_id TEXT
    ) STRICT;
    CREATE TABLE IF NOT EXISTS members (
        group_id BLOB NOT NULL,
        user_id BLOB NOT NULL,
        PRIMARY KEY (group_id, user_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id, group_id);
    CREATE TABLE IF NOT EXISTS child_groups (
        parent_id BLOB NOT NULL,
        child_id BLOB NOT NULL,
        PRIMARY KEY (parent_id, child_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS child_groups_by_child ON child_groups (child_id, parent_id);
    -- A user's password, and how many times it has been set: tokens issued on an earlier
    -- version stop.
    CREATE TABLE IF NOT EXISTS passwords (
        user_id BLOB PRIMARY KEY,
        hash TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 1
    ) STRICT, WITHOUT ROWID;
    -- Tokens revoked before they expire (seconds since the Unix epoch).
    CREATE TABLE IF NOT EXISTS revoked_tokens (
        token_id BLOB PRIMARY KEY,
        user_id BLOB NOT NULL,
        expires_s INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS revoked_tokens_by_expiry ON revoked_tokens (expires_s);
    -- Every event of the events stream (never the credentials stream) at its position in
    -- the log (its offset, the same on every instance), with the group and user it is
    -- about and its outcome (`applied` or the refusal's code): the feed, and each group's
    -- history (its applied events). The event itself stays in the log, read from there
    -- by position.
    CREATE TABLE IF NOT EXISTS feed (
        position INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        group_id BLOB,
        user_id BLOB,
        outcome TEXT NOT NULL
    ) STRICT;
    -- Each caller's idempotency keys, and the request each first came with.
    CREATE TABLE IF NOT EXISTS idempotency (
        actor_id BLOB NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        -- The logId of the request, and what it was about (the first event's aggregate).
        correlation_id BLOB NOT NULL,
        aggregate_id BLOB NOT NULL,
        -- The first event's time, in nanoseconds since the Unix epoch.
        time_ns INTEGER NOT NULL,
        -- The request's events seen so far, as a JSON array of ids, of how many.
        events TEXT NOT NULL,
        expected INTEGER NOT NULL,
        PRIMARY KEY (actor_id, key)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS idempotency_by_time ON idempotency (time_ns);
    CREATE TABLE IF NOT EXISTS outcomes (
        event_id BLOB PRIMARY KEY,
        outcome TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS positions (
        partition TEXT PRIMARY KEY,
        offset INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
";

/// The indexes only requests read (logins by client, SCIM lookups by `externalId`, a
/// group's history), never the projector's statements. A rebuild makes them once, at its
/// end, rather than on every insert.
const READ_INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS users_by_client ON users (client_id) WHERE client_id IS NOT NULL;
    -- The user's id in an identity provider (SCIM `externalId`), kept in its profile.
    CREATE INDEX IF NOT EXISTS users_by_external_id
        ON users (json_extract(profile, '$.externalId'));
    CREATE INDEX IF NOT EXISTS groups_by_external_id ON groups (external_id)
        WHERE external_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS feed_by_group ON feed (group_id, position)
        WHERE group_id IS NOT NULL;
";

/// The version of [`SCHEMA`] and [`READ_INDEXES`]. A read model of another version is
/// dropped and rebuilt from the log: it is derived, so that loses nothing.
///
/// 4: history keeps each event as the log holds it.
/// 5: suspension, password versions and revoked tokens.
/// 6: groups' external ids.
/// 7: the feed, every event at its log position, in place of the history table; API
///    clients' scopes.
/// 8: the feed keeps where each event is in the log, not the event, and has no index by
///    user (a page reads a window of positions, whatever its filter).
/// 9: ids as their 16 bytes, not 36 characters of text.
const SCHEMA_VERSION: i64 = 9;

/// Tables earlier versions made, dropped with the others.
const RETIRED_TABLES: [&str; 1] = ["history"];

/// Every table [`SCHEMA`] makes, for dropping them.
const TABLES: [&str; 10] = [
    "users",
    "groups",
    "members",
    "child_groups",
    "passwords",
    "feed",
    "outcomes",
    "positions",
    "idempotency",
    "revoked_tokens",
];

/// Prepared statements kept per connection. A request or an event runs a dozen distinct
/// statements and the projector and readers use about a hundred between them; a smaller
/// cache (rusqlite's default is 16) evicts them in turn and parses every one again.
const STATEMENTS_CACHED: usize = 256;

/// The projector's page cache. Its connection is the only one whose cache outlives a
/// commit, and every event reads the pages of the users, groups and memberships it names,
/// so a cache that holds the hot part of the read model saves a read per page.
const WRITER_CACHE_BYTES: i64 = 64 << 20;

/// The projector reads the read model's file through a memory map of up to this much
/// (SQLite caps it near 2 GiB; pages past it are read as usual): a page not in the
/// write-ahead log is then read in place, without a system call or a copy into a cache
/// that its next commit empties. Readers map nothing: SQLite drops a reader's whole map
/// (and its cache) whenever the log has changed since its last read, which under load is
/// every read, so each would unmap and fault in again the pages it reads (64 connections
/// removing memberships: 3,585 and 3,754 removals/s with maps, 3,958 and 4,096 without,
/// runs in turn).
const MAP_BYTES: i64 = 1 << 30;

/// Opens (creating if needed) the read model for its one writer, the projector.
pub fn open_for_writing(path: &Path) -> anyhow::Result<Connection> {
    open(path, true)
}

/// Opens a new read model for a rebuild: as [`open_for_writing`], but without
/// [`READ_INDEXES`] until [`add_read_indexes`]. A model left without them (a rebuild that
/// stopped) gets them when the service opens it.
pub fn open_for_rebuilding(path: &Path) -> anyhow::Result<Connection> {
    open(path, false)
}

/// Makes the indexes only requests read, if missing.
pub fn add_read_indexes(conn: &Connection) -> anyhow::Result<()> {
    conn.execute_batch(READ_INDEXES)
        .context("creating the read model's indexes")
}

fn open(path: &Path, read_indexes: bool) -> anyhow::Result<Connection> {
    crate::files::private_file(path)?;
    let conn = Connection::open(path)
        .with_context(|| format!("opening the read model at {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Never synced: a machine that stops while it is written has it rebuilt from the log
    // (`Unsynced`); positions commit in the same transaction as the changes.
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -(WRITER_CACHE_BYTES / 1024))?;
    conn.pragma_update(None, "mmap_size", MAP_BYTES)?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
    crate::sqlite::fix_plans(&conn)?;
    let version = schema_version(&conn)?;
    let has_tables: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')",
        [],
        |row| row.get(0),
    )?;
    // One transaction: a reader sees the old schema or the new one, never a mix.
    let tx = conn.unchecked_transaction()?;
    let replaced = has_tables && version != SCHEMA_VERSION;
    if replaced {
        tracing::warn!(
            found = version,
            wanted = SCHEMA_VERSION,
            "the read model has another schema; rebuilding it from the log"
        );
        for table in TABLES.iter().chain(&RETIRED_TABLES) {
            tx.execute_batch(&format!("DROP TABLE IF EXISTS {table}"))?;
        }
    }
    tx.execute_batch(SCHEMA)
        .context("creating the read model's tables")?;
    if read_indexes {
        add_read_indexes(&tx)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    if replaced {
        // Hands back the pages of the dropped tables, so that the file is only as large
        // as the new model grows. The new tables are empty: this copies almost nothing.
        // The new schema is committed either way; a file left large is still correct.
        if let Err(error) = conn.execute_batch("VACUUM") {
            tracing::warn!(%error, "compacting the read model after its schema changed failed");
        }
    }
    Ok(conn)
}

/// Read-only access for request handlers: a small pool of connections, used on the
/// blocking thread pool, each call in one read transaction (a consistent snapshot).
pub struct ReadModel {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    readers_max: usize,
    queue_timeout: Duration,
}

/// All readers stayed busy for longer than the queue timeout.
#[derive(Debug, thiserror::Error)]
#[error("every read-model reader is busy")]
pub struct ReadersBusy;

impl ReadModel {
    /// At most `readers_max` reads run at once; another waits at most `queue_timeout`.
    pub fn new(path: PathBuf, readers_max: usize, queue_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(readers_max)),
            readers_max,
            queue_timeout,
        })
    }

    /// Reads running now.
    pub fn busy(&self) -> usize {
        self.readers_max - self.permits.available_permits()
    }

    pub async fn read<T, F>(self: &Arc<Self>, query: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| ReadersBusy)??;
        let this = self.clone();
        // The permit moves into the blocking task: it bounds running queries, even those
        // whose request was dropped.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = this.checkout()?;
            let result = {
                let snapshot = conn.unchecked_transaction()?;
                let result = query(&snapshot);
                snapshot.finish()?;
                result
            };
            this.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
            result
        })
        .await
        .context("a read-model query panicked")?
    }

    fn checkout(&self) -> anyhow::Result<Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .context("opening a read-model connection")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
        crate::sqlite::fix_plans(&conn)?;
        Ok(conn)
    }
}

/// Every table of the state with the columns compared, each read in the order of its
/// key. Positions are left out, since two read models that applied the same events may
/// have read them from different places (a backup, another instance).
const DUMPED: [(&str, &str); 9] = [
    (
        "users",
        "SELECT id, username, email, client_id, scopes, profile, suspended, suspensions,
                created, modified
         FROM users ORDER BY id",
    ),
    (
        "groups",
        "SELECT id, name, type, description, custom, created, version, last_change,
                external_id
         FROM groups ORDER BY id",
    ),
    (
        "members",
        "SELECT group_id, user_id FROM members ORDER BY group_id, user_id",
    ),
    (
        "child_groups",
        "SELECT parent_id, child_id FROM child_groups ORDER BY parent_id, child_id",
    ),
    (
        "passwords",
        "SELECT user_id, hash, version FROM passwords ORDER BY user_id",
    ),
    (
        "revoked_tokens",
        "SELECT token_id, user_id, expires_s FROM revoked_tokens ORDER BY token_id",
    ),
    (
        "feed",
        "SELECT position, type, group_id, user_id, outcome FROM feed ORDER BY position",
    ),
    (
        "idempotency",
        "SELECT actor_id, key, fingerprint, correlation_id, aggregate_id, time_ns, events,
                expected
         FROM idempotency ORDER BY actor_id, key",
    ),
    (
        "outcomes",
        "SELECT event_id, outcome FROM outcomes ORDER BY event_id",
    ),
];

/// A table's heading in a dump: its name and how many rows it has.
fn heading(conn: &Connection, table: &str) -> anyhow::Result<String> {
    let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
        row.get(0)
    })?;
    Ok(format!("[{table}] {rows}"))
}

/// The version of the schema `conn`'s read model was made with (0 for a new file).
fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// A dump's first line: the schema's version.
fn schema_heading(conn: &Connection) -> rusqlite::Result<String> {
    Ok(format!("[schema] {}", schema_version(conn)?))
}

/// A row as a line of a dump, ids as their text.
fn line(row: &rusqlite::Row) -> rusqlite::Result<String> {
    use rusqlite::types::Value;
    let cell = |value| match value {
        Value::Blob(bytes) => match uuid::Uuid::from_slice(&bytes) {
            Ok(id) => format!("Id({id})"),
            Err(_) => format!("{:?}", Value::Blob(bytes)),
        },
        value => format!("{value:?}"),
    };
    let cells = (0..row.as_ref().column_count())
        .map(|i| Ok(cell(row.get::<_, Value>(i)?)))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(cells.join("\t"))
}

/// The whole state as text: the schema's version, then a heading per table and a line per
/// row, every table and row in a fixed order. Equal dumps mean equal read models.
pub fn dump(conn: &Connection) -> anyhow::Result<String> {
    let mut out = schema_heading(conn)?;
    out.push('\n');
    for (table, sql) in DUMPED {
        out.push_str(&heading(conn, table)?);
        out.push('\n');
        let mut statement = conn.prepare(sql)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            out.push_str(&line(row)?);
            out.push('\n');
        }
    }
    Ok(out)
}

/// The first line at which the dumps of two read models differ, `None` if nowhere; read
/// a row at a time from each, in one read transaction each, so that neither dump is ever
/// made whole and each is of one moment. The tables' headings, which come first in a
/// dump, are counted only once their rows are found to differ.
pub fn first_difference(
    a: &Connection,
    b: &Connection,
) -> anyhow::Result<Option<(String, String)>> {
    let (a, b) = (a.unchecked_transaction()?, b.unchecked_transaction()?);
    let (schema_a, schema_b) = (schema_heading(&a)?, schema_heading(&b)?);
    if schema_a != schema_b {
        return Ok(Some((schema_a, schema_b)));
    }
    for (table, sql) in DUMPED {
        let (mut statement_a, mut statement_b) = (a.prepare(sql)?, b.prepare(sql)?);
        let (mut rows_a, mut rows_b) = (statement_a.query([])?, statement_b.query([])?);
        loop {
            let (line_a, line_b) = match (rows_a.next()?, rows_b.next()?) {
                (None, None) => break,
                (row_a, row_b) => (row_a.map(line).transpose()?, row_b.map(line).transpose()?),
            };
            if line_a != line_b {
                let (heading_a, heading_b) = (heading(&a, table)?, heading(&b, table)?);
                if heading_a != heading_b {
                    return Ok(Some((heading_a, heading_b)));
                }
                let ends = || "(ends here)".to_owned();
                return Ok(Some((
                    line_a.unwrap_or_else(ends),
                    line_b.unwrap_or_else(ends),
                )));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(conn: &Connection) -> Vec<(String, String, Option<String>)> {
        conn.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect()
            })
            .expect("the schema")
    }

    #[test]
    fn a_model_opened_for_rebuilding_lacks_only_the_read_indexes_until_they_are_added() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let written = open_for_writing(&dir.path().join("read.db")).expect("a read model");
        let rebuilt = open_for_rebuilding(&dir.path().join("rebuilt.db")).expect("a read model");
        let names = |conn: &Connection| -> Vec<String> {
            schema(conn).into_iter().map(|(_, name, _)| name).collect()
        };
        let missing: Vec<String> = (names(&written).into_iter())
            .filter(|name| !names(&rebuilt).contains(name))
            .collect();
        assert_eq!(
            missing,
            [
                "feed_by_group",
                "groups_by_external_id",
                "users_by_client",
                "users_by_external_id"
            ]
        );
        add_read_indexes(&rebuilt).expect("the indexes");
        assert_eq!(schema(&rebuilt), schema(&written));
    }

    #[test]
    fn a_model_left_without_its_read_indexes_gets_them_when_opened_for_writing() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("read.db");
        drop(open_for_rebuilding(&path).expect("a read model"));
        let reopened = open_for_writing(&path).expect("the read model again");
        let written = open_for_writing(&dir.path().join("other.db")).expect("a read model");
        assert_eq!(schema(&reopened), schema(&written));
    }

    #[test]
    fn a_model_of_another_schema_is_replaced_by_an_empty_one_and_its_pages_handed_back() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("read.db");
        let pages = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "page_count", |row| row.get(0))
                .expect("a page count")
        };
        let old = open_for_writing(&path).expect("a read model");
        old.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO feed (position, type, outcome) SELECT i, printf('%.2000c', 'x'), 'applied' FROM n;
             PRAGMA user_version = 8;",
        )
        .expect("a model of schema 8");
        let filled = pages(&old);
        drop(old);
        let new = open_for_writing(&path).expect("the read model again");
        let rows: i64 = new
            .query_row("SELECT count(*) FROM feed", [], |row| row.get(0))
            .expect("a count");
        let version = schema_version(&new).expect("a version");
        assert_eq!((rows, version), (0, SCHEMA_VERSION));
        assert!(
            pages(&new) * 10 < filled,
            "{} pages of {filled}",
            pages(&new)
        );
    }

    #[test]
    fn the_first_difference_of_two_models_is_their_first_differing_line_of_a_dump() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let model = |name: &str, description: &str| {
            let conn = open_for_writing(&dir.path().join(name)).expect("a read model");
            conn.execute(
                "INSERT INTO groups (id, name, name_key, type, description, custom, created,
                                     last_change)
                 VALUES (?2, 'G', 'g', 'contensis', ?1, '{}', 't', X'')",
                rusqlite::params![description, uuid::Uuid::from_u128(1)],
            )
            .expect("a group");
            conn
        };
        let (a, b, c) = (
            model("a.db", "one"),
            model("b.db", "one"),
            model("c.db", "two"),
        );
        assert_eq!(first_difference(&a, &b).expect("a comparison"), None);
        let (ours, theirs) = first_difference(&a, &c)
            .expect("a comparison")
            .expect("a difference");
        assert!(
            ours.contains("\"one\"") && theirs.contains("\"two\""),
            "{ours} / {theirs}"
        );
        let line =
            |dump: String, text: &str| dump.lines().find(|l| l.contains(text)).map(str::to_owned);
        assert_eq!(
            (
                line(dump(&a).unwrap(), "one"),
                line(dump(&c).unwrap(), "two")
            ),
            (Some(ours), Some(theirs))
        );
        c.execute("DELETE FROM groups", []).expect("no group");
        let counts = first_difference(&a, &c).expect("a comparison");
        assert_eq!(counts, Some(("[groups] 1".into(), "[groups] 0".into())));
        c.pragma_update(None, "user_version", SCHEMA_VERSION - 1)
            .expect("an older schema");
        let schemas = first_difference(&a, &c).expect("a comparison");
        let (ours, older) = (SCHEMA_VERSION, SCHEMA_VERSION - 1);
        assert_eq!(
            schemas,
            Some((format!("[schema] {ours}"), format!("[schema] {older}")))
        );
    }

    #[test]
    fn the_writer_and_the_readers_keep_their_plans() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("read.db");
        let writer = open_for_writing(&path).expect("a read model");
        assert!(crate::sqlite::plans_are_fixed(&writer));
        let readers = ReadModel::new(path, 1, Duration::from_secs(1));
        let reader = readers.checkout().expect("a reader");
        assert!(crate::sqlite::plans_are_fixed(&reader));
    }
}
