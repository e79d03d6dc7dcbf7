//! `require-lock-timeout`: without a lock timeout one waiting ALTER stalls every query on its table.

use squawk_syntax::ast::{self, AstNode};

use super::{Check, Example, Hit, Rule, StatementCx, describe};
use crate::catalog::Origin;
use crate::config::Level;
use crate::sql::{self, relation_key};

pub static RULE: Rule = Rule {
    id: "require-lock-timeout",
    default_level: Level::Deny,
    summary: "A statement that locks a table that existed before this migration, when the workspace disabled the \
              runner's `ddl-lock-timeout` and the migration sets no `lock_timeout` first.",
    why: "A DDL statement waiting for its lock makes every later query on the table, plain reads included, queue \
          behind it; without lock_timeout one long-running transaction stalls the application for as long as it runs. \
          The runner sets lock_timeout itself unless `ddl-lock-timeout = \"0\"` turns that off.",
    help: "Start the migration with `SET lock_timeout = '5s';` (and retry the deploy if it times out), or remove \
           `ddl-lock-timeout = \"0\"` from [workspace.metadata.anonmigrate].",
    check: Check::Statement(check),
    once_per_migration: true,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY);"], "ALTER TABLE users ADD COLUMN bio text;").without_runner_lock_timeout(),
    good: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY);"], "SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN bio text;")
        .without_runner_lock_timeout(),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    if cx.lock_timeout_set {
        return Vec::new();
    }
    match locked_table(cx) {
        Some(table) => vec![Hit::new(format!(
            "this statement waits for a lock on existing table {table} with no lock_timeout (`ddl-lock-timeout` is disabled and the migration sets none), so every query on the table can queue behind it"
        ))],
        None => Vec::new(),
    }
}

/// The existing table a statement must lock in a way that blocks other queries while it waits.
fn locked_table(cx: &StatementCx<'_>) -> Option<String> {
    let existing = |table: String| cx.is_existing(&table).then(|| cx.describe(&table));
    let dir = cx.migration.dir_name.as_str();
    match cx.stmt {
        ast::Stmt::AlterTable(_) | ast::Stmt::CreateTrigger(_) => existing(sql::statement_table(cx.stmt)?),
        ast::Stmt::CreateIndex(index) if index.concurrently_token().is_none() => existing(sql::statement_table(cx.stmt)?),
        ast::Stmt::Truncate(_) | ast::Stmt::DropTable(_) => sql::listed_tables(cx.stmt).into_iter().find_map(existing),
        ast::Stmt::DropIndex(drop) if drop.concurrently_token().is_none() => drop.index_refs().filter_map(|i| i.path_ref()).find_map(|index| {
            match cx.catalog.index_table(&relation_key(index.syntax()), dir)? {
                (_, Origin::ThisMigration) => None,
                (table, origin) => Some(describe(table, origin)),
            }
        }),
        // A foreign key from a new table locks the table it references.
        ast::Stmt::CreateTable(_) => sql::referenced_tables(cx.stmt).into_iter().find_map(existing),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_rule;

    crate::rules::examples_test!();

    #[test]
    fn reported_once_and_only_while_no_timeout_is_in_force() {
        let example = Example::new(
            &["CREATE TABLE users (id bigint PRIMARY KEY);"],
            "CREATE TABLE rooms (id bigint PRIMARY KEY);\nALTER TABLE rooms ADD COLUMN x int;\nCREATE TABLE posts (author bigint REFERENCES users (id));\nALTER TABLE users ADD COLUMN bio text;",
        )
        .without_runner_lock_timeout();
        insta::assert_snapshot!(check_rule(&RULE, example));
        let reset = Example::new(
            &["CREATE TABLE users (id bigint PRIMARY KEY);"],
            "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN a text;\nSET lock_timeout = 0;\nALTER TABLE users ADD COLUMN b text;",
        )
        .without_runner_lock_timeout();
        assert!(check_rule(&RULE, reset).starts_with("line 4: error [require-lock-timeout]"));
        let runner_default = Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY);"], "ALTER TABLE users ADD COLUMN a text;");
        insta::assert_snapshot!(check_rule(&RULE, runner_default));
    }
}
