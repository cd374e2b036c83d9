//! What the service wrote: its log, read back the same way from log.db or from the Kafka
//! topics, checked against the JSON Schemas; the read model's bookkeeping; and log.db's
//! write lock, for making the log slow.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::Location;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use super::{Caller, TestApp};

#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// The stream: `events` or `credentials` (the log.db table, or the Kafka topic
    /// `<topic>` or `<topic>.credentials`).
    pub table: &'static str,
    pub event_id: String,
    pub event_type: String,
    pub payload: Value,
}

/// The types of the events, in order.
pub fn types(events: &[LoggedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

impl TestApp {
    /// Every event in the log, `events` then `credentials`, each in log order: the rows of
    /// both log.db tables, or every record of both Kafka topics read to their end.
    pub fn log_events(&self) -> Vec<LoggedEvent> {
        match &self.kafka {
            Some(kafka) => kafka.events(),
            None => self.embedded_log_events(),
        }
    }

    /// Both log.db tables, read-only.
    fn embedded_log_events(&self) -> Vec<LoggedEvent> {
        let conn = Connection::open_with_flags(self.log_path(), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("opening log.db read-only");
        let mut rows = Vec::new();
        for table in ["events", "credentials"] {
            let sql = format!("SELECT event_id, type, payload FROM {table} ORDER BY offset");
            let mut statement = conn.prepare(&sql).expect("preparing a log query");
            let found = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .expect("reading the log");
            for row in found {
                let (event_id, event_type, payload) = row.expect("reading a log row");
                let payload = serde_json::from_str(&payload)
                    .unwrap_or_else(|e| panic!("a log payload is not JSON ({e}): {payload}"));
                rows.push(LoggedEvent {
                    table,
                    event_id,
                    event_type,
                    payload,
                });
            }
        }
        rows
    }

    pub fn log_len(&self) -> usize {
        self.log_events().len()
    }

    pub fn count_of(&self, event_type: &str) -> usize {
        self.log_events()
            .iter()
            .filter(|e| e.event_type == event_type)
            .count()
    }

    pub fn events_of(&self, event_type: &str) -> Vec<LoggedEvent> {
        self.log_events()
            .into_iter()
            .filter(|e| e.event_type == event_type)
            .collect()
    }

    /// The events stream (no credentials), in log order.
    pub fn public_events(&self) -> Vec<LoggedEvent> {
        self.log_events()
            .into_iter()
            .filter(|e| e.table == "events")
            .collect()
    }

    /// The credentials stream, in log order.
    pub fn credential_events(&self) -> Vec<LoggedEvent> {
        self.log_events()
            .into_iter()
            .filter(|e| e.table == "credentials")
            .collect()
    }

    /// What the events stream gained since it held `before` events, in log order.
    #[track_caller]
    pub fn appended_since(&self, before: usize) -> Vec<LoggedEvent> {
        let events = self.public_events();
        assert!(
            events.len() >= before,
            "the events stream shrank from {before} to {}",
            events.len()
        );
        events[before..].to_vec()
    }

    /// Runs `act` (requests the service must refuse, or that change nothing) and asserts
    /// that the log holds no more events afterwards than before; gives back what `act`
    /// gave. The service appends before it answers, so once `act`'s requests are
    /// answered, reading the log (on Kafka, both topics to their end) shows any append.
    ///
    /// ```ignore
    /// let answer = app.appends_nothing(app.remove_member(&group, "nobody")).await;
    /// app.appends_nothing(async {
    ///     for name in names {
    ///         app.try_create_group(&json!({ "name": name })).await.assert_status(409);
    ///     }
    /// })
    /// .await;
    /// ```
    #[track_caller]
    pub fn appends_nothing<T>(&self, act: impl Future<Output = T>) -> impl Future<Output = T> {
        let caller = Location::caller();
        async move {
            let before = self.log_len();
            let value = act.await;
            self.check_nothing_appended(before, caller);
            value
        }
    }

    fn check_nothing_appended(&self, before: usize, caller: Caller) {
        let after = self.log_events();
        assert_eq!(
            after.len(),
            before,
            "the log grew from {before} to {} events, in what {caller} expected to append \
             nothing; new: {:#?}",
            after.len(),
            &after[before.min(after.len())..]
        );
    }

    /// Opens log.db as a second writer and takes its write lock until the guard drops.
    #[track_caller]
    pub fn lock_log(&self) -> LogLock {
        assert!(
            self.kafka.is_none(),
            "lock_log needs the embedded log; this service keeps its log in Kafka"
        );
        let conn = Connection::open(self.log_path()).expect("opening log.db to lock it");
        conn.execute_batch("BEGIN EXCLUSIVE")
            .expect("taking the log's write lock");
        LogLock { conn: Some(conn) }
    }
}

/// Holds log.db's write lock; dropping it rolls back the (empty) transaction.
pub struct LogLock {
    conn: Option<Connection>,
}

impl LogLock {
    pub fn release(mut self) {
        self.unlock();
    }

    fn unlock(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.execute_batch("ROLLBACK")
                .expect("releasing the log's write lock");
        }
    }
}

impl Drop for LogLock {
    fn drop(&mut self) {
        self.unlock();
    }
}

// ---- schemas -------------------------------------------------------------------------

/// `MemberRemoved` -> `member-removed`
fn kebab_case(event_type: &str) -> String {
    let mut kebab = String::new();
    for (i, c) in event_type.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                kebab.push('-');
            }
            kebab.push(c.to_ascii_lowercase());
        } else {
            kebab.push(c);
        }
    }
    kebab
}

