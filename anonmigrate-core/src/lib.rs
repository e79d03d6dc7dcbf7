//! The anonmigrate engine: configuration, the migration runner, the managed local PostgreSQL, and the pieces the
//! `cargo anonmigrate` CLI is a thin shell over. It never prints and never exits; progress goes through
//! [`events::Observer`].

pub mod bookkeeping;
pub mod check;
pub mod config;
pub mod database_url;
pub mod db;
pub mod direct;
pub mod discover;
pub mod doctor;
pub mod error;
pub mod events;
pub mod fleet;
pub mod generate;
pub mod import;
pub mod local_server;
pub mod lock_sync;
pub mod maintenance;
pub mod offline;
pub mod plan;
pub mod pooler;
pub mod runner;
pub mod schema;
pub mod setup;
pub mod split;
pub mod status;
pub mod target;
pub mod template;
pub mod testdb;

pub use anonmigrate_chain as chain;
pub use error::{Error, ErrorKind, Result};
