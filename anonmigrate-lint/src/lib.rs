//! `cargo anonmigrate lint`: finds migrations that would lock or break a live application before they run.
//!
//! Each up.sql is parsed with squawk's pure-Rust, error-tolerant PostgreSQL parser; the rules squawk maintains run
//! as squawk's own code (`squawk-linter`), under the ids this project has always used. Our own rules (chain
//! awareness, pgvector, the runner's transactions, down migrations) run on the same syntax tree, with the whole
//! chain replayed so a rule can tell a table this migration creates (new, empty, unused) from one an earlier
//! migration created (live). Rules live one per file in [`rules`]; findings come back as a [`Report`], which the
//! CLI renders. The parser stays out of `anonmigrate-chain` (used by build scripts).

mod catalog;
pub mod config;
pub mod docs;
pub mod fix;
mod report;
pub mod rules;
mod source;
mod sql;
#[cfg(test)]
mod testing;

use std::collections::HashSet;

use std::path::PathBuf;

use anonmigrate_chain::{Chain, ChainError, Migration};
use squawk_syntax::ast::{self, AstNode};

pub use catalog::Origin;
pub use config::{Config, Level};
pub use report::{Edit, Finding, Fix, Report};
pub use rules::{RULES, Rule};

use catalog::Catalog;
use rules::{Check, Hit, MigrationFacts, StatementCx};
use source::SourceFile;

/// Why linting could not run (findings are not errors: they are in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid `[workspace.metadata.anonmigrate.lint]`, or an unknown migration named on the command line.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("cannot parse `{}`: {message}; diesel's format is `run_in_transaction = false`", path.display())]
    Metadata { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// diesel's `metadata.toml`, read as the runner (and diesel_migrations) reads it: a file without
/// `run_in_transaction`, an empty one included, means `false`.
#[derive(Debug, serde::Deserialize)]
struct Metadata {
    #[serde(default)]
    run_in_transaction: bool,
}

fn run_in_transaction(migration: &Migration) -> Result<bool> {
    let Some(text) = &migration.metadata else {
        return Ok(true);
    };
    let metadata: Metadata = toml::from_str(text).map_err(|e| Error::Metadata {
        path: migration.dir.join("metadata.toml"),
        message: e.message().to_owned(),
    })?;
    Ok(metadata.run_in_transaction)
}

/// Which migrations to lint: the indexes into `chain.migrations` named by `args` (versions with or without dashes,
/// or directory names, or paths to them); with no args, every migration after the baseline.
pub fn select(chain: &Chain, config: &Config, args: &[String]) -> Result<Vec<usize>> {
    if args.is_empty() {
        return Ok((0..chain.migrations.len())
            .filter(|&i| !config.covered_by_baseline(&chain.migrations[i].version))
            .collect());
    }
    let mut picked = Vec::new();
    for arg in args {
        let index = chain
            .resolve(arg)
            .and_then(|found| chain.migrations.iter().position(|m| m.version == found.version))
            .ok_or_else(|| {
                Error::Config(format!(
                    "no migration `{arg}` in {}; name one by version (20250115090100) or directory name",
                    chain.dir.display()
                ))
            })?;
        if !picked.contains(&index) {
            picked.push(index);
        }
    }
    picked.sort_unstable();
    Ok(picked)
}

/// Lints the migrations at `selected` (indexes into the chain, ascending). Every migration is replayed so the
/// catalog knows which tables exist, but only the selected ones produce findings.
pub fn lint(chain: &Chain, config: &Config, selected: &[usize]) -> Result<Report> {
    let mut catalog = Catalog::default();
    let mut findings = Vec::new();
    let wanted: HashSet<usize> = selected.iter().copied().collect();
    let files = SourceFile::parse_all(chain.migrations.iter().map(|m| m.up_sql.as_str()));
    // Each selected down.sql parsed once, on every core like the up.sql files (the others as empty text).
    let downs = SourceFile::parse_all(
        chain.migrations.iter().enumerate().map(|(index, m)| if wanted.contains(&index) { m.down_sql.as_deref().unwrap_or("") } else { "" }),
    );
    for (index, ((migration, file), down_file)) in chain.migrations.iter().zip(&files).zip(&downs).enumerate() {
        if wanted.contains(&index) {
            // A down.sql with nothing to run (empty, only comments) makes the migration irreversible, as no down.sql
            // does, unless up.sql has nothing to run either (an imported merge revision): the runner's rule,
            // `plan::irreversible`.
            let has_down = migration.down_sql.is_some() && (file.statements.is_empty() || !down_file.statements.is_empty());
            findings.extend(lint_migration(migration, file, has_down, Part::Up, config, &mut catalog)?);
            // down.sql runs against the schema up.sql left (a revert on the live database); what it does is not
            // carried into the catalog the later migrations see.
            if migration.down_sql.is_some() {
                findings.extend(lint_migration(migration, down_file, has_down, Part::Down, config, &mut catalog.clone())?);
            }
        } else {
            for statement in &file.statements {
                catalog.apply(&statement.stmt, &migration.dir_name);
            }
        }
    }
    Ok(Report {
        findings,
        linted: selected.len(),
        skipped_by_baseline: chain.migrations.iter().filter(|m| config.covered_by_baseline(&m.version)).count(),
        baseline: config.baseline.clone(),
    })
}

/// A raw hit before allow comments and levels: rule, statement index (None: before any statement), offset.
struct Raw {
    rule: &'static Rule,
    statement: Option<usize>,
    offset: usize,
    message: String,
    fix: Option<Fix>,
}

/// Which file of a migration is being linted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Up,
    Down,
}

