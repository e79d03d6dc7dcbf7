//! `unparsable-statement`: PostgreSQL's parser rejects the statement (raised by the engine).

use super::{Check, Example, Rule};
use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "unparsable-statement",
    default_level: Level::Deny,
    summary: "A statement PostgreSQL's own parser rejects.",
    why: "The server would reject it at deploy time, and the linter cannot tell what it would do: it is reported \
          rather than skipped, so nothing passes unchecked.",
    help: "Fix the syntax (the message is PostgreSQL's); psql meta-commands such as `\\connect` are not SQL and cannot \
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
        assert_eq!(
            check(&[], "SELECT 1;\nCREATE TABLE t (id bigint PRIMARY KEY,);\nCREATE TABLE e (at timestamp);"),
            "line 2: error [unparsable-statement] PostgreSQL's parser rejects this statement (syntax error at or near \")\"); nothing in it was checked, and the server would reject it too\n\
             line 3: warning [prefer-timestamptz] column `at` of `e` is timestamp without time zone\n"
        );
    }
}
