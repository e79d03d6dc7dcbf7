//! `disallowed-unique-constraint`: `ADD UNIQUE` builds its index while the table is locked.

use pg_query::protobuf::{AlterTableType, ConstrType};

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql;

pub static RULE: Rule = Rule {
    id: "disallowed-unique-constraint",
    default_level: Level::Deny,
    summary: "A `UNIQUE`, `PRIMARY KEY` or `EXCLUDE` constraint added to a table that existed before this migration \
              without `USING INDEX`.",
    why: "ALTER TABLE ... ADD UNIQUE (or PRIMARY KEY, or EXCLUDE) builds the backing index inside the ALTER, holding \
          an ACCESS EXCLUSIVE lock for the whole build: nothing can read or write the table meanwhile.",
    help: "Build the index first with `CREATE UNIQUE INDEX CONCURRENTLY` in a non-transactional migration, then attach \
           it: `ALTER TABLE t ADD CONSTRAINT c UNIQUE USING INDEX idx` (`PRIMARY KEY USING INDEX` works the same way).",
    check: Check::Statement(check),
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

fn kind_name(kind: ConstrType) -> Option<&'static str> {
    match kind {
        ConstrType::ConstrUnique => Some("UNIQUE"),
        ConstrType::ConstrPrimary => Some("PRIMARY KEY"),
        ConstrType::ConstrExclusion => Some("EXCLUDE"),
        _ => None,
    }
}

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let Some((stmt, table)) = cx.alter_existing_table() else {
        return Vec::new();
    };
    let mut hits = Vec::new();
    for (cmd, kind) in sql::alter_table_cmds(stmt) {
        if kind == AlterTableType::AtAddConstraint
            && let Some(c) = sql::cmd_constraint(cmd)
            && c.indexname.is_empty()
            && let Some(what) = kind_name(sql::constraint_type(c))
        {
            let name = if c.conname.is_empty() { String::new() } else { format!(" `{}`", c.conname) };
            hits.push(Hit::at(
                sql::location(c.location),
                format!(
                    "adding {what} constraint{name} to existing table {} builds its index under an ACCESS EXCLUSIVE lock",
                    cx.describe(table)
                ),
            ));
        }
    }
    for (column, c) in sql::added_column_constraints(cx.node) {
        if let Some(what) = kind_name(sql::constraint_type(c)) {
            hits.push(Hit::at(
                sql::location(c.location),
                format!(
                    "adding column `{}` as {what} to existing table {} builds its index under an ACCESS EXCLUSIVE lock",
                    column.name,
                    cx.describe(table)
                ),
            ));
        }
    }
    hits
}

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
        assert_eq!(
            check_rule(&RULE, example),
            "line 1: error [disallowed-unique-constraint] adding column `handle` as UNIQUE to existing table `users` (created by 2025-01-01-000000_earlier_0) builds its index under an ACCESS EXCLUSIVE lock\n\
             line 2: error [disallowed-unique-constraint] adding PRIMARY KEY constraint to existing table `users` (created by 2025-01-01-000000_earlier_0) builds its index under an ACCESS EXCLUSIVE lock\n"
        );
    }

    crate::rules::examples_test!();
}
