//! `changing-column-type`: `ALTER COLUMN ... TYPE` locks the table and usually rewrites it.

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql::{self, ColumnSite};

pub static RULE: Rule = Rule {
    id: "changing-column-type",
    default_level: Level::Deny,
    summary: "`ALTER COLUMN ... TYPE` on a table that existed before this migration.",
    why: "Changing a column's type takes an ACCESS EXCLUSIVE lock, and most changes rewrite the table and rebuild its \
          indexes while holding it; even a change that needs no rewrite breaks running code that still expects the \
          old type.",
    help: "Add a column with the new type, write to both, backfill in batches, move the readers, then drop the old \
           column; when the change is binary-compatible (varchar(n) to text, or to a longer varchar), allow it with \
           that reason.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, karma int);"], "ALTER TABLE users ALTER COLUMN karma TYPE bigint;"),
    good: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, karma int);"], "ALTER TABLE users ADD COLUMN karma_big bigint;"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    sql::columns(cx.node)
        .into_iter()
        .filter(|column| column.site == ColumnSite::AlterType && cx.is_existing(column.table))
        .map(|column| {
            let new_type = column.sql_type().map_or(String::new(), |t| format!(" to {}", t.name));
            Hit::at(
                column.sql_type().and_then(|t| t.location),
                format!(
                    "changing the type of `{}`{new_type} on existing table {} locks it (ACCESS EXCLUSIVE) and usually rewrites it",
                    column.name,
                    cx.describe(column.table)
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    crate::rules::examples_test!();
}
