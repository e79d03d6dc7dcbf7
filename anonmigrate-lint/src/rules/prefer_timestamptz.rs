//! `prefer-timestamptz`: `timestamp` without time zone stores wall-clock readings.

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql;

pub static RULE: Rule = Rule {
    id: "prefer-timestamptz",
    default_level: Level::Warn,
    summary: "A column of type `timestamp` (without time zone).",
    why: "`timestamp` stores a wall-clock reading without a zone: the same instant written by sessions with different \
          TimeZone settings is stored differently, and comparisons with now() depend on the server's zone. \
          `timestamptz` stores an absolute instant and converts only for display.",
    help: "Use `timestamptz` (`timestamp with time zone`); diesel maps it to `Timestamptz` and chrono's `DateTime<Utc>`.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamp NOT NULL);"),
    good: Example::new(&[], "CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamptz NOT NULL);"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    sql::columns(cx.node)
        .into_iter()
        .filter_map(|c| {
            let sql_type = c.sql_type()?;
            (sql_type.name == "timestamp").then(|| {
                Hit::at(
                    c.location().or(sql_type.location),
                    format!("column `{}` of `{}` is timestamp without time zone", c.name, sql::relation_key(c.table)),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn spelled_out_forms() {
        let out = check(&[], "CREATE TABLE e (a timestamp(3) without time zone, b timestamp with time zone, c timestamptz);");
        assert_eq!(out, "line 1: warning [prefer-timestamptz] column `a` of `e` is timestamp without time zone\n");
    }
}
