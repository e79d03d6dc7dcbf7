//! `schema`: schema.rs from the chain alone (replayed into a scratch database that is always dropped), and its
//! regeneration at the end of `run`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anonmigrate_testkit::repo_root;

use crate::support::{Env, Outcome, bin};

/// Runs the binary like `Env::cli`, and checks afterwards that this process left no scratch database behind.
fn schema_cli(env: &Env, args: &[&str]) -> Outcome {
    let child = spawn(env, args);
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert_no_scratch_database(env, pid);
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn spawn(env: &Env, args: &[&str]) -> std::process::Child {
    Command::new(bin())
        .current_dir(env.ws.path())
        .args(args)
        .args(["--database-url", &env.db.url])
        .env_remove("DATABASE_URL")
        .env_remove("DIESEL_CONFIG_FILE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn scratch_databases(env: &Env, pid: u32) -> Vec<String> {
    env.db.query(&format!("SELECT datname FROM pg_database WHERE datname LIKE 'anonmigrate\\_scratch\\_{pid}\\_%'"))
}

fn assert_no_scratch_database(env: &Env, pid: u32) {
    let left = scratch_databases(env, pid);
    assert!(left.is_empty(), "scratch databases left behind: {left:?}");
}

fn repo_diesel_toml() -> String {
    std::fs::read_to_string(repo_root().join("diesel.toml")).unwrap()
}

#[test]
fn schema_writes_exactly_the_committed_anonchat_schema_and_leaves_the_database_alone() {
    let env = Env::anonchat("schema_anonchat");
    env.ws.write("diesel.toml", repo_diesel_toml());
    std::fs::remove_file(env.ws.path().join("anonchat-schema/src/schema.rs")).unwrap();
    let first = schema_cli(&env, &["schema"]);
    first.assert_code(0);
    assert_eq!(first.stdout, "wrote anonchat-schema/src/schema.rs\n");
    let generated = std::fs::read_to_string(env.ws.path().join("anonchat-schema/src/schema.rs")).unwrap();
    let committed = std::fs::read_to_string(repo_root().join("anonchat-schema/src/schema.rs")).unwrap();
    assert_eq!(
        generated, committed,
        "anonchat-schema/src/schema.rs is not what `cargo anonmigrate schema` generates; run it and commit the result"
    );
    // The output is a function of the chain: the configured database was not touched.
    assert!(env.db.tables().is_empty(), "{:?}", env.db.tables());
    // The lock file records what schema.rs was generated from, for the build-script drift gate.
    let lock = std::fs::read_to_string(env.ws.migrations().join("anonmigrate.lock")).unwrap();
    assert!(lock.contains("schema ../anonchat-schema/src/schema.rs\n"), "{lock}");

    let mtime = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let path = env.ws.path().join("anonchat-schema/src/schema.rs");
    let before = mtime(&path);
    let second = schema_cli(&env, &["schema"]);
    second.assert_code(0);
    assert_eq!(second.stdout, "unchanged anonchat-schema/src/schema.rs\n");
    assert_eq!(mtime(&path), before, "an unchanged file is not rewritten");
}

#[test]
fn without_configuration_the_schema_is_printed_with_the_pgvector_defaults() {
    let env = Env::anonchat("schema_stdout");
    let outcome = schema_cli(&env, &["schema"]);
    outcome.assert_code(0);
    assert!(outcome.stderr.contains("no schema file is configured"), "{}", outcome.stderr);
    assert!(outcome.stdout.starts_with("// @generated automatically by Diesel CLI.\n"), "{}", outcome.stdout);
    assert!(outcome.stdout.contains("    use pgvector::sql_types::Vector;\n"), "{}", outcome.stdout);
    assert!(outcome.stdout.contains("pub struct RequestMethod;"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("pub struct Vector;"), "{}", outcome.stdout);
    let lock = std::fs::read_to_string(env.ws.migrations().join("anonmigrate.lock")).unwrap();
    let original = std::fs::read_to_string(repo_root().join("migrations/anonmigrate.lock")).unwrap();
    assert_eq!(lock, original, "printing changes nothing in the lock file");

    // --stdout prints even when a file is configured, and writes nothing.
    env.ws.write("diesel.toml", "[print_schema]\nfile = \"src/schema.rs\"\n");
    let printed = schema_cli(&env, &["schema", "--stdout"]);
    printed.assert_code(0);
    assert!(printed.stdout.contains("pub struct Vector;"), "diesel.toml means diesel's own behaviour:\n{}", printed.stdout);
    assert!(!env.ws.path().join("src/schema.rs").exists());
}

#[test]
fn the_pgvector_fixture_crate_compiles_exactly_what_schema_writes() {
    // tests/fixtures/pgvector_crate builds its src/schema.rs with diesel + pgvector (its own tests use it): that
    // file must be what `schema` prints for its chain, pgvector's halfvec, sparsevec and bit types included.
    let crate_dir = repo_root().join("tests/fixtures/pgvector_crate");
    let env = Env { ws: anonmigrate_testkit::Workspace::with_migrations(&crate_dir.join("migrations")), db: anonmigrate_testkit::TestDb::new("schema_pgvector") };
    let outcome = schema_cli(&env, &["schema"]);
    outcome.assert_code(0);
    assert_eq!(outcome.stdout, std::fs::read_to_string(crate_dir.join("src/schema.rs")).unwrap());
    for line in ["embedding -> HalfVector,", "sparse -> Nullable<SparseVector>,", "bits -> Nullable<Bit>,", "use pgvector::sql_types::Bit;"] {
        assert!(outcome.stdout.contains(line), "{line}\n{}", outcome.stdout);
    }
    assert!(!outcome.stdout.contains("pub mod sql_types"), "no custom type definitions needed:\n{}", outcome.stdout);
}

#[test]
fn several_sections_write_several_files_and_timings_go_to_stderr() {
    let env = Env::new("schema_sections");
    env.ws.write("migrations/2024-01-01-000000_users/up.sql", "CREATE SCHEMA audit;\nCREATE TABLE users (id INT PRIMARY KEY);\nCREATE TABLE audit.entries (id INT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-01-000000_users/down.sql", "DROP TABLE audit.entries; DROP TABLE users; DROP SCHEMA audit;\n");
    env.ws.write("diesel.toml", "[print_schema.app]\nfile = \"src/app.rs\"\n\n[print_schema.audit]\nfile = \"src/audit.rs\"\nschema = \"audit\"\n");
    let outcome = schema_cli(&env, &["schema", "--timings"]);
    outcome.assert_code(0);
    assert_eq!(outcome.stdout, "wrote src/app.rs\nwrote src/audit.rs\n");
    assert!(outcome.stderr.contains("timings: replay "), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("catalog read "), "{}", outcome.stderr);
    let audit = std::fs::read_to_string(env.ws.path().join("src/audit.rs")).unwrap();
    assert!(audit.contains("pub mod audit {\n    diesel::table! {\n        audit.entries (id) {"), "{audit}");
    let app = std::fs::read_to_string(env.ws.path().join("src/app.rs")).unwrap();
    assert!(app.contains("    users (id) {") && !app.contains("entries"), "{app}");
}

#[test]
fn a_table_without_primary_key_is_reported_with_the_fix_and_the_rest_is_generated() {
    let env = Env::new("schema_no_pk");
    env.ws.write(
        "migrations/2024-01-01-000000_tables/up.sql",
        "CREATE TABLE users (id INT PRIMARY KEY);\nCREATE TABLE raw_events (payload JSONB);\n",
    );
    env.ws.write("migrations/2024-01-01-000000_tables/down.sql", "DROP TABLE raw_events, users;\n");
    env.ws.write("diesel.toml", "[print_schema]\nfile = \"schema.rs\"\n");
    let outcome = schema_cli(&env, &["schema"]);
    outcome.assert_code(0);
    assert!(outcome.stderr.contains("warning: table `public.raw_events` has no primary key"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("ALTER TABLE raw_events ADD PRIMARY KEY"), "{}", outcome.stderr);
    let schema = std::fs::read_to_string(env.ws.path().join("schema.rs")).unwrap();
    assert!(schema.contains("users (id)") && !schema.contains("raw_events"), "{schema}");
}

#[test]
fn a_failing_migration_fails_the_command_and_still_drops_the_scratch_database() {
    let env = Env::new("schema_fail");
    env.ws.write("migrations/2024-01-01-000000_bad/up.sql", "CREATE TABLE t (id INT PRIMARY KEY);\nSELECT no_such_function();\n");
    env.ws.write("migrations/2024-01-01-000000_bad/down.sql", "DROP TABLE t;\n");
    env.ws.write("diesel.toml", "[print_schema]\nfile = \"schema.rs\"\n");
    let outcome = schema_cli(&env, &["schema"]);
    outcome.assert_code(1);
    assert!(outcome.stderr.contains("failed to generate the schema from the migrations"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("no_such_function"), "{}", outcome.stderr);
    assert!(!env.ws.path().join("schema.rs").exists());
}

#[test]
fn bad_configuration_is_a_configuration_error() {
    let env = Env::anonchat("schema_bad_config");
    env.ws.write("diesel.toml", "[print_schema]\nwith_docs = \"sometimes\"\n");
    let outcome = schema_cli(&env, &["schema"]);
    outcome.assert_code(4);
    assert!(outcome.stderr.contains("with_docs = \"sometimes\""), "{}", outcome.stderr);
}

#[test]
fn ctrl_c_during_the_replay_drops_the_scratch_database() {
    let env = Env::new("schema_ctrl_c");
    env.ws.write("migrations/2024-01-01-000000_slow/up.sql", "CREATE TABLE t (id INT PRIMARY KEY);\nSELECT pg_sleep(60);\n");
    env.ws.write("migrations/2024-01-01-000000_slow/down.sql", "DROP TABLE t;\n");
    let started = Instant::now();
    let child = spawn(&env, &["schema"]);
    let pid = child.id();
    // Wait until the replay is inside the slow statement.
    let sleeping = || {
        env.db.query(&format!(
            "SELECT datname FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND datname LIKE 'anonmigrate\\_scratch\\_{pid}\\_%'"
        ))
    };
    while sleeping().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "the replay never reached the slow statement");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(scratch_databases(&env, pid).len(), 1);
    Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted: dropped the scratch database"));
    assert_no_scratch_database(&env, pid);
    assert!(started.elapsed() < Duration::from_secs(50), "Ctrl-C did not stop the replay");
}

#[test]
fn run_regenerates_the_configured_schema_unless_told_not_to() {
    let env = Env::new("schema_run");
    env.ws.write("migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id INT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-01-000000_users/down.sql", "DROP TABLE users;\n");
    env.ws.write("diesel.toml", "[print_schema]\nfile = \"src/schema.rs\"\n");
    let run = schema_cli(&env, &["run"]);
    run.assert_code(0);
    assert!(run.stderr.contains("regenerated src/schema.rs"), "{}", run.stderr);
    let schema = std::fs::read_to_string(env.ws.path().join("src/schema.rs")).unwrap();
    assert!(schema.contains("users (id)"), "{schema}");

    env.ws.write("migrations/2024-01-02-000000_posts/up.sql", "CREATE TABLE posts (id INT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-02-000000_posts/down.sql", "DROP TABLE posts;\n");
    schema_cli(&env, &["lock"]).assert_code(0);
    let skipped = schema_cli(&env, &["run", "--no-schema"]);
    skipped.assert_code(0);
    assert!(!skipped.stderr.contains("regenerated"), "{}", skipped.stderr);
    assert!(!std::fs::read_to_string(env.ws.path().join("src/schema.rs")).unwrap().contains("posts"));
}

#[test]
fn from_database_prints_what_a_live_database_gives_and_writes_nothing() {
    let env = Env::anonchat("schema_from_db");
    env.ws.write("diesel.toml", repo_diesel_toml());
    std::fs::remove_file(env.ws.path().join("anonchat-schema/src/schema.rs")).unwrap();
    schema_cli(&env, &["run", "--no-schema"]).assert_code(0);
    let outcome = schema_cli(&env, &["schema", "--from-database"]);
    outcome.assert_code(0);
    let committed = std::fs::read_to_string(repo_root().join("anonchat-schema/src/schema.rs")).unwrap();
    assert_eq!(outcome.stdout, committed, "a database migrated with the chain gives the committed schema.rs");
    assert!(!env.ws.path().join("anonchat-schema/src/schema.rs").exists(), "--from-database writes nothing");
}

#[test]
fn schema_file_from_cargo_metadata_gets_the_pgvector_defaults_and_conflicts_with_diesel_toml() {
    let env = Env::anonchat("schema_metadata");
    env.ws.write(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\n\n[workspace.metadata.anonmigrate]\nschema-file = \"db/schema.rs\"\n",
    );
    let outcome = schema_cli(&env, &["schema"]);
    outcome.assert_code(0);
    assert_eq!(outcome.stdout, "wrote db/schema.rs\n");
    let schema = std::fs::read_to_string(env.ws.path().join("db/schema.rs")).unwrap();
    assert!(schema.contains("    use pgvector::sql_types::Vector;\n"), "{schema}");
    assert!(schema.contains("pub struct RequestMethod;") && !schema.contains("pub struct Vector;"), "{schema}");

    env.ws.write("diesel.toml", "[print_schema]\nfile = \"src/schema.rs\"\n");
    let both = schema_cli(&env, &["schema"]);
    both.assert_code(4);
    assert!(both.stderr.contains("keep one"), "{}", both.stderr);
}

#[test]
fn run_regenerates_over_hand_edits_its_migrations_explain_and_leaves_other_hand_edits_alone() {
    let env = Env::new("schema_hand_edit");
    env.ws.write("migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id INT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-01-000000_users/down.sql", "DROP TABLE users;\n");
    env.ws.write("diesel.toml", "[print_schema]\nfile = \"src/schema.rs\"\n");
    schema_cli(&env, &["run"]).assert_code(0);
    let path = env.ws.path().join("src/schema.rs");
    let generated = std::fs::read_to_string(&path).unwrap();

    // Explained: schema.rs gains a column by hand (placed first), and a migration adds it (PostgreSQL puts it last).
    let edited = generated.replace("        id -> Int4,\n", "        name -> Nullable<Text>,\n        id -> Int4,\n");
    std::fs::write(&path, &edited).unwrap();
    env.ws.write("migrations/2024-01-02-000000_name/up.sql", "ALTER TABLE users ADD COLUMN name TEXT;\n");
    env.ws.write("migrations/2024-01-02-000000_name/down.sql", "ALTER TABLE users DROP COLUMN name;\n");
    schema_cli(&env, &["lock"]).assert_code(0);
    let run = schema_cli(&env, &["run"]);
    run.assert_code(0);
    assert!(run.stderr.contains("regenerated src/schema.rs"), "{}", run.stderr);
    let regenerated = std::fs::read_to_string(&path).unwrap();
    assert!(regenerated.contains("        id -> Int4,\n        name -> Nullable<Text>,\n"), "{regenerated}");

    // Unexplained: a hand-written column no migration adds survives `run`, with a warning saying what to do.
    let edited = regenerated.replace("        name -> Nullable<Text>,\n", "        name -> Nullable<Text>,\n        email -> Text,\n");
    std::fs::write(&path, &edited).unwrap();
    env.ws.write("migrations/2024-01-03-000000_posts/up.sql", "CREATE TABLE posts (id INT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-03-000000_posts/down.sql", "DROP TABLE posts;\n");
    schema_cli(&env, &["lock"]).assert_code(0);
    let run = schema_cli(&env, &["run"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains("warning: the migrations were applied; `")
            && run.stderr.contains("has hand edits that no migration explains, so it was not overwritten")
            && run.stderr.contains("schema.rs lines 3-9 (table users) were edited by hand")
            && run.stderr.contains("cargo anonmigrate generate NAME --autogenerate"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited, "the hand edit must survive `run`");
    assert_eq!(env.db.query("SELECT count(*)::text FROM posts"), ["0"], "the migration itself applied");
}
