//! `generate NAME`: a new migration directory with a version that sorts after every existing one, and the lock
//! file updated to include it.

use std::path::{Path, PathBuf};

use anonmigrate_chain::{Chain, LockFile};
use chrono::Utc;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    pub no_down: bool,
    pub non_transactional: bool,
    pub up_sql: Option<String>,
    pub down_sql: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Generated {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "migration name `{name}` may only contain letters, digits, `_` and `-`; try `{}`",
            suggest_name(name)
        )))
    }
}

fn suggest_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '_' })
        .collect();
    let trimmed = cleaned.trim_matches('_');
    if trimmed.is_empty() { "describe_the_change".into() } else { trimmed.to_owned() }
}

/// A diesel-style `YYYY-MM-DD-HHMMSS` version from the clock, bumped past the newest existing version if the
/// clock is behind it (or two migrations are generated within one second).
pub(crate) fn next_version(chain: &Chain) -> String {
    let now = Utc::now().format("%Y-%m-%d-%H%M%S").to_string();
    let digits: String = now.chars().filter(|c| *c != '-').collect();
    let Some(latest) = chain.latest() else {
        return now;
    };
    if digits > latest.version && digits.len() >= latest.version.len() {
        return now;
    }
    // Same length as the newest version, one more: still sorts after it as a string.
    let bumped = latest.version.parse::<u128>().map(|v| v + 1).unwrap_or(0);
    format!("{bumped:0width$}", width = latest.version.len())
}

/// Creates the migration directory with its files and brings the lock file up to date.
///
/// Concurrent `generate`s (scripts, editors, several terminals) are serialised by an exclusive lock on the
/// migrations directory itself (no lock file is left in it), so each gets its own version and the lock file lists
/// every one. The directory appears whole: its files are written and synced in a hidden staging directory
/// (chain loading skips names starting with `.`), which is then renamed into place; a crash leaves at most a
/// hidden directory, never an empty migration that breaks every command.
pub fn generate(migrations_dir: &Path, name: &str, options: &GenerateOptions) -> Result<Generated> {
    validate_name(name)?;
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    std::fs::create_dir_all(migrations_dir).map_err(write_error(migrations_dir))?;
    let guard = std::fs::File::open(migrations_dir).map_err(write_error(migrations_dir))?;
    guard.lock().map_err(write_error(migrations_dir))?;

    let chain = Chain::load(migrations_dir)?;
    let dir_name = format!("{}_{name}", next_version(&chain));
    let dir = migrations_dir.join(&dir_name);
    let mut contents = vec![("up.sql", options.up_sql.as_deref().unwrap_or("-- Your SQL goes here\n"))];
    if !options.no_down {
        contents.push(("down.sql", options.down_sql.as_deref().unwrap_or("-- This file should undo anything in `up.sql`\n")));
    }
    if options.non_transactional {
        contents.push((
            "metadata.toml",
            "# Each statement runs on its own (needed for CREATE INDEX CONCURRENTLY); progress is kept per statement.\nrun_in_transaction = false\n",
        ));
    }
    let staging = migrations_dir.join(format!(".{dir_name}.{}.tmp", std::process::id()));
    let staged = stage(&staging, &contents).and_then(|()| std::fs::rename(&staging, &dir));
    if let Err(source) = staged {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(Error::Write { path: dir, source });
    }
    if let Ok(parent) = std::fs::File::open(migrations_dir) {
        let _ = parent.sync_all();
    }
    let mut files: Vec<PathBuf> = contents.iter().map(|(file, _)| dir.join(file)).collect();
    relock(migrations_dir)?;
    files.push(LockFile::path_in(migrations_dir));
    drop(guard);
    Ok(Generated { dir, files })
}

/// Writes `contents` into a new directory `staging` and syncs each file and the directory.
fn stage(staging: &Path, contents: &[(&str, &str)]) -> std::io::Result<()> {
    std::fs::create_dir(staging)?;
    for (file, text) in contents {
        let mut out = std::fs::File::create_new(staging.join(file))?;
        std::io::Write::write_all(&mut out, text.as_bytes())?;
        out.sync_all()?;
    }
    std::fs::File::open(staging)?.sync_all()
}

/// Rewrites the lock file's entries from the migrations on disk (`cargo anonmigrate lock`), keeping the record
/// of what each schema file was generated from for the drift gate.
pub fn relock(migrations_dir: &Path) -> Result<LockFile> {
    let chain = Chain::load(migrations_dir)?;
    // A lock file that does not parse (e.g. git conflict markers) is replaced: its entries are being rebuilt.
    let previous = LockFile::read(migrations_dir).ok().flatten().map(|(lock, _)| lock);
    let lock = LockFile::updated_for(&chain, previous.as_ref());
    lock.write(migrations_dir)?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("add_users").is_ok());
        assert!(validate_name("add-users2").is_ok());
        let err = validate_name("add users!").unwrap_err().to_string();
        assert!(err.contains("try `add_users`"), "{err}");
    }

    #[test]
    fn versions_sort_after_existing_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let far_future = tmp.path().join("2999-01-01-000000_future");
        std::fs::create_dir_all(&far_future).unwrap();
        std::fs::write(far_future.join("up.sql"), "select 1").unwrap();
        let a = generate(tmp.path(), "a", &GenerateOptions::default()).unwrap();
        let b = generate(tmp.path(), "b", &GenerateOptions::default()).unwrap();
        let chain = Chain::load(tmp.path()).unwrap();
        let names: Vec<_> = chain.migrations.iter().map(|m| m.dir.clone()).collect();
        assert_eq!(names, [far_future, a.dir, b.dir]);
    }

    #[test]
    fn concurrent_generates_get_distinct_versions_and_the_lock_file_lists_every_one() {
        let tmp = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for i in 0..8 {
                let dir = tmp.path();
                s.spawn(move || generate(dir, &format!("m{i}"), &GenerateOptions::default()).unwrap());
            }
        });
        let chain = Chain::load(tmp.path()).unwrap();
        assert_eq!(chain.migrations.len(), 8);
        let (lock, ok) = LockFile::read(tmp.path()).unwrap().unwrap();
        assert!(ok && lock.compare(&chain, ok).is_empty(), "{lock:?}");
        let hidden: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
        assert!(hidden.is_empty(), "no staging directory or lock file left: {hidden:?}");
    }
}
