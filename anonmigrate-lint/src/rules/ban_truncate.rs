//! `ban-truncate`: `TRUNCATE` deletes every row of a live table.

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::sql;

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "ban-truncate",
    default_level: Level::Deny,
    summary: "`TRUNCATE` of a table that existed before this migration.",
    why: "TRUNCATE deletes all rows at once, cannot be limited with a WHERE, and takes an ACCESS EXCLUSIVE lock that \
          blocks even reads; no down.sql can restore the data.",
    help: "Delete the rows you mean with `DELETE ... WHERE` in batches, or allow it with a reason when the table only \
           holds disposable data.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE sessions (id bigint PRIMARY KEY, expires_at timestamptz);"], "TRUNCATE sessions;"),
    good: Example::new(
        &["CREATE TABLE sessions (id bigint PRIMARY KEY, expires_at timestamptz);"],
        "DELETE FROM sessions WHERE expires_at < now() - interval '30 days';",
    ),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    if !matches!(cx.stmt, squawk_syntax::ast::Stmt::Truncate(_)) {
        return Vec::new();
    }
    sql::listed_tables(cx.stmt)
        .into_iter()
        .filter(|table| cx.is_existing(table))
        .map(|table| Hit::new(format!("truncating existing table {} deletes every row under an ACCESS EXCLUSIVE lock", cx.describe(&table))))
        .collect()
}

#[cfg(test)]
mod tests {
    crate::rules::examples_test!();
}
