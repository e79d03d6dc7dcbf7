//! What a user outside this workspace gets: the light crate as `cargo package` ships it, in the build-dependencies
//! of a scratch application crate with a three-line build.rs, fails that crate's build on drift and passes it again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anonmigrate_testkit::repo_root;

use crate::support::Env;

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `cargo package -p anonmigrate-chain`, unpacked: the directory a downloaded `.crate` would give.
fn packaged_light_crate(scratch: &Path) -> PathBuf {
    let target = scratch.join("package-target");
    let output = cargo()
        .current_dir(repo_root())
        .args(["package", "-p", "anonmigrate-chain", "--locked", "--offline", "--no-verify", "--allow-dirty"])
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("cargo package");
    assert!(output.status.success(), "cargo package failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let version = env!("CARGO_PKG_VERSION");
    let archive = target.join(format!("package/anonmigrate-chain-{version}.crate"));
    let unpacked = scratch.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let tar = Command::new("tar").arg("xzf").arg(&archive).arg("-C").arg(&unpacked).output().expect("tar");
    assert!(tar.status.success(), "tar failed: {}", String::from_utf8_lossy(&tar.stderr));
    let dir = unpacked.join(format!("anonmigrate-chain-{version}"));
    // It is the packaged crate, not the source tree: cargo's normalised manifest is there.
    assert!(dir.join("Cargo.toml.orig").exists(), "not a packaged crate: {}", dir.display());
    dir
}

fn build(dir: &Path) -> Output {
    cargo()
        .current_dir(dir)
        .args(["build", "--offline", "--quiet", "--color=never"])
        .env("CARGO_TARGET_DIR", repo_root().join("target/packaging-test"))
        .env_remove("ANONMIGRATE_DRIFT")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo build")
}

#[test]
fn the_packaged_light_crate_gates_an_outside_application() {
    let env = Env::new("packaging");
    let scratch = tempfile::tempdir().unwrap();
    let light = packaged_light_crate(scratch.path());
    env.ws.write(
        "Cargo.toml",
        format!(
            "[package]\nname = \"outside-app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[build-dependencies]\nanonmigrate-chain = {{ path = \"{}\" }}\n",
            light.display()
        ),
    );
    let build_rs = "fn main() {\n    anonmigrate_chain::drift::Gate::new(\"migrations\", \"src/schema.rs\").run();\n}\n";
    assert_eq!(build_rs.lines().count(), 3);
    env.ws.write("build.rs", build_rs);
    env.ws.write("src/lib.rs", "//! An application outside the anonmigrate workspace.\n");
    env.ws.write("diesel.toml", "[print_schema]\nfile = \"src/schema.rs\"\n");
    env.ws.write("migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL);");
    env.ws.write("migrations/2024-01-01-000000_users/down.sql", "DROP TABLE users;");
    env.cli(&["lock"]).assert_code(0);
    env.cli(&["schema"]).assert_code(0);
    let passed = build(env.ws.path());
    assert!(passed.status.success(), "a matching schema.rs must build:\n{}", String::from_utf8_lossy(&passed.stderr));

    env.ws.write("migrations/2024-01-02-000000_rooms/up.sql", "CREATE TABLE rooms (id BIGINT PRIMARY KEY);");
    env.ws.write("migrations/2024-01-02-000000_rooms/down.sql", "DROP TABLE rooms;");
    env.cli(&["lock"]).assert_code(0);
    let failed = build(env.ws.path());
    let text = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "a new migration must fail the build:\n{text}");
    assert!(text.contains("2024-01-02-000000_rooms"), "the failure names the migration:\n{text}");

    env.cli(&["schema"]).assert_code(0);
    let again = build(env.ws.path());
    assert!(again.status.success(), "after `schema` the build passes:\n{}", String::from_utf8_lossy(&again.stderr));
    assert!(std::fs::read_to_string(env.ws.path().join("src/schema.rs")).unwrap().contains("rooms (id)"));
}

/// The declared `rust-version` is the newest any dependency declares: lower would promise a toolchain the
/// dependencies refuse, higher would refuse users for nothing. (Our own use of newer std APIs is caught by clippy's
/// `incompatible_msrv` lint in `.ci/run`.)
#[test]
fn the_declared_rust_version_is_what_the_dependency_graph_needs() {
    let output = cargo()
        .current_dir(repo_root())
        .args(["metadata", "--format-version", "1", "--locked", "--filter-platform", env!("ANONMIGRATE_TEST_HOST")])
        .output()
        .expect("cargo metadata");
    assert!(output.status.success(), "cargo metadata failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let version = |text: &str| text.split('.').map(|part| part.parse::<u32>().unwrap()).collect::<Vec<_>>();
    let packages = metadata["packages"].as_array().unwrap();
    let members: Vec<&str> = metadata["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    let declared: Vec<&str> = packages
        .iter()
        .filter(|p| members.contains(&p["id"].as_str().unwrap()))
        .map(|p| p["rust_version"].as_str().expect("every workspace crate declares rust-version"))
        .collect();
    assert!(declared.windows(2).all(|w| w[0] == w[1]), "one rust-version for the workspace: {declared:?}");
    let needed = packages
        .iter()
        .filter(|p| !members.contains(&p["id"].as_str().unwrap()))
        .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].as_str().unwrap())))
        .max()
        .unwrap();
    assert_eq!(version(declared[0]), needed.0, "rust-version {} but {} needs {:?}", declared[0], needed.1, needed.0);
}
