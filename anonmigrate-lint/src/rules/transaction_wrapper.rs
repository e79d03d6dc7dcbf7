//! `transaction-wrapper`: up.sql wrapped whole in `BEGIN; … COMMIT;` (written for psql). The runner leaves the
//! wrapper out, so this only warns.

use anonmigrate_chain::transactions::TxLayout;

use super::{Check, Example, Hit, Rule, StatementCx};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "transaction-wrapper",
    default_level: Level::Warn,
    summary: "A transactional up.sql wrapped whole in `BEGIN; … COMMIT;`, as written for psql.",
    why: "Harmless to the runner, which leaves the two statements out and runs the file in its own transaction together \
          with the bookkeeping row; but the file reads as if it controlled its transaction, and a statement later added \
          after the COMMIT turns it into transaction control mid-file, which the runner refuses.",
    help: "Remove the `BEGIN;` and `COMMIT;` lines: a migration already is one transaction.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&[], "BEGIN;\nCREATE TABLE rooms (id bigint PRIMARY KEY);\nCOMMIT;"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY);"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    match cx.migration.transactions {
        Ok(TxLayout::Wrapper { begin, .. }) if begin == cx.index => vec![Hit::new(
            "the file is wrapped whole in BEGIN … COMMIT: the runner leaves the wrapper out and runs it in its own transaction with the bookkeeping",
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    crate::rules::examples_test!();
}
