//! `set-not-null-on-existing-column`: `SET NOT NULL` scans the whole table under an exclusive lock.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "set-not-null-on-existing-column",
    default_level: Level::Deny,
    summary: "`ALTER COLUMN ... SET NOT NULL` (or `ADD CONSTRAINT ... NOT NULL`) on a table that existed before this \
              migration, without a validated `CHECK (col IS NOT NULL)` to prove it.",
    why: "To set NOT NULL PostgreSQL must prove there is no NULL: it reads every row while holding an ACCESS EXCLUSIVE \
          lock, so all reads and writes of the table wait for the scan.",
    help: "Add `CHECK (col IS NOT NULL) NOT VALID` in one migration; in the next, `VALIDATE CONSTRAINT` (it allows \
           reads and writes meanwhile), then `SET NOT NULL`, which PostgreSQL 12+ proves from the validated check \
           without a scan, and drop the check.",
    check: Check::Squawk(squawk_linter::Rule::AddingNotNullableField),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, nickname text);"], "ALTER TABLE users ALTER COLUMN nickname SET NOT NULL;"),
    good: Example::new(
        &[
            "CREATE TABLE users (id bigint PRIMARY KEY, nickname text);",
            "ALTER TABLE users ADD CONSTRAINT users_nickname_not_null CHECK (nickname IS NOT NULL) NOT VALID;",
        ],
        "ALTER TABLE users VALIDATE CONSTRAINT users_nickname_not_null;\nALTER TABLE users ALTER COLUMN nickname SET NOT NULL;\nALTER TABLE users DROP CONSTRAINT users_nickname_not_null;",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_rule;

    crate::rules::examples_test!();

    #[test]
    fn an_unvalidated_check_does_not_help_and_new_tables_are_fine() {
        let example = Example::new(
            &[
                "CREATE TABLE users (id bigint, nick text);",
                "ALTER TABLE users ADD CONSTRAINT nick_nn CHECK (nick IS NOT NULL) NOT VALID;",
            ],
            "ALTER TABLE users ALTER COLUMN nick SET NOT NULL;\nCREATE TABLE t (a text);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        );
        insta::assert_snapshot!(check_rule(&RULE, example));
    }
}
