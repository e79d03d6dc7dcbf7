//! The everyday commands on the real Anonymous Chat chain and on a chain shaped like real-world ones.

use crate::snap;
use crate::support::{ANONCHAT_TABLES, Env};

const ANONCHAT_VERSIONS: [&str; 5] = ["20250115090000", "20250115090100", "20250115090200", "20250115090300", "20250115090400"];

#[test]
fn run_applies_the_anonymous_chat_chain() {
    let env = Env::anonchat("run_anonchat");
    let outcome = env.cli(&["run"]);
    outcome.assert_code(0);
    snap!(env, outcome);
    assert_eq!(env.db.tables(), ANONCHAT_TABLES);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS);
    assert_eq!(env.db.query("SELECT extname FROM pg_extension WHERE extname = 'vector'"), ["vector"]);
    assert_eq!(
        env.db.query("SELECT indexname FROM pg_indexes WHERE indexname = 'messages_embedding_hnsw_idx'"),
        ["messages_embedding_hnsw_idx"]
    );
    assert_eq!(
        env.db.query("SELECT count(*) FROM __anonmigrate_migrations WHERE finished_at IS NOT NULL AND length(checksum) = 64"),
        ["5"]
    );
    // The bookkeeping tables are created without TOAST tables (bounded columns): on a fresh database that is two
    // relations fewer for the server to create (issue 20).
    assert_eq!(
        env.db.query(
            "SELECT relname FROM pg_class WHERE relname IN ('__diesel_schema_migrations', '__anonmigrate_migrations') \
             AND reltoastrelid <> 0"
        ),
        Vec::<String>::new()
    );
    // A second run has nothing to do and changes nothing.
    let again = env.cli(&["run"]);
    again.assert_code(0);
    assert!(again.stdout.contains("nothing to apply"), "{}", again.stdout);
}

/// On a database with no diesel table `run` creates the bookkeeping without `IF NOT EXISTS` and reads nothing; when
/// one of the tables exists after all (here ours, left behind with diesel's dropped), that message fails under the
/// lock and the usual setup and read decide instead (issue 20).
#[test]
fn run_falls_back_to_reading_when_only_part_of_the_bookkeeping_exists() {
    let env = Env::anonchat("run_partial_bookkeeping");
    env.db.execute(anonmigrate_core::bookkeeping::CREATE_TABLES);
    env.db.execute("DROP TABLE __diesel_schema_migrations");
    env.db.execute(
        "INSERT INTO __anonmigrate_migrations (version, name, checksum, statements_total, statements_done) \
         VALUES ('20250115090000', 'enable_extensions', 'stale', 1, 1)",
    );
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS);
    assert_eq!(env.db.query("SELECT count(*) FROM __anonmigrate_migrations WHERE finished_at IS NOT NULL AND checksum <> 'stale'"), ["5"]);
}

#[test]
fn status_history_and_exit_code() {
    let env = Env::anonchat("status");
    env.cli(&["run", "--step", "3"]).assert_code(0);
    let status = env.cli(&["status"]);
    status.assert_code(0);
    snap!(env, status);
    env.cli(&["status", "--exit-code"]).assert_code(3);
    let current = env.cli(&["current"]);
    assert_eq!(current.stdout, status.stdout, "`current` is an alias of `status`");
    let history = env.cli(&["history", "--verbose"]);
    history.assert_code(0);
    snap!(env, history);
    let json = env.cli(&["status", "--format", "json"]);
    json.assert_code(0);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("status --format json prints JSON");
    assert_eq!(parsed["current_version"], "20250115090200");
    assert_eq!(parsed["entries"][3]["state"], "pending");
    env.cli(&["run"]).assert_code(0);
    env.cli(&["status", "--exit-code"]).assert_code(0);
}

#[test]
fn revert_redo_and_confirmation() {
    let env = Env::anonchat("revert");
    env.cli(&["run"]).assert_code(0);

    let one = env.cli(&["revert"]);
    one.assert_code(0);
    snap!(env, one);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS[..4]);
    assert_eq!(env.db.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'messages_embedding_hnsw_idx'"), ["0"]);

    // --all without a terminal needs --yes, and nothing changes without it; other reverts ask nothing, as diesel.
    let refused = env.cli(&["revert", "--all"]);
    refused.assert_code(8);
    snap!(env, refused);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS[..4]);

    env.cli(&["revert", "--to", "20250115090100"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS[..2]);

    env.cli(&["run"]).assert_code(0);
    let redo = env.cli(&["redo"]);
    redo.assert_code(0);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS);

    env.cli(&["revert", "--all"]).assert_code(8);
    env.cli(&["revert", "--all", "--yes"]).assert_code(0);
    assert!(env.db.applied_versions().is_empty());
    assert_eq!(env.db.tables(), ["__anonmigrate_migrations", "__diesel_schema_migrations"]);
    assert_eq!(env.db.query("SELECT count(*) FROM pg_type WHERE typname = 'request_method'"), ["0"]);
}

