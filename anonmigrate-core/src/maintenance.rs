//! Deliberate corrections of the record: `accept` (a changed checksum), `stamp` (mark applied without running),
//! `stamp --delete`, and the chain-side `heads` / `merge` for migrations that arrived through a git merge.

use std::time::Duration;

use anonmigrate_chain::{Chain, LockFile, LockMismatch};

use crate::bookkeeping;
use crate::database_url::DatabaseUrl;
use crate::db;
use crate::error::{Error, Result};
use crate::events::{Event, Observer};
use crate::generate::version_after_newest;
use crate::plan::{Direction, Script};
use crate::runner::{SessionSetup, lock, read_status};
use crate::status::{MigrationState, Status};

/// Under the lock: the bookkeeping tables exist; no statement of these commands runs long.
const BOOKKEEPING: SessionSetup = SessionSetup { statement_timeout: None, bookkeeping: true };

/// The old and new checksum recorded by `accept`.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub dir_name: String,
    pub old: Option<String>,
    pub new: String,
}

/// Records the current up.sql hash for one applied migration, keeping the old one in the audit table.
pub fn accept(url: &DatabaseUrl, chain: &Chain, version: &str, lock_timeout: Duration, observer: &mut dyn Observer) -> Result<Accepted> {
    let migration = chain.find(version).ok_or_else(|| {
        Error::Refused(format!("no migration with version {version} on disk; `cargo anonmigrate history` lists them"))
    })?;
    let mut locked = lock(url, lock_timeout, BOOKKEEPING, observer)?;
    let conn = &mut locked.conn;
    let (status, rows) = read_status(conn, chain)?;
    let entry = status.entries.iter().find(|e| e.version == version).expect("chain entries have status");
    if !matches!(entry.state, MigrationState::Applied { .. }) {
        return Err(Error::Refused(format!(
            "{} is not applied, so there is no recorded checksum to accept; `cargo anonmigrate run` applies it",
            migration.dir_name
        )));
    }
    let old = rows.iter().find(|r| r.version == version).and_then(|r| r.checksum.clone());
    let statements = Script::prepare(migration, Direction::Up).map(|s| s.statements.len()).unwrap_or(0);
    let sql = format!(
        "BEGIN;\n{}\n{}\nCOMMIT;",
        bookkeeping::record_audit_sql(version, "accept", old.as_deref(), Some(&migration.checksum)),
        // Keeps run_on and duration; only the checksum (and name, if renamed) change.
        format!(
            "INSERT INTO __anonmigrate_migrations (version, name, checksum, statements_total, statements_done, finished_at) \
             VALUES ({v}, {n}, {c}, {statements}, {statements}, now()) \
             ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, name = EXCLUDED.name;",
            v = db::quote_literal(version),
            n = db::quote_literal(&migration.name),
            c = db::quote_literal(&migration.checksum),
        )
    );
    db::execute(conn, &sql).map_err(db::context("recording the accepted checksum"))?;
    Ok(Accepted {
        dir_name: migration.dir_name.clone(),
        old,
        new: migration.checksum.clone(),
    })
}

/// Marks every migration up to and including `version` as applied without running any SQL (baselining a
/// database whose schema already exists). Returns the migrations stamped.
pub fn stamp(url: &DatabaseUrl, chain: &Chain, version: &str, lock_timeout: Duration, observer: &mut dyn Observer) -> Result<Vec<String>> {
    if chain.find(version).is_none() {
        return Err(Error::Refused(format!("no migration with version {version} on disk; `cargo anonmigrate history` lists them")));
    }
    let mut locked = lock(url, lock_timeout, BOOKKEEPING, observer)?;
    let conn = &mut locked.conn;
    let (status, _) = read_status(conn, chain)?;
    let mut sql = String::from("BEGIN;\n");
    let mut stamped = Vec::new();
    for (migration, entry) in chain.migrations.iter().zip(&status.entries) {
        if migration.version.as_str() > version || matches!(entry.state, MigrationState::Applied { .. }) {
            continue;
        }
        let statements = Script::prepare(migration, Direction::Up)?.statements.len();
        sql.push_str(&bookkeeping::record_applied_sql(&migration.version, &migration.name, &migration.checksum, statements, bookkeeping::Elapsed::Unknown));
        sql.push_str(&bookkeeping::record_audit_sql(&migration.version, "stamp", None, Some(&migration.checksum)));
        stamped.push(migration.dir_name.clone());
    }
    sql.push_str("COMMIT;");
    db::execute(conn, &sql).map_err(db::context("stamping migrations"))?;
    if !stamped.is_empty() {
        warn_if_nothing_was_there(conn, chain, &stamped, observer);
    }
    Ok(stamped)
}

