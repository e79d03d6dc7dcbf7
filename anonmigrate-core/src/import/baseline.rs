//! `baseline NAME`: the live database's schema (extensions, types, tables, indexes, constraints, functions; no
//! data) as one migration, from the server's own `pg_dump --schema-only`, cleaned so it runs as a migration, and
//! recorded as applied on that database.

use std::path::PathBuf;
use std::time::Duration;

use anonmigrate_chain::Chain;
use diesel::prelude::*;
use diesel::sql_types::Integer;

use super::command;
use crate::database_url::DatabaseUrl;
use crate::db;
use crate::error::{Error, Result};
use crate::events::Observer;
use crate::generate::{self, GenerateOptions};
use crate::local_server::{self, PgBinaries};
use crate::split::split_statements;
use crate::status::MigrationState;

/// What `baseline` wrote and recorded.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub dir: PathBuf,
    pub dir_name: String,
    /// Statements in up.sql.
    pub statements: usize,
    /// The `pg_dump` that read the schema, and the server's major version it was chosen for.
    pub pg_dump: PathBuf,
    pub server_major: u32,
    /// Migrations recorded as applied (the baseline itself).
    pub stamped: Vec<String>,
    /// Versions the database records as applied that are not on disk (an earlier history the baseline replaces).
    pub missing_on_disk: Vec<String>,
}

/// Tables that are bookkeeping, never schema: diesel's, ours and Alembic's.
const BOOKKEEPING: [&str; 3] = ["__diesel_schema_migrations", "__anonmigrate_", "alembic_version"];

#[derive(QueryableByName)]
struct ServerVersion {
    #[diesel(sql_type = Integer)]
    num: i32,
}

/// The `pg_dump` for a server of `major`: the same major (the managed server's binaries among them), else the
/// oldest newer one (pg_dump reads older servers, never newer ones).
fn pg_dump_for(major: u32) -> Result<PgBinaries> {
    let candidates = local_server::candidate_binaries();
    let usable = |b: &&PgBinaries| b.tool("pg_dump").is_file();
    let same = candidates.iter().filter(usable).find(|b| b.major == Some(major));
    let newer = candidates.iter().filter(usable).filter(|b| b.major.is_some_and(|m| m > major)).min_by_key(|b| b.major);
    same.or(newer).cloned().ok_or_else(|| {
        let seen: Vec<String> =
            candidates.iter().map(|b| format!("{} (PostgreSQL {})", b.bindir.display(), b.major.map_or("?".into(), |m| m.to_string()))).collect();
        Error::Config(format!(
            "no pg_dump for PostgreSQL {major} or newer was found (looked at: {}); install the server's client tools (Debian: `postgresql-client-{major}`) or set ANONMIGRATE_PG_BINDIR to a bin directory that has pg_dump",
            if seen.is_empty() { "none".to_owned() } else { seen.join(", ") }
        ))
    })
}

/// `pg_dump --schema-only` output → the statements of a migration: psql meta-commands (`\restrict`), the
/// `SET` / `set_config` preamble, pg_dump's comments, the bookkeeping tables, and what `CREATE EXTENSION` already
/// does (its comment) or the server already has (the `public` schema) left out.
pub fn clean_dump(dump: &str) -> Vec<String> {
    let without_meta: String = dump.lines().filter(|l| !l.starts_with('\\')).map(|l| format!("{l}\n")).collect();
    split_statements(&without_meta)
        .into_iter()
        .map(|s| {
            let code: Vec<&str> = s.text.lines().skip_while(|l| l.trim().is_empty() || l.trim_start().starts_with("--")).collect();
            code.join("\n")
        })
        .filter(|s| {
            let upper = s.to_ascii_uppercase();
            !s.is_empty()
                && !upper.starts_with("SET ")
                && !upper.starts_with("SELECT PG_CATALOG.SET_CONFIG(")
                && !upper.starts_with("COMMENT ON EXTENSION ")
                && !upper.starts_with("CREATE SCHEMA PUBLIC")
                && !upper.starts_with("COMMENT ON SCHEMA PUBLIC ")
                && !BOOKKEEPING.iter().any(|b| s.contains(b))
        })
        .collect()
}

/// down.sql for a baseline: every object up.sql creates, dropped newest first (indexes, constraints, triggers
/// and owned sequences go with their tables).
pub fn drops(statements: &[String]) -> Vec<String> {
    let create = regex::Regex::new(
        r"(?i)^CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?(TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|TYPE|DOMAIN|FUNCTION|PROCEDURE|AGGREGATE|SCHEMA|EXTENSION)\s+(?:IF\s+NOT\s+EXISTS\s+)?([^\s(]+)",
    )
    .expect("a valid pattern");
    statements
        .iter()
        .rev()
        .filter_map(|s| {
            let caps = create.captures(s)?;
            let kind = caps[1].split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_uppercase();
            Some(format!("DROP {kind} IF EXISTS {} CASCADE", &caps[2]))
        })
        .collect()
}

