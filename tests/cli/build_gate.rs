//! The build-script drift gate end to end, following a user's steps: a workspace whose `cargo build` fails with the
//! expected message after generating and writing a migration, editing one, and hand-editing schema.rs, and passes
//! again after `cargo anonmigrate schema` alone;
//! `rerun-if-changed` is precise (checked with `cargo build -vv`).

use std::path::Path;
use std::process::{Command, Output};

use anonmigrate_testkit::repo_root;

use crate::support::Env;

const APP_BUILD_RS: &str = "fn main() {\n    anonmigrate_chain::drift::Gate::new(\"../migrations\", \"src/schema.rs\").run();\n}\n";

fn workspace(env: &Env) {
    let chain_crate = repo_root().join("anonmigrate-chain");
    env.ws.write("Cargo.toml", "[workspace]\nmembers = [\"app\"]\nresolver = \"2\"\n");
    env.ws.write(
        "app/Cargo.toml",
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[build-dependencies]\nanonmigrate-chain = {{ path = \"{}\" }}\n",
            chain_crate.display()
        ),
    );
    env.ws.write("app/build.rs", APP_BUILD_RS);
    env.ws.write("app/src/lib.rs", "//! Test app.\n");
    env.ws.write("diesel.toml", "[print_schema]\nfile = \"app/src/schema.rs\"\n");
    env.ws.write("migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL);");
    env.ws.write("migrations/2024-01-01-000000_users/down.sql", "DROP TABLE users;");
}

/// `cargo build` of the test workspace, sharing one target directory between runs to keep it quick.
pub(crate) fn cargo_build(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    cargo("build", dir, extra, env)
}

/// `cargo <command> --offline` in a test workspace (`build`, `run`).
pub(crate) fn cargo(command: &str, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = repo_root().join("target/build-gate-test");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args([command, "--offline"])
        .args(if extra.is_empty() { &["--quiet"][..] } else { extra })
        .env("CARGO_TARGET_DIR", target)
        .env_remove("ANONMIGRATE_DRIFT")
        .env_remove("RUSTFLAGS");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("cargo build")
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_fails_with(dir: &Path, expected: &str) -> String {
    let output = cargo_build(dir, &[], &[]);
    let text = stderr(&output);
    assert!(!output.status.success(), "the build should fail on drift:\n{text}");
    assert!(text.contains(expected), "expected `{expected}` in:\n{text}");
    text
}

fn assert_fails_advising_schema(dir: &Path, expected: &str) {
    let text = assert_fails_with(dir, expected);
    assert!(text.contains("run `cargo anonmigrate schema`"), "{text}");
}

fn assert_builds(dir: &Path) {
    let output = cargo_build(dir, &[], &[]);
    assert!(output.status.success(), "the build should pass:\n{}", stderr(&output));
}

#[test]
fn the_build_fails_on_drift_and_passes_after_regenerating() {
    let env = Env::new("build_gate");
    workspace(&env);
    let dir = env.ws.path();

    assert_fails_advising_schema(dir, "the schema file does not exist");
    env.cli(&["schema"]).assert_code(0);
    assert_builds(dir);

    // A new migration, the way a user adds one: generate it, write its SQL, build.
    env.cli(&["generate", "rooms"]).assert_code(0);
    let rooms = std::fs::read_dir(env.ws.migrations())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with("_rooms"))
        .expect("generate created the directory");
    env.ws.write(&format!("migrations/{rooms}/up.sql"), "CREATE TABLE rooms (id BIGINT PRIMARY KEY);");
    env.ws.write(&format!("migrations/{rooms}/down.sql"), "DROP TABLE rooms;");
    assert_fails_advising_schema(dir, &format!("migration added since schema.rs was generated: {rooms}"));
    // The gate's own advice works as given: no lock-file step in between.
    let regenerated = env.cli(&["schema"]);
    regenerated.assert_code(0);
    assert!(regenerated.stderr.contains(&format!("updated migrations/anonmigrate.lock: edited {rooms}")), "{}", regenerated.stderr);
    assert_builds(dir);

    // An edited migration.
    env.ws.write(&format!("migrations/{rooms}/up.sql"), "CREATE TABLE rooms (id BIGINT PRIMARY KEY, title TEXT);");
    assert_fails_advising_schema(dir, &format!("migration edited since schema.rs was generated: {rooms}"));
    env.cli(&["schema"]).assert_code(0);
    assert_builds(dir);

    // A hand edit of schema.rs.
    let schema_path = dir.join("app/src/schema.rs");
    let generated = std::fs::read_to_string(&schema_path).unwrap();
    std::fs::write(&schema_path, generated.replace("name -> Text", "name -> Varchar")).unwrap();
    // No migration explains it: the gate leads with autogenerate (keep the edit) and names `schema --force`
    // (discard it); plain `schema` refuses to throw the edit away.
    let text = assert_fails_with(dir, "(table users) were edited by hand");
    let first = text.lines().find(|l| l.contains("anonmigrate drift gate")).unwrap_or_default();
    assert!(first.contains("edited by hand and no migration explains it") && first.contains("cargo anonmigrate generate NAME --autogenerate"), "{text}");
    assert!(text.contains("to discard the edit instead: `cargo anonmigrate schema --force`"), "{text}");
    assert!(!text.contains("run `cargo anonmigrate schema`"), "{text}");
    // ANONMIGRATE_DRIFT=warn lets a local build through, still saying what is wrong.
    let warned = cargo_build(dir, &["--color=never"], &[("ANONMIGRATE_DRIFT", "warn")]);
    assert!(warned.status.success(), "{}", stderr(&warned));
    assert!(stderr(&warned).contains("were edited by hand"), "{}", stderr(&warned));
    let refused = env.cli(&["schema"]);
    refused.assert_code(8);
    assert!(refused.stderr.contains("has hand edits that no migration explains") && refused.stderr.contains("schema --force"), "{}", refused.stderr);
    assert!(std::fs::read_to_string(&schema_path).unwrap().contains("name -> Varchar"), "the edit must survive");
    env.cli(&["schema", "--force"]).assert_code(0);
    assert_eq!(std::fs::read_to_string(&schema_path).unwrap(), generated);
    assert_builds(dir);

    // rerun-if-changed: nothing changed, the build script does not run again; a migration edit re-runs it.
    let build_script_ran = |output: &Output| stderr(output).contains("app-") && stderr(output).contains("build-script-build`");
    let quiet = cargo_build(dir, &["-vv"], &[]);
    assert!(!build_script_ran(&quiet), "the build script re-ran with nothing changed:\n{}", stderr(&quiet));
    env.ws.write(&format!("migrations/{rooms}/down.sql"), "DROP TABLE IF EXISTS rooms;");
    let rerun = cargo_build(dir, &["-vv"], &[]);
    assert!(build_script_ran(&rerun), "editing a migration must re-run the gate:\n{}", stderr(&rerun));
}
