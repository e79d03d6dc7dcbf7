//! The linter's process, started by `cargo anonmigrate lint` with a resolved request: prints the report and exits
//! with the code the CLI passes on. It must not use `anonmigrate-core`: libpg_query and the bundled libpq define
//! the same PostgreSQL C symbols, so this binary links the parser and the main one links libpq.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = anonmigrate_lint::helper::run_args(&args);
    // A closed pipe (`| head`) is not worth an error.
    let _ = std::io::stdout().lock().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}
