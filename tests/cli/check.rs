//! `check`, the CI gate: each failure kind with its exit code and the message that names what is off, against a
//! real server, and no scratch database left behind.

use std::process::{Command, Stdio};

use anonmigrate_testkit::repo_root;

use crate::support::{Env, Outcome, bin};

/// `cargo anonmigrate check <args> --database-url <test db>`; afterwards, no
/// scratch database of that process is left.
fn check(env: &Env, args: &[&str]) -> Outcome {
    let child = Command::new(bin())
        .current_dir(env.ws.path())
        .arg("check")
        .args(args)
        .args(["--database-url", &env.db.url])
        .env_remove("DATABASE_URL")
        .env_remove("ANONMIGRATE_DRIFT")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let left = env.db.query(&format!("SELECT datname FROM pg_database WHERE datname LIKE 'anonmigrate\\_scratch\\_{pid}\\_%'"));
    assert!(left.is_empty(), "scratch databases left behind: {left:?}");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_has(outcome: &Outcome, needle: &str) {
    assert!(outcome.stdout.contains(needle), "stdout lacks {needle:?}\nstdout:\n{}\nstderr:\n{}", outcome.stdout, outcome.stderr);
}

/// The Anonymous Chat chain with the repository's diesel.toml and committed schema.rs.
fn anonchat(label: &str) -> Env {
    let env = Env::anonchat(label);
    env.ws.write("diesel.toml", std::fs::read_to_string(repo_root().join("diesel.toml")).unwrap());
    env.ws.write("anonchat-schema/src/schema.rs", committed_schema());
    env.ws.write("anonchat-schema/build.rs", std::fs::read_to_string(repo_root().join("anonchat-schema/build.rs")).unwrap());
    env
}

fn committed_schema() -> String {
    std::fs::read_to_string(repo_root().join("anonchat-schema/src/schema.rs")).unwrap()
}

/// A two-table chain whose second migration is given; the first is always correct.
fn chain(label: &str, second_up: &str, second_down: &str) -> Env {
    let env = Env::new(label);
    env.ws.write("migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT NOT NULL);\n");
    env.ws.write("migrations/2024-01-01-000000_users/down.sql", "DROP TABLE users;\n");
    env.ws.write("migrations/2024-01-02-000000_second/up.sql", second_up);
    env.ws.write("migrations/2024-01-02-000000_second/down.sql", second_down);
    env
}

fn lock(env: &Env) {
    env.raw(&["lock"], &[]).assert_code(0);
}

#[test]
fn the_anonchat_chain_passes_every_check() {
    let env = anonchat("check_clean");
    let outcome = check(&env, &[]);
    outcome.assert_code(0);
    assert_eq!(
        outcome.stdout,
        "\
ok    lock file: matches the 5 migration(s) on disk
ok    schema.rs (anonchat-schema/src/schema.rs): matches the migrations (same tables, columns, types and keys; the drift gate agrees)
ok    down.sql: each of the 5 migration(s): up, down, up leaves the same schema
ok    revert all: reverting every migration leaves an empty schema
ok    lint: 5 migration(s) linted: 0 error(s), 0 warning(s)

check passed
"
    );
    // check replays into a scratch database: the configured database is not touched.
    assert!(env.db.tables().is_empty(), "{:?}", env.db.tables());
}

#[test]
fn a_column_missing_from_schema_rs_fails_with_9() {
    let env = anonchat("check_missing_column");
    let edited = committed_schema().replace("        created_at -> Timestamptz,\n    }\n}\n\ndiesel::joinable", "    }\n}\n\ndiesel::joinable");
    assert_ne!(edited, committed_schema());
    env.ws.write("anonchat-schema/src/schema.rs", &edited);
    let outcome = check(&env, &["--no-lint"]);
    outcome.assert_code(9);
    assert_has(&outcome, "FAIL  schema.rs (anonchat-schema/src/schema.rs): 1 difference(s) from the migrations\n");
    assert_has(&outcome, "  column users.created_at: in the migrations, missing from schema.rs\n");
    // The file is recorded in the lock file, so the build-script drift gate is consulted too.
    assert_has(&outcome, "  build-script drift gate: schema.rs lines");
    assert_has(&outcome, "to fix:\n  schema.rs (anonchat-schema/src/schema.rs): `cargo anonmigrate schema` regenerates schema.rs");
    assert_has(&outcome, "ok    down.sql:");

    let json = check(&env, &["--no-lint", "--format", "json"]);
    json.assert_code(9);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["exit_code"], 9);
    let schema = report["sections"].as_array().unwrap().iter().find(|s| s["kind"] == "schema").unwrap();
    assert_eq!(schema["outcome"], "fail");
    assert_eq!(
        schema["findings"][0]["schema_rs"],
        serde_json::json!({"kind": "column_missing", "table": "users", "column": "created_at"})
    );
}

