//! `generate NAME`: a new migration directory named as diesel_cli 2.3 names it (`YYYY-MM-DD-HHMMSS-XXXX_name`,
//! the clock in UTC and a hex subversion for several within one second), written under a per-directory lock and
//! moved into place whole, and the lock file updated to include it.

use std::path::{Path, PathBuf};

use anonmigrate_chain::{Chain, LockFile};
use chrono::Utc;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// diesel's `--version`: the text before the `_`, used as given.
    pub version: Option<String>,
    pub no_down: bool,
    pub non_transactional: bool,
    pub up_sql: Option<String>,
    pub down_sql: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Generated {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// Worth saying, not worth refusing (a newer migration already on disk, for instance).
    pub warnings: Vec<String>,
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

/// diesel's version for a migration generated now: `YYYY-MM-DD-HHMMSS-0000` from the clock (UTC), or the next
/// hex subversion after those already on disk for the same second (`-0001` … `-ffff`). Never a time ahead of the
/// clock: a burst of generates stays on the seconds it ran in.
pub(crate) fn next_version(chain: &Chain, now: chrono::DateTime<Utc>) -> Result<String> {
    let second = now.format("%Y-%m-%d-%H%M%S").to_string();
    let digits: String = second.chars().filter(|c| *c != '-').collect();
    let used = chain
        .migrations
        .iter()
        .filter_map(|m| m.version.strip_prefix(&digits))
        .filter_map(|sub| if sub.is_empty() { Some(0) } else { u32::from_str_radix(sub, 16).ok().filter(|_| sub.len() == 4) })
        .max();
    let sub = match used {
        None => 0,
        Some(0xffff) => {
            return Err(Error::Refused(format!(
                "65536 migrations already carry the version of this second ({second}); wait a second and generate again, or pass --version"
            )));
        }
        Some(n) => n + 1,
    };
    Ok(format!("{second}-{sub:04x}"))
}

/// A version that sorts after every migration on disk (for `merge`, which moves migrations after the head): the
/// clock's, unless the newest migration is ahead of it, then the newest one's with the next subversion.
pub(crate) fn version_after_newest(chain: &Chain) -> Result<String> {
    let clock = next_version(chain, Utc::now())?;
    match chain.latest() {
        Some(latest) if latest.version >= clock.replace('-', "") => {
            let bumped = anonmigrate_chain::with_subversion(&latest.dir_name);
            Ok(bumped.split_once('_').map_or(bumped.as_str(), |(raw, _)| raw).to_owned())
        }
        _ => Ok(clock),
    }
}

/// Holds the per-directory generate lock until dropped: concurrent `generate`s in one migrations directory
/// take turns, so each sees the others' directories and picks a distinct version.
struct DirLock(#[allow(dead_code)] std::fs::File);

impl DirLock {
    fn take(migrations_dir: &Path) -> Result<DirLock> {
        let error = |source| Error::Write { path: migrations_dir.to_path_buf(), source };
        // On Unix the directory itself is locked (flock on its descriptor), so nothing is left behind; elsewhere
        // a directory cannot be opened as a file, and a hidden lock file (skipped like every `.` entry) is used.
        #[cfg(unix)]
        let file = std::fs::File::open(migrations_dir).map_err(error)?;
        #[cfg(not(unix))]
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(migrations_dir.join(".anonmigrate-generate.lock"))
            .map_err(error)?;
        file.lock().map_err(error)?;
        Ok(DirLock(file))
    }
}

/// A `--version` must make a directory name diesel reads back as that version.
fn validate_version(version: &str) -> Result<()> {
    let ok = !version.replace('-', "").is_empty()
        && version.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "--version `{version}` may only contain letters, digits and `-` (diesel reads the text before the first `_` as the version); e.g. --version 2024-01-31-120000-0000"
        )))
    }
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
    if let Some(version) = &options.version {
        validate_version(version)?;
    }
    std::fs::create_dir_all(migrations_dir).map_err(|source| Error::Write {
        path: migrations_dir.to_path_buf(),
        source,
    })?;
    let _lock = DirLock::take(migrations_dir)?;
    let chain = Chain::load(migrations_dir)?;
    let raw_version = match &options.version {
        Some(version) => version.clone(),
        None => next_version(&chain, Utc::now())?,
    };
    let dir_name = format!("{raw_version}_{name}");
    let version: String = raw_version.chars().filter(|c| *c != '-').collect();
    if let Some(existing) = chain.find(&version) {
        return Err(Error::Config(format!(
            "version {version} is taken by `{}`; pick another --version (or leave it out for the clock's)",
            existing.dir.display()
        )));
    }
    let mut warnings = Vec::new();
    if let Some(newer) = chain.latest().filter(|m| m.version > version) {
        warnings.push(format!(
            "`{dir_name}` sorts before `{}` (version {} > {version}), so `run` takes it as out of order where that one is applied; rename one of them if that is not intended",
            newer.dir_name, newer.version
        ));
    }
    let dir = migrations_dir.join(&dir_name);
    let mut contents = vec![("up.sql", options.up_sql.as_deref().unwrap_or("-- Your SQL goes here\n"))];
    if !options.no_down {
        contents.push(("down.sql", options.down_sql.as_deref().unwrap_or(crate::plan::DOWN_STUB)));
    }
    if options.non_transactional {
        contents.push((
            "metadata.toml",
            "# Each statement runs on its own (needed for CREATE INDEX CONCURRENTLY); progress is kept per statement.\nrun_in_transaction = false\n",
        ));
    }
    let staging = migrations_dir.join(format!(".generate-{}-{dir_name}", std::process::id()));
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
    Ok(Generated { dir, files, warnings })
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
    fn versions_follow_the_clock_with_hex_subversions() {
        let tmp = tempfile::tempdir().unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T16:50:12Z").unwrap().with_timezone(&Utc);
        let chain = |names: &[&str]| {
            for name in names {
                std::fs::create_dir_all(tmp.path().join(name)).unwrap();
                std::fs::write(tmp.path().join(name).join("up.sql"), "select 1").unwrap();
            }
            Chain::load(tmp.path()).unwrap()
        };
        assert_eq!(next_version(&chain(&[]), now).unwrap(), "2026-12-02-165012-0000");
        assert_eq!(next_version(&chain(&["2026-12-02-165012-0000_a"]), now).unwrap(), "2026-12-02-165012-0001");
        assert_eq!(next_version(&chain(&["2026-12-02-165012-0009_b"]), now).unwrap(), "2026-12-02-165012-000a");
        // A migration from the future (or an 18-digit one) does not push the new version ahead of the clock.
        assert_eq!(next_version(&chain(&["2999-01-01-000000_future", "202301030000000001_x"]), now).unwrap(), "2026-12-02-165012-000a");
    }

    #[test]
    fn a_newer_migration_on_disk_is_a_warning_and_a_taken_version_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let far_future = tmp.path().join("2999-01-01-000000_future");
        std::fs::create_dir_all(&far_future).unwrap();
        std::fs::write(far_future.join("up.sql"), "select 1").unwrap();
        let a = generate(tmp.path(), "a", &GenerateOptions::default()).unwrap();
        assert!(a.warnings[0].contains("sorts before `2999-01-01-000000_future`"), "{:?}", a.warnings);
        let taken = GenerateOptions { version: Some("2999-01-01-000000".into()), ..GenerateOptions::default() };
        assert!(generate(tmp.path(), "b", &taken).unwrap_err().to_string().contains("is taken by"));
        let odd = GenerateOptions { version: Some("12_34".into()), ..GenerateOptions::default() };
        assert!(generate(tmp.path(), "c", &odd).is_err());
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().starts_with(".generate")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
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
