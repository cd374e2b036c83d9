//! An event-sourced group-membership service speaking the Contensis users-and-groups API.
//! See ARCHITECTURE.md for the map.

pub mod auth;
pub mod bootstrap;
pub mod checkpoint;
pub mod domain;
pub mod files;
pub mod http;
pub mod log;
pub mod metrics;
pub mod projector;
pub mod read_model;
pub mod rebuild;
pub mod scim;
pub mod secrets;
pub mod service;
pub mod settings;
pub mod sqlite;
pub mod startup;
pub mod tail;
pub mod throttle;
