//! `transaction-control-in-migration`: BEGIN/COMMIT inside up.sql where the runner cannot honour it fights the
//! runner's own transaction.

use anonmigrate_chain::transactions::TxStatement;
use squawk_syntax::ast::{self, AstNode};

use super::{Check, Example, Hit, Rule, StatementCx};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "transaction-control-in-migration",
    default_level: Level::Deny,
    summary: "`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT` and other transaction control where the runner cannot honour it.",
    why: "The runner commits each migration together with its bookkeeping row; a COMMIT in the middle of the file would \
          make the DDL permanent before the bookkeeping, so a later failure leaves a half-applied migration recorded as \
          not applied. The runner refuses such files, so the deploy stops. A file wrapped whole in `BEGIN; … COMMIT;` is \
          fine (see transaction-wrapper), and in a `run_in_transaction = false` migration each `BEGIN; … COMMIT;` \
          block runs as one unit; an unterminated or nested block is refused.",
    help: "Remove the transaction control: a migration already is one transaction. For statements that must run \
           outside a transaction (CREATE INDEX CONCURRENTLY), set `run_in_transaction = false` in metadata.toml and \
           group the statements that belong together in `BEGIN; … COMMIT;` blocks.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY);\nCOMMIT;\nCREATE TABLE members (room_id bigint);"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY);\nCREATE TABLE members (room_id bigint);"),
};

/// Reports the statement the runner refuses (the same judgement: `anonmigrate_chain::transactions::layout`).
fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let Err(problem) = &cx.migration.transactions else {
        return Vec::new();
    };
    if problem.index != cx.index {
        return Vec::new();
    }
    let context = if cx.migration.transactional {
        "the runner runs this migration and its bookkeeping in one transaction, and only a whole-file `BEGIN; … COMMIT;` wrapper can be left out"
    } else {
        "with `run_in_transaction = false` each `BEGIN; … COMMIT;` block runs as one unit and every other statement on its own"
    };
    vec![Hit::new(format!("transaction control the runner cannot honour ({}): {context}; the runner refuses the file", problem.reason))]
}

/// How a statement acts on the transaction, for [`anonmigrate_chain::transactions::layout`].
pub fn tx_statement(stmt: &ast::Stmt) -> TxStatement {
    let words: Vec<String> = stmt
        .syntax()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia() && t.text() != ";")
        .map(|t| t.text().to_ascii_uppercase())
        .collect();
    let only = |allowed: &[&str]| words.iter().all(|w| allowed.contains(&w.as_str()));
    match stmt {
        ast::Stmt::Begin(_) => TxStatement::Begin { plain: only(&["BEGIN", "START", "TRANSACTION", "WORK"]) },
        ast::Stmt::Commit(_) if words.iter().any(|w| w == "PREPARED") => TxStatement::Other,
        ast::Stmt::Commit(_) => TxStatement::Commit { plain: only(&["COMMIT", "END", "TRANSACTION", "WORK"]) },
        ast::Stmt::Rollback(_) if words.iter().any(|w| w == "TO") => TxStatement::Savepoint,
        ast::Stmt::SavepointCreate(_) | ast::Stmt::ReleaseSavepoint(_) => TxStatement::Savepoint,
        ast::Stmt::Rollback(_) | ast::Stmt::PrepareTransaction(_) => TxStatement::Other,
        _ => TxStatement::None,
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

    #[test]
    fn blocks_in_non_transactional_migrations_and_wrappers_in_transactional_ones() {
        let blocks = "CREATE INDEX CONCURRENTLY a_idx ON a (id);\nBEGIN;\nUPDATE a SET id = id;\nSAVEPOINT s;\nCOMMIT;";
        assert_eq!(check_rule(&RULE, Example::new(&[], blocks).non_transactional()), "");
        let unterminated = "BEGIN;\nUPDATE a SET id = id;";
        let found = check_rule(&RULE, Example::new(&[], unterminated).non_transactional());
        assert!(found.starts_with("line 1: error [transaction-control-in-migration] transaction control the runner cannot honour (a BEGIN whose block is never committed"), "{found}");
        assert_eq!(check_rule(&RULE, Example::new(&[], "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;")), "");
        let modes = check_rule(&RULE, Example::new(&[], "BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE a (id int);\nCOMMIT;"));
        assert!(modes.contains("a BEGIN with transaction modes"), "{modes}");
        let rollback = check_rule(&RULE, Example::new(&[], "CREATE TABLE a (id int);\nROLLBACK;"));
        assert!(rollback.starts_with("line 2: error"), "{rollback}");
    }
}
