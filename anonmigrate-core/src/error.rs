//! The engine's error type. Messages are lowercase fragments that name what is involved and end with the fix;
//! none of them ever contains a password (URLs are redacted before they get here).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A PostgreSQL error with the fields libpq reports, for messages that point at the statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgError {
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the statement that was sent.
    pub position: Option<i32>,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message.trim_end())?;
        if let Some(detail) = &self.detail {
            write!(f, "\n  detail: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Chain(#[from] anonmigrate_chain::ChainError),

    #[error("{0}")]
    Config(String),

    #[error("invalid database URL `{url}` (from {source_name}): {reason}")]
    BadUrl {
        url: String,
        source_name: String,
        reason: String,
    },

    #[error("cannot connect to {target} (URL from {source_name}): {reason}; {fix}")]
    Connect {
        target: String,
        source_name: String,
        reason: String,
        fix: String,
    },

    #[error("database `{database}` does not exist on {server}; create it with `cargo anonmigrate setup`")]
    MissingDatabase { database: String, server: String },

    #[error("{context}: {error}")]
    Postgres { context: String, error: PgError },

    #[error(
        "migration `{migration}` failed at {location}: {error}\nmigrations before it stay applied; fix `{}` and run `cargo anonmigrate run` again",
        file.display()
    )]
    MigrationFailed {
        migration: String,
        file: PathBuf,
        /// `line N` or `statement N of M, line N`.
        location: String,
        error: PgError,
    },

    #[error(
        "redo failed in migration `{migration}` at {location}: {error}\nthe redo ran in one transaction, so nothing was changed (every migration it touched is still applied as before); fix `{}` and run `cargo anonmigrate redo` again",
        file.display()
    )]
    RedoFailed {
        migration: String,
        file: PathBuf,
        location: String,
        error: PgError,
    },

    #[error(
        "extension `{extension}` is not available on this server ({server}): {message}; install it on the server (for pgvector: the server's `postgresql-NN-pgvector` package, or unset DATABASE_URL to use the managed local server, which ships it), then a superuser runs `CREATE EXTENSION {extension};`"
    )]
    ExtensionUnavailable {
        extension: String,
        server: String,
        message: String,
    },

    #[error("insufficient privilege: {message}; a superuser must run:\n  {sql}")]
    InsufficientPrivilege { message: String, sql: String },

    #[error(
        "another migration run holds the lock on {database} (pid {pid}, application `{application}`, {since}) and it was not released within {waited_secs}s; wait for it to finish, or raise --lock-timeout"
    )]
    LockTimeout {
        database: String,
        pid: String,
        application: String,
        since: String,
        waited_secs: u64,
    },

    #[error(
        "this URL goes through a connection pooler in transaction or statement mode: {found}; session state such as the migration lock does not survive between transactions there, so {}{}; connect the commands that change the database directly with --direct-url, DIRECT_URL or `direct-url` in [workspace.metadata.anonmigrate] (the server's own host and port, not the pooler's), or through a session-mode pool",
        if *stopped_midway { "the session stopped at the message that ran elsewhere (nothing of it ran; what ran before it stays: `cargo anonmigrate status` shows where the database stands)" } else { "nothing was changed" },
        released_text(*released)
    )]
    Pooler {
        found: String,
        /// Whether the migration lock, taken before the pooler gave itself away, was released (`None`: not taken).
        released: Option<bool>,
        /// Found by a guarded message after migrations had run, not before the first.
        stopped_midway: bool,
    },

    #[error("{0}")]
    Integrity(String),

    #[error("{0}")]
    OutOfOrder(String),

    #[error("{0}")]
    NothingToDo(String),

    #[error("{0}")]
    ServerBinaries(String),

    #[error("local PostgreSQL server: {0}")]
    LocalServer(String),

    #[error(
        "the `{user}` OS user cannot reach `{}` (a parent directory is not searchable by it); set CARGO_TARGET_DIR or ANONMIGRATE_SERVER_DIR to a directory outside a private home directory",
        dir.display()
    )]
    LocalServerUnreachable { dir: PathBuf, user: String },

    #[error(
        "the managed server's data in `{}` was made by PostgreSQL {cluster_major}, but this workspace now gets PostgreSQL {binaries_major} ({binaries}); it is not started with other major version's binaries. {fix}",
        dir.display()
    )]
    ClusterVersion { dir: PathBuf, cluster_major: u32, binaries_major: u32, binaries: String, fix: String },

    #[error("{0}")]
    Refused(String),

    #[error(
        "`{}` has hand edits that no migration explains, so it was not overwritten:\n  {}\nturn them into a migration with `cargo anonmigrate generate NAME --autogenerate`, or discard them with `cargo anonmigrate schema --force`",
        path.display(),
        edits.join("\n  ")
    )]
    HandEdited { path: PathBuf, edits: Vec<String> },

    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A stable category, mapped to exit codes by the CLI.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Chain(anonmigrate_chain::ChainError::ConflictedLockFile(_)) => ErrorKind::Integrity,
            Error::Chain(_) | Error::Config(_) | Error::BadUrl { .. } | Error::Write { .. } | Error::ClusterVersion { .. } => ErrorKind::Config,
            Error::Connect { .. }
            | Error::MissingDatabase { .. }
            | Error::ServerBinaries(_)
            | Error::LocalServer(_)
            | Error::LocalServerUnreachable { .. } => ErrorKind::Connection,
            Error::LockTimeout { .. } => ErrorKind::LockTimeout,
            Error::Pooler { .. } => ErrorKind::Pooler,
            Error::Integrity(_) | Error::OutOfOrder(_) => ErrorKind::Integrity,
            Error::Refused(_) | Error::NothingToDo(_) | Error::HandEdited { .. } => ErrorKind::Refused,
            // A lost connection is the server's side, not a statement to fix: same code as "cannot connect".
            Error::Postgres { error, .. } if crate::db::connection_lost(&error.message) => ErrorKind::Connection,
            Error::Postgres { .. }
            | Error::MigrationFailed { .. }
            | Error::RedoFailed { .. }
            | Error::ExtensionUnavailable { .. }
            | Error::InsufficientPrivilege { .. } => ErrorKind::Database,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad configuration, migration directory or lock file: found before touching the database.
    Config,
    /// The server could not be reached or started.
    Connection,
    /// A statement or migration failed on the server.
    Database,
    /// Another runner held the migration lock for longer than --lock-timeout.
    LockTimeout,
    /// Applied migrations changed or missing on disk, or pending ones out of order.
    Integrity,
    /// The command refused to act without explicit confirmation.
    Refused,
    /// The database URL goes through a transaction- or statement-mode pooler; a direct URL is needed.
    Pooler,
}

fn released_text(released: Option<bool>) -> &'static str {
    match released {
        None => "",
        Some(true) => " (the migration lock taken on the shared server process was released there)",
        Some(false) => {
            " (the migration lock taken on the shared server process could not be released from here: it is freed when the pooler closes that server connection)"
        }
    }
}

/// Transaction bookkeeping (BEGIN/COMMIT issued by diesel) can fail too, e.g. when the connection drops.
impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Error::Postgres {
            context: "committing the migration transaction".into(),
            error: crate::db::pg_error(&error),
        }
    }
}
