//! End-to-end tests of the `cargo-anonmigrate` binary against a real PostgreSQL: each case checks what the user
//! sees (exit code, stdout, stderr, as insta snapshots) and what the database holds afterwards.

mod alembic;
mod autogenerate;
mod bench_smoke;
mod cache;
mod build_gate;
mod chain_errors;
mod check;
mod commands;
mod completions;
mod concurrency;
mod daily_loop;
mod diesel_parity;
mod doctor;
mod faults;
mod hardening;
mod first_day;
mod fleet;
mod help;
mod layouts;
mod lint;
mod model_end_to_end;
mod offline;
mod packaging;
mod promises;
mod pooler;
mod provisioning;
mod readme;
mod runner_safety;
mod schema;
mod server;
mod support;
mod transactions;
