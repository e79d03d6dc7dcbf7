//! Keeps `migrations/anonmigrate.lock` in step with the migrations on disk the way cargo keeps Cargo.lock:
//! commands that work on the chain bring it up to date and say what changed; read-only commands only report a
//! stale file; `--locked` turns any difference into an error before anything is touched. A lock file with git
//! conflict markers is never rewritten here: only `merge` resolves it.
//!
//! The lock file is a review and merge aid (two branches that add migrations conflict in git). Whether an
//! applied migration was edited is decided by the checksum recorded in the database, never by this file.

use std::path::PathBuf;

use anonmigrate_chain::{Chain, ChainError, LockFile, LockMismatch};

use crate::error::{Error, Result};

/// What a command may do with a lock file that does not match the migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockPolicy {
    /// Rewrite it (commands that work on the chain locally).
    Update,
    /// Report it, write nothing (status, history, doctor, heads).
    ReadOnly,
    /// `--locked`: any difference is an error, and nothing is written.
    Locked,
}

/// What [`sync`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// Matches the migrations (or there are no migrations and no lock file).
    Current,
    /// There was none; it was written.
    Created { migrations: usize },
    /// It was rewritten; this is what differed.
    Updated(LockMismatch),
    /// Read-only: it differs, nothing was written.
    Stale(LockMismatch),
    /// Read-only: there is none, nothing was written.
    Missing,
    /// Read-only: it holds git conflict markers.
    Conflicted,
}

#[derive(Debug, Clone)]
pub struct LockSync {
    /// For messages: `<migrations dir name>/anonmigrate.lock`.
    pub display: String,
    pub outcome: LockOutcome,
}

impl LockSync {
    /// The one line worth showing, if any (`Current` and a read-only `Missing` say nothing: a diesel project
    /// without a lock file gets one from the first command that works on its chain).
    pub fn message(&self) -> Option<String> {
        let path = &self.display;
        match &self.outcome {
            LockOutcome::Current | LockOutcome::Missing => None,
            LockOutcome::Created { migrations } => {
                Some(format!("created {path} ({migrations} migration{}); commit it with the migrations", plural(*migrations)))
            }
            LockOutcome::Updated(mismatch) => Some(format!("updated {path}: {}", describe(mismatch))),
            LockOutcome::Stale(mismatch) => Some(format!(
                "{path} is out of date ({}); nothing was written: a command that works on the chain (`run`, `schema`, `lock`) updates it",
                describe(mismatch)
            )),
            LockOutcome::Conflicted => Some(format!(
                "{path} holds git conflict markers; `cargo anonmigrate merge` resolves them (`heads` shows what each side added)"
            )),
        }
    }

