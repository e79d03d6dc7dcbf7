//! `import alembic`: Alembic's revision graph (`alembic history --verbose`) → one diesel-format migration per
//! revision, in a linear order that respects the graph; `up.sql` / `down.sql` are Alembic's own offline SQL
//! (`alembic upgrade base:HEAD --sql`, `alembic downgrade HEAD:base --sql`, cut at Alembic's `-- Running upgrade
//! A -> B` markers) without its version-table bookkeeping and its `BEGIN`/`COMMIT`. `stamp --from-alembic` reads
//! `alembic_version` and records the imported migrations up to that revision as applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anonmigrate_chain::Chain;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde::Deserialize;

use super::command;
use crate::database_url::DatabaseUrl;
use crate::db;
use crate::error::{Error, Result};
use crate::events::Observer;
use crate::split::{requires_no_transaction, split_statements, transaction_control};

/// Where Alembic is and how to run it.
#[derive(Debug, Clone)]
pub struct AlembicOptions {
    /// The command, as the user gave it (`alembic`, `.venv/bin/alembic`, `python -m alembic`).
    pub command: String,
    /// `alembic.ini`; Alembic runs in its directory, as `cd backend && alembic ...` would.
    pub config: PathBuf,
}

/// One revision as `alembic history --verbose` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub id: String,
    /// `down_revision` (two or more for a merge revision); empty for the first one.
    pub parents: Vec<String>,
    /// `depends_on`: other revisions that must run first.
    pub depends_on: Vec<String>,
    /// The first paragraph of the revision's docstring (Alembic's message).
    pub message: String,
    pub create_date: Option<NaiveDateTime>,
    pub path: Option<PathBuf>,
}

/// One migration written by the import.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportedMigration {
    pub revision: String,
    pub message: String,
    pub dir_name: String,
    /// False when Alembic's SQL holds a statement that cannot run in a transaction (`metadata.toml` says so).
    pub transactional: bool,
}

/// A revision whose offline SQL may not do what Alembic does online; marked in its files too.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportWarning {
    pub revision: String,
    pub dir_name: String,
    pub reasons: Vec<String>,
}

/// What `import alembic` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// The revisions read from Alembic, in the order imported.
    pub revisions: usize,
    pub imported: Vec<ImportedMigration>,
    /// Revisions already imported earlier (a migration's metadata.toml names them): left as they are.
    pub already_imported: Vec<String>,
    pub warnings: Vec<ImportWarning>,
    /// Alembic's version table, as its offline SQL creates it.
    pub version_table: String,
    pub head: Option<String>,
}

/// The keys an imported migration's `metadata.toml` holds (diesel reads only `run_in_transaction`).
#[derive(Debug, Default, Deserialize)]
struct ImportedMetadata {
    alembic_revision: Option<String>,
    #[serde(default)]
    alembic_down_revision: Vec<String>,
    /// Only when env.py names another version table than `alembic_version`.
    alembic_version_table: Option<String>,
}

fn metadata_of(migration: &anonmigrate_chain::Migration) -> Result<ImportedMetadata> {
    let Some(text) = &migration.metadata else { return Ok(ImportedMetadata::default()) };
    toml::from_str(text).map_err(|e| {
        Error::Config(format!(
            "`{}` does not parse: {}; fix the file (diesel's only key is `run_in_transaction = false`)",
            migration.dir.join("metadata.toml").display(),
            e.message()
        ))
    })
}

/// Alembic's revision id → (index in the chain, its parents), for the migrations an import wrote; and the
/// version table the newest of them names.
fn imported_revisions(chain: &Chain) -> Result<(BTreeMap<String, (usize, Vec<String>)>, Option<String>)> {
    let mut found = BTreeMap::new();
    let mut table = None;
    for (index, migration) in chain.migrations.iter().enumerate() {
        let metadata = metadata_of(migration)?;
        if let Some(revision) = metadata.alembic_revision {
            found.insert(revision, (index, metadata.alembic_down_revision));
            table = metadata.alembic_version_table.or(table);
        }
    }
    Ok((found, table))
}

/// The version table an imported chain names when env.py renamed Alembic's (`None`: `alembic_version`, no import,
/// or unreadable metadata, which the import commands report themselves). A database adopted from Alembic keeps it.
pub fn renamed_version_table(chain: &Chain) -> Option<String> {
    imported_revisions(chain).ok().and_then(|(_, table)| table)
}

