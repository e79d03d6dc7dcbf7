//! `ban-drop-column`: dropping a column loses data and breaks code that still reads it.

use pg_query::protobuf::AlterTableType;

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql;

pub static RULE: Rule = Rule {
    id: "ban-drop-column",
    default_level: Level::Deny,
    summary: "`DROP COLUMN` on a table that existed before this migration.",
    why: "Dropping a column deletes its data for good (down.sql cannot bring it back), and instances of the previous \
          release that still name the column in their queries (diesel selects every column in schema.rs) fail until \
          they are replaced.",
    help: "First ship code that no longer uses the column (remove it from schema.rs and the models), then drop it in a \
           later migration with an allow comment that says so.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, nickname text);"], "ALTER TABLE users DROP COLUMN nickname;"),
    good: Example::new(
        &["CREATE TABLE users (id bigint PRIMARY KEY, nickname text);"],
        "-- anonmigrate:allow ban-drop-column the app stopped reading nickname in release 2025.03\nALTER TABLE users DROP COLUMN nickname;",
    ),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let Some((stmt, table)) = cx.alter_existing_table() else {
        return Vec::new();
    };
    sql::alter_table_cmds(stmt)
        .filter(|(_, kind)| *kind == AlterTableType::AtDropColumn)
        .map(|(cmd, _)| {
            Hit::new(format!(
                "dropping column `{}` from existing table {} deletes its data and breaks code that still selects it",
                cmd.name,
                cx.describe(table)
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn an_allow_comment_needs_a_reason_and_the_right_rule() {
        let earlier: &[&str] = &["CREATE TABLE users (id bigint, a text, b text);"];
        assert_eq!(
            check(earlier, "-- anonmigrate:allow ban-drop-column\nALTER TABLE users DROP COLUMN a;\nALTER TABLE users DROP COLUMN b; -- anonmigrate:allow ban-drop-table,ban-truncate wrong rules"),
            "line 1: error [invalid-allow-comment] this `anonmigrate:` comment allows `ban-drop-column` without a reason, so it is ignored; write why the statement is safe after the rule id\n\
             line 2: error [ban-drop-column] dropping column `a` from existing table `users` (created by 2025-01-01-000000_earlier_0) deletes its data and breaks code that still selects it\n\
             line 3: error [ban-drop-column] dropping column `b` from existing table `users` (created by 2025-01-01-000000_earlier_0) deletes its data and breaks code that still selects it\n"
        );
    }
}
