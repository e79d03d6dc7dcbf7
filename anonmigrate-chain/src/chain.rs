//! Finds the migrations in a directory, validates them and orders them the way diesel does.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::ChainError;
use crate::hash::{normalise_line_endings, sha256_hex};

/// One `<version>_<name>/` directory with its files read into memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Text before the first `_` with every `-` removed; diesel's version, compared as a string.
    pub version: String,
    /// Text after the first `_`.
    pub name: String,
    /// The directory name as on disk (`2024-01-31-120000_add_users`).
    pub dir_name: String,
    pub dir: PathBuf,
    pub up_sql: String,
    /// `None` when there is no down.sql; `Some("")` when it exists but is empty.
    pub down_sql: Option<String>,
    /// Raw `metadata.toml`, parsed by the engine (this crate stays free of a TOML parser).
    pub metadata: Option<String>,
    /// SHA-256 of up.sql with line endings normalised.
    pub checksum: String,
}

impl Migration {
    pub fn up_path(&self) -> PathBuf {
        self.dir.join("up.sql")
    }

    pub fn down_path(&self) -> PathBuf {
        self.dir.join("down.sql")
    }
}

/// Every migration of a directory, ordered by version.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
}

/// Splits a directory name the way diesel does: the version is the text before the first `_` (the whole name
/// when there is none) with every `-` removed, compared as a string; the name is the text after that `_`.
/// `2024-01-31-120000_add users` → (`20240131120000`, `add users`); `2026-12-02-165012-000a_x` →
/// (`20261202165012000a`, `x`); `abc_x` → (`abc`, `x`). `None` only when the version would be empty (`_x`, `-_x`):
/// diesel would record an empty version, which no command could name.
pub fn parse_dir_name(dir_name: &str) -> Option<(String, String)> {
    let (raw_version, name) = dir_name.split_once('_').unwrap_or((dir_name, ""));
    let version: String = raw_version.chars().filter(|c| *c != '-').collect();
    (!version.is_empty()).then(|| (version, name.to_owned()))
}

impl Chain {
    /// Reads and validates every migration below `dir`. Loose files and entries starting with `.` are skipped,
    /// as diesel skips them.
    pub fn load(dir: &Path) -> Result<Chain, ChainError> {
        let chain = Self::load_allowing_shared_versions(dir)?;
        for pair in chain.migrations.windows(2) {
            if pair[0].version == pair[1].version {
                return Err(ChainError::DuplicateVersion {
                    version: pair[0].version.clone(),
                    first: pair[0].dir.clone(),
                    second: pair[1].dir.clone(),
                    suggestion: with_subversion(&pair[1].dir_name),
                });
            }
        }
        Ok(chain)
    }

    /// [`Chain::load`] without refusing two directories with one version (what `merge` repairs after a git merge
    /// of two branches that generated migrations in the same second); equal versions are adjacent.
    pub fn load_allowing_shared_versions(dir: &Path) -> Result<Chain, ChainError> {
        let mut migrations = Vec::new();
        for dir_name in Self::migration_dir_names(dir)? {
            migrations.push(read_migration(dir, &dir_name)?);
        }
        // Diesel compares versions as strings; a stable sort keeps equal versions adjacent.
        migrations.sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.dir_name.cmp(&b.dir_name)));
        Ok(Chain {
            dir: dir.to_path_buf(),
            migrations,
        })
    }

    /// Names of the subdirectories that are migrations (unvalidated), unsorted.
    pub fn migration_dir_names(dir: &Path) -> Result<Vec<String>, ChainError> {
        if !dir.is_dir() {
            return Err(ChainError::MissingDirectory(dir.to_path_buf()));
        }
        let unreadable = |source| ChainError::Unreadable {
            path: dir.to_path_buf(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                return Err(ChainError::BadName(entry.path()));
            };
            // The directory listing already knows the entry's type; only a symlink needs a stat to follow it.
            let is_dir = match entry.file_type() {
                Ok(kind) if !kind.is_symlink() => kind.is_dir(),
                _ => entry.path().is_dir(),
            };
            if name.starts_with('.') || !is_dir {
                continue;
            }
            names.push(name.to_owned());
        }
        Ok(names)
    }

    pub fn find(&self, version: &str) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.version == version)
    }

    /// The migration a command-line argument names, in any spelling diesel uses: the version with or without
    /// dashes (`20250115090400`, `2025-01-15-090400`), the directory name, or a path to the directory.
    pub fn resolve(&self, arg: &str) -> Option<&Migration> {
        let last = last_component(arg);
        if let Some(m) = self.migrations.iter().find(|m| m.dir_name == last) {
            return Some(m);
        }
        let (version, name) = split_arg(last);
        self.migrations
            .iter()
            .find(|m| m.version == version && name.is_none_or(|n| n == m.name))
    }

    /// Directory names close to an argument that names no migration (for the error message): those whose
    /// version starts with the argument's digits or whose name contains its name part; else the newest few.
    pub fn candidates(&self, arg: &str) -> Vec<&str> {
        let last = last_component(arg);
        let (version, name) = split_arg(last);
        // Only a digit version is taken apart: `index_message` is a name fragment, not version `index`.
        let digits = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
        let close: Vec<&str> = self
            .migrations
            .iter()
            .filter(|m| {
                (digits && (m.version.starts_with(&version) || version.starts_with(&m.version)))
                    || (digits && name.is_some_and(|n| !n.is_empty() && m.name.contains(n)))
                    || (!last.is_empty() && m.dir_name.contains(last))
            })
            .map(|m| m.dir_name.as_str())
            .collect();
        if close.is_empty() {
            self.migrations.iter().rev().take(5).rev().map(|m| m.dir_name.as_str()).collect()
        } else {
            close
        }
    }

    pub fn latest(&self) -> Option<&Migration> {
        self.migrations.last()
    }
}