/// Parses `alembic history --verbose`: blocks that start with `Rev: ID`, then `Parent:`/`Merges:`,
/// `Also depends on:`, `Path:` lines and the revision's docstring, indented.
pub fn parse_history(text: &str) -> Vec<Revision> {
    let mut revisions = Vec::new();
    let mut current: Option<(Revision, Vec<String>)> = None;
    let finish = |current: Option<(Revision, Vec<String>)>, revisions: &mut Vec<Revision>| {
        if let Some((mut revision, doc)) = current {
            let doc_lines: Vec<&str> = doc.iter().map(|l| l.trim()).collect();
            let first_paragraph: Vec<&str> =
                doc_lines.iter().copied().skip_while(|l| l.is_empty()).take_while(|l| !l.is_empty()).collect();
            revision.message = first_paragraph.join(" ");
            revision.create_date = doc_lines.iter().find_map(|l| l.strip_prefix("Create Date:")).and_then(parse_date);
            revisions.push(revision);
        }
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Rev: ") {
            finish(current.take(), &mut revisions);
            let id = rest.split_whitespace().next().unwrap_or_default().to_owned();
            current = Some((
                Revision { id, parents: Vec::new(), depends_on: Vec::new(), message: String::new(), create_date: None, path: None },
                Vec::new(),
            ));
            continue;
        }
        let Some((revision, doc)) = current.as_mut() else { continue };
        let list = |rest: &str| -> Vec<String> {
            rest.split(',').map(str::trim).filter(|r| !r.is_empty() && *r != "<base>").map(str::to_owned).collect()
        };
        if let Some(rest) = line.strip_prefix("Parent: ").or_else(|| line.strip_prefix("Merges: ")) {
            revision.parents = list(rest);
        } else if let Some(rest) = line.strip_prefix("Also depends on: ") {
            revision.depends_on = list(rest);
        } else if let Some(rest) = line.strip_prefix("Path: ") {
            revision.path = Some(PathBuf::from(rest.trim()));
        } else if line.starts_with(char::is_whitespace) || line.is_empty() {
            doc.push(line.to_owned());
        }
    }
    finish(current, &mut revisions);
    revisions
}

/// `2025-01-11 14:05:12.418201` (optionally with a time zone after it): the seconds are what a version keeps.
fn parse_date(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text.get(..19)?, "%Y-%m-%d %H:%M:%S").ok()
}

/// The revisions in an order that runs every parent (and `depends_on`) first; among those ready, the oldest
/// Create Date first, ties in the order Alembic lists them (oldest first). Refuses unmerged heads.
pub fn linearise(mut revisions: Vec<Revision>) -> Result<Vec<Revision>> {
    // `alembic history` lists newest first.
    revisions.reverse();
    let known: BTreeSet<&str> = revisions.iter().map(|r| r.id.as_str()).collect();
    let child_of: BTreeSet<&str> = revisions.iter().flat_map(|r| r.parents.iter().map(String::as_str)).collect();
    let heads: Vec<&Revision> = revisions.iter().filter(|r| !child_of.contains(r.id.as_str())).collect();
    if heads.len() > 1 {
        let listed: Vec<String> = heads.iter().map(|r| format!("{} ({})", r.id, r.message)).collect();
        let ids: Vec<&str> = heads.iter().map(|r| r.id.as_str()).collect();
        return Err(Error::Refused(format!(
            "the Alembic history has {} unmerged heads: {}; a linear chain of migrations cannot hold both, so nothing was imported; merge them in Alembic first (`alembic merge -m \"merge heads\" {}`), then run `cargo anonmigrate import alembic` again",
            heads.len(),
            listed.join(", "),
            ids.join(" ")
        )));
    }
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::with_capacity(revisions.len());
    while order.len() < revisions.len() {
        let ready = revisions
            .iter()
            .enumerate()
            .filter(|(_, r)| !placed.contains(&r.id))
            .filter(|(_, r)| r.parents.iter().chain(&r.depends_on).all(|p| placed.contains(p) || !known.contains(p.as_str())))
            .min_by_key(|(index, r)| (r.create_date, *index));
        let Some((_, next)) = ready else {
            return Err(Error::Config(
                "the Alembic revision graph has a cycle (a revision that is its own ancestor through down_revision or depends_on); fix the revision files so `alembic history` shows a tree".into(),
            ));
        };
        placed.insert(next.id.clone());
        order.push(next.clone());
    }
    Ok(order)
}

