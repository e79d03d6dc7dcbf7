//! `anonmigrate_core::testdb::TestDatabase` against the real test cluster: migrated copies of the chain's template,
//! independent of each other when made from parallel threads, dropped with their handle, rebuilt when the chain
//! changes; spare copies claimed by one test each, never of another chain, and none beyond the bound.

use std::path::Path;

use anonmigrate_core::testdb::{self, TestDatabase};
use anonmigrate_testkit::{Workspace, cluster, query_url, repo_root};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

fn database_exists(name: &str) -> bool {
    query_url(&cluster().url("postgres"), &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")) == ["1"]
}

fn on_cluster(migrations: &Path) -> TestDatabase {
    TestDatabase::on_server(&cluster().url("postgres"), migrations).expect("a migrated test database")
}

#[test]
fn parallel_tests_get_migrated_databases_of_their_own_dropped_with_the_handle() {
    let migrations = repo_root().join("migrations");
    let names: Vec<(String, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let migrations = migrations.clone();
                scope.spawn(move || {
                    let db = on_cluster(&migrations);
                    let mut conn = PgConnection::establish(db.url()).unwrap();
                    conn.batch_execute(&format!("INSERT INTO users (username) VALUES ('user{i}')")).unwrap();
                    // Only this test's row: the databases are independent.
                    let rows = query_url(db.url(), "SELECT username FROM users");
                    assert_eq!(rows, [format!("user{i}")]);
                    let applied = query_url(db.url(), "SELECT count(*) FROM __diesel_schema_migrations");
                    assert_eq!(applied, ["5"], "the whole chain is recorded as applied");
                    assert!(db.name().starts_with("anonmigrate_test_"), "{}", db.name());
                    assert!(database_exists(&db.name()));
                    (db.name(), db.replay().migrations)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique: Vec<&String> = names.iter().map(|(n, _)| n).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "{names:?}");
    for (name, migrations) in &names {
        assert_eq!(*migrations, 5);
        assert!(!database_exists(name), "{name} outlived its handle");
    }
    // Made once, the template is copied from then on: the whole chain comes from it.
    let again = on_cluster(&migrations);
    assert_eq!(again.replay().copied, 5, "{:?}", again.replay());
    assert!(again.replay().template.as_deref().is_some_and(|t| t.starts_with("anonmigrate_tpl_")), "{:?}", again.replay());
}

#[test]
fn a_changed_chain_gets_a_new_template_and_keep_leaves_the_database() {
    let ws = Workspace::empty();
    ws.write("migrations/2025-01-01-000000_a/up.sql", "CREATE TABLE a (id INT PRIMARY KEY);\n");
    ws.write("migrations/2025-01-01-000000_a/down.sql", "DROP TABLE a;\n");
    let migrations = ws.migrations();
    let first = on_cluster(&migrations);
    assert_eq!(query_url(first.url(), "SELECT count(*) FROM a"), ["0"]);
    let kept = first.keep();
    assert!(database_exists(&kept), "keep() must leave {kept}");
    anonmigrate_testkit::admin_execute(&format!("DROP DATABASE \"{kept}\""));

    // Another process (another test binary run) sees a longer chain: a new directory, loaded afresh.
    let longer = Workspace::empty();
    anonmigrate_testkit::copy_tree(&migrations, &longer.migrations());
    longer.write("migrations/2025-01-02-000000_b/up.sql", "CREATE TABLE b (id INT PRIMARY KEY);\n");
    longer.write("migrations/2025-01-02-000000_b/down.sql", "DROP TABLE b;\n");
    let second = on_cluster(&longer.migrations());
    assert_eq!(query_url(second.url(), "SELECT count(*) FROM b"), ["0"]);
    assert_eq!(second.replay().migrations, 2);
}

/// The spare copies waiting on the cluster whose names start with `stem` (`anonmigrate_spare_<label>_`).
fn spares(stem: &str) -> Vec<String> {
    query_url(&cluster().url("postgres"), &format!("SELECT datname FROM pg_database WHERE datname LIKE '{}%' ORDER BY 1", stem.replace('_', "\\_")))
}

/// A one-migration chain of its own (so no other test claims its spares), and the stem of its spares' names.
fn own_chain() -> (anonmigrate_testkit::Workspace, String) {
    let ws = Workspace::empty();
    ws.write("migrations/2025-01-01-000000_a/up.sql", "CREATE TABLE a (id INT PRIMARY KEY);\n");
    ws.write("migrations/2025-01-01-000000_a/down.sql", "DROP TABLE a;\n");
    let label = anonmigrate_core::template::label_for(&ws.path().file_name().unwrap().to_string_lossy());
    (ws, format!("anonmigrate_spare_{label}_"))
}

#[test]
fn parallel_claims_of_spares_never_share_a_database_and_the_pool_stays_bounded() {
    let (ws, stem) = own_chain();
    let migrations = ws.migrations();
    let want = testdb::spares_wanted();
    assert!(want > 0, "this test needs spares ({} is set to 0)", testdb::SPARES_VARIABLE);
    // The first one copies the template and starts the refill.
    let first = on_cluster(&migrations);
    assert!(!first.replay().from_spare, "{:?}", first.replay());
    testdb::wait_for_spares();
    let ready = spares(&stem);
    assert_eq!(ready.len(), want, "{ready:?}");
    // Nothing may connect to a spare before it is claimed.
    let open = query_url(&cluster().url("postgres"), &format!("SELECT count(*) FROM pg_database WHERE datallowconn AND datname LIKE '{}%'", stem.replace('_', "\\_")));
    assert_eq!(open, ["0"], "a spare accepts connections");

    // More claimers than spares, all at once: every one gets a database of its own.
    let claimers = want + 3;
    let barrier = std::sync::Barrier::new(claimers);
    let made: Vec<(String, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..claimers)
            .map(|i| {
                let (migrations, barrier) = (migrations.clone(), &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let db = on_cluster(&migrations);
                    let mut conn = PgConnection::establish(db.url()).unwrap();
                    conn.batch_execute(&format!("INSERT INTO a VALUES ({i})")).unwrap();
                    // Hold every database until all are made, so a name handed out twice would show.
                    barrier.wait();
                    assert_eq!(query_url(db.url(), "SELECT id FROM a"), [i.to_string()], "{} is shared", db.name());
                    (db.name(), db.replay().from_spare)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut names: Vec<&String> = made.iter().map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), claimers, "{made:?}");
    assert!(made.iter().any(|(_, spare)| *spare), "no claim used a ready spare: {made:?}");
    assert!(made.iter().all(|(n, _)| n.starts_with(testdb::PREFIX)), "{made:?}");

    // Afterwards: the test databases are gone, the pool is full again and no larger.
    drop(first);
    testdb::wait_for_spares();
    for (name, _) in &made {
        assert!(!database_exists(name), "{name} outlived its handle");
    }
    assert_eq!(spares(&stem).len(), want, "{:?}", spares(&stem));
}

#[test]
fn a_changed_chain_never_claims_a_spare_of_the_old_one() {
    let (ws, stem) = own_chain();
    let migrations = ws.migrations();
    let old = on_cluster(&migrations);
    drop(old);
    testdb::wait_for_spares();
    let old_spares = spares(&stem);
    assert!(!old_spares.is_empty(), "no spares were made");

    // The same directory with the migration edited and one more after it, as the next test run sees it (another URL
    // of the same server, so this process loads the chain again).
    ws.write("migrations/2025-01-01-000000_a/up.sql", "CREATE TABLE a (id INT PRIMARY KEY, note TEXT);\n");
    ws.write("migrations/2025-01-02-000000_b/up.sql", "CREATE TABLE b (id INT PRIMARY KEY);\n");
    ws.write("migrations/2025-01-02-000000_b/down.sql", "DROP TABLE b;\n");
    let new = TestDatabase::on_server(&cluster().url("template1"), &migrations).expect("a migrated test database");
    assert!(!new.replay().from_spare, "a spare of the old chain was claimed: {:?}", new.replay());
    assert_eq!(query_url(new.url(), "SELECT count(*) FROM b"), ["0"]);
    assert_eq!(query_url(new.url(), "SELECT count(note) FROM a"), ["0"]);
    assert_eq!(new.replay().migrations, 2);
    testdb::wait_for_spares();
    // Building the new chain's templates dropped the old chain's spares (its one template is no prefix of the new
    // chain); the new ones name two migrations.
    let now = spares(&stem);
    assert!(now.iter().all(|s| !old_spares.contains(s)), "old spares left: {now:?} (before: {old_spares:?})");
    assert!(!now.is_empty() && now.iter().all(|s| s.starts_with(&format!("{stem}2_"))), "{now:?}");
    let claimed = TestDatabase::on_server(&cluster().url("template1"), &migrations).expect("a migrated test database");
    assert!(claimed.replay().from_spare, "{:?}", claimed.replay());
    assert_eq!(query_url(claimed.url(), "SELECT count(*) FROM b"), ["0"]);
}
