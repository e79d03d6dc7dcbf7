//! `accept`, `stamp [--delete]`, `heads`, `merge`: explicit, printed corrections of the record.

use std::process::ExitCode;

use anonmigrate_core::maintenance;

use super::{Context, migration_version};
use crate::cli::{AcceptArgs, StampArgs};
use crate::output::out;

pub fn accept(ctx: &mut Context, args: &AcceptArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    let version = migration_version(&chain, "accept", &args.version)?;
    let url = ctx.database(Some(&chain))?;
    let timeout = ctx.lock_timeout(args.lock.lock_timeout.as_deref())?;
    let accepted = maintenance::accept(&url, &chain, &version, timeout, &mut ctx.printer)?;
    out(&format!(
        "accepted {}: checksum {} -> {} (old value kept in __anonmigrate_audit)",
        accepted.dir_name,
        accepted.old.as_deref().unwrap_or("none recorded"),
        accepted.new
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn stamp(ctx: &mut Context, args: &StampArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    // A record to delete may have no directory on disk any more: any spelling of a version will do.
    let version = match args.delete.then(|| anonmigrate_core::chain::version_of_arg(&args.version)).flatten() {
        Some(version) if chain.resolve(&args.version).is_none() => version,
        _ => migration_version(&chain, "stamp", &args.version)?,
    };
    let url = ctx.database(Some(&chain))?;
    let timeout = ctx.lock_timeout(args.lock.lock_timeout.as_deref())?;
    if args.delete {
        let deleted = maintenance::unstamp(&url, &version, timeout, &mut ctx.printer)?;
        out(&if deleted {
            format!("deleted the record of {version} (no SQL was run; the schema is unchanged)")
        } else {
            format!("{version} has no record; nothing deleted")
        });
        return Ok(ExitCode::SUCCESS);
    }
    let stamped = maintenance::stamp(&url, &chain, &version, timeout, &mut ctx.printer)?;
    for dir_name in &stamped {
        out(&format!("stamped   {dir_name}  (marked applied, SQL not run)"));
    }
    out(&format!("{} migration(s) stamped up to {version}", stamped.len()));
    Ok(ExitCode::SUCCESS)
}

pub fn heads(ctx: &Context) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    for dir_name in maintenance::heads(&chain)? {
        out(&dir_name);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn merge(ctx: &Context) -> anyhow::Result<ExitCode> {
    let renamed = maintenance::merge(&ctx.workspace.migrations_dir)?;
    for r in &renamed {
        out(&format!("renamed   {} -> {}", r.from, r.to));
    }
    out(&format!("{} migration(s) moved after the head; lock file rewritten", renamed.len()));
    Ok(ExitCode::SUCCESS)
}