/// Alembic's offline SQL cut at its `-- Running upgrade A -> B` / `-- Running downgrade B -> A` markers: the
/// revision each section adds (upgrade) or removes (downgrade) → the section's text. The text before the first
/// marker (Alembic creating its version table) is returned apart.
pub fn sections(sql: &str, upgrade: bool) -> (String, HashMap<String, String>) {
    let marker = if upgrade { "-- Running upgrade " } else { "-- Running downgrade " };
    let mut preamble = String::new();
    let mut out: HashMap<String, String> = HashMap::new();
    let mut current: Option<String> = None;
    for line in sql.lines() {
        if let Some(step) = line.strip_prefix(marker) {
            let (from, to) = step.split_once("->").unwrap_or((step, ""));
            let key = if upgrade { to } else { from };
            let key = key.split(',').next().unwrap_or_default().trim().to_owned();
            out.entry(key.clone()).or_default();
            current = Some(key);
            continue;
        }
        let target = match &current {
            Some(key) => out.get_mut(key).expect("section created at its marker"),
            None => &mut preamble,
        };
        target.push_str(line);
        target.push('\n');
    }
    (preamble, out)
}

/// The version table Alembic's offline SQL creates (`alembic_version` unless env.py names another).
fn version_table(preamble: &str) -> String {
    split_statements(preamble)
        .iter()
        .filter(|s| s.text.contains("version_num"))
        .find_map(|s| {
            let rest = s.text.trim_start().strip_prefix("CREATE TABLE ")?;
            Some(rest.split(|c: char| c.is_whitespace() || c == '(').next()?.to_owned())
        })
        .unwrap_or_else(|| "alembic_version".to_owned())
}

/// A section's statements without `BEGIN`/`COMMIT` and without the version-table bookkeeping.
fn statements(section: &str, version_table: &str) -> Vec<String> {
    let unqualified = version_table.rsplit('.').next().unwrap_or(version_table);
    let bookkeeping = regex::Regex::new(&format!(
        r"(?is)^\s*(CREATE\s+TABLE|INSERT\s+INTO|UPDATE|DELETE\s+FROM|DROP\s+TABLE(\s+IF\s+EXISTS)?)\s+({}|{})(\s|\(|$)",
        regex::escape(version_table),
        regex::escape(unqualified)
    ))
    .expect("a valid pattern");
    split_statements(section)
        .into_iter()
        .map(|s| s.text)
        .filter(|s| transaction_control(s).is_none() && !bookkeeping.is_match(s))
        .map(str::to_owned)
        .collect()
}

/// Why a revision's offline SQL may not stand for what it does online: Python that talks to the live connection
/// (its SQL is missing from the offline output), or rows written (a data migration, replayed literally).
fn review_reasons(source: Option<&str>, up: &[String]) -> Vec<String> {
    let mut found: Vec<(usize, &str)> = Vec::new();
    if let Some(source) = source {
        for (needle, what) in [
            ("get_bind(", "op.get_bind()"),
            ("is_offline_mode(", "context.is_offline_mode()"),
            ("get_context(", "op.get_context()"),
            ("Session(", "an ORM Session"),
        ] {
            // `op.get_context().autocommit_block()` is offline-safe: Alembic prints its COMMIT/BEGIN.
            let counts = |l: &str| l.contains(needle) && !l.trim_start().starts_with('#') && !l.contains("autocommit_block(");
            if let Some(line) = source.lines().position(counts) {
                found.push((line + 1, what));
            }
        }
    }
    found.sort();
    let mut reasons: Vec<String> = found
        .into_iter()
        .map(|(line, what)| format!("its Python uses {what} (line {line}), whose work offline SQL does not capture"))
        .collect();
    for statement in up {
        let code = statement.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("--")).unwrap_or_default();
        let word = code.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        if matches!(word.as_str(), "INSERT" | "UPDATE" | "DELETE" | "COPY") {
            reasons.push(format!("it changes data ({word} ...): a data migration, replayed here as literal SQL"));
            break;
        }
    }
    reasons
}