/// `2026-12-02-165012-0000_x` → `2026-12-02-165012-0001_x`; `20240101000000_x` → `20240101000000-0001_x`: the
/// same moment with the next hex subversion, as diesel's `generate` writes a second migration within one second.
pub fn with_subversion(dir_name: &str) -> String {
    let (raw, name) = dir_name.split_once('_').unwrap_or((dir_name, ""));
    let bumped = raw
        .rsplit_once('-')
        .filter(|(_, sub)| sub.len() == 4 && sub.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|(base, sub)| Some(format!("{base}-{:04x}", u16::from_str_radix(sub, 16).ok()?.checked_add(1)?)));
    format!("{}_{name}", bumped.unwrap_or_else(|| format!("{raw}-0001")))
}

/// The last path component of an argument (`migrations/2025-01-15-090400_x/` → `2025-01-15-090400_x`).
fn last_component(arg: &str) -> &str {
    let trimmed = arg.trim().trim_end_matches(['/', '\\']);
    trimmed.rsplit(['/', '\\']).next().unwrap_or(trimmed)
}

/// `2025-01-15-090400_name` → (`20250115090400`, Some(`name`)); `2025-01-15-090400` → (`20250115090400`, None).
fn split_arg(arg: &str) -> (String, Option<&str>) {
    let (raw, name) = match arg.split_once('_') {
        Some((raw, name)) => (raw, Some(name)),
        None => (arg, None),
    };
    (raw.chars().filter(|c| *c != '-').collect(), name)
}

/// The version an argument spells (`2025-01-15-090400_x` → `20250115090400`), for a record that may have no
/// directory on disk (diesel's derivation: before the first `_`, dashes removed); `None` when that is empty.
pub fn version_of_arg(arg: &str) -> Option<String> {
    let (version, _) = split_arg(last_component(arg));
    (!version.is_empty()).then_some(version)
}

fn read_migration(root: &Path, dir_name: &str) -> Result<Migration, ChainError> {
    let dir = root.join(dir_name);
    let (version, name) = parse_dir_name(dir_name).ok_or_else(|| ChainError::BadName(dir.clone()))?;
    // A line break in a name would end the `--` comment it is written into (`run --sql`) and start SQL, and
    // would split the lock file's line; such names are refused before anything uses them.
    if dir_name.chars().any(char::is_control) {
        return Err(ChainError::ControlCharacter {
            dir: root.to_path_buf(),
            escaped: dir_name.escape_debug().to_string(),
        });
    }
    let up_path = dir.join("up.sql");
    let up_sql = read_text(&up_path)?.ok_or_else(|| ChainError::MissingUpSql(dir.clone()))?;
    if up_sql.trim().is_empty() {
        return Err(ChainError::EmptyUpSql(up_path));
    }
    let down_sql = read_text(&dir.join("down.sql"))?;
    let metadata = read_text(&dir.join("metadata.toml"))?;
    let checksum = sha256_hex(normalise_line_endings(&up_sql).as_bytes());
    Ok(Migration {
        version,
        name,
        dir_name: dir_name.to_owned(),
        dir,
        up_sql,
        down_sql,
        metadata,
        checksum,
    })
}

