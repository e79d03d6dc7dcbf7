//! `prefer-bigint-over-int`: 32-bit primary keys run out.

use pg_query::protobuf::ConstrType;

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql::{self, ColumnSite};

pub static RULE: Rule = Rule {
    id: "prefer-bigint-over-int",
    default_level: Level::Warn,
    summary: "A new primary key column of type `int`/`integer`/`smallint` (or `serial`/`smallserial`).",
    why: "An int key tops out at 2,147,483,647 (smallint at 32,767), and sequences also burn values on rolled-back \
          inserts; when it runs out every insert fails, and widening the key later rewrites the table and every \
          referencing foreign key under an exclusive lock.",
    help: "Use `bigint` for new primary keys, e.g. `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`; four more \
           bytes a row are cheap insurance.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE rooms (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let columns: Vec<_> = sql::columns(cx.node).into_iter().filter(|c| c.site != ColumnSite::AlterType).collect();
    let table_keys: Vec<&str> = sql::table_constraints(cx.node)
        .into_iter()
        .filter(|c| sql::constraint_type(c) == ConstrType::ConstrPrimary)
        .flat_map(sql::constraint_keys)
        .collect();
    columns
        .iter()
        .filter(|c| c.has_constraint(ConstrType::ConstrPrimary) || table_keys.contains(&c.name))
        .filter_map(|c| {
            let sql_type = c.sql_type()?;
            sql_type.is_small_integer().then(|| {
                Hit::at(
                    c.location(),
                    format!(
                        "primary key `{}` of `{}` is {}, which runs out after {} values",
                        c.name,
                        sql::relation_key(c.table),
                        sql_type.name,
                        if matches!(sql_type.name, "int2" | "smallint" | "smallserial" | "serial2") { "32,767" } else { "2,147,483,647" }
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_rule;

    crate::rules::examples_test!();

    #[test]
    fn table_level_keys_and_serials() {
        let example = Example::new(&[], "CREATE TABLE a (id serial, x int, PRIMARY KEY (id));\nCREATE TABLE b (id smallint PRIMARY KEY, n int4);");
        assert_eq!(
            check_rule(&RULE, example),
            "line 1: warning [prefer-bigint-over-int] primary key `id` of `a` is serial, which runs out after 2,147,483,647 values\n\
             line 2: warning [prefer-bigint-over-int] primary key `id` of `b` is int2, which runs out after 32,767 values\n"
        );
    }
}
