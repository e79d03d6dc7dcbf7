//! `require-concurrent-index-deletion`: a plain `DROP INDEX` locks the whole table, reads included.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "require-concurrent-index-deletion",
    default_level: Level::Deny,
    summary: "`DROP INDEX` without `CONCURRENTLY` for an index that existed before this migration.",
    why: "DROP INDEX takes an ACCESS EXCLUSIVE lock on the index's table: while it waits for running queries to \
          finish, every new query on the table, plain reads included, queues behind it.",
    help: "Use `DROP INDEX CONCURRENTLY` (one index per statement) in a migration with `run_in_transaction = false` \
           in metadata.toml.",
    check: Check::Squawk(squawk_linter::Rule::RequireConcurrentIndexDeletion),
    once_per_migration: false,
    bad: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, room text NOT NULL);\nCREATE INDEX messages_room_idx ON messages (room);"],
        "DROP INDEX messages_room_idx;",
    ),
    good: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, room text NOT NULL);\nCREATE INDEX messages_room_idx ON messages (room);"],
        "DROP INDEX CONCURRENTLY IF EXISTS messages_room_idx;",
    )
    .non_transactional(),
};

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn an_index_created_by_the_same_migration_may_be_dropped_plainly() {
        let sql = "CREATE TABLE t (id bigint PRIMARY KEY);\nCREATE INDEX t_id ON t (id);\nDROP INDEX t_id;\nDROP INDEX app.legacy_idx;";
        insta::assert_snapshot!(check(&[], sql));
    }
}
