//! `import alembic` and `baseline`: adopting a history from Alembic or from a live database.

use std::process::ExitCode;

use anonmigrate_core::import::{self, AlembicOptions};

use super::Context;
use crate::cli::{BaselineArgs, Format, ImportAlembicArgs};
use crate::output::{json, note, out};

pub fn alembic(ctx: &Context, args: &ImportAlembicArgs) -> anyhow::Result<ExitCode> {
    ctx.refuse_if_locked("`import alembic` adds migrations")?;
    let options = AlembicOptions { command: args.alembic.clone(), config: args.config.clone() };
    let report = import::import_alembic(&ctx.workspace.migrations_dir, &options)?;
    if ctx.format == Format::Json {
        json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    for m in &report.imported {
        let mode = if m.transactional { "" } else { "  (non-transactional)" };
        out(&format!("imported  {}  <- alembic {} {:?}{mode}", m.dir_name, m.revision, m.message));
    }
    for warning in &report.warnings {
        note(&format!(
            "warning: {} (alembic {}): offline SQL may not do what the revision does online:\n  - {}\n  review its up.sql/down.sql (marked `-- anonmigrate: REVIEW`) against the revision's Python before running it",
            warning.dir_name,
            warning.revision,
            warning.reasons.join("\n  - ")
        ));
    }
    let migrations = ctx.workspace.migrations_dir.display();
    if !report.already_imported.is_empty() {
        out(&format!("{} revision(s) were imported before and left as they are", report.already_imported.len()));
    }
    match &report.head {
        None => out("the Alembic history has no revisions: nothing imported"),
        Some(head) if report.imported.is_empty() => out(&format!("every revision up to {head} is already in {migrations}: nothing imported")),
        Some(head) => {
            out(&format!(
                "{} revision(s) imported into {migrations} (Alembic head {head}{}); wrote anonmigrate.lock",
                report.imported.len(),
                if report.warnings.is_empty() { String::new() } else { format!(", {} to review", report.warnings.len()) }
            ));
            out("next: `cargo anonmigrate stamp --from-alembic` on each database Alembic manages, `cargo anonmigrate run` on new ones");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn baseline(ctx: &mut Context, args: &BaselineArgs) -> anyhow::Result<ExitCode> {
    ctx.refuse_if_locked("`baseline` adds a migration")?;
    let chain = ctx.chain().ok();
    let url = ctx.database_for_changes(chain.as_ref())?;
    let timeout = ctx.lock_timeout(args.lock.lock_timeout.as_deref())?;
    let done = import::baseline(&url, &ctx.workspace.migrations_dir, &args.name, timeout, &mut ctx.printer)?;
    out(&format!(
        "wrote {} ({} statements from {} for PostgreSQL {})",
        done.dir.display(),
        done.statements,
        done.pg_dump.display(),
        done.server_major
    ));
    for dir_name in &done.stamped {
        out(&format!("stamped   {dir_name}  (recorded as applied on {}, SQL not run)", url.describe()));
    }
    if !done.missing_on_disk.is_empty() {
        note(&format!(
            "note: {} also records {} applied migration(s) that are not on disk ({}); `run` refuses while they are recorded: forget each with `cargo anonmigrate stamp --delete VERSION` once the baseline replaces them",
            url.describe(),
            done.missing_on_disk.len(),
            done.missing_on_disk.join(", ")
        ));
    }
    Ok(ExitCode::SUCCESS)
}
