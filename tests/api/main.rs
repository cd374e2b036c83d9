//! The integration tests: one binary, each test against its own `membershipd` process on a
//! random port with a fresh data dir. Tests of the API run once per log backend
//! (`#[apply(backends)]`): embedded, and Kafka on the broker that `make test` starts
//! (`tests/with-broker.sh`); a Kafka case without a broker fails, it is never skipped.

mod bad_input;
mod child_groups;
mod cli;
mod clients;
mod conditional;
mod consumer;
mod delete_contract;
mod durability;
mod events;
mod feed;
mod groups;
mod helpers;
mod instances;
mod kafka;
mod logs;
mod members;
mod metrics;
mod official_client;
mod openapi;
mod passwords;
mod prefixes;
mod rebuild;
mod resources;
mod scim;
mod scim_compliance;
mod scim_groups;
mod scim_users;
mod security;
mod seed_examples;
mod users;
