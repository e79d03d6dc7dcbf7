//! `adding-required-field`: a NOT NULL column without a default cannot be added to a table that has rows.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "adding-required-field",
    default_level: Level::Deny,
    summary: "`ADD COLUMN ... NOT NULL` without a `DEFAULT` on a table that existed before this migration.",
    why: "Existing rows have no value for the new column, so PostgreSQL rejects the ALTER with a not-null violation as \
          soon as the table has a row: the migration passes on an empty development database and fails the \
          production deploy.",
    help: "Add the column with a constant DEFAULT (PostgreSQL 11+ records it without rewriting the table), or add it \
           nullable, backfill it in batches and enforce NOT NULL afterwards (see set-not-null-on-existing-column).",
    check: Check::Squawk(squawk_linter::Rule::AddingRequiredField),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY);"], "ALTER TABLE users ADD COLUMN nickname text NOT NULL;"),
    good: Example::new(
        &["CREATE TABLE users (id bigint PRIMARY KEY);"],
        "ALTER TABLE users ADD COLUMN nickname text NOT NULL DEFAULT '';",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_rule;

    crate::rules::examples_test!();

    #[test]
    fn primary_keys_count_identity_and_new_tables_do_not() {
        let example = Example::new(
            &["CREATE TABLE users (id bigint);"],
            "ALTER TABLE users ADD COLUMN code text PRIMARY KEY, ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;\nCREATE TABLE t (id bigint);\nALTER TABLE t ADD COLUMN x text NOT NULL;",
        );
        insta::assert_snapshot!(check_rule(&RULE, example));
    }
}
