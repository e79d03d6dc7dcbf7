//! Parity with diesel_cli for teams switching over (issue 19): each scenario runs the binary against a real
//! database and compares the database state afterwards with what diesel does (diesel's own migration harness,
//! `diesel_migrations`, stands in for diesel_cli where it is not installed).

use anonmigrate_testkit::TestDb;
use diesel_migrations::{FileBasedMigrations, MigrationHarness};

use crate::support::{Env, fixture};

/// The directory names of the `diesel_names` fixture in the order their up.sql ran.
fn applied_order(db: &TestDb) -> Vec<String> {
    db.query("SELECT dir_name FROM applied_order ORDER BY id")
}

/// Applies a migrations directory with diesel's own harness, as `diesel migration run` does.
fn diesel_run(db: &TestDb, dir: &std::path::Path) {
    let mut conn = db.connect();
    let source = FileBasedMigrations::from_path(dir).expect("diesel accepts the directory");
    conn.run_pending_migrations(source).expect("diesel applies the chain");
}

#[test]
fn every_name_diesel_accepts_applies_in_diesels_order() {
    let env = Env::with_fixture("parity_names", "diesel_names");
    let outcome = env.cli(&["run"]);
    outcome.assert_code(0);
    let ours = applied_order(&env.db);
    assert_eq!(ours.len(), 20, "{ours:?}");

    let reference = TestDb::new("parity_names_diesel");
    diesel_run(&reference, &fixture("diesel_names"));
    assert_eq!(ours, applied_order(&reference), "the order the up.sql files ran in");
    assert_eq!(env.db.applied_versions(), reference.applied_versions(), "the versions recorded");
    assert!(env.db.applied_versions().contains(&"20190303101010000a".to_owned()), "hex subversion");
    assert!(env.db.applied_versions().contains(&"abc".to_owned()), "non-numeric version");

    // `history` lists them in the same order.
    let history = env.cli(&["history"]);
    history.assert_code(0);
    let mut at = 0;
    for name in &ours {
        let found = history.stdout[at..].find(name.as_str()).unwrap_or_else(|| panic!("{name} out of order in\n{}", history.stdout));
        at += found + name.len();
    }

    // Reverting walks the same order backwards, one migration at a time, as diesel's revert does.
    for _ in 0..3 {
        env.cli(&["revert"]).assert_code(0);
        let mut conn = reference.connect();
        let source = FileBasedMigrations::from_path(fixture("diesel_names")).unwrap();
        conn.revert_last_migration(source).expect("diesel reverts");
    }
    assert_eq!(applied_order(&env.db), applied_order(&reference));
    assert_eq!(env.db.applied_versions(), reference.applied_versions());
    assert_eq!(applied_order(&env.db).len(), 17);
}

/// Everything a failed command must leave as it was: the tables, the applied versions and our bookkeeping rows.
fn state(db: &TestDb) -> (Vec<String>, Vec<String>, Vec<String>) {
    let ours = if db.query("SELECT to_regclass('__anonmigrate_migrations')") == ["NULL"] {
        Vec::new()
    } else {
        db.query("SELECT version || ' ' || statements_done FROM __anonmigrate_migrations ORDER BY 1")
    };
    (db.tables(), db.applied_versions(), ours)
}

/// Writes `<dir>/up.sql` and `<dir>/down.sql` for each (dir, up, down).
fn write_chain(env: &Env, migrations: &[(&str, &str, &str)]) {
    for (dir, up, down) in migrations {
        env.ws.write(&format!("migrations/{dir}/up.sql"), up);
        env.ws.write(&format!("migrations/{dir}/down.sql"), down);
    }
}