#[derive(diesel::QueryableByName)]
struct Present {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    tables: i64,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    extensions: Vec<String>,
}

/// `stamp` is for a database whose schema already exists: say so when it looks empty, and name each extension
/// a stamped migration creates that is not installed (nothing else would tell until a query fails).
fn warn_if_nothing_was_there(conn: &mut diesel::PgConnection, chain: &Chain, stamped: &[String], observer: &mut dyn Observer) {
    use diesel::RunQueryDsl;
    let Ok(present) = diesel::sql_query(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg_toast%' AND c.relname NOT LIKE '\\_\\_diesel%' AND c.relname NOT LIKE '\\_\\_anonmigrate%') AS tables, \
                coalesce((SELECT array_agg(extname::text) FROM pg_extension), '{}') AS extensions",
    )
    .get_result::<Present>(conn) else {
        return;
    };
    if present.tables == 0 {
        observer.event(Event::Warning(format!(
            "the database has no tables of its own: stamp only records migrations as applied, it runs none of their SQL; if the schema is not there yet, undo it with `cargo anonmigrate stamp --delete VERSION` for each of the {} stamped and run `cargo anonmigrate run`",
            stamped.len()
        )));
    }
    for migration in chain.migrations.iter().filter(|m| stamped.contains(&m.dir_name)) {
        for extension in crate::setup::extensions_created_by(migration) {
            if !present.extensions.contains(&extension) {
                observer.event(Event::Warning(format!(
                    "{} creates extension `{extension}`, which is not installed: stamping did not create it; a superuser runs CREATE EXTENSION {extension}; in this database",
                    migration.dir_name
                )));
            }
        }
    }
}

/// Removes the record of one version (applied or partial) without running its down.sql.
pub fn unstamp(url: &DatabaseUrl, version: &str, lock_timeout: Duration, observer: &mut dyn Observer) -> Result<bool> {
    let mut locked = lock(url, lock_timeout, BOOKKEEPING, observer)?;
    let conn = &mut locked.conn;
    let known = bookkeeping::read(conn)?.iter().any(|r| r.version == version);
    if !known {
        return Ok(false);
    }
    let sql = format!(
        "BEGIN;\n{}\n{}\nCOMMIT;",
        bookkeeping::record_audit_sql(version, "stamp-delete", None, None),
        bookkeeping::record_reverted_sql(version)
    );
    db::execute(conn, &sql).map_err(db::context("deleting the migration record"))?;
    Ok(true)
}

/// What `heads` found: with a conflicted lock file, what each side of the git merge added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heads {
    /// Migrations on disk that the lock file does not list yet (new on this branch, or arrived through a merge).
    New(Vec<String>),
    /// The lock file holds git conflict markers: each side's additions, and what is on disk that neither lists.
    Conflict {
        ours_label: String,
        theirs_label: String,
        ours: Vec<String>,
        theirs: Vec<String>,
        unlisted: Vec<String>,
    },
}

fn unlisted(chain: &Chain, lock: &[&LockFile]) -> Vec<String> {
    chain
        .migrations
        .iter()
        .filter(|m| lock.iter().all(|l| l.entries.iter().all(|e| e.dir_name != m.dir_name)))
        .map(|m| m.dir_name.clone())
        .collect()
}

/// Migrations on disk that the lock file does not list, or with git conflict markers, what each side added.
pub fn heads(chain: &Chain) -> Result<Heads> {
    if let Some(conflict) = LockFile::read_conflicted(&chain.dir)? {
        let (ours, theirs) = conflict.added_by_each();
        return Ok(Heads::Conflict {
            unlisted: unlisted(chain, &[&conflict.ours, &conflict.theirs]),
            ours_label: conflict.ours_label,
            theirs_label: conflict.theirs_label,
            ours,
            theirs,
        });
    }
    Ok(Heads::New(match LockFile::read(&chain.dir)? {
        None => chain.migrations.iter().map(|m| m.dir_name.clone()).collect(),
        Some((lock, _)) => unlisted(chain, &[&lock]),
    }))
}

/// A directory renamed by `merge`.
#[derive(Debug, Clone)]
pub struct Renamed {
    pub from: String,
    pub to: String,
}

/// What `merge` did.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The git conflict it resolved: (ours label, theirs label, ours added, theirs added).
    pub conflict: Option<(String, String, Vec<String>, Vec<String>)>,
    /// Migrations that shared a version with another one, moved after the head.
    pub separated: Vec<Renamed>,
    /// Pending migrations the database showed to be older than its newest applied one, moved after the head.
    pub renamed: Vec<Renamed>,
    /// The newest applied version, when a database was consulted.
    pub newest_applied: Option<String>,
    /// How the written lock file differs from the one before (our side, for a conflict).
    pub change: LockMismatch,
    /// Entries in the written lock file.
    pub entries: usize,
}

