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

/// The permission path for real, with one snapshot for everyone: root reads any file whatever its mode, so as
/// root (CI) the binary runs as the unprivileged `nobody`, for whom a mode-000 up.sql is unreadable.
#[test]
fn unreadable_file() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("unreadable");
    env.ws.write("migrations/2024-01-01-000000_fine/up.sql", "CREATE TABLE fine (id int);");
    env.ws.write("migrations/2024-02-01-000000_locked/up.sql", "select 1;");
    let up = env.ws.migrations().join("2024-02-01-000000_locked/up.sql");
    std::fs::set_permissions(&up, std::fs::Permissions::from_mode(0o000)).unwrap();
    let outcome = if anonmigrate_core::local_server::is_root() {
        std::fs::set_permissions(env.ws.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let output = std::process::Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(crate::support::bin())
            .args(["anonmigrate", "run", "--database-url", &env.db.url])
            .current_dir(env.ws.path())
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runuser is installed (util-linux)");
        crate::support::Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    } else {
        env.cli(&["run"])
    };
    outcome.assert_code(4);
    snap!(env, outcome, "unreadable");
    assert!(env.db.tables().is_empty(), "nothing may touch the database: {:?}", env.db.tables());
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
