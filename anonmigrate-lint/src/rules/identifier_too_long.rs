//! `identifier-too-long`: PostgreSQL silently truncates names over 63 bytes.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "identifier-too-long",
    default_level: Level::Deny,
    summary: "A table, column, index, constraint, type or other name longer than 63 bytes.",
    why: "PostgreSQL truncates longer identifiers to 63 bytes with only a NOTICE: the object gets a different name \
          than the one in the migration and in schema.rs, and two long names sharing their first 63 bytes collide.",
    help: "Choose a name of at most 63 bytes (multi-byte characters count for more than one).",
    check: Check::Squawk(squawk_linter::Rule::IdentifierTooLong),
    once_per_migration: false,
    bad: Example::new(
        &[],
        "CREATE TABLE notification_settings (\n    id bigint PRIMARY KEY,\n    send_a_weekly_digest_email_when_there_are_unread_mentions_in_rooms boolean\n);",
    ),
    good: Example::new(&[], "CREATE TABLE notification_settings (\n    id bigint PRIMARY KEY,\n    weekly_mention_digest boolean\n);"),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_rule;

    crate::rules::examples_test!();

    #[test]
    fn indexes_constraints_and_multibyte_names() {
        let example = Example::new(
            &[],
            "CREATE TABLE t (id int8);\nCREATE INDEX CONCURRENTLY t_idx_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ON t (id);\nALTER TABLE t ADD CONSTRAINT \"ééééééééééééééééééééééééééééééééé\" CHECK (id > 0) NOT VALID;",
        )
        .non_transactional();
        insta::assert_snapshot!(check_rule(&RULE, example));
    }
}
