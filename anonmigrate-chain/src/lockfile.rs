//! `migrations/anonmigrate.lock`: one line per migration with its up.sql hash, and a hash of the whole chain on
//! the first line, so two branches that each add a migration conflict in git instead of merging silently.
//!
//! Format (version 1), plain text, LF line endings:
//! ```text
//! anonmigrate-lock v1 chain=<sha256 of every line after the first, each ending in \n>
//! <sha256 of up.sql, line endings normalised> <migration directory name>
//! ...
//! ```
//! Lines are in chain order. Directory names may contain spaces: everything after the first space is the name.

use std::path::{Path, PathBuf};

use crate::chain::Chain;
use crate::error::ChainError;
use crate::hash::sha256_hex;

pub const LOCK_FILE_NAME: &str = "anonmigrate.lock";
const HEADER_PREFIX: &str = "anonmigrate-lock v1 chain=";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    pub checksum: String,
    pub dir_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockFile {
    pub entries: Vec<LockEntry>,
}

/// How the migrations on disk differ from the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockMismatch {
    /// On disk, not in the lock file.
    pub added: Vec<String>,
    /// In the lock file, not on disk.
    pub removed: Vec<String>,
    /// In both, with a different up.sql hash.
    pub edited: Vec<String>,
    /// The stored chain hash does not match the entries (a hand edit or a botched merge).
    pub corrupt_header: bool,
}

impl LockMismatch {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.edited.is_empty() && !self.corrupt_header
    }
}

impl LockFile {
    pub fn path_in(migrations_dir: &Path) -> PathBuf {
        migrations_dir.join(LOCK_FILE_NAME)
    }

    pub fn from_chain(chain: &Chain) -> LockFile {
        LockFile {
            entries: chain
                .migrations
                .iter()
                .map(|m| LockEntry {
                    checksum: m.checksum.clone(),
                    dir_name: m.dir_name.clone(),
                })
                .collect(),
        }
    }

    fn body(&self) -> String {
        let mut body = String::new();
        for entry in &self.entries {
            body.push_str(&entry.checksum);
            body.push(' ');
            body.push_str(&entry.dir_name);
            body.push('\n');
        }
        body
    }

    pub fn chain_hash(&self) -> String {
        sha256_hex(self.body().as_bytes())
    }

    pub fn render(&self) -> String {
        format!("{HEADER_PREFIX}{}\n{}", self.chain_hash(), self.body())
    }

