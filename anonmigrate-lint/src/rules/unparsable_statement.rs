//! `unparsable-statement`: the parser cannot read the statement (raised by the engine).

use super::{Check, Example, Rule};
use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "unparsable-statement",
    default_level: Level::Deny,
    summary: "A statement the PostgreSQL parser cannot read.",
    why: "The server would reject it at deploy time, and the linter cannot tell what it would do: it is reported \
          rather than skipped, so nothing passes unchecked.",
    help: "Fix the syntax (the message says where the parser stopped); psql meta-commands such as `\\connect` are not SQL and cannot \
           be used in a migration.",
    check: Check::Engine,
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY,);"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY);"),
};

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn the_other_statements_are_still_linted() {
        insta::assert_snapshot!(check(&[], "SELECT 1;\nCREATE TABLE t (id bigint PRIMARY KEY,);\nCREATE TABLE e (at timestamp);"));
    }
}
