//! The benchmark's helpers and baselines, run by `bench/bench.py` (`make bench`):
//!
//! * `seed URL GROUPS USERS BULK_CALLS`: a data set through the service's own API (users
//!   without passwords, groups, then bulk adds of up to 1,000 users per call, `BULK_CALLS`
//!   at a time). User `i` is in groups `i % GROUPS` and `(i + GROUPS / 2) % GROUPS`.
//! * `sqlite DIR PAYLOAD_BYTES COUNT BATCH`: synced inserts into a table shaped like the
//!   embedded log's, with its pragmas (WAL, `synchronous=FULL`), `BATCH` rows per
//!   transaction: the disk's bound on the embedded log.
//! * `kafka BROKERS RATE SECONDS PAYLOAD_BYTES`: raw rdkafka at a fixed rate with the
//!   producer and consumer settings of `src/log/kafka.rs`: produce-to-delivery, and the
//!   round trip from produce to the record being consumed, both measured from each record's
//!   scheduled send time (no coordinated omission).
//! * `kafka BROKERS closed IN_FLIGHT SECONDS PAYLOAD_BYTES`: the broker saturated, with the
//!   same clients: `IN_FLIGHT` records at once in a closed loop (each record consumed has a
//!   new one produced in its place) for `SECONDS`; records round-tripped per second, and
//!   produce-to-delivery and produce-then-consume measured from each record's send.
//! * `eventlog PATH EVENTS`: a log.db of `EVENTS` events written through the crate's
//!   embedded log, for timing `membershipd rebuild`.
//!
//! Each prints one JSON object on standard output.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use membership::domain::{
    Actor, Email, Event, EventData, GroupDetails, GroupName, GroupType, Membership, Metadata,
    Profile, UserCreated, Username,
};
use membership::log::{EmbeddedLog, EmbeddedLogSettings, EventLog, kafka};
use membership::settings::{KafkaSettings, Settings};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

const USAGE: &str = "usage: baselines seed URL GROUPS USERS BULK_CALLS | sqlite DIR PAYLOAD_BYTES COUNT BATCH \
                     | kafka BROKERS RATE SECONDS PAYLOAD_BYTES \
                     | kafka BROKERS closed IN_FLIGHT SECONDS PAYLOAD_BYTES | eventlog PATH EVENTS";

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; anything starting with `--` is not ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = match args.as_slice() {
        ["seed", url, groups, users, bulk] => {
            runtime.block_on(seed(url, groups.parse()?, users.parse()?, bulk.parse()?))?
        }
        ["sqlite", dir, payload, count, batch] => {
            sqlite(dir.into(), payload.parse()?, count.parse()?, batch.parse()?)?
        }
        ["kafka", brokers, rate, seconds, payload] => runtime.block_on(kafka(
            brokers,
            rate.parse()?,
            seconds.parse()?,
            payload.parse()?,
        ))?,
        ["kafka", brokers, "closed", in_flight, seconds, payload] => {
            runtime.block_on(kafka_closed(
                brokers,
                in_flight.parse()?,
                seconds.parse()?,
                payload.parse()?,
            ))?
        }
        ["eventlog", path, events] => runtime.block_on(eventlog(path.into(), events.parse()?))?,
        [] => {
            eprintln!("{USAGE}");
            return Ok(());
        }
        _ => bail!("{USAGE}"),
    };
    println!("{result}");
    Ok(())
}

