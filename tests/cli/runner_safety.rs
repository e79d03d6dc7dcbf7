//! Failures, integrity checks and non-transactional migrations, each checked against the database afterwards.

use crate::snap;
use crate::support::Env;

#[test]
fn a_failure_stops_the_run_and_keeps_earlier_migrations() {
    let env = Env::new("failure");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write(
        "migrations/2024-01-02-000000_b/up.sql",
        "CREATE TABLE b (id int);\n\n-- the next statement is wrong\nINSERT INTO b (id)\n  VALUES ('not a number');\n",
    );
    env.ws.write("migrations/2024-01-03-000000_c/up.sql", "CREATE TABLE c (id int);");
    let outcome = env.cli(&["run"]);
    outcome.assert_code(1);
    snap!(env, outcome);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
    assert_eq!(env.db.tables(), ["__anonmigrate_migrations", "__diesel_schema_migrations", "a"]);
}

#[test]
fn several_concurrent_index_builds_in_one_non_transactional_migration() {
    let env = Env::new("concurrently");
    env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (a int, b int, c int);");
    env.ws.write(
        "migrations/2024-01-02-000000_idx/up.sql",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\nCREATE INDEX CONCURRENTLY t_c ON t (c)",
    );
    env.ws.write(
        "migrations/2024-01-02-000000_idx/down.sql",
        "DROP INDEX CONCURRENTLY t_a;\nDROP INDEX CONCURRENTLY t_b;\nDROP INDEX CONCURRENTLY t_c;",
    );
    env.ws.write("migrations/2024-01-02-000000_idx/metadata.toml", "run_in_transaction = false\n");
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.query("SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1"), ["t_a", "t_b", "t_c"]);
    env.cli(&["revert"]).assert_code(0);
    assert!(env.db.query("SELECT indexname FROM pg_indexes WHERE tablename = 't'").is_empty());
}

#[test]
fn a_non_transactional_failure_resumes_at_the_failed_statement_after_the_fix() {
    let env = Env::new("resume");
    env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (a int, b int);");
    let dir = "migrations/2024-01-02-000000_steps";
    env.ws.write(&format!("{dir}/metadata.toml"), "run_in_transaction = false\n");
    let broken = "CREATE INDEX CONCURRENTLY t_a ON t (a);\nINSERT INTO t VALUES (1, 1);\nCREATE INDEX CONCURRENTLY t_b ON t (no_such_column);\nINSERT INTO t VALUES (2, 2);\nCREATE INDEX CONCURRENTLY t_ab ON t (a, b);\n";
    env.ws.write(&format!("{dir}/up.sql"), broken);
    let failed = env.cli(&["run"]);
    failed.assert_code(1);
    snap!(env, failed);
    let status = env.cli(&["status"]);
    assert!(status.stdout.contains("partially applied: 2 of 5 statements ran"), "{}", status.stdout);
    assert_eq!(env.db.query("SELECT count(*) FROM t"), ["1"]);

    env.ws.write(&format!("{dir}/up.sql"), broken.replace("no_such_column", "b"));
    let resumed = env.cli(&["run"]);
    resumed.assert_code(0);
    assert!(resumed.stderr.contains("resuming 2024-01-02-000000_steps at statement 3 of 5"), "{}", resumed.stderr);
    assert_eq!(env.db.query("SELECT count(*) FROM t"), ["2"], "statement 2 ran exactly once");
    assert_eq!(env.db.query("SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1"), ["t_a", "t_ab", "t_b"]);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000"]);
}

#[test]
fn an_edited_applied_migration_is_refused_by_run_and_reported_by_status() {
    let env = Env::new("changed");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.cli(&["run"]).assert_code(0);
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id bigint);");
    env.ws.write("migrations/2024-01-02-000000_b/up.sql", "CREATE TABLE b (id int);");
    let refused = env.cli(&["run"]);
    refused.assert_code(7);
    snap!(env, refused);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
    let status = env.cli(&["status"]);
    status.assert_code(0);
    assert!(status.stderr.contains("changed after it was applied"), "{}", status.stderr);
    env.cli(&["status", "--exit-code"]).assert_code(3);
}

