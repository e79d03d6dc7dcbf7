//! `ban-drop-database`: a migration must never drop a database.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "ban-drop-database",
    default_level: Level::Deny,
    summary: "`DROP DATABASE` in a migration.",
    why: "DROP DATABASE destroys every table in it at once and cannot be undone; in a migration it is almost always a \
          mistake (and inside the migration's transaction PostgreSQL refuses it anyway).",
    help: "Drop databases by hand or with `cargo anonmigrate database drop`, never from a migration.",
    check: Check::Squawk(squawk_linter::Rule::BanDropDatabase),
    once_per_migration: false,
    bad: Example::new(&[], "DROP DATABASE anonchat_old;"),
    good: Example::new(
        &[],
        "-- anonmigrate:allow ban-drop-database scratch database of the import job, never read by the app\nDROP DATABASE IF EXISTS import_scratch;",
    )
    .non_transactional(),
};

#[cfg(test)]
mod tests {
    crate::rules::examples_test!();
}
