//! Projects outside the happy layout: a single crate configured with `[package.metadata.anonmigrate]`, and a
//! directory that is not in any Cargo project at all.

use crate::support::Env;

#[test]
fn a_single_crate_reads_package_metadata() {
    let env = Env::new("single_crate");
    env.ws.write(
        "Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.anonmigrate]\nmigrations-dir = \"db/migrations\"\nschema-file = \"src/schema.rs\"\n",
    );
    env.ws.write("src/lib.rs", "");
    env.ws.write("db/migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id BIGINT PRIMARY KEY);\n");
    env.ws.write("db/migrations/2024-01-01-000000_users/down.sql", "DROP TABLE users;\n");
    let run = env.cli(&["run"]);
    run.assert_code(0);
    assert!(run.stderr.contains("regenerated src/schema.rs"), "{}", run.stderr);
    assert!(!run.stderr.contains("not in a Cargo project"), "{}", run.stderr);
    assert!(env.db.tables().contains(&"users".to_owned()), "{:?}", env.db.tables());
    assert!(env.ws.path().join("db/migrations/anonmigrate.lock").is_file());

    env.ws.write("Cargo.toml", "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[package.metadata.anonmigrate]\nno-such-key = 1\n");
    let bad = env.cli(&["status"]);
    bad.assert_code(4);
    assert!(bad.stderr.contains("invalid [package.metadata.anonmigrate]"), "{}", bad.stderr);
}

#[test]
fn outside_a_cargo_project_commands_say_so_once_and_create_nothing_unasked() {
    let env = Env::new("outside_cargo");
    let bare = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--database-url", &env.db.url]);
        let output = anonmigrate_testkit::run_cli(crate::support::bin(), bare.path(), &full, &[]);
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    // No Cargo.toml and no migrations directory: nothing is created, and the message says how to go on.
    for args in [&["generate", "add_users"][..], &["status"][..]] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(4), "{args:?}: {stderr}");
        assert!(stderr.contains("not in a Cargo project") && stderr.contains("--migrations-dir"), "{stderr}");
        assert!(!stderr.contains("generate NAME"), "status must not suggest generate here: {stderr}");
        assert!(!bare.path().join("migrations").exists(), "{args:?} created ./migrations");
    }
    // Given a directory, it works on that one, and says once that there is no Cargo project.
    let (code, stderr) = run(&["generate", "add_users", "--migrations-dir", "db"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr.matches("not in a Cargo project").count(), 1, "{stderr}");
    assert!(bare.path().join("db/anonmigrate.lock").is_file());
    let (code, stderr) = run(&["run", "--migrations-dir", "db"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr.matches("not in a Cargo project").count(), 1, "{stderr}");
    assert_eq!(env.db.applied_versions().len(), 1);
    // A bare migrations folder in the current directory is used as it is.
    std::fs::rename(bare.path().join("db"), bare.path().join("migrations")).unwrap();
    let (code, stderr) = run(&["status"]);
    assert_eq!(code, Some(0), "{stderr}");
}
