//! `run --sql` / `revert --sql` (the script, written without connecting, applied with psql) and `run --dry-run`
//! (connects, reports, changes nothing). Each case compares databases, not just output.

use std::path::PathBuf;

use anonmigrate_testkit::TestDb;

use crate::snap;
use crate::support::Env;

/// The Anonymous Chat chain plus migrations that exercise what the script must get right: a dollar-quoted
/// function, `;` inside strings, a last statement without `;` ending in a line comment, and a
/// non-transactional migration with two CONCURRENTLY builds.
fn offline_env(label: &str) -> Env {
    let env = Env::anonchat(label);
    env.ws.write(
        "migrations/2025-02-01-000000_notes/up.sql",
        "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL DEFAULT 'a;b');\n\
         CREATE FUNCTION note_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM notes; $$;\n\
         INSERT INTO notes (body) VALUES (E'it''s; fine') -- no semicolon after this comment",
    );
    env.ws.write("migrations/2025-02-01-000000_notes/down.sql", "DROP FUNCTION note_count();\nDROP TABLE notes;");
    env.ws.write(
        "migrations/2025-02-02-000000_index_notes/up.sql",
        "CREATE INDEX CONCURRENTLY notes_body ON notes (body);\nCREATE INDEX CONCURRENTLY notes_id_body ON notes (id, body);\n",
    );
    env.ws.write(
        "migrations/2025-02-02-000000_index_notes/down.sql",
        "DROP INDEX CONCURRENTLY notes_id_body;\nDROP INDEX CONCURRENTLY notes_body;\n",
    );
    env.ws.write("migrations/2025-02-02-000000_index_notes/metadata.toml", "run_in_transaction = false\n");
    env.raw(&["lock"], &[]).assert_code(0);
    env
}

const BOOKKEEPING: &str = "SELECT version || ' ' || name || ' ' || checksum || ' ' || statements_done || '/' || statements_total || ' ' || \
     done_prefix_hash || ' ' || (finished_at IS NOT NULL) FROM __anonmigrate_migrations ORDER BY version";

/// Prints a script with the binary (no database URL anywhere: nothing to connect to) into a file.
fn script(env: &Env, args: &[&str], name: &str) -> PathBuf {
    let outcome = env.raw(args, &[]);
    outcome.assert_code(0);
    let path = env.ws.path().join(name);
    std::fs::write(&path, &outcome.stdout).unwrap();
    path
}

fn apply(db: &TestDb, file: &std::path::Path) -> (bool, String) {
    let output = db.psql_file(file);
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn the_run_script_applied_by_psql_gives_the_same_schema_and_bookkeeping_as_run() {
    let env = offline_env("offline_live");
    env.cli(&["run"]).assert_code(0);

    let offline = TestDb::new("offline_psql");
    let file = script(&env, &["run", "--sql"], "run.sql");
    let (ok, stderr) = apply(&offline, &file);
    assert!(ok, "psql failed: {stderr}");

    assert_eq!(offline.dump(true), env.db.dump(true), "same schema");
    assert_eq!(offline.applied_versions(), env.db.applied_versions());
    assert_eq!(offline.query(BOOKKEEPING), env.db.query(BOOKKEEPING), "same bookkeeping rows and checksums");
    assert_eq!(offline.query("SELECT body FROM notes"), ["it's; fine"]);
    assert_eq!(offline.query("SELECT note_count()"), ["1"]);
    // The tool itself agrees the database is up to date.
    env.raw(&["status", "--exit-code", "--database-url", &offline.url], &[]).assert_code(0);

    // Applying it twice stops at the first check and changes nothing.
    let before = offline.dump(false);
    let (ok, stderr) = apply(&offline, &file);
    assert!(!ok);
    assert!(stderr.contains("a migration of this script is already applied"), "{stderr}");
    assert_eq!(offline.dump(false), before);

    // And back down: the revert script matches `revert --all`.
    let down = script(&env, &["revert", "--sql", "--all"], "revert.sql");
    let (ok, stderr) = apply(&offline, &down);
    assert!(ok, "psql failed: {stderr}");
    env.cli(&["revert", "--all", "--yes"]).assert_code(0);
    assert_eq!(offline.dump(true), env.db.dump(true), "same schema after reverting everything");
    assert!(offline.applied_versions().is_empty());
    assert!(offline.query(BOOKKEEPING).is_empty());
}

#[test]
fn from_to_and_step_narrow_the_scripts() {
    let env = offline_env("offline_range");
    let versions = ["20250115090000", "20250115090100", "20250115090200", "20250115090300", "20250115090400", "20250201000000", "20250202000000"];
    let first = script(&env, &["run", "--sql", "--to", "20250115090200"], "first.sql");
    let (ok, stderr) = apply(&env.db, &first);
    assert!(ok, "{stderr}");
    assert_eq!(env.db.applied_versions(), versions[..3]);

    let next = script(&env, &["run", "--sql", "--from", "20250115090200", "--step", "3"], "next.sql");
    let (ok, stderr) = apply(&env.db, &next);
    assert!(ok, "{stderr}");
    assert_eq!(env.db.applied_versions(), versions[..6]);
    // What is left, the live runner applies.
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), versions);

    // revert --sql counts from the newest migration on disk, or from --from.
    let two = script(&env, &["revert", "--sql", "--step", "2"], "two.sql");
    let (ok, stderr) = apply(&env.db, &two);
    assert!(ok, "{stderr}");
    assert_eq!(env.db.applied_versions(), versions[..5]);
    // A script that assumes another version refuses to run.
    let (ok, stderr) = apply(&env.db, &two);
    assert!(!ok);
    assert!(stderr.contains("not at the version this script assumes"), "{stderr}");
    let to = script(&env, &["revert", "--sql", "--from", "20250115090400", "--to", "20250115090100"], "to.sql");
    let (ok, stderr) = apply(&env.db, &to);
    assert!(ok, "{stderr}");
    assert_eq!(env.db.applied_versions(), versions[..2]);

    // Versions that are not in the chain are refused before anything is printed.
    let bad = env.raw(&["run", "--sql", "--from", "20990101000000"], &[]);
    bad.assert_code(2);
    assert!(bad.stdout.is_empty());
    assert!(bad.stderr.contains("--from `20990101000000`: no migration in"), "{}", bad.stderr);
    env.raw(&["run", "--from", "20250115090200"], &[]).assert_code(2);
}

