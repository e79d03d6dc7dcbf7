//! `doctor` against real servers set up to fail one check at a time.

use anonmigrate_core::chain::{Chain, LockFile};

use crate::support::{Env, Outcome};

fn line<'a>(outcome: &'a Outcome, check: &str) -> &'a str {
    outcome
        .stdout
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(&format!("{check}:"))))
        .unwrap_or_else(|| panic!("no `{check}` line in:\n{}", outcome.stdout))
}

fn fails(outcome: &Outcome, check: &str, text: &str) {
    outcome.assert_code(1);
    let found = line(outcome, check);
    assert!(found.starts_with("FAIL") && found.contains(text), "{found}\n{}", outcome.stdout);
}

#[test]
fn a_healthy_setup_passes() {
    let env = Env::anonchat("doctor_ok");
    env.raw(&["lock"], &[]).assert_code(0);
    env.cli(&["run"]).assert_code(0);
    let outcome = env.cli(&["doctor"]);
    outcome.assert_code(0);
    for check in ["migrations", "lock file", "url", "server", "database", "server version", "extension vector", "privilege CREATE", "privilege CREATEDB", "bookkeeping", "pending"] {
        assert!(line(&outcome, check).starts_with("ok"), "{check}: {}", outcome.stdout);
    }
    let json = env.cli(&["doctor", "--format", "json"]);
    json.assert_code(0);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let checks = parsed.as_array().unwrap();
    let text_checks = outcome.stdout.lines().filter(|l| ["ok  ", "warn", "FAIL"].iter().any(|t| l.starts_with(t))).count();
    assert_eq!(checks.len(), text_checks, "the same checks as the text:\n{}\n{}", outcome.stdout, json.stdout);
    assert!(checks.len() >= 11, "{}", json.stdout);
    assert!(checks.iter().all(|c| c["level"] == "ok" || c["level"] == "warn"), "{}", json.stdout);
}

#[test]
fn unparseable_url() {
    let env = Env::anonchat("doctor_url");
    let outcome = env.raw(&["doctor", "--database-url", "postgres//nope"], &[]);
    fails(&outcome, "url", "invalid database URL");
}

#[test]
fn server_not_answering() {
    let env = Env::anonchat("doctor_down");
    let empty_socket_dir = tempfile::tempdir().unwrap();
    let url = format!("postgresql://postgres@localhost/x?host={}", empty_socket_dir.path().display());
    let outcome = env.raw(&["doctor", "--database-url", &url], &[]);
    fails(&outcome, "server", "cannot connect");
    assert!(outcome.stdout.contains("pg_isready"), "{}", outcome.stdout);
}

#[test]
fn database_missing() {
    let env = Env::anonchat("doctor_nodb");
    let url = env.db.url.replace(&env.db.name, "doctor_no_such_db");
    let outcome = env.raw(&["doctor", "--database-url", &url], &[]);
    fails(&outcome, "database", "does not exist");
    assert!(outcome.stdout.contains("cargo anonmigrate setup"), "{}", outcome.stdout);
}

#[test]
fn extension_unavailable() {
    let env = Env::new("doctor_ext");
    env.ws.write("migrations/2024-01-01-000000_ext/up.sql", "CREATE EXTENSION IF NOT EXISTS no_such_extension;");
    let outcome = env.cli(&["doctor"]);
    fails(&outcome, "extension no_such_extension", "not available");
    assert!(outcome.stdout.contains("CREATE EXTENSION no_such_extension"), "{}", outcome.stdout);
}

#[test]
fn missing_privileges() {
    let env = Env::anonchat("doctor_priv");
    let role = format!("limited_{}", env.db.name);
    anonmigrate_testkit::admin_execute(&format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN"));
    env.db.execute(&format!("REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}"));
    let url = env.db.url.replacen("postgres@", &format!("{role}@"), 1);
    let outcome = env.raw(&["doctor", "--database-url", &url], &[]);
    fails(&outcome, "privilege CREATE", "cannot create objects");
    let createdb = line(&outcome, "privilege CREATEDB");
    assert!(createdb.starts_with("warn") && createdb.contains("cannot create databases"), "{createdb}");
    // Whether the role may create pgvector itself depends on its control file (`trusted`): ask the server, then
    // expect exactly that answer.
    let trusted = env.db.query("SELECT coalesce(bool_or(trusted), false)::text FROM pg_available_extension_versions WHERE name = 'vector'");
    let extension = line(&outcome, "extension vector");
    if trusted == ["true"] {
        assert!(extension.starts_with("ok") && extension.contains("not installed yet"), "{extension}");
    } else {
        assert!(extension.starts_with("warn") && outcome.stdout.contains(&format!("role `{role}` cannot create it")), "{}", outcome.stdout);
    }
}

#[test]
fn changed_and_missing_migrations() {
    let env = Env::new("doctor_changed");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("migrations/2024-01-02-000000_b/up.sql", "CREATE TABLE b (id int);");
    env.cli(&["run"]).assert_code(0);
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id bigint);");
    std::fs::remove_dir_all(env.ws.migrations().join("2024-01-02-000000_b")).unwrap();
    let outcome = env.cli(&["doctor"]);
    fails(&outcome, "changed", "2024-01-01-000000_a");
    fails(&outcome, "missing", "20240102000000");
}

#[test]
fn lock_file_mismatch_and_schema_drift() {
    let env = Env::new("doctor_lock");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("src/schema.rs", "diesel::table! {\n    a (id) {\n        id -> Int4,\n    }\n}\n");
    let chain = Chain::load(&env.ws.migrations()).unwrap();
    let mut lock = LockFile::from_chain(&chain);
    lock.record_schema("../src/schema.rs".into(), &std::fs::read_to_string(env.ws.path().join("src/schema.rs")).unwrap());
    lock.write(&env.ws.migrations()).unwrap();
    assert!(line(&env.cli(&["doctor"]), "schema drift ../src/schema.rs").starts_with("ok"));

    env.ws.write("migrations/2024-01-02-000000_b/up.sql", "CREATE TABLE b (id int);");
    let outcome = env.cli(&["doctor"]);
    // A stale lock file is the normal state right after adding a migration (the next `run` updates it): a warning.
    let lock_line = line(&outcome, "lock file");
    assert!(lock_line.starts_with("warn") && lock_line.contains("not in the lock file: 2024-01-02-000000_b"), "{}", outcome.stdout);
    fails(&outcome, "schema drift ../src/schema.rs", "migration added since schema.rs was generated: 2024-01-02-000000_b");
}
