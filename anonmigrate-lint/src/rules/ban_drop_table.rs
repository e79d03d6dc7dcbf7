//! `ban-drop-table`: dropping a table loses its data and breaks code that uses it.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "ban-drop-table",
    default_level: Level::Deny,
    summary: "`DROP TABLE` of a table that existed before this migration.",
    why: "Dropping a table deletes its rows for good (a down.sql can recreate the table, not the data), and running \
          code that still queries it fails; the drop also waits for an ACCESS EXCLUSIVE lock.",
    help: "Stop using the table in code first, keep a backup (or rename it aside for a release), then drop it with an \
           allow comment that says why it is safe.",
    check: Check::Squawk(squawk_linter::Rule::BanDropTable),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE request_log_old (id bigint PRIMARY KEY);"], "DROP TABLE request_log_old;"),
    good: Example::new(
        &["CREATE TABLE request_log_old (id bigint PRIMARY KEY);"],
        "-- anonmigrate:allow ban-drop-table replaced by request_log in release 2025.02, rows archived\nDROP TABLE request_log_old;",
    ),
};

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn scratch_tables_of_the_same_migration_may_be_dropped() {
        insta::assert_snapshot!(check(&[], "CREATE TABLE scratch AS SELECT 1 AS n;\nDROP TABLE scratch;"));
    }
}