#[test]
fn a_down_sql_with_nothing_to_run_is_irreversible() {
    let env = Env::new("parity_irreversible");
    write_chain(&env, &[
        ("2024-01-01-000000-0000_a", "CREATE TABLE a (id int);", "DROP TABLE a;"),
        ("2024-01-02-000000-0000_b", "CREATE TABLE b (id int);", "-- nothing to undo\n/* really */\n"),
    ]);
    env.cli(&["run"]).assert_code(0);
    let before = state(&env.db);
    assert_eq!(before.0, ["__anonmigrate_migrations", "__diesel_schema_migrations", "a", "b"]);

    for args in [&["revert"][..], &["redo"], &["revert", "--step", "2", "--yes"], &["revert", "--all", "--yes"], &["redo", "--step", "2", "--yes"]] {
        let refused = env.cli(args);
        refused.assert_code(8);
        assert!(
            refused.stderr.contains("migration `2024-01-02-000000-0000_b` is irreversible: its down.sql is empty or only comments")
                && refused.stderr.contains("stamp --delete 202401020000000000"),
            "{args:?}: {}",
            refused.stderr
        );
        assert_eq!(state(&env.db), before, "{args:?} changed the database");
    }
    // An empty file is the same.
    env.ws.write("migrations/2024-01-02-000000-0000_b/down.sql", "");
    env.cli(&["revert"]).assert_code(8);
    assert_eq!(state(&env.db), before);

    // `stamp --delete` is the explicit way out: it forgets the record and leaves the table.
    env.cli(&["stamp", "--delete", "2024-01-02-000000-0000_b"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["202401010000000000"]);
    assert!(env.db.tables().contains(&"b".to_owned()));

    // `lint` warns about it as about a missing down.sql.
    let lint = env.cli(&["lint"]);
    assert!(
        lint.stdout.contains("[missing-down-migration] 2024-01-02-000000-0000_b has no down.sql with anything to run"),
        "{}",
        lint.stdout
    );
    assert!(!lint.stdout.contains("2024-01-01-000000-0000_a has no down.sql"), "{}", lint.stdout);

    // `check` reports it as irreversible, not as a broken down.sql.
    let check = env.cli(&["check", "--no-schema-check", "--no-lint"]);
    assert!(check.stdout.contains("2024-01-02-000000-0000_b: irreversible: its down.sql is empty or only comments"), "{}", check.stdout);
    assert!(check.stdout.contains("1 migration(s) are irreversible"), "{}", check.stdout);
}

#[test]
fn the_stub_generate_writes_is_irreversible_until_it_holds_sql() {
    let env = Env::new("parity_stub");
    env.cli(&["generate", "add_things"]).assert_code(0);
    let dir = std::fs::read_dir(env.ws.migrations()).unwrap().map(|e| e.unwrap().path()).find(|p| p.is_dir()).unwrap();
    let down = std::fs::read_to_string(dir.join("down.sql")).unwrap();
    assert!(down.contains("the migration is irreversible"), "{down}");
    std::fs::write(dir.join("up.sql"), "CREATE TABLE things (id int);").unwrap();
    env.cli(&["run"]).assert_code(0);
    let before = state(&env.db);
    let refused = env.cli(&["revert"]);
    refused.assert_code(8);
    assert!(refused.stderr.contains("its down.sql is still the stub `generate` wrote"), "{}", refused.stderr);
    assert_eq!(state(&env.db), before);
    std::fs::write(dir.join("down.sql"), "DROP TABLE things;").unwrap();
    env.cli(&["revert"]).assert_code(0);
    assert!(env.db.applied_versions().is_empty());
    assert!(!env.db.tables().contains(&"things".to_owned()));
}

#[test]
fn metadata_toml_is_read_as_diesel_reads_it() {
    let env = Env::new("parity_metadata");
    let migrations = [
        ("2024-01-01-000000_t", "CREATE TABLE t (id int, v int);", None),
        ("2024-01-02-000000_empty_file", "CREATE INDEX CONCURRENTLY t_id ON t (id);", Some("")),
        ("2024-01-03-000000_only_a_comment", "CREATE INDEX CONCURRENTLY t_v ON t (v);", Some("# no keys\n")),
        ("2024-01-04-000000_other_key", "CREATE INDEX CONCURRENTLY t_id_v ON t (id, v);", Some("something_else = 1\n")),
        ("2024-01-05-000000_explicit_true", "CREATE TABLE u (id int);", Some("run_in_transaction = true\n")),
    ];
    for (dir, up, metadata) in migrations {
        env.ws.write(&format!("migrations/{dir}/up.sql"), up);
        env.ws.write(&format!("migrations/{dir}/down.sql"), "SELECT 1;");
        if let Some(text) = metadata {
            env.ws.write(&format!("migrations/{dir}/metadata.toml"), text);
        }
    }
    env.cli(&["run"]).assert_code(0);
    let reference = TestDb::new("parity_metadata_diesel");
    diesel_run(&reference, &env.ws.migrations());
    let indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1";
    assert_eq!(env.db.query(indexes), ["t_id", "t_id_v", "t_v"]);
    assert_eq!(env.db.query(indexes), reference.query(indexes));
    assert_eq!(env.db.applied_versions(), reference.applied_versions());

    // The linter reads metadata.toml the same way: no CONCURRENTLY-in-a-transaction finding.
    let lint = env.cli(&["lint"]);
    assert!(!lint.stdout.contains("ban-concurrent-index-in-transaction"), "{}", lint.stdout);

    // The transaction mode of each migration, as `history --verbose` reports it, is diesel's.
    let source = FileBasedMigrations::from_path(env.ws.migrations()).unwrap();
    let mut diesel_modes: Vec<(String, bool)> = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&source)
        .unwrap()
        .iter()
        .map(|m| (m.name().to_string(), m.metadata().run_in_transaction()))
        .collect();
    diesel_modes.sort();
    let history = env.cli(&["history", "--verbose"]);
    let lines: Vec<&str> = history.stdout.lines().collect();
    for (name, transactional) in diesel_modes {
        let at = lines.iter().position(|l| l.starts_with(name.as_str())).unwrap_or_else(|| panic!("{name} in\n{}", history.stdout));
        let ours = lines[at + 2].trim_start().starts_with("transactional;");
        assert_eq!(ours, transactional, "{name}: {}", lines[at + 2]);
    }

    // A file that does not parse is an error that names it (diesel would silently run the migration in a
    // transaction), before anything runs.
    let bad = Env::new("parity_metadata_bad");
    bad.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (id int);");
    bad.ws.write("migrations/2024-01-01-000000_t/metadata.toml", "run_in_transaction = nope\n");
    let refused = bad.cli(&["run"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("2024-01-01-000000_t/metadata.toml"), "{}", refused.stderr);
    assert!(bad.db.tables().is_empty());
}

#[test]
fn redo_runs_in_one_transaction_and_a_failure_changes_nothing() {
    let env = Env::new("parity_redo");
    write_chain(&env, &[
        ("2024-01-01-000000-0000_a", "CREATE TABLE a (id int);", "DROP TABLE a;"),
        ("2024-01-02-000000-0000_b", "CREATE TABLE b (id int);", "DROP TABLE b;\nDROP TABLE does_not_exist;"),
        ("2024-01-03-000000-0000_c", "CREATE TABLE c (id int);", "DROP TABLE c;"),
    ]);
    env.cli(&["run"]).assert_code(0);
    env.db.execute("INSERT INTO c VALUES (1)");
    let run_on = "SELECT version || ' ' || run_on FROM __diesel_schema_migrations ORDER BY 1";
    let before = (state(&env.db), env.db.query(run_on), env.db.query("SELECT count(*) FROM c"));

    // The second down.sql fails: the first one (c) must not stay reverted.
    let failed = env.cli(&["redo", "--step", "2"]);
    failed.assert_code(1);
    assert!(failed.stderr.contains("redo failed in migration `2024-01-02-000000-0000_b`"), "{}", failed.stderr);
    assert!(failed.stderr.contains("nothing was changed"), "{}", failed.stderr);
    assert!(!failed.stderr.contains("anonmigrate run"), "a failed redo must not advise `run`: {}", failed.stderr);
    assert!(!failed.stdout.contains("reverted"), "no line may claim a revert that was rolled back: {}", failed.stdout);
    assert_eq!((state(&env.db), env.db.query(run_on), env.db.query("SELECT count(*) FROM c")), before);
    for args in [&["redo", "-n", "2"][..], &["redo", "--number", "3"], &["redo", "--all"], &["redo", "-a"]] {
        env.cli(args).assert_code(1);
        assert_eq!((state(&env.db), env.db.query(run_on), env.db.query("SELECT count(*) FROM c")), before, "{args:?}");
    }

    // An up.sql that fails after the down.sql files ran changes nothing either.
    env.ws.write("migrations/2024-01-02-000000-0000_b/down.sql", "DROP TABLE b;");
    env.ws.write("migrations/2024-01-03-000000-0000_c/up.sql", "CREATE TABLE c (id int);\nSELECT 1/0;");
    env.cli(&["redo", "-n", "2"]).assert_code(1);
    assert_eq!((state(&env.db), env.db.query(run_on), env.db.query("SELECT count(*) FROM c")), before);

    // A working redo asks nothing, even for several migrations, and leaves them applied (with fresh tables).
    env.ws.write("migrations/2024-01-03-000000-0000_c/up.sql", "CREATE TABLE c (id int);");
    let redone = env.cli(&["redo", "-n", "2"]);
    redone.assert_code(0);
    assert!(redone.stdout.contains("2 migrations redone in one transaction"), "{}", redone.stdout);
    assert_eq!(state(&env.db), before.0);
    assert_eq!(env.db.query("SELECT count(*) FROM c"), ["0"]);
    env.cli(&["redo", "--all"]).assert_code(0);
    assert_eq!(state(&env.db), before.0);

    // Editing the newest migration and redoing it is what redo is for; an edited older one stops it first.
    env.ws.write("migrations/2024-01-03-000000-0000_c/up.sql", "CREATE TABLE c (id int, note text);");
    env.cli(&["redo"]).assert_code(0);
    assert_eq!(env.db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'c'"), ["2"]);
    env.ws.write("migrations/2024-01-01-000000-0000_a/up.sql", "CREATE TABLE a (id bigint);");
    let settled = state(&env.db);
    let refused = env.cli(&["redo"]);
    refused.assert_code(7);
    assert!(refused.stderr.contains("2024-01-01-000000-0000_a: applied with up.sql sha256"), "{}", refused.stderr);
    assert_eq!(state(&env.db), settled);
}

#[test]
fn revert_step_zero_reverts_nothing_and_only_all_asks_for_yes() {
    let env = Env::new("parity_step0");
    write_chain(&env, &[
        ("2024-01-01-000000-0000_a", "CREATE TABLE a (id int);", "DROP TABLE a;"),
        ("2024-01-02-000000-0000_b", "CREATE TABLE b (id int);", "DROP TABLE b;"),
        ("2024-01-03-000000-0000_c", "CREATE TABLE c (id int);", "DROP TABLE c;"),
    ]);
    env.cli(&["run"]).assert_code(0);
    let before = state(&env.db);
    for args in [&["revert", "--step", "0"][..], &["revert", "-n", "0", "--yes"], &["redo", "--number", "0"]] {
        let zero = env.cli(args);
        zero.assert_code(0);
        assert!(zero.stdout.contains("--step 0 names no migration; nothing was changed"), "{args:?}: {}", zero.stdout);
        assert_eq!(state(&env.db), before, "{args:?}");
    }
    // Several at once ask nothing (diesel's `revert -n 2`); --all still needs --yes without a terminal.
    let refused = env.cli(&["revert", "--all"]);
    refused.assert_code(8);
    assert!(refused.stderr.contains("stdin is not a terminal; pass --yes"), "{}", refused.stderr);
    assert_eq!(state(&env.db), before);
    env.cli(&["revert", "-n", "2"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["202401010000000000"]);
    env.cli(&["revert", "-a", "-y"]).assert_code(0);
    assert!(env.db.applied_versions().is_empty());
}

#[test]
fn setup_creates_what_is_missing_and_runs_the_pending_migrations() {
    let env = Env::new("parity_setup");
    std::fs::remove_dir(env.ws.migrations()).unwrap();
    let db = TestDb::not_created("parity_setup_db");
    let first = env.raw(&["setup", "--database-url", &db.url], &[]);
    first.assert_code(0);
    for created in ["created migrations\n", "created migrations/00000000000000_diesel_initial_setup\n", "created diesel.toml\n"] {
        assert!(first.stdout.contains(created), "{created:?} in\n{}", first.stdout);
    }
    // The files are diesel_cli 2.3's own (checked byte for byte against `diesel setup` by hand; see the report).
    let toml = std::fs::read_to_string(env.ws.path().join("diesel.toml")).unwrap();
    assert!(toml.contains("[print_schema]\nfile = \"src/schema.rs\"") && toml.contains("[migrations_directory]\ndir = \"migrations\""), "{toml}");
    assert!(env.ws.migrations().join(".keep").is_file());
    // ... and the pending migrations ran, diesel's helper functions with them; schema.rs is left alone, as diesel does.
    assert_eq!(db.applied_versions(), ["00000000000000"]);
    assert_eq!(db.query("SELECT count(*) FROM pg_proc WHERE proname IN ('diesel_manage_updated_at', 'diesel_set_updated_at')"), ["2"]);
    assert!(!env.ws.path().join("src/schema.rs").exists());

    // Again: nothing is created, nothing changes.
    let before = state(&db);
    let again = env.raw(&["database", "setup", "--database-url", &db.url], &[]);
    again.assert_code(0);
    assert!(!again.stdout.contains("created"), "{}", again.stdout);
    assert_eq!(state(&db), before);

    // A new migration: `setup --no-run` leaves it pending, `setup` applies it.
    env.ws.write("migrations/2024-01-01-000000-0000_t/up.sql", "CREATE TABLE t (id int);");
    env.ws.write("migrations/2024-01-01-000000-0000_t/down.sql", "DROP TABLE t;");
    env.raw(&["setup", "--no-run", "--database-url", &db.url], &[]).assert_code(0);
    assert_eq!(state(&db), before);
    assert_eq!(env.raw(&["pending", "--database-url", &db.url], &[]).stdout, "true\n");
    env.raw(&["db", "setup", "--database-url", &db.url], &[]).assert_code(0);
    assert_eq!(db.applied_versions(), ["00000000000000", "202401010000000000"]);
    assert_eq!(env.raw(&["migration", "pending", "--database-url", &db.url], &[]).stdout, "false\n");
}

#[test]
fn setup_without_the_default_migration_and_with_a_configured_schema_file() {
    let env = Env::new("parity_setup_bare");
    std::fs::remove_dir(env.ws.migrations()).unwrap();
    env.ws.write("Cargo.toml", "[workspace]\nresolver = \"2\"\n\n[workspace.metadata.anonmigrate]\nschema-file = \"schema.rs\"\n");
    let db = TestDb::not_created("parity_setup_bare_db");
    env.raw(&["setup", "--no-default-migration", "--database-url", &db.url], &[]).assert_code(0);
    assert!(!env.ws.migrations().join("00000000000000_diesel_initial_setup").exists());
    // diesel.toml must not name schema.rs a second time (that is a configuration error).
    let toml = std::fs::read_to_string(env.ws.path().join("diesel.toml")).unwrap();
    assert!(!toml.contains("print_schema"), "{toml}");
    assert_eq!(db.applied_versions(), Vec::<String>::new());
    env.raw(&["status", "--database-url", &db.url], &[]).assert_code(0);
}

#[test]
fn diesels_spellings_work_with_cargo_anonmigrate_in_front() {
    let env = Env::new("parity_spellings");
    write_chain(&env, &[
        ("2024-01-01-000000-0000_a", "CREATE TABLE a (id int);", "DROP TABLE a;"),
        ("2024-01-02-000000-0000_b", "CREATE TABLE b (id int);", "DROP TABLE b;"),
    ]);
    // The migrations somewhere else, named by --migration-dir or MIGRATION_DIRECTORY as diesel names them.
    std::fs::rename(env.ws.migrations(), env.ws.path().join("db")).unwrap();
    let db = &env.db.url;
    env.raw(&["migration", "run", "--migration-dir", "db", "--database-url", db], &[]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["202401010000000000", "202401020000000000"]);
    env.raw(&["migration", "revert", "--database-url", db], &[("MIGRATION_DIRECTORY", "db")]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["202401010000000000"]);
    let list = env.raw(&["migration", "list", "--migration-dir=db", "--database-url", db], &[]);
    list.assert_code(0);
    // diesel migration list's own text, which scripts grep for `[ ]`.
    assert_eq!(list.stdout, "Migrations:\n  [X] 2024-01-01-000000-0000_a\n  [ ] 2024-01-02-000000-0000_b\n");
    env.raw(&["migration", "run", "--database-url", db, "--locked-schema"], &[("MIGRATION_DIRECTORY", "db")]).assert_code(0);
    env.raw(&["migration", "redo", "-n", "2", "--database-url", db], &[("MIGRATION_DIRECTORY", "db")]).assert_code(0);
    env.raw(&["migration", "redo", "--all", "--database-url", db], &[("MIGRATION_DIRECTORY", "db")]).assert_code(0);
    env.raw(&["migration", "revert", "--number", "2", "--database-url", db], &[("MIGRATION_DIRECTORY", "db")]).assert_code(0);
    assert!(env.db.applied_versions().is_empty());
    // --config-file names the diesel.toml to read (here only for its [migrations_directory]).
    env.ws.write("config/other.toml", "[migrations_directory]\ndir = \"db\"\n");
    env.raw(&["migration", "run", "--config-file", "config/other.toml", "--database-url", db], &[]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["202401010000000000", "202401020000000000"]);
    env.raw(&["migration", "revert", "-a", "-y", "--database-url", db], &[("DIESEL_CONFIG_FILE", "config/other.toml")]).assert_code(0);
    assert!(env.db.applied_versions().is_empty());
    // The flag wins over the variable, as in diesel.
    let missing = env.raw(&["migration", "run", "--migration-dir", "nowhere", "--database-url", db], &[("MIGRATION_DIRECTORY", "db")]);
    missing.assert_code(4);
    assert!(missing.stderr.contains("nowhere"), "{}", missing.stderr);
}

#[test]
fn locked_schema_refuses_a_stale_schema_file_before_anything_is_applied() {
    let env = Env::new("parity_locked_schema");
    env.ws.write("Cargo.toml", "[workspace]\nresolver = \"2\"\n\n[workspace.metadata.anonmigrate]\nschema-file = \"schema.rs\"\n");
    write_chain(&env, &[("2024-01-01-000000-0000_a", "CREATE TABLE a (id int PRIMARY KEY);", "DROP TABLE a;")]);
    env.cli(&["schema"]).assert_code(0);
    let schema = std::fs::read_to_string(env.ws.path().join("schema.rs")).unwrap();
    write_chain(&env, &[("2024-01-02-000000-0000_b", "CREATE TABLE b (id int PRIMARY KEY);", "DROP TABLE b;")]);
    let refused = env.cli(&["run", "--locked-schema"]);
    refused.assert_code(7);
    assert!(refused.stderr.contains("--locked-schema: `schema.rs` is not what the migrations give"), "{}", refused.stderr);
    assert!(env.db.applied_versions().is_empty());
    assert_eq!(std::fs::read_to_string(env.ws.path().join("schema.rs")).unwrap(), schema);
    env.cli(&["schema"]).assert_code(0);
    let fresh = std::fs::read_to_string(env.ws.path().join("schema.rs")).unwrap();
    env.cli(&["migration", "run", "--locked-schema"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["202401010000000000", "202401020000000000"]);
    assert_eq!(std::fs::read_to_string(env.ws.path().join("schema.rs")).unwrap(), fresh);
}

/// The UTC second a generated directory name carries (`2026-12-02-165012-000a_x` → 16:50:12).
fn generated_at(dir_name: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(&dir_name[..17], "%Y-%m-%d-%H%M%S").unwrap_or_else(|e| panic!("{dir_name}: {e}"))
}

fn migration_dirs(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.ws.migrations())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "anonmigrate.lock")
        .collect();
    names.sort();
    names
}

#[test]
fn generate_names_versions_as_diesel_and_never_runs_ahead_of_the_clock() {
    let env = Env::new("parity_generate");
    let started = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
    // Eight at once: distinct versions, each directory complete, all in the lock file.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let ws = env.ws.path().to_path_buf();
            std::thread::spawn(move || {
                anonmigrate_testkit::run_cli(crate::support::bin(), &ws, &["generate", &format!("concurrent_{i}")], &[])
            })
        })
        .collect();
    for handle in handles {
        let output = handle.join().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    // Then a burst of 26 in a row.
    for i in 0..26 {
        env.cli(&["generate", &format!("burst_{i:02}"), "--format", "sql"]).assert_code(0);
    }
    let finished = chrono::Utc::now().naive_utc();
    let names = migration_dirs(&env);
    assert_eq!(names.len(), 34, "{names:?}");
    let mut versions: Vec<&str> = names.iter().map(|n| n.split_once('_').unwrap().0).collect();
    versions.dedup();
    assert_eq!(versions.len(), 34, "distinct versions: {names:?}");
    for name in &names {
        // diesel 2.2+'s shape: YYYY-MM-DD-HHMMSS-XXXX (hex) _name.
        let (version, _) = name.split_once('_').unwrap();
        assert!(version.len() == 22 && version.as_bytes()[17] == b'-', "{name}");
        assert!(version[18..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{name}");
        let at = generated_at(name);
        assert!(at >= started - chrono::Duration::seconds(1) && at <= finished, "{name} is outside {started}..{finished}");
        assert!(env.ws.migrations().join(name).join("up.sql").is_file() && env.ws.migrations().join(name).join("down.sql").is_file());
    }
    // The burst keeps its order (each newer than the one before) and diesel's harness reads the same chain.
    let bursts: Vec<&str> = names.iter().filter_map(|n| n.split_once("_burst_").map(|(_, i)| i)).collect();
    let in_order: Vec<String> = (0..26).map(|i| format!("{i:02}")).collect();
    assert_eq!(bursts, in_order, "the chain order of the burst is the order it was generated in");
    let lock = std::fs::read_to_string(env.ws.migrations().join("anonmigrate.lock")).unwrap();
    assert_eq!(lock.lines().filter(|l| l.len() > 65 && l.as_bytes()[64] == b' ').count(), 34, "{lock}");
    let source = FileBasedMigrations::from_path(env.ws.migrations()).unwrap();
    assert_eq!(diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&source).unwrap().len(), 34);

    // --version is used as given; a taken one is refused.
    env.cli(&["generate", "pinned", "--version", "20200101"]).assert_code(0);
    assert!(env.ws.migrations().join("20200101_pinned/up.sql").is_file());
    env.cli(&["generate", "again", "--version", "2020-01-01"]).assert_code(4);
    // Only `generate` takes --format sql.
    env.cli(&["status", "--format", "sql"]).assert_code(2);
}

#[test]
fn a_database_diesel_migrated_is_taken_over_as_it_is() {
    let env = Env::new("parity_takeover");
    write_chain(&env, &[
        ("2024-01-01-000000_a", "CREATE TABLE a (id int);", "DROP TABLE a;"),
        ("2024-01-02-000000_b", "CREATE TABLE b (id int);", "DROP TABLE b;"),
        ("2024-01-03-000000_c", "CREATE TABLE c (id int);", "DROP TABLE c;"),
    ]);
    diesel_run(&env.db, &env.ws.migrations());
    assert_eq!(env.db.tables(), ["__diesel_schema_migrations", "a", "b", "c"]);
    env.cli(&["status", "--exit-code"]).assert_code(0);
    // Only diesel's table exists: revert and redo create ours for their bookkeeping instead of failing on it.
    env.cli(&["revert"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000"]);
    env.cli(&["redo"]).assert_code(0);
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000", "20240103000000"]);
    // The offline rollback script works on such a database too.
    let other = TestDb::new("parity_takeover_psql");
    diesel_run(&other, &env.ws.migrations());
    let script = env.cli(&["revert", "--sql"]);
    script.assert_code(0);
    env.ws.write("rollback.sql", &script.stdout);
    let applied = other.psql_file(&env.ws.path().join("rollback.sql"));
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    assert_eq!(other.applied_versions(), ["20240101000000", "20240102000000"]);
    // And diesel, back on it, finds nothing to do.
    let mut conn = env.db.connect();
    let source = FileBasedMigrations::from_path(env.ws.migrations()).unwrap();
    assert!(conn.pending_migrations(source).unwrap().is_empty());
}

#[test]
fn a_migration_with_nothing_to_run_either_way_is_reversible_for_the_runner_and_the_linter() {
    let env = Env::new("parity_nothing_to_undo");
    write_chain(&env, &[
        ("2024-01-01-000000_a", "CREATE TABLE a (id int);", "DROP TABLE a;"),
        ("2024-01-02-000000_merge_point", "-- an imported merge revision: nothing to apply\n", ""),
    ]);
    env.cli(&["run"]).assert_code(0);
    let lint = env.cli(&["lint"]);
    assert!(!lint.stdout.contains("missing-down-migration"), "{}", lint.stdout);
    env.cli(&["revert"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
}

#[test]
fn redo_of_a_non_transactional_migration_goes_step_by_step_and_says_so() {
    let env = Env::new("parity_redo_nontx");
    write_chain(&env, &[
        ("2024-01-01-000000_t", "CREATE TABLE t (id int);", "DROP TABLE t;"),
        ("2024-01-02-000000_idx", "CREATE INDEX CONCURRENTLY t_id ON t (id);", "DROP INDEX CONCURRENTLY t_id;"),
    ]);
    env.ws.write("migrations/2024-01-02-000000_idx/metadata.toml", "run_in_transaction = false\n");
    env.cli(&["run"]).assert_code(0);
    let redone = env.cli(&["redo"]);
    redone.assert_code(0);
    assert!(
        redone.stderr.contains("`2024-01-02-000000_idx` is non-transactional (run_in_transaction = false), so this redo cannot run in one transaction"),
        "{}",
        redone.stderr
    );
    assert!(redone.stdout.contains("1 migration redone\n"), "{}", redone.stdout);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000"]);
    assert_eq!(env.db.query("SELECT indexname FROM pg_indexes WHERE tablename = 't'"), ["t_id"]);
}
