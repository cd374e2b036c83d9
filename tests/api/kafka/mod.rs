//! The Kafka log against real Kafka-protocol brokers: Tansu, a durable broker the tests can
//! kill and restart, and librdkafka's mock cluster, which injects faults. What a consumer
//! of the topics sees, a restart that resumes from the stored positions, and writes while
//! the broker is gone, failing or slow.
//!
//! Tansu comes from `MEMBERSHIP_TEST_TANSU`, else `tansu` in PATH, else ~/.cargo/bin/tansu;
//! without one these tests fail. Tests that need no broker of their own use the shared one
//! in `MEMBERSHIP_TEST_KAFKA_BROKERS` when it is set.

/// The brokers: a private Tansu, the shared one, librdkafka's mock cluster.
mod broker;
/// What a consumer of the topics sees.
mod consumer;
/// Writes while the broker is killed, down, failing or slow.
mod faults;
/// The groups of members the fault tests remove, and what the topic and the read model
/// must say about those removals afterwards.
mod removals;
/// A restarted instance resumes from its stored positions.
mod restarts;
