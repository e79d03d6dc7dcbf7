//! `cargo anonmigrate`: parse arguments, run one command, print the error once, exit with a documented code.
#![allow(clippy::print_stderr)]

mod cli;
mod commands;
mod exit;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli::CargoCli::Anonmigrate(cli) = cli::CargoCli::parse_from(cargo_style_args());
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(error) => output::report_error(&error),
    }
}

/// Cargo passes `anonmigrate` as the first argument; a direct `cargo-anonmigrate status` does not.
fn cargo_style_args() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_none_or(|a| a != "anonmigrate") {
        args.insert(1, "anonmigrate".into());
    }
    args
}