    /// Parses the text of a lock file; returns the entries and whether the header hash matched them.
    pub fn parse(text: &str, path: &Path) -> Result<(LockFile, bool), ChainError> {
        let bad = |line: usize, reason: &str| ChainError::BadLockFile {
            path: path.to_path_buf(),
            line,
            reason: reason.to_owned(),
        };
        let text = text.replace("\r\n", "\n");
        let mut lines = text.lines();
        let header = lines.next().ok_or_else(|| bad(1, "the file is empty"))?;
        if header.starts_with("<<<<<<<") {
            return Err(bad(
                1,
                "it holds git conflict markers: two branches added migrations; resolve by running `cargo anonmigrate merge`",
            ));
        }
        let stored_hash = header
            .strip_prefix(HEADER_PREFIX)
            .ok_or_else(|| bad(1, "the first line is not `anonmigrate-lock v1 chain=<hash>`"))?;
        let mut entries = Vec::new();
        for (index, line) in lines.enumerate() {
            let line_no = index + 2;
            if line.starts_with("<<<<<<<") || line.starts_with("=======") || line.starts_with(">>>>>>>") {
                return Err(bad(
                    line_no,
                    "it holds git conflict markers: two branches added migrations; take either side, then run `cargo anonmigrate merge`",
                ));
            }
            let (checksum, dir_name) = line
                .split_once(' ')
                .ok_or_else(|| bad(line_no, "expected `<sha256> <migration directory>`"))?;
            if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(line_no, "the hash is not 64 hex digits"));
            }
            entries.push(LockEntry {
                checksum: checksum.to_owned(),
                dir_name: dir_name.to_owned(),
            });
        }
        let lock = LockFile { entries };
        let header_ok = lock.chain_hash() == stored_hash;
        Ok((lock, header_ok))
    }

    /// Reads the lock file beside the migrations; `Ok(None)` when there is none yet.
    pub fn read(migrations_dir: &Path) -> Result<Option<(LockFile, bool)>, ChainError> {
        let path = Self::path_in(migrations_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ChainError::Unreadable { path, source }),
        }
    }

    /// Writes atomically (temp file + rename) so a crash never leaves half a lock file.
    pub fn write(&self, migrations_dir: &Path) -> Result<(), ChainError> {
        let path = Self::path_in(migrations_dir);
        let tmp = migrations_dir.join(format!(".{LOCK_FILE_NAME}.tmp"));
        let io = |source| ChainError::Unreadable {
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, self.render()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Compares this lock file with the chain on disk.
    pub fn compare(&self, chain: &Chain, header_ok: bool) -> LockMismatch {
        let mut mismatch = LockMismatch {
            corrupt_header: !header_ok,
            ..LockMismatch::default()
        };
        for migration in &chain.migrations {
            match self.entries.iter().find(|e| e.dir_name == migration.dir_name) {
                None => mismatch.added.push(migration.dir_name.clone()),
                Some(entry) if entry.checksum != migration.checksum => {
                    mismatch.edited.push(migration.dir_name.clone())
                }
                Some(_) => {}
            }
        }
        for entry in &self.entries {
            if chain.migrations.iter().all(|m| m.dir_name != entry.dir_name) {
                mismatch.removed.push(entry.dir_name.clone());
            }
        }
        mismatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Migration;

    fn migration(dir_name: &str, up: &str) -> Migration {
        let (version, name) = crate::parse_dir_name(dir_name).unwrap();
        Migration {
            version,
            name,
            dir_name: dir_name.to_owned(),
            dir: PathBuf::from(dir_name),
            up_sql: up.to_owned(),
            down_sql: None,
            metadata: None,
            checksum: sha256_hex(up.as_bytes()),
        }
    }

    fn chain(items: &[(&str, &str)]) -> Chain {
        Chain {
            dir: PathBuf::new(),
            migrations: items.iter().map(|(d, u)| migration(d, u)).collect(),
        }
    }

    #[test]
    fn round_trips_and_detects_every_kind_of_difference() {
        let original = chain(&[("20240101_a", "select 1"), ("20240102_b c", "select 2")]);
        let text = LockFile::from_chain(&original).render();
        let (lock, ok) = LockFile::parse(&text, Path::new("x.lock")).unwrap();
        assert!(ok);
        assert!(lock.compare(&original, ok).is_empty());

        let changed = chain(&[("20240101_a", "select 10"), ("20240103_d", "select 3")]);
        let mismatch = lock.compare(&changed, ok);
        assert_eq!(mismatch.edited, ["20240101_a"]);
        assert_eq!(mismatch.added, ["20240103_d"]);
        assert_eq!(mismatch.removed, ["20240102_b c"]);
    }

    #[test]
    fn hand_edited_entries_break_the_header() {
        let original = chain(&[("20240101_a", "select 1")]);
        let text = LockFile::from_chain(&original).render();
        let tampered = text.replace("20240101_a", "20240101_z");
        let (_, ok) = LockFile::parse(&tampered, Path::new("x.lock")).unwrap();
        assert!(!ok);
    }

    #[test]
    fn conflict_markers_point_to_merge() {
        let text = "<<<<<<< HEAD\nanonmigrate-lock v1 chain=00\n";
        let err = LockFile::parse(text, Path::new("x.lock")).unwrap_err().to_string();
        assert!(err.contains("cargo anonmigrate merge"), "{err}");
    }
}
