//! `ban-drop-column`: dropping a column loses data and breaks code that still reads it.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "ban-drop-column",
    default_level: Level::Deny,
    summary: "`DROP COLUMN` on a table that existed before this migration.",
    why: "Dropping a column deletes its data for good (down.sql cannot bring it back), and instances of the previous \
          release that still name the column in their queries (diesel selects every column in schema.rs) fail until \
          they are replaced.",
    help: "First ship code that no longer uses the column (remove it from schema.rs and the models), then drop it in a \
           later migration with an allow comment that says so.",
    check: Check::Squawk(squawk_linter::Rule::BanDropColumn),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, nickname text);"], "ALTER TABLE users DROP COLUMN nickname;"),
    good: Example::new(
        &["CREATE TABLE users (id bigint PRIMARY KEY, nickname text);"],
        "-- anonmigrate:allow ban-drop-column the app stopped reading nickname in release 2025.03\nALTER TABLE users DROP COLUMN nickname;",
    ),
};

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn an_allow_comment_needs_a_reason_and_the_right_rule() {
        let earlier: &[&str] = &["CREATE TABLE users (id bigint, a text, b text);"];
        insta::assert_snapshot!(check(earlier, "-- anonmigrate:allow ban-drop-column\nALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b; -- anonmigrate:allow ban-drop-table,ban-truncate wrong rules"));
    }
}
