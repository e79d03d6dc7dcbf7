//! Database lifecycle: create the database, install extensions, create bookkeeping; drop. Every identifier is
//! quoted, so any database name is safe.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use anonmigrate_chain::Chain;

use crate::bookkeeping;
use crate::database_url::DatabaseUrl;
use crate::db;
use crate::error::{Error, PgError, Result};
use crate::events::{Event, Observer};
use crate::split::split_statements;

/// The extensions a workspace needs: `[workspace.metadata.anonmigrate] extensions` when set, else those the chain
/// creates. One rule for `setup`, the managed server's choice of binaries, and `doctor`.
pub fn required_extensions(workspace: &crate::config::Workspace, chain: Option<&Chain>) -> Vec<String> {
    match (&workspace.settings.extensions, chain) {
        (Some(configured), _) => configured.clone(),
        (None, Some(chain)) => extensions_in_chain(chain),
        (None, None) => Vec::new(),
    }
}

/// Extensions the chain creates (`CREATE EXTENSION [IF NOT EXISTS] name`), in chain order.
pub fn extensions_in_chain(chain: &Chain) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for migration in &chain.migrations {
        for statement in split_statements(&migration.up_sql) {
            if let Some(name) = created_extension(statement.text)
                && !found.contains(&name)
            {
                found.push(name);
            }
        }
    }
    found
}

/// Extensions one migration's up.sql creates.
pub fn extensions_created_by(migration: &anonmigrate_chain::Migration) -> Vec<String> {
    split_statements(&migration.up_sql).into_iter().filter_map(|s| created_extension(s.text)).collect()
}

fn created_extension(statement: &str) -> Option<String> {
    // Comments before the keyword are allowed; the splitter keeps them in the text.
    let code: String = statement
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut words = code.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("create") || !words.next()?.eq_ignore_ascii_case("extension") {
        return None;
    }
    let mut name = words.next()?;
    if name.eq_ignore_ascii_case("if") {
        words.next()?; // not
        words.next()?; // exists
        name = words.next()?;
    }
    let name = name.trim_end_matches(';');
    Some(match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => name.to_ascii_lowercase(),
    })
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    value: bool,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    value: String,
}

/// Connects to a maintenance database on the same server (`postgres`, else `template1`).
pub(crate) fn maintenance_connection(url: &DatabaseUrl) -> Result<PgConnection> {
    match db::connect(&url.with_database("postgres")) {
        Ok(conn) => Ok(conn),
        Err(Error::MissingDatabase { .. }) => db::connect(&url.with_database("template1")),
        Err(e) => Err(e),
    }
}

pub fn database_exists(url: &DatabaseUrl) -> Result<bool> {
    let mut conn = maintenance_connection(url)?;
    let flag: Flag = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS value")
        .bind::<Text, _>(url.database())
        .get_result(&mut conn)
        .map_err(|e| db::context("looking up the database")(db::pg_error(&e)))?;
    Ok(flag.value)
}

fn privilege_error(error: PgError, sql: String) -> Error {
    if error.message.contains("permission denied") || error.message.contains("must be superuser") || error.message.contains("must be owner") {
        Error::InsufficientPrivilege {
            message: error.message,
            sql,
        }
    } else {
        Error::Postgres {
            context: format!("running `{sql}`"),
            error,
        }
    }
}

/// Creates the database if missing; returns whether it was created.
pub fn create_database(url: &DatabaseUrl) -> Result<bool> {
    if database_exists(url)? {
        return Ok(false);
    }
    let mut conn = maintenance_connection(url)?;
    let sql = format!("CREATE DATABASE {}", db::quote_ident(&url.database()));
    match db::execute(&mut conn, &sql) {
        Ok(()) => Ok(true),
        // Another process created it between our check and our CREATE: that is the state we wanted.
        Err(e) if e.message.contains("already exists") => Ok(false),
        Err(e) => Err(privilege_error(e, format!("{sql}; -- or grant CREATEDB to this role"))),
    }
}

/// diesel setup's default migration (diesel_cli 2.3), written when `setup` creates the migrations directory.
const DIESEL_INITIAL_SETUP: &str = "00000000000000_diesel_initial_setup";
const DIESEL_INITIAL_HEADER: &str = "\
-- This file was automatically created by Diesel to setup helper functions
-- and other internal bookkeeping. This file is safe to edit, any future
-- changes will be added to existing projects as new migrations.
";
const DIESEL_INITIAL_UP: &str = r#"



-- Sets up a trigger for the given table to automatically set a column called
-- `updated_at` whenever the row is modified (unless `updated_at` was included
-- in the modified columns)
--
-- # Example
--
-- ```sql
-- CREATE TABLE users (id SERIAL PRIMARY KEY, updated_at TIMESTAMP NOT NULL DEFAULT NOW());
--
-- SELECT diesel_manage_updated_at('users');
-- ```
CREATE OR REPLACE FUNCTION diesel_manage_updated_at(_tbl regclass) RETURNS VOID AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER set_updated_at BEFORE UPDATE ON %s
                    FOR EACH ROW EXECUTE PROCEDURE diesel_set_updated_at()', _tbl);
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION diesel_set_updated_at() RETURNS trigger AS $$
BEGIN
    IF (
        NEW IS DISTINCT FROM OLD AND
        NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
    ) THEN
        NEW.updated_at := current_timestamp;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"#;
const DIESEL_INITIAL_DOWN: &str = "
DROP FUNCTION IF EXISTS diesel_manage_updated_at(_tbl regclass);
DROP FUNCTION IF EXISTS diesel_set_updated_at();
";