/// A migration name from Alembic's message: `add request log` → `add_request_log`.
fn name_of(message: &str, revision: &str) -> String {
    let mut name = String::new();
    for c in message.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') && !name.is_empty() {
            name.push('_');
        }
        if name.len() >= 60 {
            break;
        }
    }
    let name = name.trim_end_matches('_').to_owned();
    if name.is_empty() { format!("alembic_{revision}") } else { name }
}

fn format_version(time: NaiveDateTime) -> String {
    time.format("%Y-%m-%d-%H%M%S").to_string()
}

fn version_time(version: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(version, "%Y%m%d%H%M%S").ok()
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|source| Error::Write { path: path.to_path_buf(), source })
}

/// Reads the Alembic project's history and offline SQL and writes one migration per revision not imported yet.
/// Everything Alembic says is read before anything is written.
pub fn import_alembic(migrations_dir: &Path, options: &AlembicOptions) -> Result<ImportReport> {
    let config = &options.config;
    if !config.is_file() {
        return Err(Error::Config(format!(
            "there is no Alembic configuration at `{}`; run the command in the directory that holds alembic.ini (e.g. `backend/`) or pass --config path/to/alembic.ini",
            config.display()
        )));
    }
    let config = config.canonicalize().map_err(|e| Error::Config(format!("cannot read `{}`: {e}", config.display())))?;
    let cwd = config.parent().expect("a file has a directory").to_path_buf();
    let mut base = command::split_command(&options.command);
    if base.is_empty() {
        return Err(Error::Config("--alembic is empty; name the alembic command, e.g. `--alembic .venv/bin/alembic`".into()));
    }
    base.extend(["-c".to_owned(), config.display().to_string()]);
    let alembic = |args: &[&str], fix: &str| {
        let mut argv = base.clone();
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        command::run(&argv, &cwd, &[], fix)
    };
    let fix = "fix what Alembic reports (the command must work in that directory, with the environment its env.py needs, e.g. DATABASE_URL), or name another alembic with --alembic";
    let revisions = linearise(parse_history(&alembic(&["history", "--verbose"], fix)?))?;
    std::fs::create_dir_all(migrations_dir).map_err(|source| Error::Write { path: migrations_dir.to_path_buf(), source })?;
    let chain = Chain::load(migrations_dir)?;
    let (existing, _) = imported_revisions(&chain)?;
    let head = revisions.last().map(|r| r.id.clone());
    let mut report = ImportReport {
        revisions: revisions.len(),
        imported: Vec::new(),
        already_imported: Vec::new(),
        warnings: Vec::new(),
        version_table: "alembic_version".into(),
        head: head.clone(),
    };
    let Some(head) = head else { return Ok(report) };

    let offline_fix = "fix what Alembic reports: env.py must run in offline mode (`alembic upgrade --sql`) with the environment it needs (e.g. a valid DATABASE_URL; nothing connects), and Python in a revision that needs a live connection must be guarded with `if not context.is_offline_mode():`";
    let up_sql = alembic(&["upgrade", &format!("base:{head}"), "--sql"], offline_fix)?;
    let down_sql = alembic(&["downgrade", &format!("{head}:base"), "--sql"], offline_fix)?;
    let (preamble, ups) = sections(&up_sql, true);
    let (_, downs) = sections(&down_sql, false);
    report.version_table = version_table(&preamble);

    let mut previous = chain.latest().and_then(|m| version_time(&m.version));
    for revision in &revisions {
        if existing.contains_key(&revision.id) {
            report.already_imported.push(revision.id.clone());
            continue;
        }
        let up = statements(ups.get(&revision.id).map_or("", String::as_str), &report.version_table);
        let down = statements(downs.get(&revision.id).map_or("", String::as_str), &report.version_table);
        let mut time = revision.create_date.or_else(|| previous.map(|p| p + chrono::Duration::seconds(1))).unwrap_or_else(|| {
            chrono::Utc::now().naive_utc()
        });
        if let Some(previous) = previous
            && time <= previous
        {
            // Same second (or older than what is already on disk): one second after keeps the order.
            time = previous + chrono::Duration::seconds(1);
        }
        previous = Some(time);
        let dir_name = format!("{}_{}", format_version(time), name_of(&revision.message, &revision.id));
        let source_rel = revision.path.as_ref().map(|p| p.strip_prefix(&cwd).unwrap_or(p).display().to_string());
        let source = revision.path.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
        let reasons = review_reasons(source.as_deref(), &up);
        let transactional = !up.iter().chain(&down).any(|s| requires_no_transaction(s));
        let files = Files { revision, source: source_rel.as_deref(), reasons: &reasons, version_table: &report.version_table };
        let dir = migrations_dir.join(&dir_name);
        std::fs::create_dir(&dir).map_err(|source| Error::Write { path: dir.clone(), source })?;
        write(&dir.join("up.sql"), &files.sql(&up, true))?;
        write(&dir.join("down.sql"), &files.sql(&down, false))?;
        write(&dir.join("metadata.toml"), &files.metadata(transactional))?;
        if !reasons.is_empty() {
            report.warnings.push(ImportWarning { revision: revision.id.clone(), dir_name: dir_name.clone(), reasons });
        }
        report.imported.push(ImportedMigration {
            revision: revision.id.clone(),
            message: revision.message.clone(),
            dir_name,
            transactional,
        });
    }
    crate::generate::relock(migrations_dir)?;
    Ok(report)
}

