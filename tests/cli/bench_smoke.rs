//! `benches/run --smoke`: the benchmark harness (BENCHMARKS.md) run end to end on tiny sizes with the binary
//! under test, so a change to the CLI or the harness that breaks the benchmark fails here instead of on the day
//! someone wants the figures. Peers (diesel_cli, sqlx-cli) are used when installed and skipped otherwise.

use std::process::{Command, Stdio};

use anonmigrate_testkit::repo_root;

use crate::support::bin;

/// The lines of one workload's section: from its `workload N:` heading to the next blank line.
fn section<'a>(stdout: &'a str, workload: impl std::fmt::Display) -> Vec<&'a str> {
    let heading = format!("workload {workload}:");
    stdout
        .lines()
        .skip_while(|l| !l.starts_with(&heading))
        .take_while(|l| !l.is_empty())
        .collect()
}

/// Runs `benches/<script>` with `args` and the binary under test as ANONMIGRATE_BIN; its stdout and stderr, after
/// checking that it succeeded.
fn bench(script: &str, args: &[&str]) -> (String, String) {
    let output = Command::new("bash")
        .arg(repo_root().join("benches").join(script))
        .args(args)
        .env("ANONMIGRATE_BIN", bin())
        .env_remove("ANONMIGRATE_DRIFT_BENCH")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run bash");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "benches/{script} {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    (stdout, stderr)
}

#[test]
fn smoke_mode_measures_every_workload() {
    let (stdout, stderr) = bench("run", &["--smoke"]);

    // Workloads 1 and 2 always measure anonmigrate (and the psql floor); the figure ends in a unit.
    for workload in [1, 2] {
        let lines = section(&stdout, workload);
        let anon = lines.iter().find(|l| l.starts_with("  anonmigrate ")).unwrap_or_else(|| {
            panic!("no anonmigrate line in workload {workload}\nstdout:\n{stdout}\nstderr:\n{stderr}")
        });
        assert!(anon.contains(" ms") || anon.contains(" s "), "{anon}");
    }
    assert!(section(&stdout, 1).iter().any(|l| l.starts_with("  psql ")), "no psql floor\n{stdout}");
    // Workload 3 measures `schema` once it exists and says so otherwise; workload 4 without a prebuilt drift
    // bench says why it skipped. Either way each section names anonmigrate.
    for workload in [3, 4] {
        assert!(
            section(&stdout, workload).iter().any(|l| l.starts_with("  anonmigrate ")),
            "workload {workload} says nothing about anonmigrate\nstdout:\n{stdout}"
        );
    }
    // Workload 6, the small chain: status and run in each of the three setups.
    for workload in ["6sa", "6sb", "6sc", "6ra", "6rb", "6rc"] {
        assert!(
            section(&stdout, workload).iter().any(|l| l.starts_with("  anonmigrate ")),
            "workload {workload} did not measure anonmigrate\nstdout:\n{stdout}"
        );
    }
    assert!(stdout.contains("| workload | target | result | figure |"), "no targets table\n{stdout}");
}

/// `benches/run-ab --log`: the small-chain A/B harness runs, and the server log counts what `run` into a fresh
/// database sends: 16 messages for the Anonymous Chat chain (BENCHMARKS.md, "Small chains"; diesel_cli sends 22).
#[test]
fn small_chain_ab_counts_the_messages_of_a_fresh_run() {
    let spec = |label: &str| format!("{label}={}", bin().display());
    let (stdout, stderr) = bench("run-ab", &["--reps", "1", "--log", &spec("a"), &spec("b")]);
    for label in ["a", "b"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("  {label} ")))
            .unwrap_or_else(|| panic!("no line for {label}\nstdout:\n{stdout}\nstderr:\n{stderr}"));
        assert!(line.contains("server: 16.00 messages"), "{line}");
    }
}
