//! `renaming-table`: running code keeps using the old table name.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "renaming-table",
    default_level: Level::Deny,
    summary: "`ALTER TABLE ... RENAME TO` on a table that existed before this migration.",
    why: "Instances of the previous release keep querying the old name during a deploy and fail until they are \
          replaced; the rename also waits for an ACCESS EXCLUSIVE lock.",
    help: "Create the new name as a view over the old table (or a new table filled in the background), move the code, \
           and rename or drop in a later release; or allow it with a reason when nothing uses the table yet.",
    check: Check::Squawk(squawk_linter::Rule::RenamingTable),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE chat_rooms (id bigint PRIMARY KEY);"], "ALTER TABLE chat_rooms RENAME TO rooms;"),
    good: Example::new(&["CREATE TABLE chat_rooms (id bigint PRIMARY KEY);"], "CREATE VIEW rooms AS SELECT * FROM chat_rooms;"),
};

#[cfg(test)]
mod tests {
    crate::rules::examples_test!();
}