/// Gives new versions to migrations that share a version with another one (two branches generated migrations
/// in the same second, then git merged them): the one our side's lock file lists keeps the version, each other
/// one moves after the head. Run before anything loads the chain, which refuses shared versions.
pub fn separate_shared_versions(migrations_dir: &std::path::Path) -> Result<Vec<Renamed>> {
    let chain = Chain::load_allowing_shared_versions(migrations_dir)?;
    let ours: Option<LockFile> = match LockFile::read_conflicted(migrations_dir)? {
        Some(conflict) => Some(conflict.ours),
        None => LockFile::read(migrations_dir).ok().flatten().map(|(lock, _)| lock),
    };
    let listed = |dir_name: &str| ours.as_ref().is_some_and(|l| l.entries.iter().any(|e| e.dir_name == dir_name));
    let mut moving = Vec::new();
    for group in chain.migrations.chunk_by(|a, b| a.version == b.version).filter(|g| g.len() > 1) {
        let keep = group.iter().position(|m| listed(&m.dir_name)).unwrap_or(0);
        moving.extend(group.iter().enumerate().filter(|(i, _)| *i != keep).map(|(_, m)| m.dir_name.clone()));
    }
    let mut renamed = Vec::new();
    for dir_name in moving {
        let chain = Chain::load_allowing_shared_versions(migrations_dir)?;
        let migration = chain.migrations.iter().find(|m| m.dir_name == dir_name).expect("listed above");
        renamed.push(rename_after_head(&chain, migration)?);
    }
    Ok(renamed)
}

/// Moves one migration directory to a new version after the newest one.
fn rename_after_head(chain: &Chain, migration: &anonmigrate_chain::Migration) -> Result<Renamed> {
    let to = format!("{}_{}", version_after_newest(chain)?, migration.name);
    std::fs::rename(&migration.dir, chain.dir.join(&to)).map_err(|source| Error::Write {
        path: migration.dir.clone(),
        source,
    })?;
    Ok(Renamed { from: migration.dir_name.clone(), to })
}

/// Resolves a lock file that `git merge` left with conflict markers (the union of both sides, which is what is
/// on disk after the merge, in chain order) and, where `database` (the target database's status against the
/// chain on disk) shows pending migrations older than its newest applied one, gives them new versions after the
/// head by renaming their directories, so `run` applies them in order. Without a database nothing is renamed.
/// Every rename (with `separated`, those of [`separate_shared_versions`]) is recorded in the lock file, so a
/// database that applied a migration under its old version renumbers its record on the next `run` instead of
/// applying it again. The schema-file records of our side are kept; a git conflict on schema.rs itself is for
/// `schema` to redo.
pub fn merge(migrations_dir: &std::path::Path, database: Option<&Status>, separated: Vec<Renamed>) -> Result<Merged> {
    let conflict = LockFile::read_conflicted(migrations_dir)?;
    let previous = match &conflict {
        Some(conflict) => {
            // Both sides' records of earlier renames still matter to the databases of each side.
            let mut ours = conflict.ours.clone();
            for rename in &conflict.theirs.renames {
                if !ours.renames.contains(rename) {
                    ours.renames.push(rename.clone());
                }
            }
            Some(ours)
        }
        None => LockFile::read(migrations_dir)?.map(|(lock, _)| lock),
    };
    let mut renamed = Vec::new();
    for entry in database.iter().flat_map(|status| status.out_of_order()) {
        let chain = Chain::load(migrations_dir)?;
        let migration = chain.migrations.iter().find(|m| m.dir_name == entry.dir_name).expect("status entries are on disk");
        renamed.push(rename_after_head(&chain, migration)?);
    }
    let chain = Chain::load(migrations_dir)?;
    let mut lock = LockFile::updated_for(&chain, previous.as_ref());
    for r in separated.iter().chain(&renamed) {
        let version = |dir_name: &str| anonmigrate_chain::parse_dir_name(dir_name).map(|(v, _)| v).unwrap_or_default();
        lock.record_rename(&version(&r.from), &version(&r.to));
    }
    lock.write(migrations_dir)?;
    let change = match &previous {
        Some(previous) => previous.compare(&chain, true),
        None => LockMismatch { added: chain.migrations.iter().map(|m| m.dir_name.clone()).collect(), ..LockMismatch::default() },
    };
    Ok(Merged {
        conflict: conflict.map(|c| {
            let (ours, theirs) = c.added_by_each();
            (c.ours_label, c.theirs_label, ours, theirs)
        }),
        separated,
        renamed,
        newest_applied: database.and_then(|s| s.current_version.clone()),
        change,
        entries: lock.entries.len(),
    })
}
