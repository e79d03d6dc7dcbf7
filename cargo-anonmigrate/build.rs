//! Stamps `cargo anonmigrate --version` with the git commit when the binary is built from a checkout (a build from
//! the published `.crate` has no repository and shows the version alone).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

fn main() {
    // The CLI tests ask cargo about this platform's dependency graph.
    println!("cargo::rustc-env=ANONMIGRATE_TEST_HOST={}", std::env::var("TARGET").unwrap_or_default());
    let version = env!("CARGO_PKG_VERSION");
    // Only a repository whose top level is this workspace counts: a crate unpacked inside someone else's
    // repository must not claim their commit.
    let manifest_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ours = git(&["rev-parse", "--show-toplevel"])
        .is_some_and(|top| manifest_dir.parent().is_some_and(|workspace| std::path::Path::new(&top) == workspace));
    let commit = ours.then(|| git(&["rev-parse", "--short=10", "HEAD"])).flatten();
    match commit {
        Some(commit) => {
            println!("cargo::rustc-env=ANONMIGRATE_LONG_VERSION={version} ({commit})");
            // A new commit or a branch switch changes the answer.
            // (A watched file that does not exist would rerun this script on every build: packed refs have none.)
            let branch = git(&["symbolic-ref", "-q", "HEAD"]);
            for path in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
                if let Some(file) = git(&["rev-parse", "--git-path", path]).map(|f| manifest_dir.join(f)).filter(|f| f.exists()) {
                    println!("cargo::rerun-if-changed={}", file.display());
                }
            }
        }
        None => println!("cargo::rustc-env=ANONMIGRATE_LONG_VERSION={version}"),
    }
}
