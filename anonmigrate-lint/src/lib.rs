//! `cargo anonmigrate lint`: finds migrations that would lock or break a live application before they run.
//!
//! Each up.sql is parsed with libpg_query (PostgreSQL's own parser, via the `pg_query` crate), and the whole chain
//! is replayed so a rule can tell a table this migration creates (new, empty, unused) from one an earlier migration
//! created (live). Rules live one per file in [`rules`]; findings come back as a [`Report`], which the CLI renders.
//!
//! This crate keeps the parser out of `anonmigrate-chain` (used by build scripts) and out of the engine: libpg_query
//! and the engine's bundled libpq define the same C symbols, so no binary links both. `cargo anonmigrate lint` runs
//! [`helper::run`] in a separate process (the `anonmigrate-lint-helper` binary installed with the CLI).

mod catalog;
pub mod config;
pub mod docs;
pub mod helper;
mod report;
pub mod rules;
mod source;
mod sql;
#[cfg(test)]
mod testing;

use std::collections::HashSet;

use std::path::PathBuf;

use anonmigrate_chain::{Chain, ChainError, Migration};
use pg_query::NodeEnum;
use pg_query::protobuf::VariableSetKind;

pub use catalog::Origin;
pub use config::{Config, Level};
pub use report::{Finding, Report};
pub use rules::{RULES, Rule};

use catalog::Catalog;
use rules::{Check, Hit, MigrationFacts, StatementCx};
use source::{Parsed, SourceFile};

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

/// diesel's `metadata.toml`: only `run_in_transaction` matters here.
#[derive(Debug, serde::Deserialize)]
struct Metadata {
    #[serde(default = "yes")]
    run_in_transaction: bool,
}

fn yes() -> bool {
    true
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
        let trimmed = arg.trim_end_matches('/');
        let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
        let version: String = last.chars().filter(|c| *c != '-').collect();
        let index = chain
            .migrations
            .iter()
            .position(|m| m.dir_name == last || m.version == version)
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
    for (index, migration) in chain.migrations.iter().enumerate() {
        let file = SourceFile::parse(&migration.up_sql);
        catalog.begin_migration();
        if wanted.contains(&index) {
            findings.extend(lint_migration(migration, &file, config, &mut catalog)?);
        } else {
            for statement in &file.statements {
                if let Parsed::Tree(node) = &statement.parsed {
                    catalog.apply(node, &migration.dir_name);
                }
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
}

fn lint_migration(migration: &Migration, file: &SourceFile, config: &Config, catalog: &mut Catalog) -> Result<Vec<Finding>> {
    let facts = MigrationFacts {
        dir_name: migration.dir_name.clone(),
        transactional: run_in_transaction(migration)?,
        has_down: migration.down_sql.is_some(),
    };
    let active: Vec<&'static Rule> = RULES.iter().copied().filter(|rule| config.level(rule) != Level::Allow).collect();
    let mut raw = Vec::new();
    let first = (!file.statements.is_empty()).then_some(0);
    for rule in &active {
        if let Check::Migration(check) = rule.check {
            for hit in check(&facts) {
                let offset = file.statements.first().map_or(0, |s| s.start);
                raw.push(Raw { rule, statement: first, offset, message: hit.message });
            }
        }
    }
    let mut lock_timeout_set = config.runner_lock_timeout;
    for (index, statement) in file.statements.iter().enumerate() {
        let node = match &statement.parsed {
            Parsed::Tree(node) => node,
            Parsed::Unparsable(message) => {
                raw.push(Raw {
                    rule: &rules::UNPARSABLE_STATEMENT,
                    statement: Some(index),
                    offset: statement.start,
                    message: format!(
                        "PostgreSQL's parser rejects this statement ({message}); nothing in it was checked, and the server would reject it too"
                    ),
                });
                continue;
            }
        };
        let cx = StatementCx {
            node,
            source: &migration.up_sql[statement.start..statement.end],
            source_location: (statement.start - statement.base) as i32,
            migration: &facts,
            catalog,
            lock_timeout_set,
        };
        for rule in &active {
            if let Check::Statement(check) = rule.check {
                for Hit { location, message } in check(&cx) {
                    let offset = location.map_or(statement.start, |l| statement.base + l as usize);
                    raw.push(Raw { rule, statement: Some(index), offset, message });
                }
            }
        }
        if let Some(set) = sets_lock_timeout(node) {
            lock_timeout_set = set || config.runner_lock_timeout;
        }
        catalog.apply(node, &migration.dir_name);
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
            path: migration.up_path(),
            line: file.line_of(hit.offset),
            message: hit.message,
            help: hit.rule.help,
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

/// `Some(true)` when a statement sets a non-zero `lock_timeout`, `Some(false)` when it resets or disables it.
fn sets_lock_timeout(node: &NodeEnum) -> Option<bool> {
    let NodeEnum::VariableSetStmt(set) = node else {
        return None;
    };
    let kind = VariableSetKind::try_from(set.kind).unwrap_or(VariableSetKind::Undefined);
    if kind == VariableSetKind::VarResetAll {
        return Some(false);
    }
    if !set.name.eq_ignore_ascii_case("lock_timeout") {
        return None;
    }
    if kind != VariableSetKind::VarSetValue {
        return Some(false);
    }
    let value = set.args.first().and_then(|arg| match arg.node.as_ref()? {
        NodeEnum::AConst(constant) => match constant.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Ival(i) => Some(i.ival.to_string()),
            pg_query::protobuf::a_const::Val::Sval(s) => Some(s.sval.clone()),
            pg_query::protobuf::a_const::Val::Fval(f) => Some(f.fval.clone()),
            _ => None,
        },
        _ => None,
    });
    Some(value.is_some_and(|v| v.trim_start_matches(['0', '.']).trim_start().chars().next().is_some_and(|c| c.is_ascii_digit())))
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
