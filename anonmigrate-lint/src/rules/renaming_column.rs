//! `renaming-column`: running code keeps using the old column name.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "renaming-column",
    default_level: Level::Deny,
    summary: "`RENAME COLUMN` on a table that existed before this migration.",
    why: "A rename is instant in the database but not in the fleet: during a deploy the previous release keeps running, \
          and every query it sends with the old name (diesel's schema.rs spells out each column) fails until it is \
          replaced.",
    help: "Expand and contract: add the new column, write to both, backfill, move the readers, and drop the old column \
           in a later release; or allow the rename with a reason when no running code uses the column.",
    check: Check::Squawk(squawk_linter::Rule::RenamingColumn),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, nick text);"], "ALTER TABLE users RENAME COLUMN nick TO nickname;"),
    good: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, nick text);"], "ALTER TABLE users ADD COLUMN nickname text;"),
};

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn a_column_of_a_new_table_may_be_renamed() {
        insta::assert_snapshot!(check(&[], "CREATE TABLE t (a int8);\nALTER TABLE t RENAME COLUMN a TO b;"));
    }
}
