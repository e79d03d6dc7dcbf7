//! `changing-column-type`: `ALTER COLUMN ... TYPE` locks the table and usually rewrites it.

use super::{Check, Example, Rule};

use crate::config::Level;

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
    check: Check::Squawk(squawk_linter::Rule::ChangingColumnType),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, karma int);"], "ALTER TABLE users ALTER COLUMN karma TYPE bigint;"),
    good: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, karma int);"], "ALTER TABLE users ADD COLUMN karma_big bigint;"),
};

#[cfg(test)]
mod tests {
    crate::rules::examples_test!();
}
