//! What every SQLite connection of the service that runs statements with bound values is
//! opened with, and inserts of many rows to a statement.

use rusqlite::Connection;
use rusqlite::config::DbConfig;

/// Keeps each prepared statement's plan whatever values are later bound to it. Without
/// this, SQLite marks a statement whose plan could depend on a bound value (a `LIMIT ?`,
/// a `LIKE ?`, a parameter compared with a literal in a partial index's condition) and
/// parses and plans it again at the first step after each new binding: the projector's
/// read of the log did so on every call, as did every page of a list or of the feed.
pub fn fix_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(drop)
}

/// Rows per statement of [`Rows::insert`]: within SQLite's limit of 32,766 parameters.
pub const ROWS_PER_INSERT: usize = 64;

/// The statements that insert rows into one table: one row, or [`ROWS_PER_INSERT`].
pub struct Rows {
    columns: usize,
    one: String,
    many: String,
}

impl Rows {
    /// `insert` is `INSERT INTO table (columns)`, `columns` of them.
    pub fn new(insert: &str, columns: usize) -> Self {
        let values = |rows: usize| {
            let row = format!("({})", vec!["?"; columns].join(", "));
            format!("{insert} VALUES {}", vec![row; rows].join(", "))
        };
        Self {
            columns,
            one: values(1),
            many: values(ROWS_PER_INSERT),
        }
    }

    /// Inserts `rows`, whole statements of [`ROWS_PER_INSERT`] and then one at a time;
    /// `bind` binds a row from the given parameter index on.
    pub fn insert<R>(
        &self,
        conn: &Connection,
        rows: &[R],
        bind: impl Fn(&mut rusqlite::Statement, usize, &R) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
        if rows.len() >= ROWS_PER_INSERT {
            let mut many = conn.prepare_cached(&self.many)?;
            for chunk in &mut chunks {
                for (i, row) in chunk.iter().enumerate() {
                    bind(&mut many, 1 + i * self.columns, row)?;
                }
                many.raw_execute()?;
            }
        }
        if !chunks.remainder().is_empty() {
            let mut one = conn.prepare_cached(&self.one)?;
            for row in chunks.remainder() {
                bind(&mut one, 1, row)?;
                one.raw_execute()?;
            }
        }
        Ok(())
    }
}

/// Whether `fix_plans` holds for `conn`, for the tests of each place that opens one.
#[cfg(test)]
pub fn plans_are_fixed(conn: &Connection) -> bool {
    conn.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)
        .expect("the setting")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// How many times a statement with a bound `LIMIT` was prepared again over five calls.
    fn reprepares(conn: &Connection) -> i32 {
        conn.execute_batch(
            "CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2);",
        )
        .expect("a table");
        let mut statement = conn
            .prepare_cached("SELECT n FROM t WHERE n > ?1 ORDER BY n LIMIT ?2")
            .expect("a statement");
        for limit in 1..=5 {
            let rows: Vec<i64> = statement
                .query_map([0, limit], |row| row.get(0))
                .and_then(|rows| rows.collect())
                .expect("rows");
            assert_eq!(rows.len(), limit.min(2) as usize);
        }
        statement.get_status(StatementStatus::RePrepare)
    }

    #[test]
    fn a_statement_is_not_prepared_again_when_its_bindings_change() {
        let conn = Connection::open_in_memory().expect("a database");
        fix_plans(&conn).expect("fixed plans");
        assert_eq!(reprepares(&conn), 0);
        // What the setting prevents.
        assert!(reprepares(&Connection::open_in_memory().expect("a database")) > 0);
    }
}
