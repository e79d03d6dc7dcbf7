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
//!
//! After the entries, one line per migration that `merge` gave a new version, kept while the new version is on
//! disk, so `run` can renumber the record of a database that applied it under its old version instead of
//! applying it again (the checksum must match too):
//! ```text
//! renamed <old version> <new version>
//! ```
//!
//! After the entries, one section per generated schema file, written by `cargo anonmigrate schema` and read by
//! the build-script drift gate (see `drift`). It records what the file was generated from, so the gate can tell
//! which migrations changed since, and a hash per top-level item of the file, so it can point at hand edits:
//! ```text
//! schema <path of schema.rs relative to the migrations directory>
//!   sha256 <hash of the file, line endings normalised>
//!   chain <chain hash of the entries it was generated from>
//!   block <16 hex digits> <label>          (one per top-level item, in file order)
//!   from <sha256> <migration directory>    (only when the entries have moved on since generation)
//! ```
//! The header hash covers the entries only, so regenerating schema.rs never changes the first line.

use std::path::{Path, PathBuf};

use crate::chain::Chain;
use crate::error::ChainError;
use crate::hash::{normalise_line_endings, sha256_hex};

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
    /// Versions `merge` changed, oldest first.
    pub renames: Vec<Rename>,
    pub schemas: Vec<SchemaRecord>,
}

/// A migration that `merge` moved from one version to another (versions as diesel compares them, no dashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

/// What a generated schema file looked like and what it was generated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRecord {
    /// Relative to the migrations directory, `/`-separated.
    pub path: String,
    pub checksum: String,
    pub chain: String,
    pub blocks: Vec<SchemaBlock>,
    /// The chain at generation time, kept only once the entries have changed after it.
    pub generated_from: Option<Vec<LockEntry>>,
}

/// One top-level item of a schema file (`diesel::table!` block, `sql_types` module, `joinable!` lines...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaBlock {
    pub hash: String,
    pub label: String,
    /// 1-based first and last line in the file (not stored; filled when splitting a file).
    pub lines: (usize, usize),
}

impl SchemaRecord {
    /// Describes `content` (a freshly generated schema file) as generated from `entries`.
    pub fn new(path: String, content: &str, entries: &[LockEntry]) -> SchemaRecord {
        let content = normalise_line_endings(content);
        SchemaRecord {
            path,
            checksum: sha256_hex(content.as_bytes()),
            chain: chain_hash(entries),
            blocks: split_blocks(&content),
            generated_from: None,
        }
    }

    /// The entries this schema file was generated from.
    pub fn source_entries<'a>(&'a self, lock: &'a LockFile) -> &'a [LockEntry] {
        self.generated_from.as_deref().unwrap_or(&lock.entries)
    }
}

/// Splits a schema file into top-level items: runs of lines separated by blank lines outside any braces (a
/// blank line inside a `diesel::table!` block does not end it). Each item gets a readable label.
pub fn split_blocks(content: &str) -> Vec<SchemaBlock> {
    let mut blocks = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut first_line = 1;
    let mut depth: i64 = 0;
    for (index, line) in content.lines().enumerate() {
        if line.trim().is_empty() && depth <= 0 {
            if !current.is_empty() {
                blocks.push(block_of(&current, first_line));
                current.clear();
            }
            first_line = index + 2;
            continue;
        }
        // Brace counting ignores strings and comments: generated schema files put braces only in code.
        depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
        current.push(line);
    }
    if !current.is_empty() {
        blocks.push(block_of(&current, first_line));
    }
    blocks
}

fn block_of(lines: &[&str], first_line: usize) -> SchemaBlock {
    let text = lines.join("\n");
    SchemaBlock {
        hash: sha256_hex(text.as_bytes())[..16].to_owned(),
        label: label_of(lines),
        lines: (first_line, first_line + lines.len() - 1),
    }
}

fn label_of(lines: &[&str]) -> String {
    let first = lines[0].trim();
    if first.starts_with("diesel::table!") {
        // The table line is the first inner line that is not a `use`, attribute or doc comment.
        let table = lines[1..].iter().map(|l| l.trim()).find(|l| {
            !l.is_empty() && !l.starts_with("use ") && !l.starts_with("#[") && !l.starts_with("//")
        });
        if let Some(table) = table {
            let name = table.split([' ', '(']).next().unwrap_or(table);
            return format!("table {name}");
        }
    }
    let mut label: String = first.chars().take(60).collect();
    if first.chars().count() > 60 {
        label.push('…');
    }
    label
}

/// Hash of a list of entries, as stored on the first line.
pub fn chain_hash(entries: &[LockEntry]) -> String {
    sha256_hex(entries_body(entries).as_bytes())
}

