//! The read model: a SQLite database derived from the log, which answers every query and
//! every check. Deleting it is safe: the projector rebuilds it from the log.
//!
//! Architecture Invariant: only the projector writes here; handlers get read-only
//! connections through [`ReadModel::read`], off the async executor.

mod queries;
mod state;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

pub use queries::{
    GroupView, MembersPage, UserView, actor, is_administrator, password_hash, service_account,
};
pub use state::SqliteState;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        username_key TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL UNIQUE,
        client_id TEXT UNIQUE,
        profile TEXT NOT NULL,
        created TEXT NOT NULL,
        modified TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS groups (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        description TEXT,
        custom TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS members (
        group_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (group_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id, group_id);
    CREATE TABLE IF NOT EXISTS child_groups (
        parent_id TEXT NOT NULL,
        child_id TEXT NOT NULL,
        PRIMARY KEY (parent_id, child_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS child_groups_by_child ON child_groups (child_id, parent_id);
    CREATE TABLE IF NOT EXISTS passwords (
        user_id TEXT PRIMARY KEY,
        hash TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS outcomes (
        event_id TEXT PRIMARY KEY,
        outcome TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS positions (
        partition TEXT PRIMARY KEY,
        offset INTEGER NOT NULL
    ) WITHOUT ROWID;
";

/// Opens (creating if needed) the read model for its one writer, the projector.
pub fn open_for_writing(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("opening the read model at {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL may lose the last commits on power loss; the projector then re-reads them
    // from the log, because positions commit in the same transaction as the changes.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)
        .context("creating the read model's tables")?;
    Ok(conn)
}

/// Read-only access for request handlers: a small pool of connections, used on the
/// blocking thread pool, each call in one read transaction (a consistent snapshot).
pub struct ReadModel {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReadModel {
    /// `readers_max` bounds how many reads run at once; others wait for a permit.
    pub fn new(path: PathBuf, readers_max: usize) -> Arc<Self> {
        Arc::new(Self {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(readers_max),
        })
    }

    pub async fn read<T, F>(self: &Arc<Self>, query: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let _permit = self.permits.acquire().await?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
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
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }
}
