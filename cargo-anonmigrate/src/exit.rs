//! Exit codes, documented in one place (also shown at the end of `--help`).

use std::process::ExitCode;

use anonmigrate_core::ErrorKind;

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOT_UP_TO_DATE: u8 = 3;
pub const CONFIG: u8 = 4;
pub const CONNECTION: u8 = 5;
pub const LOCK_TIMEOUT: u8 = 6;
pub const INTEGRITY: u8 = 7;
pub const REFUSED: u8 = 8;
/// `check`: one code per failing section; with several, the first in this order wins (lock file: INTEGRITY).
pub const CHECK_SCHEMA: u8 = 9;
pub const CHECK_DOWN: u8 = 10;
pub const CHECK_DATABASE: u8 = 11;
pub const CHECK_LINT: u8 = 12;
pub const POOLER: u8 = 13;
/// `fleet`: a target failed (or could not be read), or the rollout stopped before every target ran.
pub const FLEET_FAILED: u8 = 14;

pub const HELP: &str = "\
Exit codes:
  0  success
  1  a migration or database statement failed (the message names the file, statement and line);
     `lint`: a deny-level rule fired; `doctor`: a check failed
  2  invalid command-line usage, including a version or migration name that names no migration
  3  `status --exit-code`: the database is not up to date (pending, changed or missing migrations)
  4  configuration or migration directory problem, found before touching the database;
     `import alembic` / `baseline`: the alembic or pg_dump command is missing or failed
  5  cannot reach the database server, lost the connection to it, or the database does not exist
  6  another runner held the migration lock longer than --lock-timeout
  7  integrity: applied migrations changed or missing on disk, out-of-order migrations, lock file mismatch,
     schema.rs stale under --locked-schema
  8  refused: a destructive action needs --yes (revert --all, database drop/reset), or the request cannot
     be carried out as asked (an irreversible migration to revert or redo; `import alembic`: unmerged heads;
     `stamp --from-alembic`: a revision not in the imported chain)
  9  `check`: schema.rs differs from the migrations (or the build-script drift gate would fail)
 10  `check`: a down.sql does not undo its up.sql, or reverting everything leaves objects behind
 11  `check --database`: the live database has drifted from the migrations, or is behind them
 12  `check`: the linter found a deny-level problem in a migration newer than the lint baseline
 13  the database URL goes through a connection pooler in transaction or statement mode (nothing was
     changed; found after the lock: stopped there, earlier migrations kept): use --direct-url /
     DIRECT_URL, or a session-mode pool
 14  `fleet`: a target failed or could not be read, or the rollout stopped before all targets ran
     (canary failure, --max-failures, Ctrl-C); the summary names each failure
`check` exits with the code of its first failing section, in the order lock file (7), schema.rs (9),
down.sql and revert all (10), live database (11), lint (12).";

/// An argument that parsed but names nothing (an unknown migration): invalid usage, exit 2 like clap's own.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn for_error(error: &anyhow::Error) -> ExitCode {
    if error.chain().any(|c| c.downcast_ref::<UsageError>().is_some()) {
        return ExitCode::from(USAGE);
    }
    let kind = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<anonmigrate_core::Error>())
        .map(anonmigrate_core::Error::kind)
        .or_else(|| {
            let chain_error = error.chain().any(|c| c.downcast_ref::<anonmigrate_core::chain::ChainError>().is_some());
            chain_error.then_some(ErrorKind::Config)
        });
    ExitCode::from(match kind {
        Some(ErrorKind::Config) => CONFIG,
        Some(ErrorKind::Connection) => CONNECTION,
        Some(ErrorKind::Database) | None => FAILURE,
        Some(ErrorKind::LockTimeout) => LOCK_TIMEOUT,
        Some(ErrorKind::Integrity) => INTEGRITY,
        Some(ErrorKind::Refused) => REFUSED,
        Some(ErrorKind::Pooler) => POOLER,
    })
}