fn lint_migration(
    migration: &Migration,
    file: &SourceFile,
    has_down: bool,
    part: Part,
    config: &Config,
    catalog: &mut Catalog,
) -> Result<Vec<Finding>> {
    let transactional = run_in_transaction(migration)?;
    let kinds: Vec<_> = file.statements.iter().map(|s| rules::tx_statement(&s.stmt)).collect();
    let facts = MigrationFacts {
        dir_name: migration.dir_name.clone(),
        transactional,
        transactions: anonmigrate_chain::transactions::layout(&kinds, transactional),
        has_down,
    };
    let active: Vec<&'static Rule> = RULES
        .iter()
        .copied()
        .filter(|rule| config.level(rule) != Level::Allow && (part == Part::Up || rules::applies_to_down(rule)))
        .collect();
    let (text, path) = match part {
        Part::Up => (migration.up_sql.as_str(), migration.up_path()),
        Part::Down => (migration.down_sql.as_deref().unwrap_or(""), migration.down_path()),
    };
    let mut raw = Vec::new();
    let first = (!file.statements.is_empty()).then_some(0);
    for rule in &active {
        if let Check::Migration(check) = rule.check {
            for hit in check(&facts) {
                let offset = file.statements.first().map_or(0, |s| s.start);
                raw.push(Raw { rule, statement: first, offset, message: hit.message, fix: None });
            }
        }
    }
    raw.extend(squawk_hits(migration, text, file, &facts, &active, catalog));
    let mut lock_timeout_set = config.runner_lock_timeout;
    for (index, statement) in file.statements.iter().enumerate() {
        if let Some(message) = &statement.error {
            raw.push(Raw {
                rule: &rules::UNPARSABLE_STATEMENT,
                statement: Some(index),
                offset: statement.start,
                message: format!(
                    "the PostgreSQL parser cannot read this statement ({message}); nothing in it was checked, and the server would likely reject it too"
                ),
                fix: None,
            });
            catalog.apply(&statement.stmt, &migration.dir_name);
            continue;
        }
        let cx = StatementCx { stmt: &statement.stmt, index, migration: &facts, catalog, lock_timeout_set };
        for rule in &active {
            if let Check::Statement(check) = rule.check {
                for Hit { offset, message } in check(&cx) {
                    raw.push(Raw { rule, statement: Some(index), offset: offset.unwrap_or(statement.start), message, fix: None });
                }
            }
        }
        if let Some(set) = sets_lock_timeout(&statement.stmt) {
            lock_timeout_set = set || config.runner_lock_timeout;
        }
        catalog.apply(&statement.stmt, &migration.dir_name);
    }

    // Allow comments: `anonmigrate:allow rule-id[,rule-id...] reason`.
    let mut allowed: HashSet<(usize, &str)> = HashSet::new();
    for directive in &file.directives {
        match parse_allow(&directive.text) {
            Ok((ids, _reason)) => match directive.statement {
                Some(statement) => allowed.extend(ids.into_iter().map(|id| (statement, id))),
                None => raw.push(invalid_allow(directive.offset, "is not followed by a statement, so it allows nothing; put it directly above the statement it is about".into())),
            },
            Err(problem) => raw.push(invalid_allow(directive.offset, problem)),
        }
    }

    // Where one of our more specific rules fired on a statement, squawk's general one says the same thing again.
    let specific: HashSet<(Option<usize>, &str)> = raw.iter().map(|r| (r.statement, r.rule.id)).collect();
    raw.retain(|r| {
        !SUPERSEDED.iter().any(|(general, by)| r.rule.id == *general && specific.contains(&(r.statement, *by)))
    });
    let mut reported_once: HashSet<&str> = HashSet::new();
    let mut findings = Vec::new();
    raw.sort_by_key(|r| r.offset);
    for hit in raw {
        if hit.statement.is_some_and(|s| allowed.contains(&(s, hit.rule.id))) && hit.rule.id != rules::INVALID_ALLOW_COMMENT.id {
            continue;
        }
        if hit.rule.once_per_migration && !reported_once.insert(hit.rule.id) {
            continue;
        }
        let level = config.level(hit.rule);
        if level == Level::Allow {
            continue;
        }
        findings.push(Finding {
            rule: hit.rule.id,
            level,
            migration: migration.dir_name.clone(),
            path: path.clone(),
            line: file.line_of(hit.offset),
            message: hit.message,
            help: hit.rule.help,
            fix: hit.fix,
        });
    }
    Ok(findings)
}

