//! The integration tests: one binary, each test against its own `membershipd` process on a
//! random port with a fresh data dir.

mod bad_input;
mod child_groups;
mod delete_contract;
mod durability;
mod events;
mod helpers;
mod prefixes;
mod seed_examples;
