//! The build-script drift gate: fails `cargo build` when a schema file is not what `cargo anonmigrate schema`
//! generated from exactly the committed migrations. Reads files and the lock file only: no database, no network.
//!
//! In a `build.rs`:
//! ```no_run
//! fn main() {
//!     anonmigrate_chain::drift::Gate::new("../migrations", "src/schema.rs").run();
//! }
//! ```

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::chain::Chain;
use crate::error::ChainError;
use crate::hash::{normalise_line_endings, sha256_hex};
use crate::lockfile::{LockFile, SchemaRecord, split_blocks};

/// The command that makes the gate pass again after a migration changed.
pub const FIX_COMMAND: &str = "cargo anonmigrate schema";

/// The command that turns a hand edit of schema.rs into a migration.
pub const AUTOGENERATE_COMMAND: &str = "cargo anonmigrate generate NAME --autogenerate";

/// The command that throws a hand edit of schema.rs away.
pub const DISCARD_COMMAND: &str = "cargo anonmigrate schema --force";

/// Set to `warn` to turn drift errors into warnings while iterating locally (CI keeps the error).
pub const MODE_VARIABLE: &str = "ANONMIGRATE_DRIFT";

/// One way the schema file disagrees with the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    MigrationAdded(String),
    MigrationEdited(String),
    MigrationRemoved(String),
    /// A top-level item of the schema file differs from what was generated.
    SchemaEdited { first_line: usize, last_line: usize, label: String },
    /// Lines that were not in the generated file.
    SchemaAdded { first_line: usize, last_line: usize, label: String },
    /// A generated item that is gone from the file.
    SchemaRemoved { label: String },
    /// The file differs but no item can be blamed (for instance only blank lines changed).
    SchemaChanged,
    /// No lock file, or no record of this schema file in it.
    NeverGenerated,
    /// The schema file does not exist.
    SchemaMissing,
}

impl Finding {
    /// A hand edit of the schema file (rather than a migration that changed, or a missing record).
    pub fn is_hand_edit(&self) -> bool {
        matches!(
            self,
            Finding::SchemaEdited { .. } | Finding::SchemaAdded { .. } | Finding::SchemaRemoved { .. } | Finding::SchemaChanged
        )
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::MigrationAdded(name) => write!(f, "migration added since schema.rs was generated: {name}"),
            Finding::MigrationEdited(name) => write!(f, "migration edited since schema.rs was generated: {name}"),
            Finding::MigrationRemoved(name) => write!(f, "migration removed since schema.rs was generated: {name}"),
            Finding::SchemaEdited { first_line, last_line, label } => {
                write!(f, "schema.rs lines {first_line}-{last_line} ({label}) were edited by hand")
            }
            Finding::SchemaAdded { first_line, last_line, label } => {
                write!(f, "schema.rs lines {first_line}-{last_line} ({label}) were added by hand")
            }
            Finding::SchemaRemoved { label } => write!(f, "schema.rs no longer has the generated {label}"),
            Finding::SchemaChanged => write!(f, "schema.rs was changed by hand (whitespace or blank lines)"),
            Finding::NeverGenerated => write!(f, "the lock file has no record of generating this schema file"),
            Finding::SchemaMissing => write!(f, "the schema file does not exist"),
        }
    }
}

/// The gate for one schema file.
#[derive(Debug, Clone)]
pub struct Gate {
    pub migrations_dir: PathBuf,
    pub schema_file: PathBuf,
}

/// The result of a check: findings plus what to tell the user.
#[derive(Debug, Clone)]
pub struct Report {
    pub schema_file: PathBuf,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// Only hand edits, and no migration changed since generation that could explain them: the README's
    /// "edit schema.rs first" workflow, where regenerating would throw the edit away.
    pub fn is_hand_edit(&self) -> bool {
        !self.findings.is_empty() && self.findings.iter().all(Finding::is_hand_edit)
    }