/// Reads a UTF-8 file; `Ok(None)` when it does not exist.
fn read_text(path: &Path) -> Result<Option<String>, ChainError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ChainError::Unreadable {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    String::from_utf8(bytes).map(Some).map_err(|e| ChainError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subversions() {
        assert_eq!(with_subversion("2026-12-02-165012-0000_x"), "2026-12-02-165012-0001_x");
        assert_eq!(with_subversion("2026-12-02-165012-0009_x"), "2026-12-02-165012-000a_x");
        assert_eq!(with_subversion("20240101000000_b"), "20240101000000-0001_b");
        assert_eq!(with_subversion("abc_x"), "abc-0001_x");
    }

    #[test]
    fn dir_names() {
        let cases = [
            ("2024-01-31-120000_add_users", Some(("20240131120000", "add_users"))),
            ("00000000000000_diesel_initial_setup", Some(("00000000000000", "diesel_initial_setup"))),
            ("20240131_name with spaces", Some(("20240131", "name with spaces"))),
            ("2024013112000099999_long", Some(("2024013112000099999", "long"))),
            // What diesel accepts: non-numeric versions, hex subversions, `-0000`, no `_` at all.
            ("no_version_here", Some(("no", "version_here"))),
            ("abc_x", Some(("abc", "x"))),
            ("7letters_x", Some(("7letters", "x"))),
            ("2026-12-02-165012-000a_x", Some(("20261202165012000a", "x"))),
            ("2026-12-02-165012-0000_x", Some(("202612021650120000", "x"))),
            ("20240131", Some(("20240131", ""))),
            ("20240131_", Some(("20240131", ""))),
            ("-_x", None),
            ("_x", None),
        ];
        for (input, expected) in cases {
            let got = parse_dir_name(input);
            let expected = expected.map(|(v, n)| (v.to_owned(), n.to_owned()));
            assert_eq!(got, expected, "{input}");
        }
    }

    fn write(root: &Path, rel: &str, contents: &[u8]) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    #[test]
    fn a_migration_is_named_in_any_spelling_diesel_uses() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "2025-01-15-090300_messages/up.sql", b"select 1;");
        write(tmp.path(), "2025-01-15-090400_index_message_embeddings/up.sql", b"select 2;");
        let chain = Chain::load(tmp.path()).unwrap();
        for arg in [
            "20250115090400",
            "2025-01-15-090400",
            "2025-01-15-090400_index_message_embeddings",
            "20250115090400_index_message_embeddings",
            "migrations/2025-01-15-090400_index_message_embeddings/",
        ] {
            assert_eq!(chain.resolve(arg).map(|m| m.version.as_str()), Some("20250115090400"), "{arg}");
        }
        assert!(chain.resolve("2025-01-15-090400_other_name").is_none());
        assert!(chain.resolve("2025011509").is_none(), "a prefix is not a version");
        assert_eq!(chain.candidates("2025011509"), ["2025-01-15-090300_messages", "2025-01-15-090400_index_message_embeddings"]);
        assert_eq!(chain.candidates("index_message"), ["2025-01-15-090400_index_message_embeddings"]);
        assert_eq!(version_of_arg("2024-01-01-000000_gone").as_deref(), Some("20240101000000"));
        assert_eq!(version_of_arg("gone").as_deref(), Some("gone"));
        assert_eq!(version_of_arg("-_gone"), None);
    }

    #[test]
    fn loads_in_diesel_order_and_skips_loose_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, "2024-02-01-000000_b/up.sql", b"select 2");
        write(root, "2024-01-01-000099_a/up.sql", b"select 1;");
        write(root, "2024-01-01-000099_a/down.sql", b"");
        write(root, ".keep", b"");
        write(root, "README.md", b"hi");
        write(root, ".hidden_dir/up.sql", b"select 3;");
        let chain = Chain::load(root).unwrap();
        let names: Vec<_> = chain.migrations.iter().map(|m| m.dir_name.as_str()).collect();
        assert_eq!(names, ["2024-01-01-000099_a", "2024-02-01-000000_b"]);
        assert_eq!(chain.migrations[0].down_sql.as_deref(), Some(""));
        assert_eq!(chain.migrations[1].down_sql, None);
    }

    #[test]
    fn rejects_bad_directories() {
        type Setup = fn(&Path);
        let cases: [(Setup, &str); 7] = [
            (
                |r| write(r, "20240101000000_x\nDROP TABLE victim; --/up.sql", b"select 1;"),
                "`20240101000000_x\\nDROP TABLE victim; --` in",
            ),
            (|r| write(r, "20240101000000_tab\there/up.sql", b"select 1;"), "control character"),
            (|r| write(r, "20240101000000_a/down.sql", b"x"), "has no up.sql"),
            (|r| write(r, "20240101000000_a/up.sql", b" \n\t"), "is empty"),
            (|r| write(r, "20240101000000_a/up.sql", b"select '\xff';"), "not valid UTF-8"),
            (|r| write(r, "-_x/up.sql", b"x"), "has no version"),
            (
                |r| {
                    write(r, "2024-01-01-000000_a/up.sql", b"x");
                    write(r, "20240101000000_b/up.sql", b"x");
                },
                "share version 20240101000000: `",
            ),
        ];
        for (setup, expected) in cases {
            let tmp = tempfile::tempdir().unwrap();
            setup(tmp.path());
            let err = Chain::load(tmp.path()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