/// Line endings alone are not a change: applied from an LF checkout, the same commit checked out with CRLF line
/// endings (git's core.autocrlf, as on Windows) runs with nothing to apply and nothing reported.
#[test]
fn a_crlf_checkout_of_applied_migrations_is_not_a_change() {
    let env = Env::new("crlf");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (\n    id int\n);\nCREATE INDEX a_id ON a (id);\n");
    env.ws.write("migrations/2024-01-01-000000_a/down.sql", "DROP TABLE a;\n");
    env.cli(&["run"]).assert_code(0);
    let git = |dir: &std::path::Path, args: &[&str]| {
        let output = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"])
            .args(args)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .expect("git is installed");
        assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    git(env.ws.path(), &["init", "-q"]);
    git(env.ws.path(), &["add", "-A"]);
    git(env.ws.path(), &["commit", "-qm", "a"]);
    let windows = tempfile::tempdir().unwrap();
    let checkout = windows.path().join("ws");
    git(windows.path(), &["-c", "core.autocrlf=true", "clone", "-q", env.ws.path().to_str().unwrap(), "ws"]);
    let up = std::fs::read_to_string(checkout.join("migrations/2024-01-01-000000_a/up.sql")).unwrap();
    assert!(up.contains("(\r\n    id int\r\n)"), "the checkout has CRLF line endings: {up:?}");

    let run = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--database-url", env.db.url.as_str()]);
        anonmigrate_testkit::run_cli(crate::support::bin(), &checkout, &full, &[])
    };
    let again = run(&["run", "--locked"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to apply"));
    assert_eq!(String::from_utf8_lossy(&again.stderr), "", "no lock-file change, no checksum warning");
    let status = run(&["status", "--exit-code"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
}

#[test]
fn applied_migrations_missing_on_disk_block_run_unless_ignored() {
    let env = Env::new("missing");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("migrations/2024-01-02-000000_b/up.sql", "CREATE TABLE b (id int);");
    env.cli(&["run"]).assert_code(0);
    std::fs::remove_dir_all(env.ws.migrations().join("2024-01-02-000000_b")).unwrap();
    env.ws.write("migrations/2024-01-03-000000_c/up.sql", "CREATE TABLE c (id int);");
    let refused = env.cli(&["run"]);
    refused.assert_code(7);
    snap!(env, refused);
    let status = env.cli(&["status"]);
    assert!(status.stderr.contains("20240102000000 b is not on disk"), "{}", status.stderr);
    env.cli(&["run", "--ignore-missing"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000", "20240103000000"]);
}

#[test]
fn out_of_order_migrations_are_refused_unless_allowed() {
    let env = Env::new("outoforder");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("migrations/2024-01-03-000000_c/up.sql", "CREATE TABLE c (id int);");
    env.cli(&["run"]).assert_code(0);
    env.ws.write("migrations/2024-01-02-000000_b_from_a_merge/up.sql", "CREATE TABLE b (id int);");
    let refused = env.cli(&["run"]);
    refused.assert_code(7);
    snap!(env, refused);
    env.cli(&["run", "--allow-out-of-order"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000", "20240103000000"]);
}

#[test]
fn the_lock_file_follows_the_chain_and_locked_refuses_a_stale_one() {
    let env = Env::new("lockfile");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.raw(&["lock"], &[]).assert_code(0);
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id bigint);");
    env.ws.write("migrations/2024-01-02-000000_b/up.sql", "CREATE TABLE b (id int);");
    let lock_path = env.ws.migrations().join("anonmigrate.lock");
    let before = std::fs::read_to_string(&lock_path).unwrap();
    // --locked (CI, deployment): any difference is an error before anything is touched, files and database alike.
    let refused = env.cli(&["run", "--locked"]);
    refused.assert_code(7);
    snap!(env, refused);
    assert!(env.db.tables().is_empty());
    assert!(env.db.applied_versions().is_empty());
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), before);
    // Read-only commands report the stale file and write nothing.
    let status = env.cli(&["status"]);
    status.assert_code(0);
    assert!(status.stderr.contains("warning: migrations/anonmigrate.lock is out of date (added 2024-01-02-000000_b; edited 2024-01-01-000000_a)"), "{}", status.stderr);
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), before);
    // Without --locked, run brings it up to date (like cargo with Cargo.lock) and says what changed.
    let run = env.cli(&["run"]);
    run.assert_code(0);
    assert!(run.stderr.contains("updated migrations/anonmigrate.lock: added 2024-01-02-000000_b; edited 2024-01-01-000000_a\n"), "{}", run.stderr);
    assert_eq!(env.db.applied_versions().len(), 2);
    env.cli(&["run", "--locked"]).assert_code(0);
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(lock.contains(" 2024-01-02-000000_b\n"), "{lock}");
}

#[test]
fn a_missing_extension_names_the_fix() {
    let env = Env::new("noext");
    env.ws.write("migrations/2024-01-01-000000_ext/up.sql", "CREATE EXTENSION IF NOT EXISTS no_such_extension;");
    let outcome = env.cli(&["run"]);
    outcome.assert_code(1);
    assert!(outcome.stderr.contains("extension `no_such_extension` is not available"), "{}", outcome.stderr);
    assert!(env.db.applied_versions().is_empty());
}

#[test]
fn accept_records_a_deliberate_edit_and_keeps_the_old_hash() {
    let env = Env::new("accept");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.cli(&["run"]).assert_code(0);
    let old = env.db.query("SELECT checksum FROM __anonmigrate_migrations");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "-- documented later\nCREATE TABLE a (id int);");
    env.cli(&["run"]).assert_code(7);
    let accepted = env.cli(&["accept", "20240101000000"]);
    accepted.assert_code(0);
    assert!(accepted.stdout.contains(&old[0]), "{}", accepted.stdout);
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.query("SELECT old_checksum FROM __anonmigrate_audit WHERE action = 'accept'"), old);
    env.cli(&["accept", "20990101000000"]).assert_code(2);
}

#[test]
fn stamp_baselines_without_running_sql_and_delete_forgets_one_record() {
    let env = Env::new("stamp");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("migrations/2024-01-02-000000_b/up.sql", "CREATE TABLE b (id int);");
    env.ws.write("migrations/2024-01-03-000000_c/up.sql", "CREATE TABLE c (id int);");
    env.db.execute("CREATE TABLE a (id int); CREATE TABLE b (id int);");
    let stamped = env.cli(&["stamp", "20240102000000"]);
    stamped.assert_code(0);
    snap!(env, stamped);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000"]);
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.tables().iter().filter(|t| t.len() == 1).count(), 3);
    env.cli(&["stamp", "--delete", "20240103000000"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000"]);
    assert_eq!(env.db.query("SELECT count(*) FROM c"), ["0"], "no down.sql ran");
}

#[test]
fn merge_moves_migrations_from_a_merged_branch_after_the_head() {
    let env = Env::new("merge");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("migrations/2024-01-03-000000_main_branch/up.sql", "CREATE TABLE c (id int);");
    env.raw(&["lock"], &[]).assert_code(0);
    env.cli(&["run"]).assert_code(0);
    // The other branch's migration arrives with an older version and without a lock entry.
    env.ws.write("migrations/2024-01-02-000000_feature_branch/up.sql", "CREATE TABLE b (id int);");
    let heads = env.raw(&["heads"], &[]);
    assert_eq!(heads.stdout, "2024-01-02-000000_feature_branch\n");
    let refused = env.cli(&["run"]);
    refused.assert_code(7);
    assert!(refused.stderr.contains("updated migrations/anonmigrate.lock: added 2024-01-02-000000_feature_branch\n"), "{}", refused.stderr);
    assert!(refused.stderr.contains("out of order") || refused.stderr.contains("older than the newest applied"), "{}", refused.stderr);
    // The database says the newcomer is older than its newest applied migration: merge moves it after the head.
    let merged = env.cli(&["merge"]);
    merged.assert_code(0);
    assert!(merged.stdout.contains("renamed   2024-01-02-000000_feature_branch -> "), "{}", merged.stdout);
    env.raw(&["heads"], &[]).assert_code(0);
    assert_eq!(env.raw(&["heads"], &[]).stdout, "");
    env.cli(&["run"]).assert_code(0);
    let versions = env.db.applied_versions();
    assert_eq!(versions.len(), 3);
    assert!(versions[2].as_str() > "20240103000000", "{versions:?}");
}