    /// The message lines, ending with the command to run.
    pub fn lines(&self) -> Vec<String> {
        let file = self.schema_file.display();
        if self.is_hand_edit() {
            let mut lines = vec![format!(
                "{file} was edited by hand and no migration explains it: to keep the edit, run `{AUTOGENERATE_COMMAND}` (it writes the migration), then `cargo anonmigrate run` (anonmigrate drift gate)"
            )];
            lines.extend(self.findings.iter().map(|f| format!("  {f}")));
            lines.push(format!(
                "to discard the edit instead: `{DISCARD_COMMAND}` (set {MODE_VARIABLE}=warn to only warn while editing)"
            ));
            return lines;
        }
        let mut lines = vec![format!("{file} does not match the migrations (anonmigrate drift gate):")];
        lines.extend(self.findings.iter().map(|f| format!("  {f}")));
        lines.push(format!(
            "run `{FIX_COMMAND}` and commit the schema file and migrations/anonmigrate.lock (set {MODE_VARIABLE}=warn to only warn while iterating)"
        ));
        lines
    }
}

impl Gate {
    /// Paths are relative to the current directory (in a build script: the crate's manifest directory).
    pub fn new(migrations_dir: impl Into<PathBuf>, schema_file: impl Into<PathBuf>) -> Gate {
        Gate {
            migrations_dir: migrations_dir.into(),
            schema_file: schema_file.into(),
        }
    }

    /// Compares the schema file and the migrations on disk with what the lock file says they were when the
    /// schema file was generated.
    pub fn check(&self) -> Result<Report, ChainError> {
        let mut findings = Vec::new();
        let report = |findings| Report {
            schema_file: self.schema_file.clone(),
            findings,
        };
        let content = match std::fs::read(&self.schema_file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report(vec![Finding::SchemaMissing])),
            Err(source) => {
                return Err(ChainError::Unreadable {
                    path: self.schema_file.clone(),
                    source,
                });
            }
        };
        let Some((lock, _)) = LockFile::read(&self.migrations_dir)? else {
            return Ok(report(vec![Finding::NeverGenerated]));
        };
        let key = relative_path(&self.migrations_dir, &self.schema_file);
        let Some(record) = lock.schemas.iter().find(|r| r.path == key) else {
            return Ok(report(vec![Finding::NeverGenerated]));
        };

        let chain = Chain::load(&self.migrations_dir)?;
        let generated_from = record.source_entries(&lock);
        for migration in &chain.migrations {
            match generated_from.iter().find(|e| e.dir_name == migration.dir_name) {
                None => findings.push(Finding::MigrationAdded(migration.dir_name.clone())),
                Some(entry) if entry.checksum != migration.checksum => {
                    findings.push(Finding::MigrationEdited(migration.dir_name.clone()))
                }
                Some(_) => {}
            }
        }
        for entry in generated_from {
            if chain.migrations.iter().all(|m| m.dir_name != entry.dir_name) {
                findings.push(Finding::MigrationRemoved(entry.dir_name.clone()));
            }
        }

        findings.extend(hand_edits(record, &content));
        Ok(report(findings))
    }

    /// For `build.rs`: prints precise `rerun-if-changed` lines, then fails the build (`cargo::error=`) on drift,
    /// or warns when `ANONMIGRATE_DRIFT=warn`.
    // Build scripts talk to cargo through stdout; this is the one place the crate prints.
    #[allow(clippy::print_stdout)]
    pub fn run(&self) {
        for line in self.directives() {
            println!("{line}");
        }
    }

    /// The cargo directives `run` prints (separate so it can be tested).
    pub fn directives(&self) -> Vec<String> {
        let mut lines = vec![
            format!("cargo::rerun-if-changed={}", self.migrations_dir.display()),
            format!("cargo::rerun-if-changed={}", self.schema_file.display()),
            format!("cargo::rerun-if-env-changed={MODE_VARIABLE}"),
        ];
        let warn_only = std::env::var(MODE_VARIABLE).is_ok_and(|v| v.eq_ignore_ascii_case("warn"));
        let level = if warn_only { "warning" } else { "error" };
        match self.check() {
            Ok(report) if report.is_clean() => {}
            Ok(report) => lines.extend(report.lines().into_iter().map(|l| format!("cargo::{level}={l}"))),
            Err(e) => lines.push(format!("cargo::{level}=anonmigrate drift gate: {e}")),
        }
        lines
    }
}

