//! `set-not-null-on-existing-column`: `SET NOT NULL` scans the whole table under an exclusive lock.

use pg_query::protobuf::{AlterTableType, ConstrType};

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql::{self, relation_key};

pub static RULE: Rule = Rule {
    id: "set-not-null-on-existing-column",
    default_level: Level::Deny,
    summary: "`ALTER COLUMN ... SET NOT NULL` (or `ADD CONSTRAINT ... NOT NULL`) on a table that existed before this \
              migration, without a validated `CHECK (col IS NOT NULL)` to prove it.",
    why: "To set NOT NULL PostgreSQL must prove there is no NULL: it reads every row while holding an ACCESS EXCLUSIVE \
          lock, so all reads and writes of the table wait for the scan.",
    help: "Add `CHECK (col IS NOT NULL) NOT VALID`, run `VALIDATE CONSTRAINT` in a later migration (it allows reads and \
           writes meanwhile), then `SET NOT NULL`, which PostgreSQL 12+ proves from the validated check without a \
           scan, and drop the check.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, nickname text);"], "ALTER TABLE users ALTER COLUMN nickname SET NOT NULL;"),
    good: Example::new(
        &[
            "CREATE TABLE users (id bigint PRIMARY KEY, nickname text);",
            "ALTER TABLE users ADD CONSTRAINT users_nickname_not_null CHECK (nickname IS NOT NULL) NOT VALID;",
            "ALTER TABLE users VALIDATE CONSTRAINT users_nickname_not_null;",
        ],
        "ALTER TABLE users ALTER COLUMN nickname SET NOT NULL;\nALTER TABLE users DROP CONSTRAINT users_nickname_not_null;",
    ),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let Some((stmt, table)) = cx.alter_existing_table() else {
        return Vec::new();
    };
    let key = relation_key(table);
    let mut hits = Vec::new();
    for (cmd, kind) in sql::alter_table_cmds(stmt) {
        let columns: Vec<&str> = match (kind, sql::cmd_constraint(cmd)) {
            (AlterTableType::AtSetNotNull, _) => vec![cmd.name.as_str()],
            (AlterTableType::AtAddConstraint, Some(c))
                if sql::constraint_type(c) == ConstrType::ConstrNotnull && !c.skip_validation =>
            {
                sql::constraint_keys(c)
            }
            _ => continue,
        };
        for column in columns {
            if !cx.catalog.has_validated_not_null_check(&key, column) {
                hits.push(Hit::new(format!(
                    "making `{column}` NOT NULL on existing table {} scans every row under an ACCESS EXCLUSIVE lock",
                    cx.describe(table)
                )));
            }
        }
    }
    hits
}

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
        assert_eq!(
            check_rule(&RULE, example),
            "line 1: error [set-not-null-on-existing-column] making `nick` NOT NULL on existing table `users` (created by 2025-01-01-000000_earlier_0) scans every row under an ACCESS EXCLUSIVE lock\n"
        );
    }
}
