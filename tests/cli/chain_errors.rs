//! Bad migration directories: each is reported with the path and the fix, before anything reaches the database.

use crate::snap;
use crate::support::Env;

fn check(label: &str, setup: impl Fn(&Env)) {
    let env = Env::new(label);
    env.ws.write("migrations/2024-01-01-000000_fine/up.sql", "CREATE TABLE fine (id int);");
    setup(&env);
    let outcome = env.cli(&["run"]);
    outcome.assert_code(4);
    snap!(env, outcome, label);
    assert!(env.db.tables().is_empty(), "nothing may touch the database: {:?}", env.db.tables());
}

#[test]
fn duplicate_version() {
    check("dup", |env| env.ws.write("migrations/20240101000000_twin/up.sql", "select 1;"));
}

#[test]
fn directory_without_up_sql() {
    check("noup", |env| env.ws.write("migrations/2024-02-01-000000_empty_dir/down.sql", "select 1;"));
}

#[test]
fn empty_up_sql() {
    check("emptyup", |env| env.ws.write("migrations/2024-02-01-000000_blank/up.sql", "  \n"));
}

#[test]
fn non_utf8_sql() {
    check("utf8", |env| env.ws.write("migrations/2024-02-01-000000_latin1/up.sql", b"SELECT 'caf\xe9';".as_slice()));
}

#[test]
fn badly_named_directory() {
    check("badname", |env| env.ws.write("migrations/-_add_users/up.sql", "select 1;"));
}

#[test]
fn unreadable_file() {
    if anonmigrate_core::local_server::is_root() {
        // Root reads any file regardless of mode; a directory-level fault stands in for it.
        check("unreadable", |env| {
            env.ws.write("migrations/2024-02-01-000000_locked/placeholder", "");
            let up = env.ws.migrations().join("2024-02-01-000000_locked/up.sql");
            std::fs::create_dir(&up).unwrap();
        });
    } else {
        check("unreadable", |env| {
            use std::os::unix::fs::PermissionsExt;
            env.ws.write("migrations/2024-02-01-000000_locked/up.sql", "select 1;");
            let up = env.ws.migrations().join("2024-02-01-000000_locked/up.sql");
            std::fs::set_permissions(up, std::fs::Permissions::from_mode(0o000)).unwrap();
        });
    }
}

#[test]
fn missing_migrations_directory() {
    let env = Env::new("nodir");
    std::fs::remove_dir(env.ws.migrations()).unwrap();
    let outcome = env.cli(&["run"]);
    outcome.assert_code(4);
    snap!(env, outcome);
}

#[test]
fn transaction_control_inside_a_migration_is_refused() {
    let env = Env::new("txctl");
    // A psql-style wrapper is fine (see transactions.rs); a statement after its COMMIT is not.
    env.ws.write("migrations/2024-01-01-000000_t/up.sql", "BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\nCREATE TABLE u (id int);\n");
    let outcome = env.cli(&["run"]);
    outcome.assert_code(8);
    snap!(env, outcome);
    assert!(env.db.tables().is_empty());
}
