//! The rules: one module per rule, each a [`Rule`] constant with its id, default level, documentation, check and
//! examples. [`RULES`] lists them all; `docs/lint-rules.md` is generated from it (see `crate::docs`).

use anonmigrate_chain::transactions::{TxLayout, TxProblem};
use squawk_syntax::ast;

use crate::catalog::{Catalog, Origin};
use crate::config::Level;

mod adding_field_with_volatile_default;
mod adding_required_field;
mod ban_concurrent_index_in_transaction;
mod ban_drop_column;
mod ban_drop_database;
mod ban_drop_table;
mod ban_truncate;
mod changing_column_type;
mod constraint_missing_not_valid;
mod disallowed_unique_constraint;
mod hnsw_index_without_concurrently;
mod identifier_too_long;
mod invalid_allow_comment;
mod missing_down_migration;
mod prefer_bigint_over_int;
mod prefer_identity;
mod prefer_text_field;
mod prefer_timestamptz;
mod releasing_the_migration_lock;
mod renaming_column;
mod renaming_table;
mod require_concurrent_index_creation;
mod require_concurrent_index_deletion;
mod require_lock_timeout;
mod set_not_null_on_existing_column;
mod transaction_control_in_migration;
mod transaction_wrapper;

pub(crate) use transaction_control_in_migration::tx_statement;
mod unparsable_statement;
mod vector_without_dimension;

pub use invalid_allow_comment::RULE as INVALID_ALLOW_COMMENT;
pub use unparsable_statement::RULE as UNPARSABLE_STATEMENT;

/// Every rule, in the order the documentation lists them.
pub static RULES: &[&Rule] = &[
    &require_concurrent_index_creation::RULE,
    &require_concurrent_index_deletion::RULE,
    &ban_concurrent_index_in_transaction::RULE,
    &hnsw_index_without_concurrently::RULE,
    &adding_required_field::RULE,
    &adding_field_with_volatile_default::RULE,
    &set_not_null_on_existing_column::RULE,
    &constraint_missing_not_valid::RULE,
    &disallowed_unique_constraint::RULE,
    &changing_column_type::RULE,
    &renaming_column::RULE,
    &renaming_table::RULE,
    &ban_drop_column::RULE,
    &ban_drop_table::RULE,
    &ban_drop_database::RULE,
    &ban_truncate::RULE,
    &require_lock_timeout::RULE,
    &transaction_control_in_migration::RULE,
    &transaction_wrapper::RULE,
    &releasing_the_migration_lock::RULE,
    &vector_without_dimension::RULE,
    &identifier_too_long::RULE,
    &prefer_bigint_over_int::RULE,
    &prefer_identity::RULE,
    &prefer_timestamptz::RULE,
    &prefer_text_field::RULE,
    &missing_down_migration::RULE,
    &unparsable_statement::RULE,
    &invalid_allow_comment::RULE,
];

/// Rules not run on down.sql, each with why: a down migration undoes its up.sql, so it is expected to drop what up
/// created and to rename back what up renamed, and it recreates the old shape of a column or table as it was (the
/// style rules would ask to change history). Every other rule (locks, unsafe DDL on live tables, transactions,
/// parse failures, allow comments) applies to down.sql as to up.sql: a revert runs on the same live database.
pub const NOT_IN_DOWN: &[(&str, &str)] = &[
    ("ban-drop-column", "dropping the columns up.sql added is what a down.sql is for"),
    ("ban-drop-table", "dropping the tables up.sql created is what a down.sql is for"),
    ("ban-truncate", "emptying what up.sql filled is a down.sql's job"),
    ("renaming-column", "renaming back what up.sql renamed is what a down.sql is for"),
    ("renaming-table", "renaming back what up.sql renamed is what a down.sql is for"),
    ("prefer-bigint-over-int", "a down.sql recreates the column as it was before"),
    ("prefer-identity", "a down.sql recreates the column as it was before"),
    ("prefer-timestamptz", "a down.sql recreates the column as it was before"),
    ("prefer-text-field", "a down.sql recreates the column as it was before"),
    ("missing-down-migration", "it is about the migration as a whole, reported on up.sql"),
];

/// Whether `rule` is also run on down.sql files (see [`NOT_IN_DOWN`]).
pub fn applies_to_down(rule: &Rule) -> bool {
    !NOT_IN_DOWN.iter().any(|(id, _)| *id == rule.id) && !matches!(rule.check, Check::Migration(_))
}

/// The rule with this id, or with squawk's name for it (users of squawk already have those in their comments).
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|rule| {
        rule.id == id || matches!(rule.check, Check::Squawk(squawk) if squawk.to_string() == id || squawk_linter::Rule::try_from(id) == Ok(squawk))
    })
}

/// A lint rule: what it catches, why that is dangerous, what to do instead, and the check itself.
#[derive(Debug)]
pub struct Rule {
    /// Stable kebab-case id, used in configuration, allow comments and output.
    pub id: &'static str,
    pub default_level: Level,
    /// What it catches (one sentence).
    pub summary: &'static str,
    /// Why that is dangerous on a live database.
    pub why: &'static str,
    /// The safe alternative; printed as the `help:` line.
    pub help: &'static str,
    pub check: Check,
    /// Report only the first hit in a migration (the fix is one line for the whole file).
    pub once_per_migration: bool,
    /// A migration that breaks the rule, and one that does the same job safely.
    pub bad: Example,
    pub good: Example,
}