/// The hand edits of a schema file: its top-level items that differ from what `record` says was generated
/// (empty when the file is exactly what was generated; CRLF line endings are not an edit). Also used by
/// `cargo anonmigrate schema`, which will not overwrite edits that no migration explains.
pub fn hand_edits(record: &SchemaRecord, content: &str) -> Vec<Finding> {
    let content = normalise_line_endings(content);
    if sha256_hex(content.as_bytes()) == record.checksum {
        return Vec::new();
    }
    let mut findings = Vec::new();
    let current = split_blocks(&content);
    for block in &current {
        let stored = record.blocks.iter().find(|b| b.label == block.label);
        let (first_line, last_line) = block.lines;
        let label = block.label.clone();
        match stored {
            Some(stored) if stored.hash == block.hash => {}
            Some(_) => findings.push(Finding::SchemaEdited { first_line, last_line, label }),
            None => findings.push(Finding::SchemaAdded { first_line, last_line, label }),
        }
    }
    for stored in &record.blocks {
        if current.iter().all(|b| b.label != stored.label) {
            findings.push(Finding::SchemaRemoved { label: stored.label.clone() });
        }
    }
    if findings.is_empty() {
        findings.push(Finding::SchemaChanged);
    }
    findings
}

/// `schema_file` relative to `migrations_dir`, `/`-separated: how the lock file names it. Works on the
/// absolute, normalised forms so `../migrations` from a crate and `migrations` from the root agree.
pub fn relative_path(migrations_dir: &Path, schema_file: &Path) -> String {
    let base = absolute(migrations_dir);
    let target = absolute(schema_file);
    let base_parts: Vec<Component> = base.components().collect();
    let target_parts: Vec<Component> = target.components().collect();
    let common = base_parts.iter().zip(&target_parts).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); base_parts.len() - common];
    parts.extend(target_parts[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    parts.join("/")
}

/// Absolute and free of `.`/`..`, without touching the file system (the file may not exist yet).
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "// @generated automatically by Diesel CLI.\n\ndiesel::table! {\n    use diesel::sql_types::*;\n\n    users (id) {\n        id -> Int8,\n    }\n}\n\ndiesel::table! {\n    posts (id) {\n        id -> Int8,\n    }\n}\n";

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        /// A chain of two migrations and a schema file recorded as generated from it.
        fn new() -> Fixture {
            let fixture = Fixture { dir: tempfile::tempdir().unwrap() };
            fixture.write("migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id bigint primary key);");
            fixture.write("migrations/2024-01-02-000000_posts/up.sql", "CREATE TABLE posts (id bigint primary key);");
            fixture.write("app/src/schema.rs", SCHEMA);
            fixture.generate();
            fixture
        }

        fn write(&self, rel: &str, text: &str) {
            let path = self.dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }

        fn migrations(&self) -> PathBuf {
            self.dir.path().join("migrations")
        }

        fn generate(&self) {
            let chain = Chain::load(&self.migrations()).unwrap();
            let previous = LockFile::read(&self.migrations()).unwrap().map(|(l, _)| l);
            let mut lock = LockFile::updated_for(&chain, previous.as_ref());
            let schema = std::fs::read_to_string(self.dir.path().join("app/src/schema.rs")).unwrap();
            lock.record_schema("../app/src/schema.rs".into(), &schema);
            lock.write(&self.migrations()).unwrap();
        }

        /// What `cargo anonmigrate generate` does to the lock file.
        fn relock(&self) {
            let chain = Chain::load(&self.migrations()).unwrap();
            let previous = LockFile::read(&self.migrations()).unwrap().map(|(l, _)| l);
            LockFile::updated_for(&chain, previous.as_ref()).write(&self.migrations()).unwrap();
        }

        fn findings(&self) -> Vec<String> {
            let gate = Gate::new(self.migrations(), self.dir.path().join("app/src/schema.rs"));
            gate.check().unwrap().findings.iter().map(ToString::to_string).collect()
        }
    }

    #[test]
    fn clean_after_generation() {
        assert!(Fixture::new().findings().is_empty());
    }

    #[test]
    fn names_added_edited_and_removed_migrations_even_after_relocking() {
        let f = Fixture::new();
        f.write("migrations/2024-01-03-000000_likes/up.sql", "CREATE TABLE likes (id int);");
        f.write("migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id int primary key);");
        std::fs::remove_dir_all(f.migrations().join("2024-01-02-000000_posts")).unwrap();
        let expected = [
            "migration edited since schema.rs was generated: 2024-01-01-000000_users",
            "migration added since schema.rs was generated: 2024-01-03-000000_likes",
            "migration removed since schema.rs was generated: 2024-01-02-000000_posts",
        ];
        assert_eq!(f.findings(), expected);
        // `generate` rewrites the entries; the gate still knows what schema.rs was generated from.
        f.relock();
        assert_eq!(f.findings(), expected);
        f.generate();
        assert!(f.findings().is_empty());
    }

    #[test]
    fn points_at_hand_edited_lines() {
        let f = Fixture::new();
        f.write("app/src/schema.rs", &SCHEMA.replace("    posts (id) {\n        id -> Int8,", "    posts (id) {\n        id -> Int4,"));
        assert_eq!(f.findings(), ["schema.rs lines 11-15 (table posts) were edited by hand"]);
        f.write("app/src/schema.rs", &format!("{SCHEMA}\ndiesel::joinable!(posts -> users (id));\n"));
        assert_eq!(f.findings(), ["schema.rs lines 17-17 (diesel::joinable!(posts -> users (id));) were added by hand"]);
        f.write("app/src/schema.rs", &SCHEMA.replace("\n\ndiesel::table! {\n    posts (id) {\n        id -> Int8,\n    }\n}", ""));
        assert_eq!(f.findings(), ["schema.rs no longer has the generated table posts"]);
        f.write("app/src/schema.rs", &SCHEMA.replace("}\n\ndiesel::table! {\n    posts", "}\n\n\ndiesel::table! {\n    posts"));
        assert_eq!(f.findings(), ["schema.rs was changed by hand (whitespace or blank lines)"]);
        f.write("app/src/schema.rs", &SCHEMA.replace('\n', "\r\n"));
        assert!(f.findings().is_empty(), "a CRLF checkout is not an edit");
    }

    #[test]
    fn directives_fail_or_warn() {
        let f = Fixture::new();
        f.write("migrations/2024-01-03-000000_likes/up.sql", "CREATE TABLE likes (id int);");
        let gate = Gate::new(f.migrations(), f.dir.path().join("app/src/schema.rs"));
        let lines = gate.directives();
        assert!(lines[0].starts_with("cargo::rerun-if-changed="), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("cargo::error=") && l.contains("2024-01-03-000000_likes")), "{lines:?}");
        assert!(lines.last().unwrap().contains(FIX_COMMAND), "{lines:?}");
    }

    #[test]
    fn a_hand_edit_leads_with_autogenerate_and_names_the_discard() {
        let f = Fixture::new();
        f.write("app/src/schema.rs", &SCHEMA.replace("        id -> Int8,\n    }\n}\n", "        id -> Int8,\n        title -> Text,\n    }\n}\n"));
        let gate = Gate::new(f.migrations(), f.dir.path().join("app/src/schema.rs"));
        let report = gate.check().unwrap();
        assert!(report.is_hand_edit());
        let lines = report.lines();
        assert!(lines[0].contains("edited by hand and no migration explains it"), "{lines:?}");
        assert!(lines[0].contains(AUTOGENERATE_COMMAND), "{lines:?}");
        assert!(lines.last().unwrap().contains(DISCARD_COMMAND), "{lines:?}");
        // With a migration added too, the migration may explain the edit: regenerate.
        f.write("migrations/2024-01-03-000000_likes/up.sql", "CREATE TABLE likes (id int);");
        let report = gate.check().unwrap();
        assert!(!report.is_hand_edit());
        assert!(report.lines().last().unwrap().contains(FIX_COMMAND));
    }

    #[test]
    fn relative_paths_from_the_migrations_directory() {
        assert_eq!(relative_path(Path::new("/w/migrations"), Path::new("/w/app/src/schema.rs")), "../app/src/schema.rs");
        assert_eq!(relative_path(Path::new("/w/app/../migrations"), Path::new("/w/app/./src/schema.rs")), "../app/src/schema.rs");
        assert_eq!(relative_path(Path::new("/w/db"), Path::new("/w/db/schema.rs")), "schema.rs");
    }
}
