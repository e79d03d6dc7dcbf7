//! Shared pieces of the CLI tests: a workspace + database pair, running the binary, normalised snapshots.

use std::path::{Path, PathBuf};

use anonmigrate_testkit::{TestDb, Workspace, cluster, repo_root, run_cli};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cargo-anonmigrate"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/chains").join(name)
}

/// A scratch workspace and a fresh database; `cli` passes both to the binary.
pub struct Env {
    pub ws: Workspace,
    pub db: TestDb,
}

#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "unexpected exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl Env {
    pub fn new(label: &str) -> Env {
        Env { ws: Workspace::empty(), db: TestDb::new(label) }
    }

    /// The Anonymous Chat chain, with the schema.rs its lock file records (so the drift check finds it).
    pub fn anonchat(label: &str) -> Env {
        let ws = Workspace::with_migrations(&repo_root().join("migrations"));
        let schema = "anonchat-schema/src/schema.rs";
        ws.write(schema, std::fs::read(repo_root().join(schema)).expect("the committed schema.rs"));
        Env { ws, db: TestDb::new(label) }
    }

    pub fn with_fixture(label: &str, fixture_name: &str) -> Env {
        Env { ws: Workspace::with_migrations(&fixture(fixture_name)), db: TestDb::new(label) }
    }

    /// Runs `cargo-anonmigrate <args> --database-url <db>` in the workspace directory.
    pub fn cli(&self, args: &[&str]) -> Outcome {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--database-url", &self.db.url]);
        self.raw(&full, &[])
    }

    /// Runs the binary with exactly these arguments and extra environment.
    pub fn raw(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let output = run_cli(bin(), self.ws.path(), args, env);
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The outcome as one text block with run-specific values replaced, for snapshots.
    pub fn render(&self, outcome: &Outcome) -> String {
        let text = format!("exit: {}\n--- stdout\n{}--- stderr\n{}", outcome.code, outcome.stdout, outcome.stderr);
        text.replace(&self.ws.path().display().to_string(), "[ws]")
            .replace(&cluster().socket_dir().display().to_string(), "[sock]")
            .replace(&self.db.name, "[db]")
    }
}

/// Snapshot with durations and timestamps masked.
#[macro_export]
macro_rules! snap {
    ($env:expr, $outcome:expr) => {
        $crate::snap!($env, $outcome, @auto)
    };
    ($env:expr, $outcome:expr, $($name:tt)+) => {{
        let rendered = $env.render(&$outcome);
        insta::with_settings!({filters => vec![
            (r"\d+ ms", "[ms]"),
            (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[time]"),
            (r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#),
            (r"pid \d+", "pid [pid]"),
        ]}, {
            $crate::snap!(@assert rendered, $($name)+);
        });
    }};
    (@assert $rendered:ident, @auto) => {
        insta::assert_snapshot!($rendered)
    };
    (@assert $rendered:ident, $name:expr) => {
        insta::assert_snapshot!($name, $rendered)
    };
}

/// `run` leaves no audit table: `accept` and `stamp` create it with their first row.
pub const ANONCHAT_TABLES: [&str; 5] =
    ["__anonmigrate_migrations", "__diesel_schema_migrations", "messages", "request_log", "users"];
