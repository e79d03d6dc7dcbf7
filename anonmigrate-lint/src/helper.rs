//! The linter as a process: `cargo anonmigrate lint` resolves the workspace (with the engine) and hands this
//! request to the `anonmigrate-lint-helper` binary, which prints exactly what the user sees and exits with the
//! code the CLI passes on. A separate process because libpg_query and the engine's bundled libpq cannot be linked
//! into one binary (they define the same PostgreSQL C symbols).

use std::path::{Path, PathBuf};

use anonmigrate_chain::Chain;
use serde::{Deserialize, Serialize};

use crate::{Config, Error, lint, select};

/// Exit codes, matching `cargo-anonmigrate/src/exit.rs`.
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_CONFIG: u8 = 4;

/// Everything the helper needs, resolved by the CLI. Passed as one JSON argument.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub migrations_dir: PathBuf,
    /// `[workspace.metadata.anonmigrate.lint]` as cargo metadata reports it.
    pub config: Option<serde_json::Value>,
    /// The runner's `ddl-lock-timeout` is in force (not `"0"`).
    pub runner_lock_timeout: bool,
    /// Migrations named on the command line; empty: every one after the baseline.
    pub migrations: Vec<String>,
    pub json: bool,
    /// Paths in the output are shown relative to this directory.
    pub base: PathBuf,
}

/// What to print and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Parses the helper's command line (`--request <json>`) and runs it.
pub fn run_args(args: &[String]) -> Outcome {
    let request = match args {
        [flag, json] if flag == "--request" => serde_json::from_str::<Request>(json),
        _ => {
            return Outcome {
                stdout: String::new(),
                stderr: "error: anonmigrate-lint-helper is run by `cargo anonmigrate lint`; use that command\n".into(),
                code: EXIT_USAGE,
            };
        }
    };
    match request {
        Ok(request) => run(&request),
        Err(e) => Outcome {
            stdout: String::new(),
            stderr: format!("error: invalid request from cargo-anonmigrate ({e}); the helper and the CLI are from different builds, rebuild both\n"),
            code: EXIT_USAGE,
        },
    }
}

pub fn run(request: &Request) -> Outcome {
    match lint_request(request) {
        Ok(outcome) => outcome,
        Err(error) => Outcome { stdout: String::new(), stderr: format!("error: {error}\n"), code: EXIT_CONFIG },
    }
}

fn lint_request(request: &Request) -> Result<Outcome, Error> {
    let mut config = Config::parse(request.config.as_ref())?;
    config.runner_lock_timeout = request.runner_lock_timeout;
    let chain = Chain::load(&request.migrations_dir)?;
    let selected = select(&chain, &config, &request.migrations)?;
    let report = lint(&chain, &config, &selected)?;
    let base: &Path = &request.base;
    let stdout = if request.json { report.to_json(base) } else { report.render_text(base) };
    Ok(Outcome {
        stdout,
        stderr: if request.json { String::new() } else { format!("{}\n", report.summary()) },
        code: if report.failed() { EXIT_FINDINGS } else { 0 },
    })
}
