//! `doctor`: checks the setup one step at a time (URL, server, database, extensions, privileges, bookkeeping,
//! migrations, lock file, schema drift) and explains each result with the fix. Returns data; the CLI prints.

use std::time::{Duration, Instant};

use anonmigrate_chain::{Chain, LockFile};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use serde::Serialize;

use crate::config::Workspace;
use crate::database_url::{DatabaseUrl, UrlSource};
use crate::db;
use crate::error::Error;
use crate::local_server;
use crate::status::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable short name, e.g. `server`, `extension vector`.
    pub name: String,
    pub level: Level,
    pub message: String,
    /// What to do about a warning or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, level: Level, message: impl Into<String>, fix: Option<String>) -> Check {
    Check {
        name: name.to_owned(),
        level,
        message: message.into(),
        fix,
    }
}

/// Runs every check it can; a failed step skips the checks that depend on it.
pub fn diagnose(workspace: &Workspace) -> Vec<Check> {
    let mut checks = Vec::new();
    let chain = match Chain::load(&workspace.migrations_dir) {
        Ok(chain) => {
            checks.push(check(
                "migrations",
                Level::Ok,
                format!("{} migrations in {}", chain.migrations.len(), workspace.migrations_dir.display()),
                None,
            ));
            Some(chain)
        }
        Err(e) => {
            checks.push(check("migrations", Level::Fail, e.to_string(), None));
            None
        }
    };
    if let Some(chain) = &chain {
        checks.push(lock_file_check(chain));
        checks.extend(drift_checks(chain));
    }
    let extensions = crate::setup::required_extensions(workspace, chain.as_ref());

    let url = match workspace.configured_url() {
        Ok(Some(url)) => {
            checks.push(check("url", Level::Ok, format!("{} (from {})", url.redacted(), url.source), None));
            database_checks(&url, chain.as_ref(), &extensions, &mut checks);
            pooler_checks(workspace, &url, &mut checks);
            return checks;
        }
        Ok(None) => match local_url(workspace, &extensions, &mut checks) {
            Some(url) => url,
            None => return checks,
        },
        Err(e) => {
            checks.push(check("url", Level::Fail, e.to_string(), None));
            return checks;
        }
    };
    database_checks(&url, chain.as_ref(), &extensions, &mut checks);
    checks
}

/// Reports on the managed local server; returns its URL only when it is running (doctor never starts it).
fn local_url(workspace: &Workspace, extensions: &[String], checks: &mut Vec<Check>) -> Option<DatabaseUrl> {
    checks.push(check(
        "url",
        Level::Ok,
        "no database URL configured (--database-url, DATABASE_URL, .env): commands use the managed local server",
        None,
    ));
    // The binaries the managed server uses: those recorded when it was created, else today's choice.
    let cluster = match crate::target::dev_cluster_unchecked(workspace, extensions, false) {
        Ok(cluster) => cluster,
        Err(e) => {
            let recorded = local_server::recorded_bindir(&workspace.dev_server_dir()).is_some();
            checks.push(check(
                "local server binaries",
                if recorded { Level::Fail } else { Level::Warn },
                e.to_string(),
                (!recorded).then(|| "`cargo anonmigrate server install` downloads the pinned PostgreSQL + pgvector build".into()),
            ));
            return None;
        }
    };
    let binaries = cluster.binaries.clone();
    let missing: Vec<&String> = extensions.iter().filter(|e| !binaries.has_extension(e)).collect();
    if missing.is_empty() {
        let recorded = cluster.recorded_bindir().is_some_and(|dir| dir == binaries.bindir);
        checks.push(check(
            "local server binaries",
            Level::Ok,
            format!(
                "{} ({}{})",
                binaries.bindir.display(),
                binaries.source,
                if recorded { "; recorded when the server was created, kept for it" } else { "" }
            ),
            None,
        ));
    } else {
        checks.push(check(
            "local server binaries",
            Level::Warn,
            format!("{} lacks {:?}", binaries.bindir.display(), missing),
            Some("`cargo anonmigrate server install` provides PostgreSQL with pgvector".into()),
        ));
    }
    if let Some(mismatch) = crate::target::version_mismatch(&cluster) {
        checks.push(check("local server", Level::Fail, mismatch.to_string(), None));
        return None;
    }
    if !cluster.is_running() {
        checks.push(check(
            "local server",
            Level::Ok,
            format!("not running ({}); any database command starts it", cluster.root.display()),
            None,
        ));
        return None;
    }
    DatabaseUrl::parse(&cluster.url(&workspace.dev_database()), UrlSource::LocalServer).ok()
}