/// The text of one imported migration's files.
struct Files<'a> {
    revision: &'a Revision,
    source: Option<&'a str>,
    reasons: &'a [String],
    version_table: &'a str,
}

impl Files<'_> {
    fn sql(&self, statements: &[String], up: bool) -> String {
        let r = self.revision;
        let mut text = format!(
            "-- Imported from Alembic revision {} ({:?}{}) by `cargo anonmigrate import alembic`:\n-- Alembic's offline SQL (`alembic {} --sql`) without its {} bookkeeping.\n",
            r.id,
            r.message,
            self.source.map(|s| format!(", {s}")).unwrap_or_default(),
            if up { "upgrade" } else { "downgrade" },
            self.version_table,
        );
        for reason in self.reasons {
            text.push_str(&format!("-- anonmigrate: REVIEW: {reason}; compare this file with the revision's Python.\n"));
        }
        if statements.is_empty() {
            text.push_str(if r.parents.len() > 1 && up {
                "-- A merge revision: nothing to run.\n"
            } else {
                "-- Alembic runs no SQL for this step.\n"
            });
            return text;
        }
        for statement in statements {
            text.push('\n');
            text.push_str(statement);
            text.push_str(";\n");
        }
        text
    }

    fn metadata(&self, transactional: bool) -> String {
        let r = self.revision;
        let quoted = |items: &[String]| items.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ");
        let mut text = format!(
            "# Imported from Alembic; `cargo anonmigrate stamp --from-alembic` reads these keys (diesel ignores them).\nalembic_revision = {:?}\nalembic_down_revision = [{}]\n",
            r.id,
            quoted(&r.parents)
        );
        if self.version_table != "alembic_version" {
            text.push_str(&format!("alembic_version_table = {:?}\n", self.version_table));
        }
        if !self.reasons.is_empty() {
            text.push_str(&format!("# Review against the revision's Python before relying on it:\nalembic_review = [{}]\n", quoted(self.reasons)));
        }
        // Written either way: diesel reads a metadata.toml without the key as `run_in_transaction = false`.
        if transactional {
            text.push_str("run_in_transaction = true\n");
        } else {
            text.push_str("# A statement cannot run inside a transaction (CREATE INDEX CONCURRENTLY ...).\nrun_in_transaction = false\n");
        }
        text
    }
}

/// What `stamp --from-alembic` found and did.
#[derive(Debug, Clone)]
pub struct AlembicStamp {
    /// The revisions `alembic_version` holds (none: Alembic never ran there, or it was downgraded to base).
    pub alembic_revisions: Vec<String>,
    /// The version stamped up to.
    pub version: Option<String>,
    /// The migrations newly recorded as applied.
    pub stamped: Vec<String>,
}

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    version_num: String,
}

