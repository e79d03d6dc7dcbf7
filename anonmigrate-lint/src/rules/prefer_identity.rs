//! `prefer-identity`: identity columns over `serial`.

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql::{self, ColumnSite};

pub static RULE: Rule = Rule {
    id: "prefer-identity",
    default_level: Level::Warn,
    summary: "A column declared `serial`, `bigserial` or `smallserial`.",
    why: "serial is shorthand for a separately owned sequence and a default: ownership, grants and copying tables \
          need extra care, and explicit inserts can collide with later sequence values. An identity column is tied to \
          its column, and `GENERATED ALWAYS` rejects stray explicit values.",
    help: "Use an identity column: `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE rooms (id bigserial PRIMARY KEY, name text NOT NULL);"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    sql::columns(cx.node)
        .into_iter()
        .filter(|c| c.site != ColumnSite::AlterType)
        .filter_map(|c| {
            let sql_type = c.sql_type()?;
            sql_type.is_serial().then(|| {
                Hit::at(
                    c.location(),
                    format!("column `{}` of `{}` is {}; an identity column is the modern equivalent", c.name, sql::relation_key(c.table), sql_type.name),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    crate::rules::examples_test!();
}
