//! `prefer-timestamptz`: `timestamp` without time zone stores wall-clock readings.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "prefer-timestamptz",
    default_level: Level::Warn,
    summary: "A column of type `timestamp` (without time zone).",
    why: "`timestamp` stores a wall-clock reading without a zone: the same instant written by sessions with different \
          TimeZone settings is stored differently, and comparisons with now() depend on the server's zone. \
          `timestamptz` stores an absolute instant and converts only for display.",
    help: "Use `timestamptz` (`timestamp with time zone`); diesel maps it to `Timestamptz` and chrono's `DateTime<Utc>`.",
    check: Check::Squawk(squawk_linter::Rule::PreferTimestampTz),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamp NOT NULL);"),
    good: Example::new(&[], "CREATE TABLE events (id bigint PRIMARY KEY, happened_at timestamptz NOT NULL);"),
};

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn spelled_out_forms() {
        let out = check(&[], "CREATE TABLE e (a timestamp(3) without time zone, b timestamp with time zone, c timestamptz);");
        insta::assert_snapshot!(out);
    }
}
