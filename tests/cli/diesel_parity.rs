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

#[test]
fn a_down_sql_with_nothing_to_run_is_irreversible() {
    let env = Env::new("parity_irreversible");
    env.ws.write("migrations/2024-01-01-000000-0000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("migrations/2024-01-01-000000-0000_a/down.sql", "DROP TABLE a;");
    env.ws.write("migrations/2024-01-02-000000-0000_b/up.sql", "CREATE TABLE b (id int);");
    env.ws.write("migrations/2024-01-02-000000-0000_b/down.sql", "-- nothing to undo\n/* really */\n");
    env.cli(&["run"]).assert_code(0);
    let before = state(&env.db);
    assert_eq!(before.0, ["__anonmigrate_audit", "__anonmigrate_migrations", "__diesel_schema_migrations", "a", "b"]);

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
