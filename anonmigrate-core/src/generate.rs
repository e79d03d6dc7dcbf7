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

pub fn generate(migrations_dir: &Path, name: &str, options: &GenerateOptions) -> Result<Generated> {
    validate_name(name)?;
    std::fs::create_dir_all(migrations_dir).map_err(|source| Error::Write {
        path: migrations_dir.to_path_buf(),
        source,
    })?;
    let chain = Chain::load(migrations_dir)?;
    let dir = migrations_dir.join(format!("{}_{name}", next_version(&chain)));
    let write = |path: PathBuf, contents: &str| -> Result<PathBuf> {
        std::fs::write(&path, contents).map_err(|source| Error::Write { path: path.clone(), source })?;
        Ok(path)
    };
    std::fs::create_dir(&dir).map_err(|source| Error::Write { path: dir.clone(), source })?;
    let mut files = vec![write(
        dir.join("up.sql"),
        options.up_sql.as_deref().unwrap_or("-- Your SQL goes here\n"),
    )?];
    if !options.no_down {
        files.push(write(
            dir.join("down.sql"),
            options
                .down_sql
                .as_deref()
                .unwrap_or(crate::plan::DOWN_STUB),
        )?);
    }
    if options.non_transactional {
        files.push(write(
            dir.join("metadata.toml"),
            "# Each statement runs on its own (needed for CREATE INDEX CONCURRENTLY); progress is kept per statement.\nrun_in_transaction = false\n",
        )?);
    }
    relock(migrations_dir)?;
    files.push(LockFile::path_in(migrations_dir));
    Ok(Generated { dir, files })
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
}
