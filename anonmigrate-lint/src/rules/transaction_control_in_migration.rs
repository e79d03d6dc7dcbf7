//! `transaction-control-in-migration`: BEGIN/COMMIT inside up.sql fights the runner's own transaction.

use squawk_syntax::ast::{self, AstNode};

use super::{Check, Example, Hit, Rule, StatementCx};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "transaction-control-in-migration",
    default_level: Level::Deny,
    summary: "`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT` and other transaction control in up.sql.",
    why: "The runner commits each migration together with its bookkeeping row; a COMMIT in the file would make the \
          DDL permanent before the bookkeeping, so a later failure leaves a half-applied migration recorded as not \
          applied. The runner refuses such files, so the deploy stops.",
    help: "Remove the transaction control: a migration already is one transaction. For statements that must run \
           outside a transaction (CREATE INDEX CONCURRENTLY), set `run_in_transaction = false` in metadata.toml.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&[], "BEGIN;\nCREATE TABLE rooms (id bigint PRIMARY KEY);\nCOMMIT;"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY);"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let keyword = match cx.stmt {
        ast::Stmt::Begin(_)
        | ast::Stmt::Commit(_)
        | ast::Stmt::Rollback(_)
        | ast::Stmt::SavepointCreate(_)
        | ast::Stmt::ReleaseSavepoint(_)
        | ast::Stmt::PrepareTransaction(_) => leading_keywords(cx.stmt),
        _ => return Vec::new(),
    };
    let context = if cx.migration.transactional {
        "the runner already runs this migration and its bookkeeping in one transaction"
    } else {
        "with `run_in_transaction = false` every statement already commits on its own"
    };
    vec![Hit::new(format!("{keyword} inside a migration: {context}; the runner refuses files with transaction control"))]
}

/// `COMMIT`, `START TRANSACTION`, `ROLLBACK TO SAVEPOINT`: the statement's keywords, without names or options.
fn leading_keywords(stmt: &ast::Stmt) -> String {
    let words: Vec<String> = stmt
        .syntax()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
        .take_while(|t| t.kind().is_keyword())
        .map(|t| t.text().to_ascii_uppercase())
        .collect();
    match words.first().map(String::as_str) {
        Some("END") => "COMMIT".to_owned(),
        Some("ABORT") => "ROLLBACK".to_owned(),
        _ if words.is_empty() => "transaction control".to_owned(),
        Some("BEGIN") => "BEGIN".to_owned(),
        _ => words.into_iter().filter(|w| w != "WORK").collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_rule;

    crate::rules::examples_test!();

    #[test]
    fn non_transactional_migrations_and_function_bodies() {
        let example = Example::new(
            &[],
            "CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\nEND;",
        )
        .non_transactional();
        insta::assert_snapshot!(check_rule(&RULE, example));
    }
}
