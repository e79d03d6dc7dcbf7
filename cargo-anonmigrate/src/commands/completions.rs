//! `completions <shell>`: shell completion scripts generated from the clap definition.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{CargoCli, Shell};

pub fn completions(shell: Shell) -> anyhow::Result<ExitCode> {
    let mut command = CargoCli::command();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command, "cargo", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