fn invalid_allow(offset: usize, problem: String) -> Raw {
    Raw {
        rule: &rules::INVALID_ALLOW_COMMENT,
        statement: None,
        offset,
        message: format!("this `anonmigrate:` comment {problem}"),
        fix: None,
    }
}

/// `allow rule-a,rule-b reason...` -> the rule ids and the reason.
fn parse_allow(text: &str) -> std::result::Result<(Vec<&'static str>, &str), String> {
    let Some(rest) = text.strip_prefix("allow").filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace)) else {
        let word = text.split_whitespace().next().unwrap_or("");
        return Err(format!("has the unknown directive `{word}`; the only one is `anonmigrate:allow rule-id reason`"));
    };
    let rest = rest.trim_start();
    let (list, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if list.is_empty() {
        return Err("names no rule; write `anonmigrate:allow rule-id reason`".into());
    }
    let mut ids = Vec::new();
    for id in list.split(',').filter(|id| !id.is_empty()) {
        let rule = rules::find(id).ok_or_else(|| format!("names the unknown rule `{id}`; the rules are listed in docs/lint-rules.md"))?;
        ids.push(rule.id);
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(format!(
            "allows `{list}` without a reason, so it is ignored; write why the statement is safe after the rule id"
        ));
    }
    Ok((ids, reason))
}

