//! `require-concurrent-index-creation`: a plain `CREATE INDEX` on a live table blocks its writes.

use super::{Check, Example, Hit, Rule, StatementCx, is_vector_index_method};
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
    check: Check::Statement(check),
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

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let Some((index, table)) = cx.plain_index_on_existing_table() else {
        return Vec::new();
    };
    // pgvector indexes have their own, more specific rule (hnsw-index-without-concurrently).
    if is_vector_index_method(&index.access_method) {
        return Vec::new();
    }
    let name = if index.idxname.is_empty() { "an index".to_owned() } else { format!("index `{}`", index.idxname) };
    vec![Hit::new(format!(
        "creating {name} without CONCURRENTLY on existing table {} blocks every write to it until the build finishes",
        cx.describe(table)
    ))]
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn tables_created_by_the_same_migration_are_exempt_even_after_a_rename() {
        let sql = "CREATE TABLE rooms (id bigint PRIMARY KEY, name text);\nALTER TABLE rooms RENAME TO chat_rooms;\nCREATE INDEX ON chat_rooms (name);\nCREATE UNIQUE INDEX users_name ON users (name);";
        assert_eq!(
            check(&[], sql),
            "line 4: error [require-concurrent-index-creation] creating index `users_name` without CONCURRENTLY on existing table `users` (not created in this chain, so assumed to exist) blocks every write to it until the build finishes\n"
        );
    }
}
