//! `transaction-control-in-migration`: BEGIN/COMMIT inside up.sql fights the runner's own transaction.

use pg_query::NodeEnum;
use pg_query::protobuf::TransactionStmtKind;

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
    let NodeEnum::TransactionStmt(stmt) = cx.node else {
        return Vec::new();
    };
    let keyword = match TransactionStmtKind::try_from(stmt.kind).unwrap_or(TransactionStmtKind::Undefined) {
        TransactionStmtKind::TransStmtBegin => "BEGIN",
        TransactionStmtKind::TransStmtStart => "START TRANSACTION",
        TransactionStmtKind::TransStmtCommit => "COMMIT",
        TransactionStmtKind::TransStmtRollback => "ROLLBACK",
        TransactionStmtKind::TransStmtSavepoint => "SAVEPOINT",
        TransactionStmtKind::TransStmtRelease => "RELEASE SAVEPOINT",
        TransactionStmtKind::TransStmtRollbackTo => "ROLLBACK TO SAVEPOINT",
        TransactionStmtKind::TransStmtPrepare => "PREPARE TRANSACTION",
        TransactionStmtKind::TransStmtCommitPrepared => "COMMIT PREPARED",
        TransactionStmtKind::TransStmtRollbackPrepared => "ROLLBACK PREPARED",
        TransactionStmtKind::Undefined => "transaction control",
    };
    let context = if cx.migration.transactional {
        "the runner already runs this migration and its bookkeeping in one transaction"
    } else {
        "with `run_in_transaction = false` every statement already commits on its own"
    };
    vec![Hit::new(format!("{keyword} inside a migration: {context}; the runner refuses files with transaction control"))]
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
        assert_eq!(
            check_rule(&RULE, example),
            "line 2: error [transaction-control-in-migration] COMMIT inside a migration: with `run_in_transaction = false` every statement already commits on its own; the runner refuses files with transaction control\n"
        );
    }
}
