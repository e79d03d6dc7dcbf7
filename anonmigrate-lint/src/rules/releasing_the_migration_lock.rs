//! `releasing-the-migration-lock`: `DISCARD ALL` or `pg_advisory_unlock_all()` in a migration also releases the
//! runner's migration lock, so the rest of the run is no longer serialised against other runners.

use squawk_syntax::ast::AstNode;

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "releasing-the-migration-lock",
    default_level: Level::Deny,
    summary: "`DISCARD ALL` or `pg_advisory_unlock_all()`, which release every session-level advisory lock.",
    why: "The runner holds a session-level advisory lock while it migrates, so that two deploys never apply the same \
          chain at once. DISCARD ALL (which includes pg_advisory_unlock_all) and pg_advisory_unlock_all() release it \
          silently, and the rest of the run goes on unserialised against another runner; DISCARD ALL also resets the \
          session's statement_timeout and lock_timeout.",
    help: "Remove it: a migration needs neither. To reset one setting use `RESET name`; to drop temporary objects \
           use `DISCARD TEMP`; release an advisory lock of your own with `pg_advisory_unlock(key)`.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&[], "DISCARD ALL;"),
    good: Example::new(&[], "RESET search_path;"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let text = cx.stmt.syntax().text().to_string().to_ascii_lowercase();
    let words: Vec<&str> = text.split_whitespace().collect();
    let discard_all = matches!(cx.stmt, squawk_syntax::ast::Stmt::Discard(_)) && words.get(1).is_some_and(|w| w.trim_end_matches(';') == "all");
    if discard_all {
        return vec![Hit::new("DISCARD ALL releases the runner's migration lock (and resets the session's timeouts)".to_owned())];
    }
    if text.contains("pg_advisory_unlock_all") {
        return vec![Hit::new("pg_advisory_unlock_all() releases the runner's migration lock".to_owned())];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    crate::rules::examples_test!();

    #[test]
    fn discard_all_and_unlock_all_fire_and_narrower_resets_do_not() {
        let lint = |sql: &str| crate::testing::findings(&super::Example::new(&[], Box::leak(sql.to_owned().into_boxed_str())));
        for bad in ["discard all;", "SELECT pg_advisory_unlock_all();", "DO $$ BEGIN PERFORM pg_advisory_unlock_all(); END $$;"] {
            assert!(lint(bad).iter().any(|f| f.rule == super::RULE.id), "{bad}");
        }
        for good in ["DISCARD TEMP;", "DISCARD PLANS;", "RESET ALL;", "SELECT pg_advisory_unlock(42);"] {
            assert!(lint(good).iter().all(|f| f.rule != super::RULE.id), "{good}");
        }
    }
}