/// Reads the database's `alembic_version` and records every imported migration up to that revision (and its
/// ancestors) as applied, with checksums, so `run` continues where Alembic stopped. Refuses a revision the
/// imported chain does not hold, and a set of applied revisions that is not a prefix of the chain's order.
pub fn stamp_from_alembic(url: &DatabaseUrl, chain: &Chain, lock_timeout: Duration, observer: &mut dyn Observer) -> Result<AlembicStamp> {
    let (imported, table) = imported_revisions(chain)?;
    let table = table.unwrap_or_else(|| "alembic_version".to_owned());
    // It goes into SQL as Alembic printed it (possibly schema-qualified or quoted): nothing else is let through.
    if !table.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '"')) {
        return Err(Error::Config(format!(
            "`alembic_version_table = {table:?}` in an imported metadata.toml is not a table name; fix it to the name env.py gives Alembic's version_table"
        )));
    }
    if imported.is_empty() {
        return Err(Error::Refused(format!(
            "no migration in {} was imported from Alembic (none has `alembic_revision` in its metadata.toml); run `cargo anonmigrate import alembic` first",
            chain.dir.display()
        )));
    }
    let database = url.describe();
    let mut conn = db::connect(url)?;
    let exists: Vec<VersionRow> =
        diesel::sql_query(format!("SELECT coalesce(to_regclass({})::text, '') AS version_num", db::quote_literal(&table)))
            .load(&mut conn)
            .map_err(|e| db::context("looking for Alembic's version table")(db::pg_error(&e)))?;
    if exists.first().is_none_or(|r| r.version_num.is_empty()) {
        return Err(Error::Refused(format!(
            "{database} has no {table} table (in its search_path), so there is no Alembic revision to continue from; if its schema came from the migrations another way, `cargo anonmigrate stamp VERSION` records them"
        )));
    }
    let rows: Vec<VersionRow> = diesel::sql_query(format!("SELECT version_num::text AS version_num FROM {table} ORDER BY 1"))
        .load(&mut conn)
        .map_err(|e| db::context("reading Alembic's version table")(db::pg_error(&e)))?;
    drop(conn);
    let alembic_revisions: Vec<String> = rows.into_iter().map(|r| r.version_num).collect();
    let mut applied: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = alembic_revisions.clone();
    while let Some(revision) = stack.pop() {
        let Some((_, parents)) = imported.get(&revision) else {
            return Err(Error::Refused(format!(
                "{database} is at Alembic revision {revision}, which is not in the imported chain in {}; import it first (`cargo anonmigrate import alembic` adds revisions not imported yet), then stamp again",
                chain.dir.display()
            )));
        };
        if applied.insert(revision.clone()) {
            stack.extend(parents.iter().cloned());
        }
    }
    let mut by_index: Vec<(usize, &String)> = imported.iter().map(|(rev, (index, _))| (*index, rev)).collect();
    by_index.sort();
    let prefix = by_index.iter().take_while(|(_, rev)| applied.contains(*rev)).count();
    if prefix != applied.len() {
        let (index, rev) = by_index[prefix];
        return Err(Error::Refused(format!(
            "{database} is at Alembic revision(s) {}, which leave {rev} ({}) unapplied although it comes earlier in the imported chain (branches were linearised); bring the database to a revision that follows it (`alembic upgrade {rev}`), then stamp again",
            alembic_revisions.join(", "),
            chain.migrations[index].dir_name
        )));
    }
    let Some((last, _)) = by_index.get(prefix.wrapping_sub(1)).filter(|_| prefix > 0) else {
        return Ok(AlembicStamp { alembic_revisions, version: None, stamped: Vec::new() });
    };
    let version = chain.migrations[*last].version.clone();
    let stamped = crate::maintenance::stamp(url, chain, &version, lock_timeout, observer)?;
    Ok(AlembicStamp { alembic_revisions, version: Some(version), stamped })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HISTORY: &str = "\
Rev: c0ffee123456 (head) (mergepoint)
Merges: 7a1c3e5f9b20, b2d4f6a8c013
Path: /p/versions/c.py

    merge bio and rooms
    
    Revision ID: c0ffee123456
    Create Date: 2025-02-05 12:00:00.000000

Rev: b2d4f6a8c013
Parent: d4b7e1f05a62
Path: /p/versions/b.py

    add room topic
    
    Create Date: 2025-02-04 09:30:00.000000