#[test]
fn real_world_shaped_chain_runs_and_reverts_completely() {
    let env = Env::with_fixture("realworld", "realworld");
    let run = env.cli(&["run"]);
    run.assert_code(0);
    snap!(env, run);
    assert_eq!(
        env.db.applied_versions(),
        ["00000000000000", "20230101999999", "20230102", "202301030000000001"]
    );
    assert_eq!(env.db.query("SELECT body FROM notes WHERE false UNION ALL SELECT column_default FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'body'"), ["'it''s; fine'::text"]);
    assert_eq!(env.db.query("SELECT obj_description('notes'::regclass)"), ["notes; with a semicolon"]);
    assert_eq!(env.db.query("SELECT count(*) FROM pg_trigger WHERE tgname = 'set_updated_at'"), ["1"]);
    let revert = env.cli(&["revert", "--all", "--yes"]);
    revert.assert_code(0);
    assert!(env.db.applied_versions().is_empty());
    assert_eq!(env.db.tables(), ["__anonmigrate_migrations", "__diesel_schema_migrations"]);
    assert_eq!(env.db.query("SELECT count(*) FROM pg_proc WHERE proname LIKE 'diesel_%'"), ["0"]);
}

#[test]
fn generate_creates_migrations_and_keeps_the_lock_file() {
    let env = Env::new("generate");
    let created = env.raw(&["generate", "add_users"], &[]);
    created.assert_code(0);
    let dirs = anonmigrate_core::chain::Chain::load(&env.ws.migrations()).unwrap();
    assert_eq!(dirs.migrations.len(), 1);
    let first = &dirs.migrations[0];
    assert!(first.dir_name.ends_with("_add_users"), "{}", first.dir_name);
    assert!(first.down_sql.is_some());
    assert!(created.stdout.contains("anonmigrate.lock"), "{}", created.stdout);

    env.raw(&["generate", "index_things", "--non-transactional", "--no-down"], &[]).assert_code(0);
    let chain = anonmigrate_core::chain::Chain::load(&env.ws.migrations()).unwrap();
    let second = &chain.migrations[1];
    assert!(second.version > first.version, "new versions sort after existing ones");
    assert!(second.down_sql.is_none());
    assert!(second.metadata.as_deref().unwrap().contains("run_in_transaction = false"));
    let lock = std::fs::read_to_string(env.ws.migrations().join("anonmigrate.lock")).unwrap();
    assert!(lock.contains(&second.dir_name), "{lock}");

    let bad = env.raw(&["generate", "add users!"], &[]);
    bad.assert_code(4);
    snap!(env, bad);

    // The generated placeholder SQL applies as-is.
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.applied_versions().len(), 2);
}

#[test]
fn setup_is_idempotent_and_quotes_names() {
    let env = Env::anonchat("setup");
    let odd = anonmigrate_testkit::TestDb::not_created("my\"db; drop");
    let first = env.raw(&["setup", "--database-url", &odd.url], &[]);
    first.assert_code(0);
    assert!(first.stderr.contains("created database") && first.stderr.contains("created extension `vector`"), "{}", first.stderr);
    assert!(first.stdout.contains("is set up (extensions: vector)"), "{}", first.stdout);
    let second = env.raw(&["setup", "--database-url", &odd.url], &[]);
    second.assert_code(0);
    assert!(!second.stderr.contains("created"), "second setup creates nothing: {}", second.stderr);
    assert_eq!(odd.query("SELECT extname FROM pg_extension WHERE extname = 'vector'"), ["vector"]);
    assert_eq!(odd.query("SELECT to_regclass('__diesel_schema_migrations')::text"), ["__diesel_schema_migrations"]);
}

#[test]
fn database_drop_and_reset() {
    let env = Env::anonchat("dbreset");
    env.cli(&["run", "--step", "2"]).assert_code(0);
    env.db.execute("INSERT INTO users (username) VALUES ('alice')");
    env.cli(&["database", "reset"]).assert_code(8);
    assert_eq!(env.db.query("SELECT count(*) FROM users"), ["1"], "refused reset keeps data");
    env.cli(&["database", "reset", "--yes"]).assert_code(0);
    assert_eq!(env.db.query("SELECT count(*) FROM users"), ["0"]);
    assert_eq!(env.db.applied_versions().len(), 5);
    let dropped = env.cli(&["database", "drop", "--yes"]);
    dropped.assert_code(0);
    assert_eq!(
        anonmigrate_testkit::TestDb::new("probe").query(&format!("SELECT count(*) FROM pg_database WHERE datname = '{}'", env.db.name)),
        ["0"]
    );
}

#[test]
fn global_flags_work_before_and_after_the_command() {
    let env = Env::anonchat("globals");
    let migrations = env.ws.migrations().display().to_string();
    let before = env.raw(&["--database-url", &env.db.url, "--migrations-dir", &migrations, "run", "--step", "1"], &[]);
    before.assert_code(0);
    let after = env.raw(&["run", "--step", "1", "--migrations-dir", &migrations, "--database-url", &env.db.url], &[]);
    after.assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20250115090000", "20250115090100"]);
    // Invoked by cargo, the binary receives the subcommand name first.
    env.raw(&["anonmigrate", "status", "--database-url", &env.db.url], &[]).assert_code(0);
}

