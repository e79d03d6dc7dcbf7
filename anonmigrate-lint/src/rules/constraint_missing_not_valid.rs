//! `constraint-missing-not-valid`: a foreign key or check added to a live table validates every row under lock.

use pg_query::protobuf::{AlterTableType, ConstrType};

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql::{self, relation_key};

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
    check: Check::Statement(check),
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

fn kind_name(kind: ConstrType) -> Option<&'static str> {
    match kind {
        ConstrType::ConstrForeign => Some("foreign key"),
        ConstrType::ConstrCheck => Some("check constraint"),
        _ => None,
    }
}

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let Some((stmt, table)) = cx.alter_existing_table() else {
        return Vec::new();
    };
    let mut hits = Vec::new();
    for (cmd, kind) in sql::alter_table_cmds(stmt) {
        match (kind, sql::cmd_constraint(cmd)) {
            (AlterTableType::AtAddConstraint, Some(c)) if !c.skip_validation => {
                if let Some(what) = kind_name(sql::constraint_type(c)) {
                    let name = if c.conname.is_empty() { String::new() } else { format!(" `{}`", c.conname) };
                    hits.push(Hit::at(
                        sql::location(c.location),
                        format!(
                            "adding {what}{name} to existing table {} without NOT VALID checks every row while writes wait",
                            cx.describe(table)
                        ),
                    ));
                }
            }
            (AlterTableType::AtValidateConstraint, _)
                if cx.migration.transactional && cx.catalog.added_not_valid_here(&relation_key(table), &cmd.name) =>
            {
                hits.push(Hit::new(format!(
                    "validating `{}` in the same transaction that added it NOT VALID holds the ALTER's lock through the full scan",
                    cmd.name
                )));
            }
            _ => {}
        }
    }
    // A new column with an inline REFERENCES or CHECK is validated against every row as well.
    for (column, c) in sql::added_column_constraints(cx.node) {
        if let Some(what) = kind_name(sql::constraint_type(c)) {
            hits.push(Hit::at(
                sql::location(c.location),
                format!(
                    "adding column `{}` with an inline {what} to existing table {} checks every row while writes wait; add the column first, then the constraint NOT VALID",
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

    crate::rules::examples_test!();

    #[test]
    fn checks_inline_references_and_same_transaction_validation() {
        let example = Example::new(
            &["CREATE TABLE users (id bigint PRIMARY KEY, age int);"],
            "ALTER TABLE users ADD CHECK (age >= 0);\nALTER TABLE users ADD COLUMN invited_by bigint REFERENCES users (id);\nALTER TABLE users ADD CONSTRAINT age_ok CHECK (age < 200) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT age_ok;\nCREATE TABLE rooms (id bigint, owner bigint);\nALTER TABLE rooms ADD FOREIGN KEY (owner) REFERENCES users (id);",
        );
        assert_eq!(
            check_rule(&RULE, example),
            "line 1: error [constraint-missing-not-valid] adding check constraint to existing table `users` (created by 2025-01-01-000000_earlier_0) without NOT VALID checks every row while writes wait\n\
             line 2: error [constraint-missing-not-valid] adding column `invited_by` with an inline foreign key to existing table `users` (created by 2025-01-01-000000_earlier_0) checks every row while writes wait; add the column first, then the constraint NOT VALID\n\
             line 4: error [constraint-missing-not-valid] validating `age_ok` in the same transaction that added it NOT VALID holds the ALTER's lock through the full scan\n"
        );
        let later = Example::new(
            &["CREATE TABLE users (id bigint PRIMARY KEY, age int);", "ALTER TABLE users ADD CONSTRAINT age_ok CHECK (age < 200) NOT VALID;"],
            "ALTER TABLE users VALIDATE CONSTRAINT age_ok;",
        );
        assert_eq!(check_rule(&RULE, later), "");
    }
}