Rev: 7a1c3e5f9b20
Parent: d4b7e1f05a62
Path: /p/versions/a.py

    add user bio
    
    Create Date: 2025-02-04 09:00:00.000000

Rev: d4b7e1f05a62 (branchpoint)
Parent: <base>
Branches into: b2d4f6a8c013, 7a1c3e5f9b20
Path: /p/versions/d.py

    add messages
    with embeddings

    Create Date: 2025-01-11 14:05:12.418201+01:00
";

    #[test]
    fn history_is_parsed_and_linearised_oldest_branch_first() {
        let revisions = parse_history(HISTORY);
        assert_eq!(revisions.len(), 4);
        assert_eq!(revisions[0].parents, ["7a1c3e5f9b20", "b2d4f6a8c013"]);
        assert_eq!(revisions[3].message, "add messages with embeddings");
        assert_eq!(revisions[3].parents, Vec::<String>::new());
        assert_eq!(revisions[3].create_date.unwrap().to_string(), "2025-01-11 14:05:12");
        let order: Vec<String> = linearise(revisions).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(order, ["d4b7e1f05a62", "7a1c3e5f9b20", "b2d4f6a8c013", "c0ffee123456"]);
    }

    #[test]
    fn unmerged_heads_are_refused_with_the_alembic_merge_command() {
        let without_merge: String = HISTORY.split("Rev: b2d4f6a8c013").enumerate().map(|(i, s)| if i == 0 { String::new() } else { format!("Rev: b2d4f6a8c013{s}") }).collect();
        let err = linearise(parse_history(&without_merge)).unwrap_err().to_string();
        assert!(err.contains("2 unmerged heads"), "{err}");
        assert!(err.contains("`alembic merge -m \"merge heads\" 7a1c3e5f9b20 b2d4f6a8c013`"), "{err}");
    }

    #[test]
    fn sections_drop_bookkeeping_and_transaction_control() {
        let sql = "BEGIN;\n\nCREATE TABLE alembic_version (\n    version_num VARCHAR(32) NOT NULL\n);\n\n-- Running upgrade  -> a1\n\nCREATE TABLE users (id int);\n\nINSERT INTO alembic_version (version_num) VALUES ('a1') RETURNING alembic_version.version_num;\n\n-- Running upgrade a1 -> b2\n\nCOMMIT;\n\nCREATE INDEX CONCURRENTLY i ON users (id);\n\nBEGIN;\n\nUPDATE alembic_version SET version_num='b2' WHERE alembic_version.version_num = 'a1';\n\nCOMMIT;\n";
        let (preamble, ups) = sections(sql, true);
        let table = version_table(&preamble);
        assert_eq!(table, "alembic_version");
        assert_eq!(statements(&ups["a1"], &table), ["CREATE TABLE users (id int)"]);
        assert_eq!(statements(&ups["b2"], &table), ["CREATE INDEX CONCURRENTLY i ON users (id)"]);
        let down = "BEGIN;\n-- Running downgrade b2 -> a1\nDROP INDEX i;\nUPDATE alembic_version SET version_num='a1';\n-- Running downgrade a1 -> \nDROP TABLE users;\nDELETE FROM alembic_version WHERE alembic_version.version_num = 'a1';\nCOMMIT;\n";
        let (_, downs) = sections(down, false);
        assert_eq!(statements(&downs["a1"], &table), ["DROP TABLE users"]);
        assert_eq!(statements(&downs["b2"], &table), ["DROP INDEX i"]);
    }

    #[test]
    fn names_and_review_reasons() {
        assert_eq!(name_of("add request log", "x"), "add_request_log");
        assert_eq!(name_of("Add `users`: email, name!", "x"), "add_users_email_name");
        assert_eq!(name_of("", "abc"), "alembic_abc");
        let reasons = review_reasons(Some("def upgrade():\n    # op.get_bind() in a comment\n    bind = op.get_bind()\n"), &[]);
        assert_eq!(reasons, ["its Python uses op.get_bind() (line 3), whose work offline SQL does not capture"]);
        let data = review_reasons(None, &["-- note\nUPDATE users SET a = 1".to_owned()]);
        assert!(data[0].starts_with("it changes data (UPDATE"), "{data:?}");
    }
}
