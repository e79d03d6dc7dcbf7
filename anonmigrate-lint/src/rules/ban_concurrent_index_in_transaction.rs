//! `ban-concurrent-index-in-transaction`: `CONCURRENTLY` index operations fail inside a transaction block.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql;

pub static RULE: Rule = Rule {
    id: "ban-concurrent-index-in-transaction",
    default_level: Level::Deny,
    summary: "`CREATE INDEX CONCURRENTLY` or `DROP INDEX CONCURRENTLY` in a migration that runs in a transaction.",
    why: "PostgreSQL refuses concurrent index builds and drops inside a transaction block, and the runner wraps every \
          migration in a transaction unless metadata.toml says otherwise: the migration fails at deploy time.",
    help: "Move the concurrent index statements to a migration of their own with `run_in_transaction = false` in \
           metadata.toml; the runner then runs them one at a time and resumes after a failure.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, room text NOT NULL);"],
        "CREATE INDEX CONCURRENTLY messages_room_idx ON messages (room);",
    ),
    good: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, room text NOT NULL);"],
        "CREATE INDEX CONCURRENTLY messages_room_idx ON messages (room);",
    )
    .non_transactional(),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    if !cx.migration.transactional {
        return Vec::new();
    }
    let what = match cx.node {
        NodeEnum::IndexStmt(index) if index.concurrent => "CREATE INDEX CONCURRENTLY",
        NodeEnum::DropStmt(drop) if drop.concurrent && sql::object_type(drop.remove_type) == ObjectType::ObjectIndex => {
            "DROP INDEX CONCURRENTLY"
        }
        _ => return Vec::new(),
    };
    vec![Hit::new(format!(
        "{what} cannot run inside a transaction block, and this migration runs in one (metadata.toml does not set `run_in_transaction = false`): PostgreSQL will reject it"
    ))]
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn concurrent_drops_count_too() {
        assert_eq!(
            check(&[], "DROP INDEX CONCURRENTLY old_idx;"),
            "line 1: error [ban-concurrent-index-in-transaction] DROP INDEX CONCURRENTLY cannot run inside a transaction block, and this migration runs in one (metadata.toml does not set `run_in_transaction = false`): PostgreSQL will reject it\n"
        );
    }
}