/// Latency percentiles in milliseconds, from durations in any order.
fn percentiles(mut samples: Vec<Duration>) -> Value {
    samples.sort_unstable();
    let at = |q: f64| {
        if samples.is_empty() {
            return f64::NAN;
        }
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    json!({"count": samples.len(), "p50": at(0.5), "p99": at(0.99), "p999": at(0.999), "max": at(1.0)})
}

fn user_name(i: usize) -> String {
    format!("bench-u{i:06}")
}

fn group_name(g: usize) -> String {
    format!("bench-g{g:04}")
}

/// Runs `count` calls with at most `concurrency` in flight; each must answer `expected`.
async fn each<F, Fut>(count: usize, concurrency: usize, call: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut running = tokio::task::JoinSet::new();
    for i in 0..count {
        if running.len() >= concurrency
            && let Some(done) = running.join_next().await
        {
            done??;
        }
        running.spawn(call(i));
    }
    while let Some(done) = running.join_next().await {
        done??;
    }
    Ok(())
}

async fn expect_status(response: reqwest::RequestBuilder, expected: u16) -> anyhow::Result<()> {
    // A 503 (busy log, slow round trip) is retried: seeding must finish.
    for _ in 0..20 {
        let answer = response
            .try_clone()
            .context("cloning a request")?
            .send()
            .await?;
        let status = answer.status().as_u16();
        if status == expected {
            return Ok(());
        }
        if status != 503 {
            let body = answer.text().await.unwrap_or_default();
            bail!("expected {expected}, got {status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("still 503 after 20 tries")
}

async fn seed(url: &str, groups: usize, users: usize, bulk: usize) -> anyhow::Result<Value> {
    const CONCURRENCY: usize = 32;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    // bench/bench.py gives the service and this seeder the same secret.
    let secret = std::env::var("MEMBERSHIP_ADMIN_CLIENT_SECRET")
        .map_err(|_| anyhow::anyhow!("MEMBERSHIP_ADMIN_CLIENT_SECRET is not set"))?;
    let token: Value = client
        .post(format!("{url}/authenticate/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "membership-admin"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned();
    let api = Arc::new(format!("{url}/api/management/security"));
    let auth = Arc::new(format!("Bearer {token}"));

    let started = Instant::now();
    each(groups, CONCURRENCY, |g| {
        let (client, api, auth) = (client.clone(), api.clone(), auth.clone());
        async move {
            let body = json!({"name": group_name(g), "description": "benchmark group"});
            let request = client
                .post(format!("{api}/groups"))
                .header("Authorization", auth.as_str())
                .json(&body);
            expect_status(request, 201).await
        }
    })
    .await?;
    let groups_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    each(users, CONCURRENCY, |i| {
        let (client, api, auth) = (client.clone(), api.clone(), auth.clone());
        async move {
            let name = user_name(i);
            let body = json!({"username": name, "email": format!("{name}@example.com"),
                              "firstname": "Bench", "lastname": format!("User {i}")});
            let request = client
                .post(format!("{api}/users"))
                .header("Authorization", auth.as_str())
                .json(&body);
            expect_status(request, 201).await
        }
    })
    .await?;
    let users_s = started.elapsed().as_secs_f64();

    // Each group's members, in calls of at most 1,000 ids.
    let mut calls: Vec<(usize, Vec<String>)> = Vec::new();
    let mut members: Vec<Vec<String>> = vec![Vec::new(); groups];
    for i in 0..users {
        members[i % groups].push(user_name(i));
        members[(i + groups / 2) % groups].push(user_name(i));
    }
    for (g, names) in members.into_iter().enumerate() {
        for chunk in names.chunks(1000) {
            calls.push((g, chunk.to_vec()));
        }
    }
    let memberships: usize = calls.iter().map(|(_, names)| names.len()).sum();
    let calls = Arc::new(calls);
    let started = Instant::now();
    each(calls.len(), bulk, |c| {
        let (client, api, auth, calls) = (client.clone(), api.clone(), auth.clone(), calls.clone());
        async move {
            let (g, names) = &calls[c];
            let request = client
                .post(format!("{api}/groups/{}/users", group_name(*g)))
                .header("Authorization", auth.as_str())
                .json(names);
            expect_status(request, 204).await
        }
    })
    .await?;
    let memberships_s = started.elapsed().as_secs_f64();
    Ok(json!({
        "token": token,
        "groups": groups, "groups_s": groups_s,
        "users": users, "users_s": users_s,
        "memberships": memberships, "memberships_s": memberships_s,
    }))
}

fn sqlite(dir: PathBuf, payload_bytes: usize, count: usize, batch: usize) -> anyhow::Result<Value> {
    let path = dir.join(format!("sqlite-baseline-{batch}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut conn = Connection::open(&path)?;
    // The embedded log's pragmas and table (src/log/embedded.rs).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE events (offset INTEGER PRIMARY KEY, event_id TEXT NOT NULL,
                              type TEXT NOT NULL, payload TEXT NOT NULL);
         CREATE UNIQUE INDEX events_by_id ON events (event_id);",
    )?;
    let payload = "x".repeat(payload_bytes);
    let mut latencies = Vec::with_capacity(count.div_ceil(batch));
    let started = Instant::now();
    let mut written = 0;
    while written < count {
        let n = batch.min(count - written);
        let t = Instant::now();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (event_id, type, payload) VALUES (?1, ?2, ?3)",
            )?;
            for _ in 0..n {
                insert.execute(params![
                    Uuid::now_v7().to_string(),
                    "MemberRemoved",
                    payload
                ])?;
            }
        }
        tx.commit()?;
        latencies.push(t.elapsed());
        written += n;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(json!({
        "rows": count, "batch": batch, "payload_bytes": payload_bytes,
        "rows_per_s": count as f64 / elapsed,
        "commits_per_s": latencies.len() as f64 / elapsed,
        "commit_ms": percentiles(latencies),
    }))
}

/// A fresh one-partition topic on `brokers`, the service's own producer and a consumer of
/// that topic from its beginning, with one record already through both (the warm-up).
struct Kafka {
    settings: KafkaSettings,
    topic: String,
    producer: FutureProducer,
    consumer: BaseConsumer,
}

async fn kafka_setup(brokers: &str, payload_bytes: usize) -> anyhow::Result<Kafka> {
    // The service's own settings (config/default.toml), on the given brokers.
    let mut settings = Settings::load()?.kafka;
    settings.brokers = brokers.to_owned();
    let topic = format!("bench.roundtrip.{}", Uuid::new_v4());
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    let admin: AdminClient<_> = config.create()?;
    let created = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                1,
                TopicReplication::Fixed(settings.replication_factor),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for result in created {
        if let Err((name, code)) = result {
            bail!("creating {name}: {code}");
        }
    }
    // The service's own producer and consumer settings.
    let producer: FutureProducer = kafka::producer(&settings)?;
    let consumer: BaseConsumer = kafka::reader_config(&settings).create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;

    // Warm up: one record through both ends before timing anything.
    let warm = vec![0xffu8; payload_bytes.max(16)];
    producer
        .send(
            FutureRecord::<[u8], _>::to(&topic).payload(&warm),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => break,
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => bail!("consuming: {e}"),
        }
        if Instant::now() > deadline {
            bail!("the warm-up record never came back");
        }
    }
    Ok(Kafka {
        settings,
        topic,
        producer,
        consumer,
    })
}

async fn kafka(
    brokers: &str,
    rate: f64,
    seconds: f64,
    payload_bytes: usize,
) -> anyhow::Result<Value> {
    let Kafka {
        settings,
        topic,
        producer,
        consumer,
    } = kafka_setup(brokers, payload_bytes).await?;

    let count = (rate * seconds).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(100);
    let scheduled = move |seq: usize| start + interval * seq as u32;

    let reader = std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
        let mut round_trips = Vec::with_capacity(count);
        // Records the broker never acknowledged never come back: stop a minute after the
        // last was due and report how many did.
        let give_up = scheduled(count) + Duration::from_secs(60);
        while round_trips.len() < count && Instant::now() < give_up {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let now = Instant::now();
                    let payload = message.payload().unwrap_or_default();
                    let seq = u64::from_be_bytes(payload[..8].try_into()?) as usize;
                    round_trips.push(now - scheduled(seq));
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                // librdkafka reconnects by itself, as in the service's reader.
                Some(Err(e)) => eprintln!("consuming: {e}"),
            }
        }
        Ok(round_trips)
    });

    let producer = Arc::new(producer);
    let mut deliveries = tokio::task::JoinSet::new();
    for seq in 0..count {
        tokio::time::sleep_until(scheduled(seq).into()).await;
        let mut payload = vec![b'x'; payload_bytes.max(8)];
        payload[..8].copy_from_slice(&(seq as u64).to_be_bytes());
        let key = Uuid::new_v4().to_string();
        let record = FutureRecord::to(&topic).key(&key).payload(&payload);
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| anyhow::anyhow!("producing: {e}"))?;
        deliveries.spawn(async move {
            match delivery.await {
                Ok(Ok(_)) => Some(Instant::now() - scheduled(seq)),
                // Given up after `message.timeout.ms`: counted, not timed.
                Ok(Err(_)) | Err(_) => None,
            }
        });
    }
    let mut delivered = Vec::with_capacity(count);
    let mut failed = 0;
    while let Some(done) = deliveries.join_next().await {
        match done? {
            Some(latency) => delivered.push(latency),
            None => failed += 1,
        }
    }
    let round_trips = tokio::task::spawn_blocking(move || reader.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the reader panicked"))??;
    Ok(json!({
        "rate": rate, "records": count, "payload_bytes": payload_bytes,
        "not_delivered": failed,
        "linger_ms": settings.linger_ms, "fetch_wait_max_ms": settings.fetch_wait_max_ms,
        "delivery_ms": percentiles(delivered),
        "round_trip_ms": percentiles(round_trips),
    }))
}

/// The closed loop: `in_flight` records produced at once, and each one consumed replaced by
/// a new one while `seconds` last; then the last ones are waited for. Each record carries
/// its sequence number and its send time (nanoseconds from the start) in its first 16
/// bytes, so the consumer times its round trip without shared state.
async fn kafka_closed(
    brokers: &str,
    in_flight: usize,
    seconds: f64,
    payload_bytes: usize,
) -> anyhow::Result<Value> {
    if in_flight == 0 {
        bail!("IN_FLIGHT must be at least 1");
    }
    let Kafka {
        settings,
        topic,
        producer,
        consumer,
    } = kafka_setup(brokers, payload_bytes).await?;
    let size = payload_bytes.max(16);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let runtime = tokio::runtime::Handle::current();
    let (delivered_tx, mut delivered_rx) = tokio::sync::mpsc::unbounded_channel();
    // Produces record `seq` now; its delivery is timed on the runtime.
    let send = move |seq: usize| -> anyhow::Result<()> {
        let sent = Instant::now();
        let mut payload = vec![b'x'; size];
        payload[..8].copy_from_slice(&(seq as u64).to_be_bytes());
        payload[8..16]
            .copy_from_slice(&(sent.duration_since(start).as_nanos() as u64).to_be_bytes());
        let key = Uuid::new_v4().to_string();
        let record = FutureRecord::to(&topic).key(&key).payload(&payload);
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| anyhow::anyhow!("producing: {e}"))?;
        let tx = delivered_tx.clone();
        runtime.spawn(async move {
            let latency = match delivery.await {
                Ok(Ok(_)) => Some(sent.elapsed()),
                // Given up after `message.timeout.ms`: counted, not timed.
                Ok(Err(_)) | Err(_) => None,
            };
            let _ = tx.send(latency);
        });
        Ok(())
    };

    let reader = std::thread::spawn(move || -> anyhow::Result<_> {
        let mut round_trips = Vec::new();
        let mut produced = 0;
        for _ in 0..in_flight {
            send(produced)?;
            produced += 1;
        }
        let mut outstanding = in_flight;
        let mut completed_in_time = 0usize;
        // Records the broker never acknowledged never come back: stop a minute after the
        // end and report how many did.
        let give_up = end + Duration::from_secs(60);
        while outstanding > 0 && Instant::now() < give_up {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let now = Instant::now();
                    let payload = message.payload().unwrap_or_default();
                    let sent = u64::from_be_bytes(payload[8..16].try_into()?);
                    round_trips.push(now - (start + Duration::from_nanos(sent)));
                    if now < end {
                        completed_in_time += 1;
                        send(produced)?;
                        produced += 1;
                    } else {
                        outstanding -= 1;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                // librdkafka reconnects by itself, as in the service's reader.
                Some(Err(e)) => eprintln!("consuming: {e}"),
            }
        }
        Ok((round_trips, produced, completed_in_time))
    });
    let (round_trips, produced, completed_in_time) =
        tokio::task::spawn_blocking(move || reader.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the reader panicked"))??;
    // Every delivery task holds a sender; the channel closes once the last has answered
    // (or librdkafka gave the record up).
    let mut delivered = Vec::with_capacity(produced);
    let mut failed = 0;
    while let Some(latency) = delivered_rx.recv().await {
        match latency {
            Some(latency) => delivered.push(latency),
            None => failed += 1,
        }
    }
    Ok(json!({
        "mode": "closed", "in_flight": in_flight, "seconds": seconds,
        "records": produced, "payload_bytes": size,
        "rate": completed_in_time as f64 / seconds,
        "not_delivered": failed,
        "linger_ms": settings.linger_ms, "fetch_wait_max_ms": settings.fetch_wait_max_ms,
        "delivery_ms": percentiles(delivered),
        "round_trip_ms": percentiles(round_trips),
    }))
}

/// A plausible history: one group per 1,000 events, 100 users per group, then memberships added (two thirds of
/// the rest) and removed (one third), in batches of one transaction each.
async fn eventlog(path: PathBuf, events: usize) -> anyhow::Result<Value> {
    let log = EmbeddedLog::open(&EmbeddedLogSettings {
        path: path.clone(),
        queue_max: 16,
        batch_max: 1,
    })?;
    let actor = Actor {
        user_id: Uuid::now_v7(),
        username: Username::parse("svc.bench")?,
    };
    let meta = || Metadata {
        id: Uuid::now_v7(),
        time: OffsetDateTime::now_utc(),
        actor: actor.clone(),
        correlation_id: Uuid::now_v7(),
    };
    let groups_n = (events / 1000).max(2);
    let users_n = groups_n * 100;
    let groups: Vec<(Uuid, GroupName)> = (0..groups_n)
        .map(|g| Ok((Uuid::now_v7(), GroupName::parse(group_name(g))?)))
        .collect::<anyhow::Result<_>>()?;
    let users: Vec<(Uuid, Username, Email)> = (0..users_n)
        .map(|i| {
            let name = user_name(i);
            Ok((
                Uuid::now_v7(),
                Username::parse(name.clone())?,
                Email::parse(format!("{name}@example.com"))?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let membership = |i: usize, g: usize| {
        let (user_id, username, email) = users[i % users_n].clone();
        let (group_id, group_name) = groups[g % groups_n].clone();
        Membership {
            group_id,
            group_name,
            user_id,
            username,
            email,
        }
    };

    let mut data = Vec::with_capacity(events);
    for (group_id, name) in &groups {
        data.push(EventData::GroupCreated(GroupDetails {
            group_id: *group_id,
            name: name.clone(),
            description: Some("benchmark group".into()),
            group_type: GroupType::Contensis,
            custom: Default::default(),
            external_id: None,
        }));
    }
    for (i, (user_id, username, email)) in users.iter().enumerate() {
        data.push(EventData::UserCreated(UserCreated {
            user_id: *user_id,
            username: username.clone(),
            email: email.clone(),
            profile: Profile {
                firstname: Some("Bench".into()),
                lastname: Some(format!("User {i}")),
                ..Default::default()
            },
            client_id: None,
            scopes: Vec::new(),
        }));
    }
    // Membership k is user k % users in group (k + k / users) % groups: every pair distinct
    // while users is a multiple of groups and k / users < groups.
    let rest = events.saturating_sub(data.len());
    let removed = rest / 3;
    let added = rest - removed;
    for k in 0..added {
        data.push(EventData::MemberAdded(membership(k, k + k / users_n)));
    }
    for k in 0..removed {
        data.push(EventData::MemberRemoved(membership(k, k + k / users_n)));
    }
    let mut types: HashMap<&str, usize> = HashMap::new();
    let started = Instant::now();
    let mut chunk = Vec::with_capacity(10_000);
    for d in data {
        *types.entry(d.type_name()).or_default() += 1;
        chunk.push(Event::new(meta(), d));
        if chunk.len() == 10_000 {
            log.append(std::mem::take(&mut chunk)).await?;
        }
    }
    if !chunk.is_empty() {
        log.append(chunk).await?;
    }
    Ok(json!({
        "path": path, "events": events, "types": types,
        "write_s": started.elapsed().as_secs_f64(),
    }))
}
