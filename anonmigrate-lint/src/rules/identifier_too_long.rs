//! `identifier-too-long`: PostgreSQL silently truncates names over 63 bytes.

use pg_query::protobuf::Token;

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql::MAX_IDENTIFIER_BYTES;

pub static RULE: Rule = Rule {
    id: "identifier-too-long",
    default_level: Level::Deny,
    summary: "A table, column, index, constraint, type or other name longer than 63 bytes.",
    why: "PostgreSQL truncates longer identifiers to 63 bytes with only a NOTICE: the object gets a different name \
          than the one in the migration and in schema.rs, and two long names sharing their first 63 bytes collide.",
    help: "Choose a name of at most 63 bytes (multi-byte characters count for more than one).",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(
        &[],
        "CREATE TABLE notification_settings (\n    id bigint PRIMARY KEY,\n    send_a_weekly_digest_email_when_there_are_unread_mentions_in_rooms boolean\n);",
    ),
    good: Example::new(&[], "CREATE TABLE notification_settings (\n    id bigint PRIMARY KEY,\n    weekly_mention_digest boolean\n);"),
};

/// PostgreSQL's lexer truncates identifiers before the parser sees them, so this rule reads the tokens.
fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    if cx.source.len() <= MAX_IDENTIFIER_BYTES {
        return Vec::new();
    }
    let Ok(scan) = pg_query::scan(cx.source) else {
        return Vec::new();
    };
    scan.tokens
        .iter()
        .filter(|t| t.token == Token::Ident as i32)
        .filter_map(|t| {
            let raw = &cx.source[t.start as usize..t.end as usize];
            let name = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => raw.to_lowercase(),
            };
            (name.len() > MAX_IDENTIFIER_BYTES).then(|| {
                let mut cut = MAX_IDENTIFIER_BYTES;
                while !name.is_char_boundary(cut) {
                    cut -= 1;
                }
                Hit::at(
                    Some(cx.source_location + t.start),
                    format!("`{name}` is {} bytes long; PostgreSQL silently truncates it to `{}`", name.len(), &name[..cut]),
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
    fn indexes_constraints_and_multibyte_names() {
        let example = Example::new(
            &[],
            "CREATE TABLE t (id int8);\nCREATE INDEX CONCURRENTLY t_idx_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ON t (id);\nALTER TABLE t ADD CONSTRAINT \"ééééééééééééééééééééééééééééééééé\" CHECK (id > 0) NOT VALID;",
        )
        .non_transactional();
        assert_eq!(
            check_rule(&RULE, example),
            "line 2: error [identifier-too-long] `t_idx_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa` is 68 bytes long; PostgreSQL silently truncates it to `t_idx_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`\n\
             line 3: error [identifier-too-long] `ééééééééééééééééééééééééééééééééé` is 66 bytes long; PostgreSQL silently truncates it to `ééééééééééééééééééééééééééééééé`\n"
        );
    }
}
