//! `invalid-allow-comment`: an `anonmigrate:allow` comment without a reason, for an unknown rule, or for nothing
//! (raised by the engine).

use super::{Check, Example, Rule};
use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "invalid-allow-comment",
    default_level: Level::Deny,
    summary: "An `anonmigrate:` comment without a reason, naming an unknown rule, or not followed by a statement.",
    why: "An allow comment switches a safety rule off for one statement; without a written reason a reviewer cannot \
          tell whether the danger was understood, and a misspelled rule id would look like it silences something \
          while it does not.",
    help: "Write `-- anonmigrate:allow rule-id why this statement is safe` directly above the statement (or at the end \
           of its line); several ids can be joined with commas.",
    check: Check::Engine,
    once_per_migration: false,
    bad: Example::new(
        &["CREATE TABLE users (id bigint PRIMARY KEY, nickname text);"],
        "-- anonmigrate:allow ban-drop-colum nobody reads it\nALTER TABLE users DROP COLUMN nickname;",
    ),
    good: Example::new(
        &["CREATE TABLE users (id bigint PRIMARY KEY, nickname text);"],
        "-- anonmigrate:allow ban-drop-column nobody reads it since release 2025.03\nALTER TABLE users DROP COLUMN nickname;",
    ),
};

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn every_way_to_get_it_wrong() {
        insta::assert_snapshot!(check(&[], "-- anonmigrate:alow ban-truncate x\nSELECT 1;\n-- anonmigrate:allow\nSELECT 2;\n/* anonmigrate:allow ban-truncate trailing, nothing follows */"));
    }
}
