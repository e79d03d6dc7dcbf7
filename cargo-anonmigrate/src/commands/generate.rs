//! `generate NAME` and `lock`.

use std::process::ExitCode;

use anonmigrate_core::generate::{self, GenerateOptions};

use super::Context;
use crate::cli::GenerateArgs;
use crate::output::out;

pub fn generate(ctx: &Context, args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let created = generate::generate(
        &ctx.workspace.migrations_dir,
        &args.name,
        &GenerateOptions {
            no_down: args.no_down,
            non_transactional: args.non_transactional,
            ..GenerateOptions::default()
        },
    )?;
    for file in &created.files {
        out(&format!("created {}", file.display()));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lock(ctx: &Context) -> anyhow::Result<ExitCode> {
    let lock = generate::relock(&ctx.workspace.migrations_dir)?;
    out(&format!(
        "wrote {} ({} migrations, chain {})",
        anonmigrate_core::chain::LockFile::path_in(&ctx.workspace.migrations_dir).display(),
        lock.entries.len(),
        &lock.chain_hash()[..12]
    ));
    Ok(ExitCode::SUCCESS)
}