#[test]
fn a_hand_maintained_schema_rs_with_a_wrong_type_and_an_extra_table_fails_with_9() {
    let env = anonchat("check_hand_written");
    env.ws.write(
        "src/schema.rs",
        "\
// Written by hand: other macro paths, aliases and full type paths are fine.
use diesel::table;

pub mod sql_types {
    #[derive(diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = \"request_method\"))]
    pub struct Method;
}

table! {
    users {
        id -> BigInt,
        username -> diesel::sql_types::Text,
        created_at -> Timestamptz,
    }
}

table! {
    use pgvector::sql_types::Vector;
    messages (id) {
        id -> Int8,
        room -> Text,
        author_id -> Int8,
        body -> Text,
        embedding -> Nullable<Vector>,
        created_at -> Timestamptz,
    }
}

table! {
    request_log (id) {
        id -> Int8,
        method -> super::sql_types::Method,
        path -> Text,
        status_code -> SmallInt,
        duration_ms -> Double,
        user_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

table! {
    rooms (id) {
        id -> Int4,
    }
}

diesel::joinable!(messages -> users (author_id));
diesel::joinable!(request_log -> users (user_id));
",
    );
    let outcome = check(&env, &["--schema-file", "src/schema.rs", "--no-down-check", "--no-lint"]);
    outcome.assert_code(9);
    assert_has(&outcome, "FAIL  schema.rs (src/schema.rs): 2 difference(s) from the migrations\n");
    assert_has(
        &outcome,
        "  column users.username: type Text in schema.rs, Varchar in the migrations (diesel reads both as String, but they are different PostgreSQL types: text in schema.rs, varchar in the migrations)\n",
    );
    assert_has(&outcome, "  table rooms: in schema.rs, not created by any migration\n");
    assert!(!outcome.stdout.contains("drift gate"), "a file the lock file does not record is not gated:\n{}", outcome.stdout);
    assert!(!outcome.stdout.contains("down.sql"), "--no-down-check:\n{}", outcome.stdout);
}

#[test]
fn every_broken_down_is_named_with_its_differences_with_10() {
    let env = chain(
        "check_down_index",
        "CREATE INDEX users_email_idx ON users (email);\nCREATE TABLE rooms (id INT PRIMARY KEY);\n",
        "DROP TABLE rooms;\n",
    );
    env.ws.write("migrations/2024-01-03-000000_third/up.sql", "CREATE TABLE notes (id INT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-03-000000_third/down.sql", "SELECT 1;\n");
    lock(&env);
    let outcome = check(&env, &["--no-lint"]);
    outcome.assert_code(10);
    assert_has(&outcome, "FAIL  down.sql: 2 broken down.sql: 2024-01-02-000000_second, 2024-01-03-000000_third\n");
    assert_has(
        &outcome,
        "  2024-01-02-000000_second: index users_email_idx on users: still there after down.sql (up.sql created it, down.sql does not drop it)\n",
    );
    // The third is checked from the state after the second (rebuilt, since up.sql cannot run twice).
    assert_has(&outcome, "  2024-01-03-000000_third: table notes: still there after down.sql (up.sql created it, down.sql does not drop it)\n");
    assert_has(&outcome, "FAIL  revert all: reverting every migration does not leave an empty schema\n");
    assert_has(&outcome, "  table notes: left behind\n");
}

#[test]
fn the_two_broken_downs_fixture_names_both_and_checks_the_migrations_between_and_after() {
    let env = Env::with_fixture("check_two_broken", "two_broken_downs");
    let outcome = check(&env, &["--no-lint", "--format", "json"]);
    outcome.assert_code(10);
    let report: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
    let down = report["sections"].as_array().unwrap().iter().find(|s| s["kind"] == "down").unwrap();
    assert_eq!(down["outcome"], "fail");
    assert_eq!(down["summary"], "2 broken down.sql: 2024-01-02-000000_rooms, 2024-01-04-000000_mood");
    let findings: Vec<&str> = down["findings"].as_array().unwrap().iter().map(|f| f["message"].as_str().unwrap()).collect();
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert_eq!(
        findings[0],
        "2024-01-02-000000_rooms: index users_email_idx on users: still there after down.sql (up.sql created it, down.sql does not drop it)"
    );
    assert!(findings[1].starts_with("2024-01-04-000000_mood: down.sql failed: "), "{findings:#?}");
    assert!(findings[1].contains("moood"), "{findings:#?}");
    assert_eq!(down["findings"][0]["database_object"]["object"]["kind"], "index");

    // A third broken one after them is found too: the pass goes on after each.
    env.ws.write("migrations/2024-01-05-000000_reactions/down.sql", "SELECT 1;\n");
    let third = check(&env, &["--no-lint"]);
    third.assert_code(10);
    assert_has(&third, "FAIL  down.sql: 3 broken down.sql: 2024-01-02-000000_rooms, 2024-01-04-000000_mood, 2024-01-05-000000_reactions\n");
    assert_has(&third, "  2024-01-05-000000_reactions: table reactions: still there after down.sql");
}

/// Broken down.sql files on both sides of an irreversible migration: the ones before it get their own up, down, up
/// (nothing can be reverted past it), the ones after it the passes down and up again; a seeded row left behind is
/// caught by up.sql failing when it runs again. All named in chain order, each with what is off.
#[test]
fn broken_downs_around_an_irreversible_migration_are_all_named_in_chain_order() {
    let env = Env::with_fixture("check_around_irreversible", "around_irreversible");
    let outcome = check(&env, &["--no-lint"]);
    outcome.assert_code(10);
    assert_has(
        &outcome,
        "FAIL  down.sql: 3 broken down.sql: 2024-02-02-000000_rooms, 2024-02-04-000000_seed_admin, 2024-02-05-000000_reactions\n",
    );
    assert_has(
        &outcome,
        "  2024-02-02-000000_rooms: index users_email_idx on users: still there after down.sql (up.sql created it, down.sql does not drop it)\n",
    );
    assert_has(&outcome, "  2024-02-04-000000_seed_admin: up.sql run again after down.sql failed: ");
    assert_has(&outcome, "duplicate key value violates unique constraint \"settings_pkey\"");
    assert_has(
        &outcome,
        "  2024-02-05-000000_reactions: table reactions: still there after down.sql (up.sql created it, down.sql does not drop it)\n",
    );
    assert!(!outcome.stdout.contains("2024-02-06-000000_topics:"), "the correct one is not named:\n{}", outcome.stdout);
    assert!(!outcome.stdout.contains("2024-02-01-000000_users:"), "the correct one is not named:\n{}", outcome.stdout);
    assert_has(
        &outcome,
        "FAIL  revert all: reverting every migration does not leave the schema right after 2024-02-03-000000_baseline_data (it is irreversible)\n",
    );
    assert_has(&outcome, "revert all:\n  table reactions: left behind\n");

    // Fixed, the same chain passes: the irreversible one is still reported, as a warning.
    env.ws.write("migrations/2024-02-02-000000_rooms/down.sql", "DROP INDEX users_email_idx;\nDROP TABLE rooms;\n");
    env.ws.write("migrations/2024-02-04-000000_seed_admin/down.sql", "DELETE FROM settings WHERE key = 'admin';\n");
    env.ws.write("migrations/2024-02-05-000000_reactions/down.sql", "DROP TABLE reactions;\n");
    env.raw(&["lock"], &[]).assert_code(0);
    let fixed = check(&env, &["--no-lint"]);
    fixed.assert_code(0);
    assert_has(&fixed, "warn  down.sql: up, down, up leaves the same schema; 1 migration(s) are irreversible\n");
    assert_has(&fixed, "ok    revert all: reverting every migration leaves the schema right after 2024-02-03-000000_baseline_data (it is irreversible)\n");
}

/// A leftover the schema comparison cannot see (an extended-statistics object) is still caught: its migration is not
/// schema-only DDL as the check knows it, so up.sql runs again after down.sql and fails on it.
#[test]
fn a_leftover_the_comparison_cannot_see_fails_when_up_runs_again() {
    let env = chain("check_down_statistics", "CREATE STATISTICS users_stats ON id, email FROM users;\n", "SELECT 1;\n");
    lock(&env);
    let outcome = check(&env, &["--no-lint"]);
    outcome.assert_code(10);
    assert_has(&outcome, "FAIL  down.sql: broken: 2024-01-02-000000_second: up.sql run again after down.sql failed\n");
    assert_has(&outcome, "statistics object \"users_stats\" already exists");
}

#[test]
fn a_down_that_leaves_a_type_behind_fails_revert_all_with_10() {
    let env = chain(
        "check_down_type",
        "CREATE TYPE mood AS ENUM ('happy', 'sad');\nALTER TABLE users ADD COLUMN mood mood;\n",
        "ALTER TABLE users DROP COLUMN mood;\n",
    );
    lock(&env);
    let outcome = check(&env, &["--no-lint"]);
    outcome.assert_code(10);
    assert_has(&outcome, "  2024-01-02-000000_second: type mood: still there after down.sql");
    assert_has(&outcome, "FAIL  revert all: reverting every migration does not leave an empty schema\n");
    assert_has(&outcome, "  type mood: left behind\n");
    assert_has(&outcome, "to fix:\n  down.sql: make 2024-01-02-000000_second/down.sql undo exactly what its up.sql does");
}

#[test]
fn a_lock_file_mismatch_fails_with_7_and_skips_what_needs_the_runner() {
    let env = chain("check_lock", "CREATE TABLE rooms (id INT PRIMARY KEY);\n", "DROP TABLE rooms;\n");
    lock(&env);
    env.ws.write("migrations/2024-01-02-000000_second/up.sql", "CREATE TABLE rooms (id BIGINT PRIMARY KEY);\n");
    let outcome = check(&env, &["--no-lint"]);
    outcome.assert_code(7);
    assert_has(&outcome, "FAIL  lock file: migrations/anonmigrate.lock does not match the migrations on disk\n");
    assert_has(&outcome, "edited since the lock file was written: 2024-01-02-000000_second");
    assert_has(&outcome, "skip  down.sql: needs the lock file to match the migrations");
}

#[test]
fn a_column_added_by_hand_to_the_live_database_fails_check_database_with_11() {
    let env = Env::anonchat("check_live");
    env.cli(&["run"]).assert_code(0);
    let clean = check(&env, &["--database", "--no-down-check", "--no-lint"]);
    clean.assert_code(0);
    assert_has(&clean, "ok    live database: ");

    env.db.execute("ALTER TABLE users ADD COLUMN nickname TEXT; CREATE INDEX users_created_at_idx ON users (created_at); DROP INDEX messages_room_created_at_idx;");
    let outcome = check(&env, &["--database", "--no-down-check", "--no-lint"]);
    outcome.assert_code(11);
    assert_has(&outcome, "differs from the migrations in 3 place(s) (changed outside the migrations)\n");
    assert_has(&outcome, "  column users.nickname: in the live database (`text`), not created by any migration\n");
    assert_has(&outcome, "  index users_created_at_idx on users: in the live database (`CREATE INDEX users_created_at_idx ON public.users USING btree (created_at)`), not created by any migration\n");
    assert_has(&outcome, "  index messages_room_created_at_idx on messages: in the migrations, missing from the live database\n");
    // The bookkeeping tables are not drift.
    assert!(!outcome.stdout.contains("__diesel"), "{}", outcome.stdout);
}

#[test]
fn without_a_build_script_gate_check_does_not_report_the_gate() {
    let env = anonchat("check_no_gate");
    std::fs::remove_file(env.ws.path().join("anonchat-schema/build.rs")).unwrap();
    // A blank line added by hand: the gate would fail `cargo build`, but no build script runs it here.
    env.ws.write("anonchat-schema/src/schema.rs", committed_schema().replacen("\n\n", "\n\n\n", 1));
    let outcome = check(&env, &["--no-lint", "--no-down-check"]);
    outcome.assert_code(0);
    assert_has(&outcome, "ok    schema.rs (anonchat-schema/src/schema.rs): matches the migrations (same tables, columns, types and keys)\n");
    assert!(!outcome.stdout.contains("drift gate"), "{}", outcome.stdout);
    // With the gate in a build script, the same edit fails check as it would fail `cargo build`.
    env.ws.write("anonchat-schema/build.rs", std::fs::read_to_string(repo_root().join("anonchat-schema/build.rs")).unwrap());
    let outcome = check(&env, &["--no-lint", "--no-down-check"]);
    outcome.assert_code(9);
    assert_has(&outcome, "build-script drift gate would fail");
}

#[test]
fn without_event_triggers_the_down_check_compares_whole_schemas_and_finds_the_same() {
    let env = chain("check_down_plain", "CREATE INDEX users_email_idx ON users (email);\n", "SELECT 1;\n");
    lock(&env);
    // Event triggers need a superuser; a CREATEDB role gets the whole-schema comparison.
    let role = format!("check_plain_{}", env.db.name);
    anonmigrate_testkit::admin_execute(&format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN CREATEDB"));
    let url = env.db.url.replacen("postgres@", &format!("{role}@"), 1);
    let outcome = env.raw(&["check", "--no-lint", "--database-url", &url], &[("ANONMIGRATE_TEMPLATE_CACHE", "0")]);
    outcome.assert_code(10);
    assert!(outcome.stderr.contains("compares the whole schema"), "{}", outcome.stderr);
    assert_has(&outcome, "FAIL  down.sql: broken: 2024-01-02-000000_second: down.sql does not undo up.sql\n");
    assert_has(&outcome, "  2024-01-02-000000_second: index users_email_idx on users: still there after down.sql");
}

/// check's lint section lints down.sql too: a revert that locks a live table fails it (exit 12), named by its file
/// and line, beside the down.sql pass that runs it.
#[test]
fn the_lint_section_names_down_sql_findings() {
    let env = crate::support::Env::with_fixture("check_lint_down", "lint_down");
    // Only the down.sql that locks: the fixture's unparsable one would stop the down.sql pass first.
    env.ws.write("migrations/2025-03-04-000000_add_accounts_note/down.sql", "ALTER TABLE accounts DROP COLUMN note;\n");
    env.ws.write("migrations/2025-03-03-000000_drop_accounts_legacy_name/down.sql", "ALTER TABLE accounts ADD COLUMN legacy_name text;\n");
    lock(&env);
    let outcome = check(&env, &["--no-schema-check"]);
    outcome.assert_code(12);
    assert_has(&outcome, "ok    down.sql: each of the 4 migration(s)");
    assert_has(&outcome, "migrations/2025-03-02-000000_index_accounts_email/down.sql:2: error [require-concurrent-index-deletion]");
    assert!(!outcome.stdout.contains("/up.sql:"), "{}", outcome.stdout);
}

/// A dropped index or constraint is gone from the catalogs with the link to its table: the down.sql check still
/// sees a down.sql that does not bring it back, or brings it back different (the linear pass re-reads the table
/// that held it).
#[test]
fn a_down_that_does_not_restore_a_dropped_index_or_constraint_is_named() {
    let env = chain(
        "check_down_dropped_index",
        "CREATE INDEX users_email_idx ON users (email);\nALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email <> '');\n",
        "ALTER TABLE users DROP CONSTRAINT users_email_check;\nDROP INDEX users_email_idx;\n",
    );
    env.ws.write("migrations/2024-01-03-000000_drop_index/up.sql", "DROP INDEX users_email_idx;\n");
    env.ws.write("migrations/2024-01-03-000000_drop_index/down.sql", "SELECT 1;\n");
    env.ws.write("migrations/2024-01-04-000000_drop_check/up.sql", "ALTER TABLE users DROP CONSTRAINT users_email_check;\n");
    env.ws.write("migrations/2024-01-04-000000_drop_check/down.sql", "ALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email <> 'x');\n");
    lock(&env);
    let outcome = check(&env, &["--no-lint"]);
    outcome.assert_code(10);
    assert_has(&outcome, "FAIL  down.sql: 2 broken down.sql: 2024-01-03-000000_drop_index, 2024-01-04-000000_drop_check\n");
    assert_has(&outcome, "  2024-01-03-000000_drop_index: index users_email_idx on users: gone after down.sql, but it existed before up.sql\n");
    assert_has(&outcome, "  2024-01-04-000000_drop_check: constraint users_email_check on users: before up.sql `");
}