/// The squawk-maintained rules among `active`, run once over the whole file with squawk's own settings: whether
/// the migration runs in a transaction comes from its metadata.toml, and the server is PostgreSQL 16 or newer.
fn squawk_hits(migration: &Migration, text: &str, file: &SourceFile, facts: &MigrationFacts, active: &[&'static Rule], catalog: &Catalog) -> Vec<Raw> {
    let wanted: Vec<(squawk_linter::Rule, &'static Rule)> = active
        .iter()
        .filter_map(|rule| match rule.check {
            Check::Squawk(squawk) => Some((squawk, *rule)),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut linter = squawk_linter::Linter::from(wanted.iter().map(|(squawk, _)| *squawk));
    linter.settings.assume_in_transaction = facts.transactional;
    linter.settings.pg_version = "16".parse().unwrap_or_default();
    linter
        .lint(&file.parse, text)
        .into_iter()
        .filter_map(|violation| {
            let rule = wanted.iter().find(|(squawk, _)| *squawk == violation.code)?.1;
            let offset = usize::from(violation.text_range.start());
            let statement = file.statement_at(offset);
            // squawk's sentence as one of our fragments; our rule's own help line says what to do instead.
            let mut message = lowercase_first(violation.message.trim_end_matches('.'));
            // What squawk cannot know: which migration made the table, from the chain's replay.
            let table = statement
                .map(|i| &file.statements[i].stmt)
                .filter(|stmt| matches!(stmt, ast::Stmt::AlterTable(_) | ast::Stmt::CreateIndex(_)))
                .and_then(sql::statement_table);
            if let Some(table) = table {
                let origin = catalog.table_origin(&table, &migration.dir_name);
                if origin != Origin::ThisMigration {
                    message = format!("{message}: existing table {}", rules::describe(&table, origin));
                }
            }
            // Adding CONCURRENTLY inside a transactional migration would trade this finding for a failed deploy.
            let fix_breaks_the_migration = facts.transactional
                && matches!(violation.code, squawk_linter::Rule::RequireConcurrentIndexCreation | squawk_linter::Rule::RequireConcurrentIndexDeletion);
            let fix = violation.fix.filter(|_| !fix_breaks_the_migration).map(|fix| Fix {
                title: fix.title,
                edits: fix
                    .edits
                    .into_iter()
                    .map(|edit| Edit {
                        start: usize::from(edit.text_range.start()),
                        end: usize::from(edit.text_range.end()),
                        text: edit.text.unwrap_or_default(),
                    })
                    .collect(),
            });
            Some(Raw { rule, statement, offset, message, fix })
        })
        .collect()
}

/// (general rule, the more specific rule that replaces it on the same statement).
const SUPERSEDED: &[(&str, &str)] = &[
    ("require-concurrent-index-creation", "hnsw-index-without-concurrently"),
    ("constraint-missing-not-valid", "disallowed-unique-constraint"),
];

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `Some(true)` when a statement sets a non-zero `lock_timeout`, `Some(false)` when it resets or disables it.
fn sets_lock_timeout(stmt: &ast::Stmt) -> Option<bool> {
    if !matches!(stmt, ast::Stmt::Reset(_) | ast::Stmt::Set(_)) {
        return None;
    }
    let words: Vec<String> = stmt
        .syntax()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia() && t.kind() != squawk_syntax::SyntaxKind::SEMICOLON)
        .map(|t| t.text().to_ascii_lowercase())
        .collect();
    match stmt {
        ast::Stmt::Reset(_) => match words.get(1).map(String::as_str) {
            Some("all") | Some("lock_timeout") => Some(false),
            _ => None,
        },
        ast::Stmt::Set(_) => {
            // SET [SESSION | LOCAL] lock_timeout { TO | = } value
            let rest: Vec<&str> = words.iter().skip(1).map(String::as_str).skip_while(|w| matches!(*w, "session" | "local")).collect();
            if rest.first() != Some(&"lock_timeout") {
                return None;
            }
            let value = rest.get(2).map(|v| v.trim_matches('\'')).unwrap_or("default");
            Some(value.trim_start_matches(['0', '.']).chars().next().is_some_and(|c| c.is_ascii_digit()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn anonchat() -> Chain {
        Chain::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations")).unwrap()
    }

    #[test]
    fn the_anonymous_chat_chain_lints_clean() {
        let chain = anonchat();
        let config = Config::default();
        let all: Vec<usize> = (0..chain.migrations.len()).collect();
        let report = lint(&chain, &config, &all).unwrap();
        assert_eq!(report.render_text(&chain.dir), "", "the Anonymous Chat chain must lint clean");
        assert_eq!(report.linted, chain.migrations.len());
    }

    /// The syntax real diesel projects use (plpgsql `$$` bodies, DO blocks, triggers, ALTER TYPE ... ADD VALUE,
    /// generated columns, partitions, GIN/GiST on extension types, COMMENT ON, enums, identity columns,
    /// multi-action ALTER TABLE) parses without a single unparsable statement, and what it reports is pinned.
    #[test]
    fn real_world_syntax_parses_and_lints() {
        for fixture in ["real_world_syntax", "realworld"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/chains").join(fixture);
            let chain = Chain::load(&dir).unwrap();
            let all: Vec<usize> = (0..chain.migrations.len()).collect();
            let report = lint(&chain, &Config::default(), &all).unwrap();
            let text = report.render_text(&dir);
            assert!(!text.contains("[unparsable-statement]"), "{fixture}: parse failures:\n{text}");
            insta::assert_snapshot!(fixture, text);
        }
    }

    #[test]
    fn selection_by_version_directory_or_path_and_the_baseline() {
        let chain = anonchat();
        let mut config = Config::default();
        let names = |picked: Vec<usize>| picked.iter().map(|&i| chain.migrations[i].name.clone()).collect::<Vec<_>>();
        let args = ["20250115090300", "2025-01-15-090100_create_users", "migrations/2025-01-15-090100_create_users/"];
        let picked = select(&chain, &config, &args.map(String::from)).unwrap();
        assert_eq!(names(picked), ["create_users", "create_messages"]);
        config.baseline = Some("20250115090300".into());
        assert_eq!(names(select(&chain, &config, &[]).unwrap()), ["index_message_embeddings"]);
        let err = select(&chain, &config, &["2099".to_owned()]).unwrap_err().to_string();
        assert!(err.starts_with("no migration `2099` in "), "{err}");
    }
}