    /// Whether the line is a warning (the file on disk is not right) rather than a report of a change.
    pub fn is_warning(&self) -> bool {
        matches!(self.outcome, LockOutcome::Stale(_) | LockOutcome::Conflicted)
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `added X, Y; edited Z; removed W`, by directory name.
pub fn describe(mismatch: &LockMismatch) -> String {
    let mut parts = Vec::new();
    for (verb, names) in [("added", &mismatch.added), ("edited", &mismatch.edited), ("removed", &mismatch.removed)] {
        if !names.is_empty() {
            parts.push(format!("{verb} {}", names.join(", ")));
        }
    }
    if mismatch.corrupt_header {
        parts.push("chain hash on the first line did not match its entries".to_owned());
    }
    parts.join("; ")
}

fn display(chain: &Chain) -> String {
    let dir = chain.dir.file_name().map_or_else(|| chain.dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    format!("{dir}/{}", anonmigrate_chain::LOCK_FILE_NAME)
}

/// Compares the lock file with `chain` and, as `policy` allows, rewrites it.
pub fn sync(chain: &Chain, policy: LockPolicy) -> Result<LockSync> {
    let display = display(chain);
    let locked_error = |what: String| {
        Error::Integrity(format!(
            "--locked: {what}; nothing was changed; run the command without --locked (or `cargo anonmigrate lock`) and commit migrations/anonmigrate.lock"
        ))
    };
    let read = match LockFile::read(&chain.dir) {
        Err(ChainError::ConflictedLockFile(path)) => {
            return match policy {
                LockPolicy::ReadOnly => Ok(LockSync { display, outcome: LockOutcome::Conflicted }),
                LockPolicy::Update | LockPolicy::Locked => Err(ChainError::ConflictedLockFile(path).into()),
            };
        }
        other => other?,
    };
    let outcome = match read {
        None if chain.migrations.is_empty() => LockOutcome::Current,
        None => match policy {
            LockPolicy::ReadOnly => LockOutcome::Missing,
            LockPolicy::Locked => return Err(locked_error(format!("there is no {display}"))),
            LockPolicy::Update => {
                LockFile::from_chain(chain).write(&chain.dir)?;
                LockOutcome::Created { migrations: chain.migrations.len() }
            }
        },
        Some((lock, header_ok)) => {
            let mismatch = lock.compare(chain, header_ok);
            if mismatch.is_empty() {
                LockOutcome::Current
            } else {
                match policy {
                    LockPolicy::ReadOnly => LockOutcome::Stale(mismatch),
                    LockPolicy::Locked => {
                        return Err(locked_error(format!("{display} does not match the migrations on disk ({})", describe(&mismatch))));
                    }
                    LockPolicy::Update => {
                        LockFile::updated_for(chain, Some(&lock)).write(&chain.dir)?;
                        LockOutcome::Updated(mismatch)
                    }
                }
            }
        }
    };
    Ok(LockSync { display, outcome })
}

/// The path of the lock file beside `chain`.
pub fn path(chain: &Chain) -> PathBuf {
    LockFile::path_in(&chain.dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, up: &str) {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("up.sql"), up).unwrap();
    }

    #[test]
    fn update_writes_and_names_the_change_read_only_and_locked_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "2024-01-01-000000_a", "select 1;");
        let chain = Chain::load(tmp.path()).unwrap();
        assert_eq!(sync(&chain, LockPolicy::ReadOnly).unwrap().outcome, LockOutcome::Missing);
        let err = sync(&chain, LockPolicy::Locked).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Integrity);
        assert!(!path(&chain).exists());
        let created = sync(&chain, LockPolicy::Update).unwrap();
        assert_eq!(created.outcome, LockOutcome::Created { migrations: 1 });
        assert_eq!(sync(&chain, LockPolicy::Locked).unwrap().outcome, LockOutcome::Current);

        write(tmp.path(), "2024-01-01-000000_a", "select 2;");
        write(tmp.path(), "2024-01-02-000000_b", "select 3;");
        let chain = Chain::load(tmp.path()).unwrap();
        let before = std::fs::read_to_string(path(&chain)).unwrap();
        let stale = sync(&chain, LockPolicy::ReadOnly).unwrap();
        assert!(stale.is_warning());
        let err = sync(&chain, LockPolicy::Locked).unwrap_err().to_string();
        assert!(err.contains("added 2024-01-02-000000_b; edited 2024-01-01-000000_a"), "{err}");
        assert_eq!(std::fs::read_to_string(path(&chain)).unwrap(), before, "read-only and --locked write nothing");
        let updated = sync(&chain, LockPolicy::Update).unwrap();
        let message = updated.message().unwrap();
        assert!(message.ends_with("/anonmigrate.lock: added 2024-01-02-000000_b; edited 2024-01-01-000000_a"), "{message}");
        assert_eq!(sync(&chain, LockPolicy::Locked).unwrap().outcome, LockOutcome::Current);
    }

    #[test]
    fn conflict_markers_are_never_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "2024-01-01-000000_a", "select 1;");
        let chain = Chain::load(tmp.path()).unwrap();
        let text = "<<<<<<< HEAD\nanonmigrate-lock v1 chain=00\n=======\nanonmigrate-lock v1 chain=11\n>>>>>>> b\n";
        std::fs::write(path(&chain), text).unwrap();
        assert_eq!(sync(&chain, LockPolicy::ReadOnly).unwrap().outcome, LockOutcome::Conflicted);
        let err = sync(&chain, LockPolicy::Update).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Integrity);
        assert!(err.to_string().contains("cargo anonmigrate merge"), "{err}");
        assert_eq!(std::fs::read_to_string(path(&chain)).unwrap(), text);
    }
}
