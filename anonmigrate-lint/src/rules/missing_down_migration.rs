//! `missing-down-migration`: a migration that cannot be reverted.

use super::{Check, Example, Hit, MigrationFacts, Rule};
use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "missing-down-migration",
    default_level: Level::Warn,
    summary: "A migration directory without `down.sql`, or with one that has nothing to run (empty, only comments).",
    why: "Such a migration is irreversible: `cargo anonmigrate revert` and `redo` refuse it, so a bad deploy cannot be \
          rolled back with the tool, and the way back is never tested.",
    help: "Write a down.sql that undoes up.sql; when it cannot be undone, say why in an allow comment \
           (`-- anonmigrate:allow missing-down-migration REASON` above up.sql's first statement); \
           `cargo anonmigrate stamp --delete VERSION` forgets such a migration without undoing it.",
    check: Check::Migration(check),
    once_per_migration: true,
    bad: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY);").without_down(),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY);"),
};

fn check(migration: &MigrationFacts) -> Vec<Hit> {
    if migration.has_down {
        return Vec::new();
    }
    vec![Hit::new(format!("{} has no down.sql with anything to run, so it cannot be reverted", migration.dir_name))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{findings, render};

    crate::rules::examples_test!();

    #[test]
    fn an_allow_comment_above_the_first_statement_silences_it() {
        let example = Example::new(&[], "-- anonmigrate:allow missing-down-migration the backfill cannot be undone\nUPDATE t SET a = 1;")
            .without_down();
        assert_eq!(render(&findings(&example)), "");
    }
}