#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// squawk's own rule of that name, run on the whole file (squawk maintains it; we keep the id, level and docs).
    Squawk(squawk_linter::Rule),
    /// Looks at one parsed statement (our own rules: chain-aware, pgvector, the runner's transactions).
    Statement(fn(&StatementCx<'_>) -> Vec<Hit>),
    /// Looks at the migration as a whole (its files and metadata).
    Migration(fn(&MigrationFacts) -> Vec<Hit>),
    /// Raised by the engine itself (parse failures, malformed allow comments).
    Engine,
}

/// One problem a check found.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Byte offset in up.sql for a precise line (default: the statement's start).
    pub offset: Option<usize>,
    pub message: String,
}

impl Hit {
    pub fn new(message: impl Into<String>) -> Hit {
        Hit { offset: None, message: message.into() }
    }

    pub fn at(offset: usize, message: impl Into<String>) -> Hit {
        Hit { offset: Some(offset), message: message.into() }
    }
}

/// Facts about the migration being linted.
#[derive(Debug, Clone)]
pub struct MigrationFacts {
    pub dir_name: String,
    /// `run_in_transaction` (metadata.toml; default true).
    pub transactional: bool,
    /// How up.sql's transaction control is laid out, judged as the runner judges it.
    pub transactions: Result<TxLayout, TxProblem>,
    pub has_down: bool,
}

/// What a statement check sees: the statement, its migration, and the chain's catalog just before it.
#[derive(Debug)]
pub struct StatementCx<'a> {
    pub stmt: &'a ast::Stmt,
    /// Index of the statement in up.sql.
    pub index: usize,
    pub migration: &'a MigrationFacts,
    pub catalog: &'a Catalog,
    /// A `lock_timeout` bounds this statement's lock waits: the runner's `ddl-lock-timeout`, or an earlier `SET`.
    pub lock_timeout_set: bool,
}

impl StatementCx<'_> {
    pub fn table_origin(&self, key: &str) -> Origin<'_> {
        self.catalog.table_origin(key, &self.migration.dir_name)
    }

    /// The table existed before this migration (created by an earlier one, or not by the chain at all), so the
    /// application may be using it. Tables created by this very migration are new and empty.
    pub fn is_existing(&self, key: &str) -> bool {
        self.table_origin(key) != Origin::ThisMigration
    }

    /// "`users` (created by 2025-01-15-090100_create_users)" for messages.
    pub fn describe(&self, key: &str) -> String {
        describe(key, self.table_origin(key))
    }
}

pub fn describe(key: &str, origin: Origin<'_>) -> String {
    match origin {
        Origin::Earlier(dir) => format!("`{key}` (created by {dir})"),
        Origin::Unknown => format!("`{key}` (not created in this chain, so assumed to exist)"),
        Origin::ThisMigration => format!("`{key}` (created by this migration)"),
    }
}

/// A small migration for the documentation and the tests: each of `earlier` is a previous migration (not linted),
/// `up` is the migration being linted.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    pub earlier: &'static [&'static str],
    pub up: &'static str,
    pub run_in_transaction: bool,
    pub has_down: bool,
    /// The workspace sets `ddl-lock-timeout = "0"`.
    pub runner_lock_timeout: bool,
}

impl Example {
    pub const fn new(earlier: &'static [&'static str], up: &'static str) -> Example {
        Example { earlier, up, run_in_transaction: true, has_down: true, runner_lock_timeout: true }
    }

    pub const fn non_transactional(self) -> Example {
        Example { run_in_transaction: false, ..self }
    }

    pub const fn without_down(self) -> Example {
        Example { has_down: false, ..self }
    }

    pub const fn without_runner_lock_timeout(self) -> Example {
        Example { runner_lock_timeout: false, ..self }
    }
}

/// The test every rule file has: its examples behave (see [`crate::testing::assert_examples`]).
#[cfg(test)]
macro_rules! examples_test {
    () => {
        #[test]
        fn examples() {
            crate::testing::assert_examples(&super::RULE, module_path!());
        }
    };
}
#[cfg(test)]
use examples_test;

/// Index access methods of pgvector, whose builds are the slowest of all.
pub fn is_vector_index_method(method: &str) -> bool {
    method.eq_ignore_ascii_case("hnsw") || method.eq_ignore_ascii_case("ivfflat")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for rule in RULES {
            assert!(seen.insert(rule.id), "duplicate rule id {}", rule.id);
            assert!(
                rule.id.split('-').all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase())),
                "{} is not kebab-case",
                rule.id
            );
            for (what, text) in [("summary", rule.summary), ("why", rule.why), ("help", rule.help)] {
                assert!(text.len() > 20 && text.ends_with('.'), "{}: {what} must be a sentence", rule.id);
            }
            assert_ne!(rule.default_level, Level::Allow, "{}: every rule is on by default", rule.id);
        }
        let modules = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/rules"))
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter(|name| name.ends_with(".rs") && name != "mod.rs")
            .count();
        assert_eq!(modules, RULES.len(), "every file in src/rules is one rule listed in RULES");
    }

    /// What every bad example reports, messages included: reviewed like code when a message changes.
    #[test]
    fn findings_of_the_bad_examples() {
        let mut out = String::new();
        for rule in RULES {
            out.push_str(&format!("# {}\n{}\n", rule.id, crate::testing::render(&crate::testing::findings(&rule.bad))));
        }
        insta::assert_snapshot!(out);
    }
}