#[test]
fn the_script_never_connects_and_never_prints_a_password() {
    let env = Env::new("offline_secret");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("migrations/2024-01-02-000000_idx/up.sql", "CREATE INDEX CONCURRENTLY a_id ON a (id);\nCREATE INDEX CONCURRENTLY a_id2 ON a (id)");
    env.ws.write("migrations/2024-01-02-000000_idx/down.sql", "DROP INDEX CONCURRENTLY a_id2;\nDROP INDEX CONCURRENTLY a_id;");
    env.ws.write("migrations/2024-01-02-000000_idx/metadata.toml", "run_in_transaction = false\n");
    env.raw(&["lock"], &[]).assert_code(0);
    // A port with nothing listening: any connection attempt would fail the command.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("postgres://deploy:hunter2-secret@127.0.0.1:{}/prod", closed.local_addr().unwrap().port());
    drop(closed);
    for args in [["run", "--sql"], ["revert", "--sql"]] {
        let by_flag = env.raw(&[args[0], args[1], "--database-url", &url], &[]);
        by_flag.assert_code(0);
        let by_env = env.raw(&args, &[("DATABASE_URL", &url)]);
        by_env.assert_code(0);
        assert_eq!(by_flag.stdout, by_env.stdout);
        for text in [&by_flag.stdout, &by_flag.stderr, &by_env.stdout, &by_env.stderr] {
            assert!(!text.contains("hunter2"), "password leaked: {text}");
        }
    }
    // Without any URL it does not start the managed local server either.
    let outcome = env.raw(&["run", "--sql"], &[]);
    outcome.assert_code(0);
    assert!(!outcome.stderr.contains("managed local server"), "{}", outcome.stderr);
    assert!(!env.ws.path().join("target/anonmigrate").exists());
    snap!(env, outcome);
    let down = env.raw(&["revert", "--sql"], &[]);
    down.assert_code(0);
    snap!(env, down);
}

