//! The bookkeeping tables: diesel's `__diesel_schema_migrations` (so diesel_cli and `embed_migrations!` see the
//! same state) plus `__anonmigrate_migrations` (checksums, per-statement progress) and `__anonmigrate_audit`
//! (created with its first row, by `accept` and `stamp`: a fresh database's `run` does not pay for it).
//!
//! A migration is applied exactly when diesel's table has its row. Our row may additionally record a partial
//! run of a non-transactional migration (`finished_at IS NULL`).

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};

use crate::db;
use crate::error::Result;

pub const DIESEL_TABLE: &str = "__diesel_schema_migrations";

/// Our table's text columns are bounded (`name` is part of a directory name, at most 255 characters on every file
/// system; the hashes are 64 hex digits) so that its widest row stays under PostgreSQL's TOAST threshold: the server
/// then creates no TOAST table and TOAST index with it, about 1 ms of a fresh database's `run` (BENCHMARKS.md, issue
/// 20). Tables created before with TEXT columns keep them; both read the same.
pub const CREATE_TABLES: &str = "\
CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
    version VARCHAR(50) PRIMARY KEY NOT NULL,
    run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS __anonmigrate_migrations (
    version VARCHAR(50) PRIMARY KEY NOT NULL,
    name VARCHAR(255) NOT NULL,
    checksum VARCHAR(64) NOT NULL,
    statements_total INTEGER NOT NULL,
    statements_done INTEGER NOT NULL DEFAULT 0,
    done_prefix_hash VARCHAR(64) NOT NULL DEFAULT '',
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    duration_ms BIGINT
);
";

/// The audit table, created in the transaction that writes its first row.
pub const CREATE_AUDIT_TABLE: &str = "\
CREATE TABLE IF NOT EXISTS __anonmigrate_audit (
    id BIGSERIAL PRIMARY KEY,
    version VARCHAR(50) NOT NULL,
    action TEXT NOT NULL,
    old_checksum TEXT,
    new_checksum TEXT,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    by_user TEXT NOT NULL DEFAULT current_user
);
";

/// What the database says about one version.
#[derive(Debug, Clone, QueryableByName, PartialEq, Eq)]
pub struct AppliedRow {
    #[diesel(sql_type = Text)]
    pub version: String,
    /// Set when diesel's table has the row: the migration is applied.
    #[diesel(sql_type = Nullable<Text>)]
    pub run_on: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub checksum: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub statements_done: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub statements_total: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub done_prefix_hash: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub duration_ms: Option<i64>,
}

impl AppliedRow {
    pub fn is_applied(&self) -> bool {
        self.run_on.is_some()
    }
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    diesel: bool,
    #[diesel(sql_type = Bool)]
    ours: bool,
}

pub fn ensure_tables(conn: &mut PgConnection) -> Result<()> {
    db::execute(conn, CREATE_TABLES).map_err(db::context("creating the bookkeeping tables"))
}

const READ_BOTH: &str = "SELECT coalesce(d.version, a.version)::text AS version, \
    to_char(d.run_on, 'YYYY-MM-DD HH24:MI:SS') AS run_on, a.name, a.checksum, \
    a.statements_done, a.statements_total, a.done_prefix_hash, a.duration_ms \
    FROM __diesel_schema_migrations d FULL JOIN __anonmigrate_migrations a ON a.version = d.version \
    ORDER BY 1";

/// Every version the database knows of, ordered by version, when both tables are known to exist (just created
/// under the migration lock): one query instead of two.
pub fn read_existing(conn: &mut PgConnection) -> Result<Vec<AppliedRow>> {
    diesel::sql_query(READ_BOTH)
        .load(conn)
        .map_err(|e| db::context("reading the bookkeeping tables")(db::pg_error(&e)))
}

