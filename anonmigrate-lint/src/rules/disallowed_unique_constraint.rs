//! `disallowed-unique-constraint`: `ADD UNIQUE` builds its index while the table is locked.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "disallowed-unique-constraint",
    default_level: Level::Deny,
    summary: "A `UNIQUE`, `PRIMARY KEY` or `EXCLUDE` constraint added to a table that existed before this migration \
              without `USING INDEX`.",
    why: "ALTER TABLE ... ADD UNIQUE (or PRIMARY KEY, or EXCLUDE) builds the backing index inside the ALTER, holding \
          an ACCESS EXCLUSIVE lock for the whole build: nothing can read or write the table meanwhile.",
    help: "Build the index first with `CREATE UNIQUE INDEX CONCURRENTLY` in a non-transactional migration, then attach \
           it: `ALTER TABLE t ADD CONSTRAINT c UNIQUE USING INDEX idx` (`PRIMARY KEY USING INDEX` works the same way).",
    check: Check::Squawk(squawk_linter::Rule::DisallowedUniqueConstraint),
    once_per_migration: false,
    bad: Example::new(
        &["CREATE TABLE users (id bigint PRIMARY KEY, email text);"],
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
    ),
    good: Example::new(
        &[
            "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
            "CREATE UNIQUE INDEX CONCURRENTLY users_email_idx ON users (email);",
        ],
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_rule;

    #[test]
    fn inline_unique_columns_count_and_new_tables_do_not() {
        let example = Example::new(
            &["CREATE TABLE users (id bigint);"],
            "ALTER TABLE users ADD COLUMN handle text UNIQUE;\nALTER TABLE users ADD PRIMARY KEY (id);\nCREATE TABLE t (a int);\nALTER TABLE t ADD UNIQUE (a);",
        );
        insta::assert_snapshot!(check_rule(&RULE, example));
    }

    crate::rules::examples_test!();
}