#[test]
fn the_script_waits_for_the_migration_lock_of_a_runner() {
    let env = Env::new("offline_lock");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let file = script(&env, &["run", "--sql"], "run.sql");
    let mut holder = env.db.session("offline-test-holder");
    holder.execute(&format!("SELECT pg_advisory_lock({})", anonmigrate_core::runner::MIGRATION_LOCK_KEY));
    let mut psql = std::process::Command::new(anonmigrate_testkit::cluster().binaries.tool("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&file)
        .arg(&env.db.url)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The server shows the script's session in its lock loop (polled, not guessed with a sleep): it tries the
    // lock in a loop of short sleeps, so it is seen sleeping inside the statement that calls pg_try_advisory_lock.
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
                   AND state = 'active' AND query LIKE '%pg_try_advisory_lock%'";
    let started = std::time::Instant::now();
    while env.db.query(waiting) != ["1"] {
        assert!(psql.try_wait().unwrap().is_none(), "the script ended instead of waiting for the lock");
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the script never waited for the lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(psql.try_wait().unwrap().is_none(), "the script waits while a runner holds the lock");
    assert!(env.db.tables().is_empty(), "and does nothing meanwhile");
    holder.execute(&format!("SELECT pg_advisory_unlock({})", anonmigrate_core::runner::MIGRATION_LOCK_KEY));
    assert!(psql.wait().unwrap().success());
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);

    // A holder that does not let go: the script gives up after 10 s, having done nothing.
    env.ws.write("migrations/2024-01-02-000000_b/up.sql", "CREATE TABLE b (id int);");
    let file = script(&env, &["run", "--sql", "--from", "2024-01-02-000000_b"], "run_b.sql");
    holder.execute(&format!("SELECT pg_advisory_lock({})", anonmigrate_core::runner::MIGRATION_LOCK_KEY));
    let started = std::time::Instant::now();
    let gave_up = std::process::Command::new(anonmigrate_testkit::cluster().binaries.tool("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&file)
        .arg(&env.db.url)
        .output()
        .unwrap();
    assert!(!gave_up.status.success());
    assert!(started.elapsed() >= std::time::Duration::from_secs(10), "gave up after {:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&gave_up.stderr);
    assert!(stderr.contains("another runner has held the migration lock on this database for 10s"), "{stderr}");
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
    assert!(!env.db.tables().contains(&"b".to_owned()));
}

#[test]
fn dry_run_reports_what_would_run_and_why_and_changes_nothing() {
    let env = Env::new("dryrun");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("migrations/2024-01-03-000000_c/up.sql", "CREATE TABLE c (id int);");
    // A non-transactional migration fails at statement 3 of 4 and is fixed.
    let steps = "migrations/2024-01-04-000000_steps";
    env.ws.write(&format!("{steps}/metadata.toml"), "run_in_transaction = false\n");
    let broken = "CREATE INDEX CONCURRENTLY a_id ON a (id);\nINSERT INTO a VALUES (1);\nCREATE INDEX CONCURRENTLY c_x ON c (x);\nINSERT INTO c VALUES (1);";
    env.ws.write(&format!("{steps}/up.sql"), broken);
    env.cli(&["run"]).assert_code(1);
    env.ws.write(&format!("{steps}/up.sql"), broken.replace("c (x)", "c (id)"));
    // A merged branch brings an older migration, and there is a new one.
    env.ws.write("migrations/2024-01-02-000000_b_from_a_merge/up.sql", "CREATE TABLE b (id int);");
    env.ws.write("migrations/2024-01-05-000000_e/up.sql", "CREATE TABLE e (id int);\nINSERT INTO e VALUES (1);");

    let before = env.db.dump(false);
    let refused = env.cli(&["run", "--dry-run"]);
    refused.assert_code(7);
    snap!(env, refused);
    let allowed = env.cli(&["run", "--dry-run", "--allow-out-of-order"]);
    allowed.assert_code(0);
    snap!(env, allowed);
    let json = env.cli(&["run", "--dry-run", "--allow-out-of-order", "--step", "2", "--format", "json"]);
    json.assert_code(0);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed["actions"].as_array().unwrap().len(), 2);
    assert_eq!(parsed["actions"][1]["from_statement"], 3);
    assert_eq!(parsed["refusal"], serde_json::Value::Null);
    assert_eq!(env.db.dump(false), before, "a dry run changes nothing");

    // A changed applied migration: run would refuse, and the dry run says so with run's exit code.
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id bigint);");
    let changed = env.cli(&["run", "--dry-run", "--allow-out-of-order"]);
    changed.assert_code(7);
    assert!(changed.stderr.contains("run would refuse: applied migrations were modified"), "{}", changed.stderr);
    assert_eq!(env.db.dump(false), before);

    // On an empty database it does not even create the bookkeeping tables.
    let fresh = Env::new("dryrun_fresh");
    fresh.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let outcome = fresh.cli(&["run", "--dry-run"]);
    outcome.assert_code(0);
    assert!(outcome.stdout.contains("would apply  2024-01-01-000000_a  (pending; one transaction, 1 statement)"), "{}", outcome.stdout);
    assert!(fresh.db.tables().is_empty());
}

/// Progress hashes are computed in one pass: the script of a long non-transactional migration is written in
/// linear time (hashing each prefix anew took 124 s for 100,000 statements).
#[test]
fn the_script_of_a_long_non_transactional_migration_is_written_in_linear_time() {
    let env = Env::new("long_script");
    let up: String = (0..20_000).map(|i| format!("INSERT INTO t VALUES ({i});\n")).collect();
    env.ws.write("migrations/2024-01-01-000000_many/up.sql", up);
    env.ws.write("migrations/2024-01-01-000000_many/metadata.toml", "run_in_transaction = false\n");
    let started = std::time::Instant::now();
    let script = env.raw(&["run", "--sql"], &[]);
    let took = started.elapsed();
    script.assert_code(0);
    assert_eq!(script.stdout.matches("UPDATE __anonmigrate_migrations SET statements_done").count(), 20_000);
    assert!(took < std::time::Duration::from_secs(20), "run --sql of 20,000 statements took {took:?}");
}
