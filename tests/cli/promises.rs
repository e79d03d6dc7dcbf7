//! Promises the README makes that no other test held it to: the DDL lock timeout's default and `"0"`, the
//! INVALID index a failed `CREATE INDEX CONCURRENTLY` leaves (named with its `DROP INDEX`), `run --dry-run`
//! taking no lock (the default connect timeout is in faults.rs), and `check`'s lint exit code and which failing section wins.

use std::time::{Duration, Instant};

use anonmigrate_core::runner::MIGRATION_LOCK_KEY;

use crate::support::Env;

#[test]
fn the_ddl_lock_timeout_is_10s_by_default_and_0_turns_it_off() {
    for (setting, expected) in [(None, "10s"), (Some("0"), "0")] {
        let env = Env::new("ddl_default");
        if let Some(value) = setting {
            env.ws.write("Cargo.toml", format!("[workspace]\n\n[workspace.metadata.anonmigrate]\nddl-lock-timeout = \"{value}\"\n"));
        }
        // Each kind of migration: one transaction, and statement by statement.
        env.ws.write("migrations/2024-01-01-000000_tx/up.sql", "CREATE TABLE seen_tx AS SELECT current_setting('lock_timeout') AS v;");
        env.ws.write("migrations/2024-01-02-000000_steps/up.sql", "CREATE TABLE seen_steps AS SELECT current_setting('lock_timeout') AS v;");
        env.ws.write("migrations/2024-01-02-000000_steps/metadata.toml", "run_in_transaction = false\n");
        env.cli(&["run"]).assert_code(0);
        for table in ["seen_tx", "seen_steps"] {
            assert_eq!(env.db.query(&format!("SELECT v FROM {table}")), [expected], "{table} with ddl-lock-timeout {setting:?}");
        }
    }
}

#[test]
fn a_failed_concurrent_index_is_named_with_the_drop_index_that_clears_it() {
    let env = Env::new("invalid_index");
    env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (1);");
    env.ws.write("migrations/2024-01-02-000000_u/up.sql", "CREATE UNIQUE INDEX CONCURRENTLY t_a_unique ON t (a);");
    env.ws.write("migrations/2024-01-02-000000_u/metadata.toml", "run_in_transaction = false\n");
    let failed = env.cli(&["run"]);
    failed.assert_code(1);
    assert!(failed.stderr.contains("could not create unique index"), "{}", failed.stderr);
    assert!(failed.stderr.contains("left an INVALID index; drop it before retrying: DROP INDEX CONCURRENTLY public.t_a_unique;"), "{}", failed.stderr);
    assert_eq!(env.db.query("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), ["1"]);
    // The advice works: drop it, fix the data, run again.
    env.db.execute("DROP INDEX CONCURRENTLY public.t_a_unique");
    env.db.execute("DELETE FROM t WHERE ctid <> (SELECT min(ctid) FROM t)");
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.query("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), ["0"]);
}

#[test]
fn the_dry_run_takes_no_lock_and_names_the_holder() {
    let env = Env::new("dry_no_lock");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let mut holder = env.db.session("dry-run-test-holder");
    holder.execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"));
    let started = Instant::now();
    let dry = env.cli(&["run", "--dry-run"]);
    dry.assert_code(0);
    assert!(started.elapsed() < Duration::from_secs(5), "the dry run waited for the lock: {:?}", started.elapsed());
    assert!(dry.stdout.contains(&format!("migration lock: held by pid {} (dry-run-test-holder", holder.pid)), "{}", dry.stdout);
    assert!(dry.stdout.contains("would apply  2024-01-01-000000_a"), "{}", dry.stdout);
    assert!(env.db.tables().is_empty());
    holder.execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
}

#[test]
fn check_exits_12_for_lint_and_the_first_failing_section_wins() {
    let env = Env::new("check_lint");
    env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (a int);\n");
    env.ws.write("migrations/2024-01-01-000000_t/down.sql", "DROP TABLE t;\n");
    // Deny-level: a plain CREATE INDEX on a table an earlier migration created.
    env.ws.write("migrations/2024-01-02-000000_i/up.sql", "CREATE INDEX t_a ON t (a);\n");
    env.ws.write("migrations/2024-01-02-000000_i/down.sql", "DROP INDEX t_a;\n");
    env.cli(&["lock"]).assert_code(0);
    let lint_only = env.cli(&["check"]);
    lint_only.assert_code(12);
    assert!(lint_only.stdout.contains("require-concurrent-index-creation"), "{}", lint_only.stdout);
    // A stale lock file as well: the lock-file section comes first, so 7 wins.
    env.ws.write("migrations/2024-01-03-000000_later/up.sql", "CREATE TABLE later (id int);\n");
    env.ws.write("migrations/2024-01-03-000000_later/down.sql", "DROP TABLE later;\n");
    let both = env.cli(&["check"]);
    both.assert_code(7);
    assert!(both.stdout.contains("require-concurrent-index-creation"), "both sections still report:\n{}", both.stdout);
}