/// The files `setup` creates when they are missing, as diesel setup does: the migrations directory (with a
/// `.keep` and, unless `no_default_migration`, diesel's initial-setup migration), and with it `<root>/diesel.toml`.
/// Unlike diesel, diesel.toml is only written for a new project (when the migrations directory is created too):
/// in an existing checkout (a CI job) a new [print_schema] would change what `check` and `run` do with schema.rs.
/// It names schema.rs only when `[workspace.metadata.anonmigrate] schema-file` does not already (two places naming
/// it is a configuration error), and nothing is written when `--config-file` or `DIESEL_CONFIG_FILE` names one.
/// Returns what was created.
pub fn scaffold(workspace: &crate::config::Workspace, no_default_migration: bool) -> Result<Vec<std::path::PathBuf>> {
    let write = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text).map_err(|source| Error::Write { path: path.to_path_buf(), source })
    };
    let mut created = Vec::new();
    let dir = &workspace.migrations_dir;
    let new_project = !dir.exists();
    if new_project {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write { path: dir.clone(), source })?;
        write(&dir.join(".keep"), "")?;
        created.push(dir.clone());
        if !no_default_migration {
            let initial = dir.join(DIESEL_INITIAL_SETUP);
            std::fs::create_dir(&initial).map_err(|source| Error::Write { path: initial.clone(), source })?;
            write(&initial.join("up.sql"), &format!("{DIESEL_INITIAL_HEADER}{DIESEL_INITIAL_UP}"))?;
            write(&initial.join("down.sql"), &format!("{DIESEL_INITIAL_HEADER}{DIESEL_INITIAL_DOWN}"))?;
            created.push(initial);
        }
    }
    let diesel_toml = workspace.root.join("diesel.toml");
    if new_project && !workspace.diesel_toml_is_explicit() && !diesel_toml.exists() {
        let migrations = dir.strip_prefix(&workspace.root).unwrap_or(dir).display().to_string();
        let print_schema = if workspace.settings.schema_file.is_some() {
            String::new()
        } else {
            "[print_schema]\nfile = \"src/schema.rs\"\ncustom_type_derives = [\"diesel::query_builder::QueryId\", \"Clone\"]\n\n".to_owned()
        };
        write(
            &diesel_toml,
            &format!(
                "# For documentation on how to configure this file,\n# see https://diesel.rs/guides/configuring-diesel-cli\n\n{print_schema}[migrations_directory]\ndir = {}\n",
                toml::Value::String(migrations)
            ),
        )?;
        created.push(diesel_toml);
    }
    Ok(created)
}

/// `setup`: database, extensions, bookkeeping. Idempotent.
pub fn setup(url: &DatabaseUrl, extensions: &[String], observer: &mut dyn Observer) -> Result<()> {
    if create_database(url)? {
        observer.event(Event::Created {
            what: format!("database `{}`", url.database()),
        });
    }
    let mut conn = db::connect(url)?;
    for extension in extensions {
        let installed: Flag = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1) AS value")
            .bind::<Text, _>(extension)
            .get_result(&mut conn)
            .map_err(|e| db::context("looking up extensions")(db::pg_error(&e)))?;
        if installed.value {
            continue;
        }
        let available: Flag = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1) AS value")
            .bind::<Text, _>(extension)
            .get_result(&mut conn)
            .map_err(|e| db::context("looking up available extensions")(db::pg_error(&e)))?;
        if !available.value {
            return Err(Error::ExtensionUnavailable {
                extension: extension.clone(),
                server: url.describe(),
                message: "the server has no control file for it".into(),
            });
        }
        let sql = format!("CREATE EXTENSION IF NOT EXISTS {}", db::quote_ident(extension));
        db::execute(&mut conn, &sql).map_err(|e| privilege_error(e, format!("{sql};  -- connected to database {}", url.database())))?;
        observer.event(Event::Created {
            what: format!("extension `{extension}`"),
        });
    }
    // Bookkeeping creation races with concurrent runners; `run` creates it under the migration lock, here we
    // retry once on the catalog race PostgreSQL reports as a duplicate type.
    if let Err(first) = bookkeeping::ensure_tables(&mut conn) {
        bookkeeping::ensure_tables(&mut conn).map_err(|_| first)?;
    }
    Ok(())
}

/// Drops the database (forcing other sessions off). The caller has obtained confirmation.
pub fn drop_database(url: &DatabaseUrl) -> Result<bool> {
    if !database_exists(url)? {
        return Ok(false);
    }
    let mut conn = maintenance_connection(url)?;
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db::quote_ident(&url.database()));
    db::execute(&mut conn, &sql).map_err(|e| privilege_error(e, sql.clone()))?;
    Ok(true)
}

/// The server's version string, for notices and `doctor`.
pub fn server_version(conn: &mut PgConnection) -> Result<String> {
    let name: Name = diesel::sql_query("SELECT current_setting('server_version') AS value")
        .get_result(conn)
        .map_err(|e| db::context("reading the server version")(db::pg_error(&e)))?;
    Ok(name.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_created_extensions() {
        let cases = [
            ("CREATE EXTENSION IF NOT EXISTS vector", Some("vector")),
            ("-- why\ncreate extension pg_trgm", Some("pg_trgm")),
            ("CREATE EXTENSION \"uuid-ossp\" SCHEMA public", Some("uuid-ossp")),
            ("CREATE TABLE extension (id int)", None),
        ];
        for (sql, expected) in cases {
            assert_eq!(created_extension(sql).as_deref(), expected, "{sql}");
        }
    }
}