/// The chain hash of every prefix of `entries`: element `k` is [`chain_hash`] of `entries[..=k]`, so the last one
/// is the lock file's own header hash. Computed in one pass (the template cache keys a database per prefix).
pub fn chain_prefix_hashes(entries: &[LockEntry]) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    entries
        .iter()
        .map(|entry| {
            hasher.update(entry.checksum.as_bytes());
            hasher.update(b" ");
            hasher.update(entry.dir_name.as_bytes());
            hasher.update(b"\n");
            format!("{:x}", hasher.clone().finalize())
        })
        .collect()
}

fn entries_body(entries: &[LockEntry]) -> String {
    let mut body = String::new();
    for entry in entries {
        body.push_str(&entry.checksum);
        body.push(' ');
        body.push_str(&entry.dir_name);
        body.push('\n');
    }
    body
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

/// Whether `text` holds git conflict markers (`<<<<<<<`, `=======`, `>>>>>>>` at the start of a line).
pub fn has_conflict_markers(text: &str) -> bool {
    text.lines().any(|line| line.starts_with("<<<<<<<") || line.starts_with(">>>>>>>"))
}

/// Both sides of a lock file that `git merge` left with conflict markers: two branches each added migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictedLock {
    /// The label git wrote after `<<<<<<<` (usually `HEAD`: the branch merged into).
    pub ours_label: String,
    /// The label after `>>>>>>>` (the branch being merged).
    pub theirs_label: String,
    pub ours: LockFile,
    pub theirs: LockFile,
}

impl ConflictedLock {
    /// Splits conflicted text into the two sides (lines outside the markers belong to both; a diff3 base
    /// section is dropped) and parses each. `Ok(None)` when the text has no markers.
    pub fn parse(text: &str, path: &Path) -> Result<Option<ConflictedLock>, ChainError> {
        let text = text.replace("\r\n", "\n");
        if !has_conflict_markers(&text) {
            return Ok(None);
        }
        #[derive(PartialEq)]
        enum Part {
            Both,
            Ours,
            Base,
            Theirs,
        }
        let mut part = Part::Both;
        let (mut ours, mut theirs) = (String::new(), String::new());
        let (mut ours_label, mut theirs_label) = (String::new(), String::new());
        for line in text.lines() {
            if let Some(label) = line.strip_prefix("<<<<<<<") {
                part = Part::Ours;
                if ours_label.is_empty() {
                    ours_label = label.trim().to_owned();
                }
            } else if line.starts_with("|||||||") && part == Part::Ours {
                part = Part::Base;
            } else if line.starts_with("=======") && part != Part::Both {
                part = Part::Theirs;
            } else if let Some(label) = line.strip_prefix(">>>>>>>") {
                part = Part::Both;
                if theirs_label.is_empty() {
                    theirs_label = label.trim().to_owned();
                }
            } else {
                for (side, keep) in [(&mut ours, part != Part::Theirs), (&mut theirs, part != Part::Ours)] {
                    if keep && part != Part::Base {
                        side.push_str(line);
                        side.push('\n');
                    }
                }
            }
        }
        let label = |label: String, fallback: &str| if label.is_empty() { fallback.to_owned() } else { label };
        Ok(Some(ConflictedLock {
            ours: LockFile::parse(&ours, path)?.0,
            theirs: LockFile::parse(&theirs, path)?.0,
            ours_label: label(ours_label, "ours"),
            theirs_label: label(theirs_label, "theirs"),
        }))
    }