/// The validator of `schemas/<kebab-case type>.json`.
#[track_caller]
pub fn schema_for(event_type: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{}.json", kebab_case(event_type)));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!("reading the schema {}: {e}", path.display()),
    };
    let schema: Value = match serde_json::from_str(&text) {
        Ok(schema) => schema,
        Err(e) => panic!("the schema {} is not JSON: {e}", path.display()),
    };
    // `format` is only an annotation in draft 2020-12: ask for `date-time` to be checked.
    match jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
    {
        Ok(validator) => validator,
        Err(e) => panic!("the schema {} is not valid: {e}", path.display()),
    }
}

/// What is wrong with `payload` by the schema of `event_type`, one line each.
#[track_caller]
pub fn schema_errors(event_type: &str, payload: &Value) -> Vec<String> {
    schema_for(event_type)
        .iter_errors(payload)
        .map(|error| format!("at {}: {error}", error.instance_path))
        .collect()
}

/// Every event validates against `schemas/<type>.json`.
#[track_caller]
pub fn assert_valid(events: &[LoggedEvent]) {
    let mut failures = Vec::new();
    for event in events {
        for error in schema_errors(&event.event_type, &event.payload) {
            failures.push(format!(
                "{} {} {error}\n{}",
                event.event_type, event.event_id, event.payload
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- the read model ------------------------------------------------------------------

/// A read-only connection to the read model in `data_dir`; the service may be running
/// (WAL: readers do not disturb the projector).
#[track_caller]
pub fn open_read_model(data_dir: &Path) -> Connection {
    let path = data_dir.join("read.db");
    let conn = match Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(conn) => conn,
        Err(e) => panic!("opening {} read-only: {e}", path.display()),
    };
    conn.busy_timeout(Duration::from_secs(5))
        .expect("setting a busy timeout");
    conn
}

/// The outcome the read model in `data_dir` recorded for each event it applied or
/// rejected (event id -> `applied` or the code).
#[track_caller]
pub fn read_model_outcomes(data_dir: &Path) -> BTreeMap<String, String> {
    let conn = open_read_model(data_dir);
    let mut statement = conn
        .prepare("SELECT event_id, outcome FROM outcomes")
        .expect("preparing an outcomes query");
    statement
        .query_map([], |row| {
            Ok((row.get::<_, uuid::Uuid>(0)?.to_string(), row.get(1)?))
        })
        .expect("reading the outcomes")
        .collect::<rusqlite::Result<_>>()
        .expect("reading an outcome")
}
