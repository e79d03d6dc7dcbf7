//! `ban-concurrent-index-in-transaction`: `CONCURRENTLY` index operations fail inside a transaction block.

use squawk_syntax::ast;

use super::{Check, Example, Hit, Rule, StatementCx};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "ban-concurrent-index-in-transaction",
    default_level: Level::Deny,
    summary: "`CREATE INDEX CONCURRENTLY` or `DROP INDEX CONCURRENTLY` in a migration that runs in a transaction.",
    why: "PostgreSQL refuses concurrent index builds and drops inside a transaction block, and the runner wraps every \
          migration in a transaction unless metadata.toml says otherwise: the migration fails at deploy time.",
    help: "Move the concurrent index statements to a migration of their own with `run_in_transaction = false` in \
           metadata.toml; the runner then runs them one at a time and resumes after a failure.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, room text NOT NULL);"],
        "CREATE INDEX CONCURRENTLY messages_room_idx ON messages (room);",
    ),
    good: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, room text NOT NULL);"],
        "CREATE INDEX CONCURRENTLY messages_room_idx ON messages (room);",
    )
    .non_transactional(),
};

// Ours, not squawk's `ban-concurrent-index-creation-in-transaction`: squawk assumes a one-statement file runs outside a
// transaction, but the runner wraps every transactional migration (its bookkeeping included) in one, so even a lone
// `CREATE INDEX CONCURRENTLY` fails there.
fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    if !cx.migration.transactional {
        return Vec::new();
    }
    let what = match cx.stmt {
        ast::Stmt::CreateIndex(index) if index.concurrently_token().is_some() => "CREATE INDEX CONCURRENTLY",
        ast::Stmt::DropIndex(drop) if drop.concurrently_token().is_some() => "DROP INDEX CONCURRENTLY",
        _ => return Vec::new(),
    };
    vec![Hit::new(format!(
        "{what} cannot run inside a transaction block, and this migration runs in one (metadata.toml does not set `run_in_transaction = false`): PostgreSQL will reject it"
    ))]
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn concurrent_drops_count_too() {
        insta::assert_snapshot!(check(&[], "DROP INDEX CONCURRENTLY old_idx;"));
    }
}
