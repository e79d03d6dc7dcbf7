//! The connection layer: opening libpq connections with bounded timeouts, turning diesel/libpq errors into
//! messages that say what to do, and small typed query helpers. Only the runner (and later introspection) use it.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::result::{DatabaseErrorInformation, Error as DieselError};
use diesel::Connection;

use crate::database_url::{DatabaseUrl, UrlSource, redact_text};
use crate::error::{Error, PgError, Result};

pub const CONNECT_TIMEOUT_SECS: u64 = 10;

/// Opens a connection; failures are classified (missing database, authentication, unreachable) with the fix.
pub fn connect(url: &DatabaseUrl) -> Result<PgConnection> {
    PgConnection::establish(&url.libpq_url(CONNECT_TIMEOUT_SECS)).map_err(|e| classify_connect_error(url, &e.to_string()))
}

fn classify_connect_error(url: &DatabaseUrl, raw: &str) -> Error {
    let reason = redact_text(raw.trim()).replace('\n', " ");
    let database = url.database();
    if reason.contains(&format!("database \"{database}\" does not exist")) {
        return Error::MissingDatabase {
            database,
            server: url.redacted(),
        };
    }
    let fix = if reason.contains("password authentication failed") || reason.contains("no password supplied") {
        format!("check the user and password in {}", url.source)
    } else if reason.contains("timeout expired") {
        format!(
            "the server did not answer within the connect timeout (`connect_timeout` in the URL, default {CONNECT_TIMEOUT_SECS}s); check the host and port in {} and that a firewall lets you through",
            url.source
        )
    } else if reason.contains("Connection refused") || reason.contains("No such file or directory") {
        match url.source {
            UrlSource::LocalServer => "is the managed server running? `cargo anonmigrate server status` tells".to_owned(),
            ref source => format!(
                "is the server running? check with `pg_isready`; or {} to use the managed local server",
                source.how_to_drop()
            ),
        }
    } else if reason.contains("could not translate host name") {
        format!("the host name does not resolve; check it in {}", url.source)
    } else {
        format!("check {}", url.source)
    };
    Error::Connect {
        target: url.describe(),
        source_name: url.source.to_string(),
        reason,
        fix,
    }
}

/// Extracts libpq's fields from a diesel error.
pub fn pg_error(error: &DieselError) -> PgError {
    match error {
        DieselError::DatabaseError(_, info) => from_info(info.as_ref()),
        other => PgError {
            message: redact_text(&other.to_string()),
            ..PgError::default()
        },
    }
}

fn from_info(info: &dyn DatabaseErrorInformation) -> PgError {
    PgError {
        message: redact_text(info.message()),
        detail: info.details().map(redact_text),
        hint: info.hint().map(redact_text),
        position: info.statement_position(),
    }
}

/// libpq's and the server's words for a session that ended under the runner (restart, pg_terminate_backend,
/// network failure).
pub fn connection_lost(message: &str) -> bool {
    [
        "terminating connection",
        "server closed the connection",
        "connection to server was lost",
        "no connection to the server",
        "could not receive data from server",
        "could not send data to server",
        "SSL connection has been closed",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// The server cancelled a statement that ran longer than `statement_timeout`.
pub fn statement_timed_out(message: &str) -> bool {
    message.contains("canceling statement due to statement timeout")
}

/// Runs one or more statements as a single simple query.
pub fn execute(conn: &mut PgConnection, sql: &str) -> std::result::Result<(), PgError> {
    conn.batch_execute(sql).map_err(|e| pg_error(&e))
}

/// Wraps a failure of housekeeping SQL (not the user's migration) with what was being done.
pub fn context(what: &str) -> impl Fn(PgError) -> Error + '_ {
    move |error| Error::Postgres {
        context: what.to_owned(),
        error,
    }
}

/// Quotes an identifier for SQL (doubling embedded quotes), so any database name is safe to splice in.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("my\"db; drop"), "\"my\"\"db; drop\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