/// Writes `<version>_<name>` holding the database's schema and records it as applied there. Refuses when the
/// migrations directory has migrations that database has not applied (they would be stamped without running).
pub fn baseline(url: &DatabaseUrl, migrations_dir: &std::path::Path, name: &str, lock_timeout: Duration, observer: &mut dyn Observer) -> Result<Baseline> {
    generate::validate_name(name)?;
    let database = url.describe();
    let mut conn = db::connect(url)?;
    let version: ServerVersion = diesel::sql_query("SELECT current_setting('server_version_num')::int AS num")
        .get_result(&mut conn)
        .map_err(|e| db::context("reading the server version")(db::pg_error(&e)))?;
    let server_major = (version.num / 10000) as u32;
    let missing_on_disk = if migrations_dir.is_dir() {
        let chain = Chain::load(migrations_dir)?;
        let (status, _) = crate::runner::read_status(&mut conn, &chain)?;
        let pending: Vec<&str> = status
            .entries
            .iter()
            .filter(|e| !matches!(e.state, MigrationState::Applied { .. }))
            .map(|e| e.dir_name.as_str())
            .collect();
        if !pending.is_empty() {
            return Err(Error::Refused(format!(
                "{database} has not applied {} (in {}); a baseline records everything before it as applied, so apply them first (`cargo anonmigrate run`) or move them out of the migrations directory",
                pending.join(", "),
                migrations_dir.display()
            )));
        }
        status.missing.iter().map(|m| m.version.clone()).collect()
    } else {
        Vec::new()
    };
    drop(conn);

    let binaries = pg_dump_for(server_major)?;
    let pg_dump = binaries.tool("pg_dump");
    let mut argv = vec![
        pg_dump.display().to_string(),
        "--schema-only".into(),
        "--no-owner".into(),
        "--no-privileges".into(),
        "--no-security-labels".into(),
        "--no-subscriptions".into(),
        "--no-publications".into(),
    ];
    for table in ["__diesel_schema_migrations", "__anonmigrate_*", "alembic_version"] {
        argv.push(format!("--exclude-table={table}"));
    }
    let (conninfo, password) = url.libpq_url_and_password(10);
    argv.extend(["--dbname".into(), conninfo]);
    let env: Vec<(&str, &str)> = password.as_deref().map(|p| ("PGPASSWORD", p)).into_iter().collect();
    let dump = command::run(
        &argv,
        &std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        &env,
        "pg_dump must reach the database with the same URL; check the URL and that the role may read every object",
    )?;
    let statements = clean_dump(&dump);
    if statements.is_empty() {
        return Err(Error::Refused(format!(
            "{database} has no schema objects besides bookkeeping, so there is nothing to baseline; start with `cargo anonmigrate generate NAME` instead"
        )));
    }
    // The file is committed: it names the database and the server version, not this machine's paths.
    let body = |statements: &[String], what: &str| -> String {
        let mut text = format!(
            "-- Baseline: the schema of database `{}` (PostgreSQL {server_major}) as pg_dump --schema-only printed it, {what}\n-- without ownership, privileges, pg_dump's SET preamble and the migration bookkeeping tables.\n",
            url.database()
        );
        for statement in statements {
            text.push('\n');
            text.push_str(statement);
            text.push_str(";\n");
        }
        text
    };
    let generated = generate::generate(
        migrations_dir,
        name,
        &GenerateOptions {
            version: None,
            no_down: false,
            non_transactional: false,
            up_sql: Some(body(&statements, "by `cargo anonmigrate baseline`,")),
            down_sql: Some(body(&drops(&statements), "dropped newest first by `cargo anonmigrate baseline`,")),
        },
    )?;
    let dir_name = generated.dir.file_name().expect("a migration directory has a name").to_string_lossy().into_owned();
    let chain = Chain::load(migrations_dir)?;
    let migration = chain.migrations.iter().find(|m| m.dir_name == dir_name).expect("the baseline was just written");
    let stamped = crate::maintenance::stamp(url, &chain, &migration.version, lock_timeout, observer)?;
    Ok(Baseline {
        dir: generated.dir,
        dir_name,
        statements: statements.len(),
        pg_dump,
        server_major,
        stamped,
        missing_on_disk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dump_is_cleaned_and_reversed() {
        let dump = "--\n-- PostgreSQL database dump\n--\n\\restrict abc\nSET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n--\n-- Name: vector; Type: EXTENSION; Schema: -; Owner: -\n--\n\nCREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\n\nCOMMENT ON EXTENSION vector IS 'vector data type';\n\nCREATE TYPE public.mood AS ENUM (\n    'a'\n);\n\nSET default_tablespace = '';\n\nCREATE TABLE public.users (\n    id bigint NOT NULL\n);\n\nCREATE TABLE public.__diesel_schema_migrations (\n    version character varying(50) NOT NULL\n);\n\nCREATE FUNCTION public.f() RETURNS trigger\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\nSET x = 1;\nEND $$;\n\nCREATE INDEX users_idx ON public.users USING btree (id);\n\\unrestrict abc\n";
        let statements = clean_dump(dump);
        assert_eq!(statements.len(), 5, "{statements:#?}");
        assert_eq!(statements[0], "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public");
        assert!(statements[3].contains("SET x = 1;"), "a function body keeps its SET: {statements:#?}");
        assert_eq!(
            drops(&statements),
            [
                "DROP FUNCTION IF EXISTS public.f CASCADE",
                "DROP TABLE IF EXISTS public.users CASCADE",
                "DROP TYPE IF EXISTS public.mood CASCADE",
                "DROP EXTENSION IF EXISTS vector CASCADE"
            ]
        );
    }
}
