//! End-to-end tests of the `cargo-anonmigrate` binary against a real PostgreSQL: each case checks what the user
//! sees (exit code, stdout, stderr, as insta snapshots) and what the database holds afterwards.

mod autogenerate;
mod bench_smoke;
mod build_gate;
mod chain_errors;
mod check;
mod commands;
mod concurrency;
mod doctor;
mod faults;
mod help;
mod lint;
mod offline;
mod provisioning;
mod readme;
mod runner_safety;
mod schema;
mod server;
mod support;
