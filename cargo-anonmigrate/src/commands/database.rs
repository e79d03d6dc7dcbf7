//! `setup` and `database reset|drop`.

use std::process::ExitCode;

use anonmigrate_core::runner::{self, RunOptions};
use anonmigrate_core::setup;
use anyhow::Context as _;

use super::{Context, confirm};
use crate::cli::{DatabaseCommand, LockArgs, RunArgs, SetupArgs};
use crate::output::out;

fn extensions(ctx: &Context, chain: &anonmigrate_core::chain::Chain) -> Vec<String> {
    setup::required_extensions(&ctx.workspace, Some(chain))
}

pub fn setup(ctx: &mut Context, args: &SetupArgs) -> anyhow::Result<ExitCode> {
    for path in setup::scaffold(&ctx.workspace, args.no_default_migration)? {
        let shown = path.strip_prefix(&ctx.workspace.root).unwrap_or(&path).display().to_string();
        out(&format!("created {shown}"));
    }
    let chain = ctx.chain()?;
    let url = ctx.database_for_changes(Some(&chain))?;
    let extensions = extensions(ctx, &chain);
    setup::setup(&url, &extensions, &mut ctx.printer).with_context(|| format!("failed to set up {}", url.describe()))?;
    out(&format!(
        "{} is set up (extensions: {})",
        url.describe(),
        if extensions.is_empty() { "none".to_owned() } else { extensions.join(", ") }
    ));
    if args.no_run {
        return Ok(ExitCode::SUCCESS);
    }
    // As diesel setup: then the pending migrations, exactly as `run` applies them (diesel setup leaves schema.rs
    // alone; `run` and `schema` write it).
    let run_args = RunArgs {
        to: None,
        step: None,
        no_schema: true,
        ignore_missing: false,
        allow_out_of_order: false,
        sql: false,
        from: None,
        dry_run: false,
        lock: LockArgs { lock_timeout: args.lock.lock_timeout.clone() },
    };
    ctx.sync_lock(anonmigrate_core::lock_sync::LockPolicy::Update)?;
    super::run::run(ctx, &run_args)
}

pub fn database(ctx: &mut Context, command: &DatabaseCommand) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    let url = ctx.database_for_changes(Some(&chain))?;
    match command {
        DatabaseCommand::Setup(_) => unreachable!("dispatched as `setup`"),
        DatabaseCommand::Drop { yes } => {
            confirm(&format!("drop {} and everything in it", url.describe()), *yes, "--yes")?;
            let dropped = setup::drop_database(&url)?;
            out(&if dropped { format!("dropped {}", url.describe()) } else { format!("{} does not exist; nothing dropped", url.describe()) });
        }
        DatabaseCommand::Reset { yes } => {
            confirm(&format!("reset {} (drop it, set it up, apply every migration)", url.describe()), *yes, "--yes")?;
            setup::drop_database(&url)?;
            let extensions = extensions(ctx, &chain);
            setup::setup(&url, &extensions, &mut ctx.printer)?;
            let options = RunOptions {
                lock_timeout: ctx.lock_timeout(None)?,
                ddl_lock_timeout: ctx.workspace.ddl_lock_timeout()?,
                statement_timeout: ctx.workspace.statement_timeout()?,
                ..RunOptions::default()
            };
            let report = runner::run(&url, &chain, &options, &mut ctx.printer)?;
            out(&format!("reset {}: {} migrations applied", url.describe(), report.applied.len()));
        }
    }
    Ok(ExitCode::SUCCESS)
}
