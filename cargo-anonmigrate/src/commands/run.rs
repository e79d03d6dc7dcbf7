//! `run`, `revert`, `redo`.

use std::process::ExitCode;

use anonmigrate_core::offline::{self, OfflineOptions};
use anonmigrate_core::runner::{self, DryRun, RevertOptions, RevertScope, RunOptions};
use anyhow::Context as _;

use super::{Context, confirm, migration_version, optional_version};
use crate::cli::{Format, RedoArgs, RevertArgs, RunArgs};
use crate::output::{json, out};

pub fn run(ctx: &mut Context, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.synced_chain()?;
    let to = optional_version(&chain, "--to", args.to.as_ref())?;
    if args.sql {
        // Offline: no database is resolved, so not even the managed server starts.
        let options = OfflineOptions {
            from: optional_version(&chain, "--from", args.from.as_ref())?,
            to,
            step: args.step,
            ddl_lock_timeout: ctx.workspace.ddl_lock_timeout()?,
        };
        out(offline::run_script(&chain, &options)?.trim_end());
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.locked_schema && !args.dry_run {
        super::schema::refuse_stale_schema(ctx, &chain)?;
    }
    let url = ctx.database_for_changes(Some(&chain))?;
    let options = RunOptions {
        to,
        step: args.step,
        ignore_missing: args.ignore_missing,
        allow_out_of_order: args.allow_out_of_order,
        lock_timeout: ctx.lock_timeout(args.lock.lock_timeout.as_deref())?,
        ddl_lock_timeout: ctx.workspace.ddl_lock_timeout()?,
        statement_timeout: ctx.workspace.statement_timeout()?,
    };
    if args.dry_run {
        let report = runner::dry_run(&url, &chain, &options)
            .with_context(|| format!("failed to inspect {}", url.describe()))?;
        return print_dry_run(ctx.format, report);
    }
    let report = runner::run(&url, &chain, &options, &mut ctx.printer)
        .with_context(|| format!("failed to migrate {}", url.describe()))?;
    match ctx.format {
        Format::Json => json(&serde_json::json!({ "applied": report.applied }))?,
        Format::Text if report.applied.is_empty() => out("nothing to apply: the database is up to date"),
        Format::Text => {
            let total: u128 = report.applied.iter().map(|a| a.duration_ms).sum();
            let head = &report.applied[report.applied.len() - 1].version;
            out(&format!(
                "{} migration{} applied in {total} ms; database at version {head}",
                report.applied.len(),
                if report.applied.len() == 1 { "" } else { "s" }
            ));
        }
    }
    // Like diesel, refresh schema.rs after applying (only when a schema file is configured).
    if !args.no_schema && !ctx.locked_schema && !report.applied.is_empty() {
        super::schema::regenerate_after_run(ctx, &chain);
    }
    Ok(ExitCode::SUCCESS)
}

/// `run --dry-run`: the plan, then `run`'s refusal (same message and exit code) if it would refuse.
fn print_dry_run(format: Format, report: DryRun) -> anyhow::Result<ExitCode> {
    if format == Format::Json {
        json(&report)?;
    } else {
        out(&format!("dry run on {}: nothing is changed", report.database));
        out(&format!("current version: {}", report.current_version.as_deref().unwrap_or("none (nothing applied)")));
        if let Some(holder) = &report.lock_holder {
            out(&format!("migration lock: held by {holder}; run would wait for it (--lock-timeout)"));
        }
        for renumber in &report.renumber {
            out(&format!(
                "would renumber  {}  (applied here as version {}, which `merge` changed; same checksum, not applied again)",
                renumber.dir_name, renumber.from
            ));
        }
        for action in &report.actions {
            let statements = format!("{} statement{}", action.statements, if action.statements == 1 { "" } else { "s" });
            let how = if action.transactional {
                format!("one transaction, {statements}")
            } else {
                format!("statement by statement, {statements}")
            };
            let why = if action.from_statement > 1 {
                format!(
                    "partially applied: resumes at statement {} of {}, the {} before it ran",
                    action.from_statement,
                    action.statements,
                    action.from_statement - 1
                )
            } else if action.out_of_order {
                "pending, out of order: older than the current version".to_owned()
            } else {
                "pending".to_owned()
            };
            out(&format!("would apply  {}  ({why}; {how})", action.dir_name));
        }
        if report.refusal.is_none() {
            out(&match report.actions.len() {
                0 => "run would apply nothing: the database is up to date".to_owned(),
                1 => "run would apply 1 migration".to_owned(),
                n => format!("run would apply {n} migrations"),
            });
        }
    }
    match report.refusal {
        Some(refusal) => Err(anyhow::Error::new(refusal).context("run would refuse")),
        None => Ok(ExitCode::SUCCESS),
    }
}

pub fn revert(ctx: &mut Context, args: &RevertArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    let scope = match (&args.to, args.all, args.step) {
        (Some(arg), _, _) => {
            let version = migration_version(&chain, "--to", arg)?;
            RevertScope::To(chain.migrations.iter().position(|m| m.version == version).expect("resolved from the chain"))
        }
        (None, true, _) => RevertScope::All,
        (None, false, step) => RevertScope::Steps(step.unwrap_or(1)),
    };
    if args.sql {
        let options = OfflineOptions {
            from: optional_version(&chain, "--from", args.from.as_ref())?,
            ddl_lock_timeout: ctx.workspace.ddl_lock_timeout()?,
            ..OfflineOptions::default()
        };
        out(offline::revert_script(&chain, scope, &options)?.trim_end());
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(scope, RevertScope::Steps(0)) {
        nothing_to_do(ctx.format, "nothing to revert: --step 0 names no migration; nothing was changed")?;
        return Ok(ExitCode::SUCCESS);
    }
    // Only --all asks: it empties the database of everything the migrations made (diesel asks nothing at all).
    if matches!(scope, RevertScope::All) {
        confirm("revert every applied migration (their down.sql may drop data)", args.yes, "--yes")?;
    }
    let url = ctx.database_for_changes(Some(&chain))?;
    let options = revert_options(ctx, args.lock.lock_timeout.as_deref())?;
    let reverted = runner::revert(&url, &chain, scope, &options, &mut ctx.printer)
        .with_context(|| format!("failed to revert on {}", url.describe()))?;
    match ctx.format {
        Format::Json => json(&serde_json::json!({ "reverted": reverted }))?,
        Format::Text if reverted.is_empty() => out(&match (&args.to, scope) {
            (Some(to), _) => format!("nothing to revert: nothing is applied after {to}"),
            _ => "nothing to revert: no migration is applied".to_owned(),
        }),
        Format::Text => out(&format!(
            "{} migration{} reverted",
            reverted.len(),
            if reverted.len() == 1 { "" } else { "s" }
        )),
    }
    Ok(ExitCode::SUCCESS)
}

fn nothing_to_do(format: Format, message: &str) -> anyhow::Result<()> {
    match format {
        Format::Json => json(&serde_json::json!({ "reverted": [] })),
        Format::Text => {
            out(message);
            Ok(())
        }
    }
}

fn revert_options(ctx: &Context, lock_timeout: Option<&str>) -> anyhow::Result<RevertOptions> {
    Ok(RevertOptions {
        lock_timeout: ctx.lock_timeout(lock_timeout)?,
        ddl_lock_timeout: ctx.workspace.ddl_lock_timeout()?,
        statement_timeout: ctx.workspace.statement_timeout()?,
    })
}

pub fn redo(ctx: &mut Context, args: &RedoArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    let scope = if args.all { RevertScope::All } else { RevertScope::Steps(args.step.unwrap_or(1)) };
    if matches!(scope, RevertScope::Steps(0)) {
        out("nothing to redo: --step 0 names no migration; nothing was changed");
        return Ok(ExitCode::SUCCESS);
    }
    let url = ctx.database_for_changes(Some(&chain))?;
    let options = revert_options(ctx, args.lock.lock_timeout.as_deref())?;
    let report = runner::redo(&url, &chain, scope, &options, &mut ctx.printer)
        .with_context(|| format!("failed to redo on {}", url.describe()))?;
    match ctx.format {
        Format::Json => json(&report)?,
        Format::Text if report.applied.is_empty() => out("nothing to redo: no migration is applied"),
        Format::Text => out(&format!(
            "{} migration{} redone{}",
            report.applied.len(),
            if report.applied.len() == 1 { "" } else { "s" },
            if report.atomic { " in one transaction" } else { "" }
        )),
    }
    Ok(ExitCode::SUCCESS)
}