    /// Migrations one side lists and the other does not: (only ours, only theirs), each in its file order.
    pub fn added_by_each(&self) -> (Vec<String>, Vec<String>) {
        let only = |a: &LockFile, b: &LockFile| -> Vec<String> {
            a.entries
                .iter()
                .filter(|e| b.entries.iter().all(|o| o.dir_name != e.dir_name))
                .map(|e| e.dir_name.clone())
                .collect()
        };
        (only(&self.ours, &self.theirs), only(&self.theirs, &self.ours))
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
            renames: Vec::new(),
            schemas: Vec::new(),
        }
    }

    /// Records that a migration moved from version `from` to `to`. Earlier moves of the same migration now lead
    /// to `to` as well: a database may have applied it under any of its old versions.
    pub fn record_rename(&mut self, from: &str, to: &str) {
        for rename in self.renames.iter_mut().filter(|r| r.to == from) {
            rename.to = to.to_owned();
        }
        self.renames.retain(|r| r.from != from);
        self.renames.push(Rename { from: from.to_owned(), to: to.to_owned() });
    }

    /// The lock file for `chain`, keeping the schema records of `previous`. A schema record that described the
    /// previous entries keeps a copy of them, so the drift gate can still name what changed since generation.
    pub fn updated_for(chain: &Chain, previous: Option<&LockFile>) -> LockFile {
        let mut lock = LockFile::from_chain(chain);
        let Some(previous) = previous else {
            return lock;
        };
        // A rename matters only while the renamed migration is on disk.
        lock.renames = previous.renames.iter().filter(|r| chain.migrations.iter().any(|m| m.version == r.to)).cloned().collect();
        let new_hash = lock.chain_hash();
        for record in &previous.schemas {
            let mut record = record.clone();
            if record.generated_from.is_none() && record.chain == previous.chain_hash() {
                record.generated_from = Some(previous.entries.clone());
            }
            if record.chain == new_hash {
                record.generated_from = None;
            }
            lock.schemas.push(record);
        }
        lock
    }

    /// Records (or replaces) the schema file generated from the current entries.
    pub fn record_schema(&mut self, path: String, content: &str) {
        let record = SchemaRecord::new(path, content, &self.entries);
        self.schemas.retain(|r| r.path != record.path);
        self.schemas.push(record);
        self.schemas.sort_by(|a, b| a.path.cmp(&b.path));
    }

    pub fn chain_hash(&self) -> String {
        chain_hash(&self.entries)
    }

    pub fn render(&self) -> String {
        let mut text = format!("{HEADER_PREFIX}{}\n{}", self.chain_hash(), entries_body(&self.entries));
        for rename in &self.renames {
            text.push_str(&format!("renamed {} {}\n", rename.from, rename.to));
        }
        for record in &self.schemas {
            text.push_str(&format!("schema {}\n  sha256 {}\n  chain {}\n", record.path, record.checksum, record.chain));
            for block in &record.blocks {
                text.push_str(&format!("  block {} {}\n", block.hash, block.label));
            }
            for entry in record.generated_from.iter().flatten() {
                text.push_str(&format!("  from {} {}\n", entry.checksum, entry.dir_name));
            }
        }
        text
    }

    /// Parses the text of a lock file; returns the entries and whether the header hash matched them.
    pub fn parse(text: &str, path: &Path) -> Result<(LockFile, bool), ChainError> {
        let bad = |line: usize, reason: &str| ChainError::BadLockFile {
            path: path.to_path_buf(),
            line,
            reason: reason.to_owned(),
        };
        let text = text.replace("\r\n", "\n");
        if has_conflict_markers(&text) {
            return Err(ChainError::ConflictedLockFile(path.to_path_buf()));
        }
        let mut lines = text.lines();
        let header = lines.next().ok_or_else(|| bad(1, "the file is empty"))?;
        let stored_hash = header
            .strip_prefix(HEADER_PREFIX)
            .ok_or_else(|| bad(1, "the first line is not `anonmigrate-lock v1 chain=<hash>`"))?;
        let mut entries = Vec::new();
        let mut renames = Vec::new();
        let mut schemas: Vec<SchemaRecord> = Vec::new();
        let entry_of = |line: &str, line_no: usize| -> Result<LockEntry, ChainError> {
            let (checksum, dir_name) = line
                .split_once(' ')
                .ok_or_else(|| bad(line_no, "expected `<sha256> <migration directory>`"))?;
            if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(line_no, "the hash is not 64 hex digits"));
            }
            Ok(LockEntry {
                checksum: checksum.to_owned(),
                dir_name: dir_name.to_owned(),
            })
        };
        for (index, line) in lines.enumerate() {
            let line_no = index + 2;
            if let Some(path) = line.strip_prefix("schema ") {
                schemas.push(SchemaRecord {
                    path: path.to_owned(),
                    checksum: String::new(),
                    chain: String::new(),
                    blocks: Vec::new(),
                    generated_from: None,
                });
                continue;
            }
            if let Some(field) = line.strip_prefix("  ") {
                let record = schemas
                    .last_mut()
                    .ok_or_else(|| bad(line_no, "an indented line outside a `schema` section"))?;
                let (key, value) = field.split_once(' ').unwrap_or((field, ""));
                match key {
                    "sha256" => record.checksum = value.to_owned(),
                    "chain" => record.chain = value.to_owned(),
                    "block" => {
                        let (hash, label) = value.split_once(' ').unwrap_or((value, ""));
                        record.blocks.push(SchemaBlock {
                            hash: hash.to_owned(),
                            label: label.to_owned(),
                            lines: (0, 0),
                        });
                    }
                    "from" => record.generated_from.get_or_insert_with(Vec::new).push(entry_of(value, line_no)?),
                    _ => return Err(bad(line_no, &format!("unknown schema field `{key}`"))),
                }
                continue;
            }
            if !schemas.is_empty() {
                return Err(bad(line_no, "migration entries must come before the `schema` sections"));
            }
            if let Some(rename) = line.strip_prefix("renamed ") {
                let versions = rename.split_once(' ').filter(|(from, to)| {
                    [from, to].iter().all(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                });
                let (from, to) = versions.ok_or_else(|| bad(line_no, "expected `renamed <old version> <new version>`"))?;
                renames.push(Rename { from: from.to_owned(), to: to.to_owned() });
                continue;
            }
            if !renames.is_empty() {
                return Err(bad(line_no, "migration entries must come before the `renamed` lines"));
            }
            entries.push(entry_of(line, line_no)?);
        }
        let lock = LockFile { entries, renames, schemas };
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

    /// Reads a lock file that may hold git conflict markers: `Ok(None)` when there is no lock file or it has no
    /// markers (use [`LockFile::read`] then), otherwise both sides of the conflict.
    pub fn read_conflicted(migrations_dir: &Path) -> Result<Option<ConflictedLock>, ChainError> {
        let path = Self::path_in(migrations_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => ConflictedLock::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ChainError::Unreadable { path, source }),
        }
    }

    /// Writes atomically (unique temp file + fsync + rename) so a crash never leaves half a lock file.
    pub fn write(&self, migrations_dir: &Path) -> Result<(), ChainError> {
        let path = Self::path_in(migrations_dir);
        crate::write_atomically(&path, self.render()).map_err(|source| ChainError::Unreadable { path, source })
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

    #[test]
    fn chain_prefix_hashes_are_the_chain_hashes_of_each_prefix() {
        let entries: Vec<LockEntry> = (0..4)
            .map(|i| LockEntry { checksum: format!("{i:064x}"), dir_name: format!("0000000000000{i}_m{i}") })
            .collect();
        let hashes = chain_prefix_hashes(&entries);
        assert_eq!(hashes.len(), 4);
        for (k, hash) in hashes.iter().enumerate() {
            assert_eq!(*hash, chain_hash(&entries[..=k]));
        }
    }

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
    fn renames_round_trip_follow_moves_and_go_when_the_migration_does() {
        let moved = chain(&[("20240101_a", "select 1"), ("20240105_b", "select 2")]);
        let mut lock = LockFile::from_chain(&moved);
        lock.record_rename("20240102", "20240104");
        lock.record_rename("20240104", "20240105");
        let text = lock.render();
        assert!(text.ends_with("20240105_b\nrenamed 20240102 20240105\nrenamed 20240104 20240105\n"), "{text}");
        let (parsed, ok) = LockFile::parse(&text, Path::new("x.lock")).unwrap();
        assert!(ok, "renames are outside the chain hash");
        assert_eq!(parsed, lock);
        assert_eq!(LockFile::updated_for(&moved, Some(&parsed)).renames, lock.renames);
        let gone = chain(&[("20240101_a", "select 1")]);
        assert!(LockFile::updated_for(&gone, Some(&parsed)).renames.is_empty());
        let misplaced = text.replace("renamed 20240104 20240105\n", "").replace("20240101_a\n", "20240101_a\nrenamed 1 2\n");
        assert!(LockFile::parse(&misplaced, Path::new("x.lock")).is_err());
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

    #[test]
    fn both_sides_of_a_git_conflict_are_read() {
        let base = chain(&[("20240101_a", "select 1")]);
        let ours = LockFile::from_chain(&chain(&[("20240101_a", "select 1"), ("20240103_ours", "select 3")]));
        let theirs = LockFile::from_chain(&chain(&[("20240101_a", "select 1"), ("20240102_theirs", "select 2")]));
        let (o, t) = (ours.render(), theirs.render());
        let (o_lines, t_lines): (Vec<&str>, Vec<&str>) = (o.lines().collect(), t.lines().collect());
        // What git writes (diff3 style, so the base section must be skipped too).
        let text = format!(
            "<<<<<<< HEAD\n{}\n||||||| base\n{}=======\n{}\n>>>>>>> feature\n{}\n<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> feature\n",
            o_lines[0],
            LockFile::from_chain(&base).render().lines().next().unwrap().to_owned() + "\n",
            t_lines[0],
            o_lines[1],
            o_lines[2],
            t_lines[2]
        );
        assert!(LockFile::parse(&text, Path::new("x.lock")).is_err());
        let conflict = ConflictedLock::parse(&text, Path::new("x.lock")).unwrap().unwrap();
        assert_eq!((conflict.ours_label.as_str(), conflict.theirs_label.as_str()), ("HEAD", "feature"));
        assert_eq!(conflict.ours.entries, ours.entries);
        assert_eq!(conflict.theirs.entries, theirs.entries);
        assert_eq!(conflict.added_by_each(), (vec!["20240103_ours".to_owned()], vec!["20240102_theirs".to_owned()]));
        assert_eq!(ConflictedLock::parse(&o, Path::new("x.lock")).unwrap(), None);
    }
}
