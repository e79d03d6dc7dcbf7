//! `require-concurrent-index-creation`: a plain `CREATE INDEX` on a live table blocks its writes.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "require-concurrent-index-creation",
    default_level: Level::Deny,
    summary: "`CREATE INDEX` without `CONCURRENTLY` on a table that existed before this migration.",
    why: "A plain CREATE INDEX holds a SHARE lock on the table for the whole build: every INSERT, UPDATE and DELETE \
          waits until the index is complete, which on a large table means minutes of stalled or failed writes.",
    help: "Use `CREATE INDEX CONCURRENTLY` in a migration of its own with `run_in_transaction = false` in metadata.toml \
           (`cargo anonmigrate generate NAME --non-transactional`); an index on a table created by the same migration \
           needs nothing.",
    check: Check::Squawk(squawk_linter::Rule::RequireConcurrentIndexCreation),
    once_per_migration: false,
    bad: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, room text NOT NULL);"],
        "CREATE INDEX messages_room_idx ON messages (room);",
    ),
    good: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, room text NOT NULL);"],
        "CREATE INDEX CONCURRENTLY messages_room_idx ON messages (room);",
    )
    .non_transactional(),
};

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn tables_created_by_the_same_migration_are_exempt_even_after_a_rename() {
        let sql = "CREATE TABLE rooms (id bigint PRIMARY KEY, name text);\nALTER TABLE rooms RENAME TO chat_rooms;\nCREATE INDEX ON chat_rooms (name);\nCREATE UNIQUE INDEX users_name ON users (name);";
        insta::assert_snapshot!(check(&[], sql));
    }
}
