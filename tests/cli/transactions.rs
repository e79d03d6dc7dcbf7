//! Transaction control written by migration authors, against a real server: a whole-file `BEGIN … COMMIT`
//! wrapper (written for psql) runs as the runner's own transaction, in `run`, `revert` and `run --sql` alike;
//! transaction control the runner cannot honour is refused before anything runs; and a non-transactional
//! migration's `BEGIN … COMMIT` blocks each run as one unit, a failed block leaving nothing and resuming at it.

use crate::support::Env;

const NON_TRANSACTIONAL: &str = "run_in_transaction = false\n";

#[test]
fn a_wrapped_migration_applies_reverts_and_prints_without_its_wrapper() {
    let env = Env::new("tx_wrapper");
    let dir = "migrations/2024-01-01-000000_wrapped";
    env.ws.write(&format!("{dir}/up.sql"), "BEGIN;\nCREATE TABLE wrapped (id int);\nINSERT INTO wrapped VALUES (1);\nCOMMIT;\n");
    env.ws.write(&format!("{dir}/down.sql"), "START TRANSACTION;\nDROP TABLE wrapped;\nEND;\n");

    let run = env.cli(&["run"]);
    run.assert_code(0);
    assert!(run.stdout.contains("applied   2024-01-01-000000_wrapped  (1/1, 2 statements"), "{}", run.stdout);
    assert_eq!(env.db.query("SELECT count(*)::text FROM wrapped"), ["1"]);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);

    let script = env.cli(&["run", "--sql"]);
    script.assert_code(0);
    assert!(
        script.stdout.contains("-- the file's own BEGIN (line 1) and COMMIT (line 4) are left out: it runs in this transaction\n"),
        "{}",
        script.stdout
    );
    assert!(script.stdout.contains("-- statement 1 of 2 (line 2)\nCREATE TABLE wrapped (id int);\n"), "{}", script.stdout);
    assert_eq!(script.stdout.matches("\nBEGIN;\n").count(), 1, "only the runner's own BEGIN:\n{}", script.stdout);

    let lint = env.cli(&["lint"]);
    lint.assert_code(0);
    assert!(lint.stdout.contains("up.sql:1: warning [transaction-wrapper]"), "{}", lint.stdout);

    let revert = env.cli(&["revert"]);
    revert.assert_code(0);
    assert!(!env.db.tables().contains(&"wrapped".to_owned()));
    assert!(env.db.applied_versions().is_empty());
}

#[test]
fn a_commit_in_the_middle_of_a_transactional_migration_is_refused_with_nothing_applied() {
    let env = Env::new("tx_mid_commit");
    env.ws.write("migrations/2024-01-01-000000_fine/up.sql", "CREATE TABLE fine (id int);\n");
    env.ws.write("migrations/2024-01-02-000000_mid/up.sql", "CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n");
    let refused = env.cli(&["run"]);
    refused.assert_code(8);
    assert!(
        refused.stderr.contains("2024-01-02-000000_mid/up.sql` line 2: a COMMIT before the end of the file (`COMMIT`)"),
        "{}",
        refused.stderr
    );
    assert!(env.db.tables().is_empty(), "refused before connecting: {:?}", env.db.tables());
    let lint = env.cli(&["lint"]);
    lint.assert_code(1);
    assert!(lint.stdout.contains("mid/up.sql:2: error [transaction-control-in-migration]"), "{}", lint.stdout);
}

#[test]
fn a_non_transactional_block_runs_as_one_unit_and_a_failed_block_resumes_at_its_begin() {
    let env = Env::new("tx_blocks");
    let dir = "migrations/2024-01-01-000000_blocks";
    env.ws.write(&format!("{dir}/metadata.toml"), NON_TRANSACTIONAL);
    let up = "CREATE TABLE t (id int);\nBEGIN;\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES ('two');\nCOMMIT;\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n";
    env.ws.write(&format!("{dir}/up.sql"), up);

    let failed = env.cli(&["run"]);
    failed.assert_code(1);
    assert!(failed.stderr.contains("failed at statement 4 of 6, line 4"), "{}", failed.stderr);
    // Nothing of the block: the first INSERT was rolled back with it, and the progress points at its BEGIN.
    assert_eq!(env.db.query("SELECT count(*)::text FROM t"), ["0"]);
    assert_eq!(env.db.query("SELECT statements_done::text FROM __anonmigrate_migrations"), ["1"]);
    assert!(env.db.applied_versions().is_empty());

    env.ws.write(&format!("{dir}/up.sql"), up.replace("'two'", "2"));
    let resumed = env.cli(&["run"]);
    resumed.assert_code(0);
    assert!(resumed.stderr.contains("resuming 2024-01-01-000000_blocks at statement 2 of 6"), "{}", resumed.stderr);
    assert_eq!(env.db.query("SELECT string_agg(id::text, ',' ORDER BY id) FROM t"), ["1,2"]);
    assert_eq!(env.db.query("SELECT indexname::text FROM pg_indexes WHERE tablename = 't'"), ["t_id"]);
    assert_eq!(env.db.query("SELECT statements_done::text FROM __anonmigrate_migrations"), ["6"]);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);

    let script = env.cli(&["run", "--sql"]);
    script.assert_code(0);
    assert!(script.stdout.contains("(the file's BEGIN … COMMIT blocks each as one unit)"), "{}", script.stdout);
}

#[test]
fn an_unterminated_block_is_refused_before_anything_runs() {
    let env = Env::new("tx_unterminated");
    let dir = "migrations/2024-01-01-000000_open_block";
    env.ws.write(&format!("{dir}/metadata.toml"), NON_TRANSACTIONAL);
    env.ws.write(&format!("{dir}/up.sql"), "CREATE TABLE t (id int);\nBEGIN;\nINSERT INTO t VALUES (1);\n");
    let refused = env.cli(&["run"]);
    refused.assert_code(8);
    assert!(refused.stderr.contains("up.sql` line 2: a BEGIN whose block is never committed"), "{}", refused.stderr);
    assert!(env.db.tables().is_empty(), "{:?}", env.db.tables());
}