/// Every version the database knows of, ordered by version; empty when the tables do not exist yet.
pub fn read(conn: &mut PgConnection) -> Result<Vec<AppliedRow>> {
    let exists: Exists = diesel::sql_query(
        // In the session's current schema, where `ensure_tables` creates them: a tenant schema's search_path
        // also lists the shared schema, whose tables (if any) are not this tenant's.
        "SELECT to_regclass(format('%I.__diesel_schema_migrations', current_schema())) IS NOT NULL AS diesel, \
                to_regclass(format('%I.__anonmigrate_migrations', current_schema())) IS NOT NULL AS ours",
    )
    .get_result(conn)
    .map_err(|e| db::context("reading the bookkeeping tables")(db::pg_error(&e)))?;
    let query = match (exists.diesel, exists.ours) {
        (false, _) => return Ok(Vec::new()),
        (true, false) => {
            "SELECT version::text, to_char(run_on, 'YYYY-MM-DD HH24:MI:SS') AS run_on, NULL::text AS name, \
             NULL::text AS checksum, NULL::int AS statements_done, NULL::int AS statements_total, \
             NULL::text AS done_prefix_hash, NULL::bigint AS duration_ms \
             FROM __diesel_schema_migrations ORDER BY version"
        }
        (true, true) => READ_BOTH,
    };
    diesel::sql_query(query)
        .load(conn)
        .map_err(|e| db::context("reading the bookkeeping tables")(db::pg_error(&e)))
}

/// Statements that record a completed migration (diesel's row and ours), as SQL text so the offline `--sql`
/// script and the live runner write exactly the same bookkeeping.
/// How long a migration took, as recorded in `__anonmigrate_migrations.duration_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elapsed {
    Unknown,
    Millis(u128),
    /// Measured by the server: the bookkeeping runs in the migration's own transaction, which began with it.
    SinceTransactionStart,
}

impl Elapsed {
    fn sql(self) -> String {
        match self {
            Elapsed::Unknown => "NULL".to_owned(),
            Elapsed::Millis(ms) => ms.to_string(),
            Elapsed::SinceTransactionStart => "(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint".to_owned(),
        }
    }
}

pub fn record_applied_sql(version: &str, name: &str, checksum: &str, statements: usize, elapsed: Elapsed) -> String {
    let v = db::quote_literal(version);
    let duration = elapsed.sql();
    format!(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ({v}) ON CONFLICT (version) DO NOTHING;\n\
         INSERT INTO __anonmigrate_migrations (version, name, checksum, statements_total, statements_done, finished_at, duration_ms) \
         VALUES ({v}, {}, {}, {statements}, {statements}, now(), {duration}) \
         ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, checksum = EXCLUDED.checksum, \
         statements_total = EXCLUDED.statements_total, statements_done = EXCLUDED.statements_done, \
         finished_at = now(), duration_ms = EXCLUDED.duration_ms;",
        db::quote_literal(name),
        db::quote_literal(checksum),
    )
}

pub fn record_reverted_sql(version: &str) -> String {
    let v = db::quote_literal(version);
    format!(
        "DELETE FROM __diesel_schema_migrations WHERE version = {v};\n\
         DELETE FROM __anonmigrate_migrations WHERE version = {v};"
    )
}

/// Marks the start (or resumption) of a non-transactional migration.
pub fn record_started_sql(version: &str, name: &str, checksum: &str, statements: usize) -> String {
    format!(
        "INSERT INTO __anonmigrate_migrations (version, name, checksum, statements_total) VALUES ({}, {}, {}, {statements}) \
         ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, statements_total = EXCLUDED.statements_total;",
        db::quote_literal(version),
        db::quote_literal(name),
        db::quote_literal(checksum),
    )
}

pub fn record_progress_sql(version: &str, done: usize, prefix_hash: &str) -> String {
    format!(
        "UPDATE __anonmigrate_migrations SET statements_done = {done}, done_prefix_hash = {} WHERE version = {};",
        db::quote_literal(prefix_hash),
        db::quote_literal(version),
    )
}

pub fn record_audit_sql(version: &str, action: &str, old: Option<&str>, new: Option<&str>) -> String {
    let lit = |v: Option<&str>| v.map_or_else(|| "NULL".to_owned(), db::quote_literal);
    format!(
        "{CREATE_AUDIT_TABLE}INSERT INTO __anonmigrate_audit (version, action, old_checksum, new_checksum) VALUES ({}, {}, {}, {});",
        db::quote_literal(version),
        db::quote_literal(action),
        lit(old),
        lit(new),
    )
}
