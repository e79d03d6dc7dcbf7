//! `constraint-missing-not-valid`: a foreign key or check added to a live table validates every row under lock.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "constraint-missing-not-valid",
    default_level: Level::Deny,
    summary: "A `FOREIGN KEY` or `CHECK` constraint added to a table that existed before this migration without \
              `NOT VALID`, or validated in the same transaction that added it.",
    why: "Adding a foreign key or check validates every existing row while the ALTER holds its lock (SHARE ROW \
          EXCLUSIVE on both tables for a foreign key, ACCESS EXCLUSIVE for a check), so writes wait for a full \
          table scan; validating in the same transaction keeps that lock through the scan.",
    help: "Add the constraint with `NOT VALID` (instant: only new and updated rows are checked), then run \
           `ALTER TABLE ... VALIDATE CONSTRAINT ...` in a later migration; validation lets reads and writes continue.",
    check: Check::Squawk(squawk_linter::Rule::ConstraintMissingNotValid),
    once_per_migration: false,
    bad: Example::new(
        &["CREATE TABLE users (id bigint PRIMARY KEY);\nCREATE TABLE messages (id bigint PRIMARY KEY, author_id bigint);"],
        "ALTER TABLE messages ADD CONSTRAINT messages_author_fk FOREIGN KEY (author_id) REFERENCES users (id);",
    ),
    good: Example::new(
        &["CREATE TABLE users (id bigint PRIMARY KEY);\nCREATE TABLE messages (id bigint PRIMARY KEY, author_id bigint);"],
        "ALTER TABLE messages ADD CONSTRAINT messages_author_fk FOREIGN KEY (author_id) REFERENCES users (id) NOT VALID;",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_rule;

    crate::rules::examples_test!();

    #[test]
    fn checks_inline_references_and_same_transaction_validation() {
        let example = Example::new(
            &["CREATE TABLE users (id bigint PRIMARY KEY, age int);"],
            "ALTER TABLE users ADD CHECK (age >= 0);\nALTER TABLE users ADD COLUMN invited_by bigint REFERENCES users (id);\nALTER TABLE users ADD CONSTRAINT age_ok CHECK (age < 200) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT age_ok;\nCREATE TABLE rooms (id bigint, owner bigint);\nALTER TABLE rooms ADD FOREIGN KEY (owner) REFERENCES users (id);",
        );
        insta::assert_snapshot!(check_rule(&RULE, example));
        let later = Example::new(
            &["CREATE TABLE users (id bigint PRIMARY KEY, age int);", "ALTER TABLE users ADD CONSTRAINT age_ok CHECK (age < 200) NOT VALID;"],
            "ALTER TABLE users VALIDATE CONSTRAINT age_ok;",
        );
        insta::assert_snapshot!(check_rule(&RULE, later));
    }
}
