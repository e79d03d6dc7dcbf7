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
