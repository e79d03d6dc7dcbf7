//! `anonmigrate_core::testdb::TestDatabase` against the real test cluster: migrated copies of the chain's template,
//! independent of each other when made from parallel threads, dropped with their handle, rebuilt when the chain
//! changes.

use std::path::Path;

use anonmigrate_core::testdb::TestDatabase;
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