#[test]
fn database_url_spellings_and_sources() {
    let env = Env::anonchat("urls");
    let asyncpg = env.db.url.replacen("postgresql://", "postgresql+asyncpg://", 1);
    env.raw(&["run", "--step", "1"], &[("DATABASE_URL", &asyncpg)]).assert_code(0);
    let psycopg = env.db.url.replacen("postgresql://", "postgres://", 1);
    env.ws.write(".env", format!("DATABASE_URL={psycopg}\n"));
    env.raw(&["run", "--step", "1"], &[]).assert_code(0);
    assert_eq!(env.db.applied_versions().len(), 2);
    let bad = env.raw(&["status", "--database-url", "mysql://user:hunter2@localhost/x"], &[]);
    bad.assert_code(4);
    assert!(!bad.stderr.contains("hunter2"), "{}", bad.stderr);
    snap!(env, bad);
}

#[test]
fn passwords_never_appear_in_output() {
    let env = Env::anonchat("redact");
    // The test cluster trusts local connections, so the password is accepted and must still never be shown.
    let with_password = env.db.url.replacen("postgres@", "postgres:s3cr3t-pw@", 1);
    let missing_db = with_password.replace(&env.db.name, "no_such_database");
    for args in [vec!["run"], vec!["status"], vec!["history", "--verbose"]] {
        for url in [&with_password, &missing_db] {
            let mut full = args.clone();
            full.extend(["--database-url", url.as_str()]);
            let outcome = env.raw(&full, &[]);
            assert!(!outcome.stdout.contains("s3cr3t") && !outcome.stderr.contains("s3cr3t"), "{outcome:?}");
        }
    }
    let missing = env.raw(&["status", "--database-url", &missing_db], &[]);
    missing.assert_code(5);
    assert!(missing.stderr.contains("cargo anonmigrate setup"), "{}", missing.stderr);
}

#[test]
fn versions_are_accepted_in_every_spelling_and_a_typo_is_a_usage_error_with_candidates() {
    let env = Env::anonchat("version_spellings");
    env.cli(&["run", "--to", "2025-01-15-090100"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS[..2]);
    env.cli(&["run", "--to", "2025-01-15-090300_create_messages"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS[..4]);
    env.cli(&["run", "--to", "migrations/2025-01-15-090400_index_message_embeddings/"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS);
    env.cli(&["revert", "--to", "2025-01-15-090200_create_request_log", "--yes"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS[..3]);
    let sql = env.cli(&["run", "--sql", "--from", "2025-01-15-090200", "--to", "20250115090300_create_messages"]);
    sql.assert_code(0);
    assert!(sql.stdout.contains("2025-01-15-090300_create_messages") && !sql.stdout.contains("090400_index"), "{}", sql.stdout);
    env.cli(&["stamp", "--delete", "2025-01-15-090200_create_request_log"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS[..2]);
    env.cli(&["stamp", "2025-01-15-090200"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS[..3]);
    env.cli(&["accept", "2025-01-15-090100_create_users"]).assert_code(0);

    // A typo is invalid usage (exit 2), not a database failure, and the message lists what was meant.
    let typo = env.cli(&["run", "--to", "2025-01-15-0904"]);
    typo.assert_code(2);
    assert!(
        typo.stderr.contains("--to `2025-01-15-0904`: no migration in")
            && typo.stderr.contains("candidates: 2025-01-15-090400_index_message_embeddings"),
        "{}",
        typo.stderr
    );
    let typo = env.cli(&["revert", "--to", "create_user", "--yes"]);
    typo.assert_code(2);
    assert!(typo.stderr.contains("candidates: 2025-01-15-090100_create_users"), "{}", typo.stderr);
    env.cli(&["stamp", "nonsense"]).assert_code(2);
    env.cli(&["accept", "20990101000000"]).assert_code(2);
    assert_eq!(env.db.applied_versions(), ANONCHAT_VERSIONS[..3], "nothing changed");
}

#[test]
fn back_to_back_commands_never_wait_for_the_lock_the_previous_one_held() {
    // The server ends a closed client's backend (and its advisory locks) a moment after the socket closes, so a
    // runner that left its lock to the disconnect made the next command print "waiting for the migration lock".
    let env = Env::new("back_to_back");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);\n");
    env.ws.write("migrations/2024-01-01-000000_a/down.sql", "DROP TABLE a;\n");
    for round in 0..15 {
        for args in [&["run"][..], &["revert"]] {
            let outcome = env.cli(args);
            outcome.assert_code(0);
            assert!(!outcome.stderr.contains("waiting for the migration lock"), "round {round}, {args:?}:\n{}", outcome.stderr);
        }
    }
    assert!(env.db.tables().iter().all(|t| t.starts_with("__")), "{:?}", env.db.tables());
}
