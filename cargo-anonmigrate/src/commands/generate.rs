//! `generate NAME` (with `--autogenerate`: SQL from the schema.rs edit) and `lock`.

use std::process::ExitCode;

use anonmigrate_core::chain::Chain;
use anonmigrate_core::events::{Event, Observer};
use anonmigrate_core::generate::{self, GenerateOptions};
use anonmigrate_core::lock_sync::{self, LockPolicy};
use anonmigrate_core::schema::{autogen, config::SchemaConfig};

use super::Context;
use crate::cli::GenerateArgs;
use crate::output::out;

pub fn generate(ctx: &mut Context, args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    ctx.refuse_if_locked("`generate` adds a migration")?;
    let mut options = GenerateOptions {
        version: args.version.clone(),
        no_down: args.no_down,
        non_transactional: args.non_transactional,
        ..GenerateOptions::default()
    };
    if args.autogenerate {
        generate::validate_name(&args.name)?;
        let autogen_options = autogen::Options::from_args(&args.rename, &args.vector_dim, &args.enum_values)?;
        let config = SchemaConfig::load(&ctx.workspace)?;
        let chain = Chain::load(&ctx.workspace.migrations_dir)?;
        let (plan, schema_file) = autogen::diff_with_chain(&ctx.workspace, &chain, &config, &autogen_options, &mut ctx.printer)?;
        if plan.is_empty() {
            out(&format!("{} matches the migrations: nothing to generate", schema_file.display()));
            return Ok(ExitCode::SUCCESS);
        }
        for warning in &plan.warnings {
            ctx.printer.event(Event::Warning(warning.clone()));
        }
        let (up, down) = plan.sql();
        options.up_sql = Some(up);
        options.down_sql = Some(down);
    }
    let created = generate::generate(&ctx.workspace.migrations_dir, &args.name, &options)?;
    for warning in &created.warnings {
        ctx.printer.event(Event::Warning(warning.clone()));
    }
    for file in &created.files {
        out(&format!("created {}", file.display()));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lock(ctx: &Context) -> anyhow::Result<ExitCode> {
    // One line: what changed, or that nothing did (like the line other commands print when they update it).
    let line = match ctx.chain().map(|chain| (lock_sync::sync(&chain, LockPolicy::Update), chain)) {
        Ok((Ok(synced), chain)) => synced.message().unwrap_or_else(|| {
            let n = chain.migrations.len();
            format!("{} is up to date ({n} migration{})", synced.display, if n == 1 { "" } else { "s" })
        }),
        // A file that does not parse (conflict markers, a hand edit) is rebuilt from the migrations on disk.
        _ => {
            let lock = generate::relock(&ctx.workspace.migrations_dir)?;
            format!(
                "rewrote migrations/anonmigrate.lock from the {} migrations on disk (the old file did not parse; after a git merge `cargo anonmigrate merge` also renumbers and keeps both sides' records)",
                lock.entries.len()
            )
        }
    };
    out(&line);
    Ok(ExitCode::SUCCESS)
}
