//! Deliberate corrections of the record: `accept` (a changed checksum), `stamp` (mark applied without running),
//! `stamp --delete`, and the chain-side `heads` / `merge` for migrations that arrived through a git merge.

use std::time::Duration;

use anonmigrate_chain::{Chain, LockFile, parse_dir_name};

use crate::bookkeeping;
use crate::database_url::DatabaseUrl;
use crate::db;
use crate::error::{Error, Result};
use crate::events::Observer;
use crate::generate::next_version;
use crate::plan::{Direction, Script};
use crate::runner::{lock, read_status};
use crate::status::MigrationState;

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
    let mut locked = lock(url, lock_timeout, observer)?;
    let conn = &mut locked.conn;
    bookkeeping::ensure_tables(conn)?;
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
    let mut locked = lock(url, lock_timeout, observer)?;
    let conn = &mut locked.conn;
    bookkeeping::ensure_tables(conn)?;
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
    Ok(stamped)
}

/// Removes the record of one version (applied or partial) without running its down.sql.
pub fn unstamp(url: &DatabaseUrl, version: &str, lock_timeout: Duration, observer: &mut dyn Observer) -> Result<bool> {
    let mut locked = lock(url, lock_timeout, observer)?;
    let conn = &mut locked.conn;
    bookkeeping::ensure_tables(conn)?;
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

/// Migrations on disk that the lock file does not list (new on this branch, or arrived through a merge).
pub fn heads(chain: &Chain) -> Result<Vec<String>> {
    let Some((lock, _)) = LockFile::read(&chain.dir)? else {
        return Ok(chain.migrations.iter().map(|m| m.dir_name.clone()).collect());
    };
    Ok(chain
        .migrations
        .iter()
        .filter(|m| lock.entries.iter().all(|e| e.dir_name != m.dir_name))
        .map(|m| m.dir_name.clone())
        .collect())
}

/// A directory renamed by `merge`.
#[derive(Debug, Clone)]
pub struct Renamed {
    pub from: String,
    pub to: String,
}

/// Gives migrations that are not in the lock file and sort before its newest entry new versions after the
/// current head (renaming their directories), then rewrites the lock file. The lock file must list what is
/// already applied somewhere (the branch you merged into), so only the newcomers move.
pub fn merge(migrations_dir: &std::path::Path) -> Result<Vec<Renamed>> {
    let chain = Chain::load(migrations_dir)?;
    let newcomers = heads(&chain)?;
    let newest_locked = LockFile::read(migrations_dir)?
        .and_then(|(lock, _)| lock.entries.iter().filter_map(|e| parse_dir_name(&e.dir_name).map(|(v, _)| v)).max());
    let mut renamed = Vec::new();
    if let Some(newest) = newest_locked {
        for dir_name in newcomers {
            let chain = Chain::load(migrations_dir)?;
            let migration = chain.migrations.iter().find(|m| m.dir_name == dir_name).expect("head is on disk");
            if migration.version >= newest {
                continue;
            }
            let to = format!("{}_{}", next_version(&chain), migration.name);
            std::fs::rename(&migration.dir, migrations_dir.join(&to)).map_err(|source| Error::Write {
                path: migration.dir.clone(),
                source,
            })?;
            renamed.push(Renamed { from: dir_name, to });
        }
    }
    crate::generate::relock(migrations_dir)?;
    Ok(renamed)
}