#[derive(QueryableByName)]
struct Facts {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Bool)]
    superuser: bool,
    #[diesel(sql_type = Bool)]
    createdb: bool,
    #[diesel(sql_type = Bool)]
    create_on_schema: bool,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Bool)]
    bookkeeping: bool,
}

#[derive(QueryableByName)]
struct ExtensionRow {
    #[diesel(sql_type = Nullable<Text>)]
    available: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    installed: Option<String>,
    #[diesel(sql_type = Bool)]
    trusted: bool,
}

/// Whether the URL goes through a transaction-mode pooler, and whether a direct URL is set for the commands
/// that change the database (and is direct itself).
fn pooler_checks(workspace: &Workspace, url: &DatabaseUrl, checks: &mut Vec<Check>) {
    let direct = match workspace.direct_url() {
        Ok(Some(direct)) => {
            checks.push(check(
                "direct url",
                Level::Ok,
                format!("{} (from {}): setup, run, revert, redo, accept, stamp and database connect there", direct.redacted(), direct.source),
                None,
            ));
            Some(direct)
        }
        Ok(None) => {
            checks.push(check("direct url", Level::Ok, "not set (--direct-url, DIRECT_URL, direct-url): every command uses the database URL", None));
            None
        }
        Err(e) => {
            checks.push(check("direct url", Level::Fail, e.to_string(), None));
            None
        }
    };
    let fix = "set DIRECT_URL (or --direct-url, or direct-url in [workspace.metadata.anonmigrate]) to the server's own host and port, or use a session-mode pool";
    match (crate::pooler::detect(url), &direct) {
        (Ok(None), _) => checks.push(check("pooler", Level::Ok, "the database URL keeps a session of its own (direct, or a session-mode pool)", None)),
        (Ok(Some(found)), Some(_)) => checks.push(check(
            "pooler",
            Level::Ok,
            format!("the database URL goes through a pooler in transaction or statement mode ({found}); commands that change the database use the direct URL"),
            None,
        )),
        (Ok(Some(found)), None) => checks.push(check(
            "pooler",
            Level::Fail,
            format!("the database URL goes through a pooler in transaction or statement mode ({found}): run, revert and the other commands that change the database refuse (exit 13)"),
            Some(fix.into()),
        )),
        // database_checks has reported why it cannot connect.
        (Err(_), _) => {}
    }
    if let Some(direct) = &direct {
        match crate::pooler::detect(direct) {
            Ok(None) => {}
            Ok(Some(found)) => checks.push(check(
                "direct url pooler",
                Level::Fail,
                format!("the direct URL goes through a pooler in transaction or statement mode too ({found})"),
                Some(fix.into()),
            )),
            Err(e) => checks.push(check("direct url", Level::Fail, e.to_string(), Some(format!("check {}", direct.source)))),
        }
    }
}

