//! What every SQLite connection of the service that runs statements with bound values is
//! opened with.

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
