//! `require-concurrent-index-deletion`: a plain `DROP INDEX` locks the whole table, reads included.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use super::{Check, Example, Hit, Rule, StatementCx, describe};
use crate::catalog::Origin;
use crate::config::Level;
use crate::sql;

pub static RULE: Rule = Rule {
    id: "require-concurrent-index-deletion",
    default_level: Level::Deny,
    summary: "`DROP INDEX` without `CONCURRENTLY` for an index that existed before this migration.",
    why: "DROP INDEX takes an ACCESS EXCLUSIVE lock on the index's table: while it waits for running queries to \
          finish, every new query on the table, plain reads included, queues behind it.",
    help: "Use `DROP INDEX CONCURRENTLY` (one index per statement) in a migration with `run_in_transaction = false` \
           in metadata.toml.",
    check: Check::Statement(check),
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

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let NodeEnum::DropStmt(drop) = cx.node else {
        return Vec::new();
    };
    if drop.concurrent || sql::object_type(drop.remove_type) != ObjectType::ObjectIndex {
        return Vec::new();
    }
    let dir = cx.migration.dir_name.as_str();
    drop.objects
        .iter()
        .filter_map(sql::name_list_key)
        .filter(|key| cx.catalog.index_origin(key, dir) != Origin::ThisMigration)
        .map(|key| {
            let table = match cx.catalog.index_table(&key) {
                Some(table) => format!("its table {}", describe(table, cx.catalog.table_origin(table, dir))),
                None => "its table".to_owned(),
            };
            Hit::new(format!(
                "dropping index `{key}` without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on {table}, queueing reads and writes"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn an_index_created_by_the_same_migration_may_be_dropped_plainly() {
        let sql = "CREATE TABLE t (id bigint PRIMARY KEY);\nCREATE INDEX t_id ON t (id);\nDROP INDEX t_id;\nDROP INDEX app.legacy_idx;";
        assert_eq!(
            check(&[], sql),
            "line 4: error [require-concurrent-index-deletion] dropping index `app.legacy_idx` without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on its table, queueing reads and writes\n"
        );
    }
}