fn database_checks(url: &DatabaseUrl, chain: Option<&Chain>, extensions: &[String], checks: &mut Vec<Check>) {
    let started = Instant::now();
    let mut conn = match db::connect(url) {
        Ok(conn) => {
            checks.push(check(
                "server",
                Level::Ok,
                format!("{} answered in {} ms", url.describe(), started.elapsed().as_millis()),
                None,
            ));
            checks.push(check("database", Level::Ok, format!("`{}` exists", url.database()), None));
            conn
        }
        Err(Error::MissingDatabase { database, .. }) => {
            checks.push(check("server", Level::Ok, "the server answers", None));
            checks.push(check(
                "database",
                Level::Fail,
                format!("database `{database}` does not exist"),
                Some("`cargo anonmigrate setup` creates it".into()),
            ));
            return;
        }
        Err(e) => {
            let timed_out = started.elapsed() >= Duration::from_secs(db::CONNECT_TIMEOUT_SECS);
            checks.push(check(
                "server",
                Level::Fail,
                e.to_string(),
                Some(if timed_out {
                    "no answer within the connect timeout: check host, port and firewall".into()
                } else {
                    "check the server is running (`pg_isready -h HOST -p PORT`) and the URL".into()
                }),
            ));
            return;
        }
    };
    let facts: Facts = match diesel::sql_query(
        "SELECT current_setting('server_version') AS version, r.rolsuper AS superuser, r.rolcreatedb AS createdb, \
                has_schema_privilege('public', 'CREATE') AS create_on_schema, current_user::text AS role, \
                to_regclass('__diesel_schema_migrations') IS NOT NULL AS bookkeeping \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .get_result(&mut conn)
    {
        Ok(facts) => facts,
        Err(e) => {
            checks.push(check("server", Level::Fail, db::pg_error(&e).to_string(), None));
            return;
        }
    };
    checks.push(check("server version", Level::Ok, format!("PostgreSQL {}", facts.version), None));
    // Available but not installed: fine before `run`, wrong once the migration creating it counts as applied.
    let mut not_installed: Vec<(&String, usize)> = Vec::new();
    for extension in extensions {
        let row: Option<ExtensionRow> = diesel::sql_query(
            "SELECT (SELECT default_version FROM pg_available_extensions WHERE name = $1) AS available, \
                    (SELECT extversion FROM pg_extension WHERE extname = $1) AS installed, \
                    coalesce((SELECT bool_or(trusted) FROM pg_available_extension_versions WHERE name = $1), false) AS trusted",
        )
        .bind::<Text, _>(extension)
        .get_result(&mut conn)
        .ok();
        let name = format!("extension {extension}");
        match row {
            Some(ExtensionRow { installed: Some(version), .. }) => {
                checks.push(check(&name, Level::Ok, format!("installed, version {version}"), None))
            }
            Some(ExtensionRow { available: Some(version), trusted, .. }) => {
                not_installed.push((extension, checks.len()));
                let can_create = facts.superuser || trusted;
                checks.push(check(
                    &name,
                    if can_create { Level::Ok } else { Level::Warn },
                    format!("available (version {version}), not installed yet"),
                    (!can_create).then(|| {
                        format!(
                            "role `{}` cannot create it; a superuser runs: CREATE EXTENSION {extension}; (in database `{}`)",
                            facts.role,
                            url.database()
                        )
                    }),
                ))
            }
            _ => checks.push(check(
                &name,
                Level::Fail,
                "not available on this server",
                Some(format!(
                    "install it on the server (for pgvector: the postgresql-NN-pgvector package), or {} to use the managed local server which ships it; then a superuser runs: CREATE EXTENSION {extension};",
                    url.source.how_to_drop()
                )),
            )),
        }
    }
    checks.push(if facts.superuser || facts.create_on_schema {
        check("privilege CREATE", Level::Ok, format!("role `{}` can create objects in schema public", facts.role), None)
    } else {
        check(
            "privilege CREATE",
            Level::Fail,
            format!("role `{}` cannot create objects in schema public", facts.role),
            Some(format!("a superuser runs: GRANT CREATE ON SCHEMA public TO \"{}\";", facts.role)),
        )
    });
    checks.push(if facts.superuser || facts.createdb {
        check("privilege CREATEDB", Level::Ok, format!("role `{}` can create databases", facts.role), None)
    } else {
        check(
            "privilege CREATEDB",
            Level::Warn,
            format!("role `{}` cannot create databases (needed by `setup` on a new database, `database reset`, `schema`)", facts.role),
            Some(format!("a superuser runs: ALTER ROLE \"{}\" CREATEDB;", facts.role)),
        )
    });
    if !facts.bookkeeping {
        checks.push(check(
            "bookkeeping",
            Level::Warn,
            "__diesel_schema_migrations does not exist yet",
            Some("`cargo anonmigrate setup` or `cargo anonmigrate run` creates it".into()),
        ));
        return;
    }
    checks.push(check("bookkeeping", Level::Ok, "__diesel_schema_migrations present", None));
    let Some(chain) = chain else { return };
    match crate::bookkeeping::read(&mut conn) {
        Ok(rows) => {
            let status = Status::compute(chain, &rows);
            for (extension, index) in not_installed {
                let applied = chain.migrations.iter().zip(&status.entries).find(|(m, e)| {
                    matches!(e.state, crate::status::MigrationState::Applied { .. })
                        && crate::setup::extensions_created_by(m).contains(extension)
                });
                if let Some((migration, _)) = applied {
                    checks[index] = check(
                        &format!("extension {extension}"),
                        Level::Fail,
                        format!(
                            "not installed, although {} which creates it is recorded as applied (stamped without running its SQL?)",
                            migration.dir_name
                        ),
                        Some(format!("a superuser runs: CREATE EXTENSION {extension}; (in database `{}`)", url.database())),
                    );
                }
            }
            checks.extend(status_checks(&status));
        }
        Err(e) => checks.push(check("applied migrations", Level::Fail, e.to_string(), None)),
    }
}

fn status_checks(status: &Status) -> Vec<Check> {
    let mut checks = Vec::new();
    let pending = status.pending().count();
    checks.push(if pending == 0 {
        check(
            "pending",
            Level::Ok,
            format!("up to date at {}", status.current_version.as_deref().unwrap_or("(empty chain)")),
            None,
        )
    } else {
        check("pending", Level::Warn, format!("{pending} migration(s) not applied"), Some("`cargo anonmigrate run`".into()))
    });
    let changed: Vec<&str> = status.changed().map(|e| e.dir_name.as_str()).collect();
    if !changed.is_empty() {
        checks.push(check(
            "changed",
            Level::Fail,
            format!("applied migrations changed on disk: {}", changed.join(", ")),
            Some("restore them from git, or `cargo anonmigrate accept VERSION` if deliberate".into()),
        ));
    }
    if !status.missing.is_empty() {
        let names: Vec<&str> = status.missing.iter().map(|m| m.version.as_str()).collect();
        checks.push(check(
            "missing",
            Level::Fail,
            format!("applied migrations not on disk: {}", names.join(", ")),
            Some("check out the branch that has them, or run with --ignore-missing".into()),
        ));
    }
    checks
}

fn lock_file_check(chain: &Chain) -> Check {
    match LockFile::read(&chain.dir) {
        Ok(None) => check(
            "lock file",
            Level::Warn,
            "no anonmigrate.lock beside the migrations",
            Some("any command that works on the chain (`cargo anonmigrate run`, `lock`) writes it; commit it".into()),
        ),
        Ok(Some((lock, header_ok))) => {
            let mismatch = lock.compare(chain, header_ok);
            if mismatch.is_empty() {
                check("lock file", Level::Ok, "matches the migrations", None)
            } else {
                let mut parts = Vec::new();
                if !mismatch.added.is_empty() {
                    parts.push(format!("not in the lock file: {}", mismatch.added.join(", ")));
                }
                if !mismatch.edited.is_empty() {
                    parts.push(format!("edited: {}", mismatch.edited.join(", ")));
                }
                if !mismatch.removed.is_empty() {
                    parts.push(format!("removed: {}", mismatch.removed.join(", ")));
                }
                if mismatch.corrupt_header {
                    parts.push("the chain hash on the first line is wrong".into());
                }
                // Stale is the normal state right after editing a migration: the next `run` or `schema` updates it.
                check(
                    "lock file",
                    Level::Warn,
                    parts.join("; "),
                    Some("any command that works on the chain (`cargo anonmigrate run`, `schema`, `lock`) updates it; commit it".into()),
                )
            }
        }
        Err(e) => check("lock file", Level::Fail, e.to_string(), None),
    }
}

/// Runs the build-script drift gate for every schema file the lock file knows.
fn drift_checks(chain: &Chain) -> Vec<Check> {
    let Ok(Some((lock, _))) = LockFile::read(&chain.dir) else {
        return Vec::new();
    };
    lock.schemas
        .iter()
        .map(|record| {
            let schema_file = chain.dir.join(&record.path);
            let gate = anonmigrate_chain::drift::Gate::new(chain.dir.clone(), schema_file.clone());
            let name = format!("schema drift {}", record.path);
            match gate.check() {
                Ok(report) if report.is_clean() => check(&name, Level::Ok, "schema file matches the migrations", None),
                Ok(report) => check(
                    &name,
                    Level::Fail,
                    report.findings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                    Some(if report.is_hand_edit() {
                        format!(
                            "`{}` keeps the edit as a migration; `{}` discards it",
                            anonmigrate_chain::drift::AUTOGENERATE_COMMAND,
                            anonmigrate_chain::drift::DISCARD_COMMAND
                        )
                    } else {
                        format!("`{}`", anonmigrate_chain::drift::FIX_COMMAND)
                    }),
                ),
                Err(e) => check(&name, Level::Fail, e.to_string(), None),
            }
        })
        .collect()
}
