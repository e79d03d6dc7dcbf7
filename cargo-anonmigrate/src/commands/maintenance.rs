//! `accept`, `stamp [--delete]`, `heads`, `merge`: explicit, printed corrections of the record.

use std::process::ExitCode;

use anonmigrate_core::maintenance::{self, Heads};

use super::{Context, migration_version};
use crate::cli::{AcceptArgs, StampArgs};
use crate::output::{note, out};

pub fn accept(ctx: &mut Context, args: &AcceptArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    let version = migration_version(&chain, "accept", &args.version)?;
    let url = ctx.database_for_changes(Some(&chain))?;
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
    let Some(arg) = args.version.as_deref() else {
        return stamp_from_alembic(ctx, args, &chain);
    };
    // A record to delete may have no directory on disk any more: any spelling of a version will do.
    let version = match args.delete.then(|| anonmigrate_core::chain::version_of_arg(arg)).flatten() {
        Some(version) if chain.resolve(arg).is_none() => version,
        _ => migration_version(&chain, "stamp", arg)?,
    };
    let url = ctx.database_for_changes(Some(&chain))?;
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

/// `stamp --from-alembic`: the database's alembic_version → the imported migrations up to it, recorded as applied.
fn stamp_from_alembic(ctx: &mut Context, args: &StampArgs, chain: &anonmigrate_core::chain::Chain) -> anyhow::Result<ExitCode> {
    let url = ctx.database_for_changes(Some(chain))?;
    let timeout = ctx.lock_timeout(args.lock.lock_timeout.as_deref())?;
    let done = anonmigrate_core::import::stamp_from_alembic(&url, chain, timeout, &mut ctx.printer)?;
    let Some(version) = &done.version else {
        out(&format!("{}'s alembic_version is empty (Alembic is at base): nothing to stamp; `cargo anonmigrate run` applies every migration", url.describe()));
        return Ok(ExitCode::SUCCESS);
    };
    for dir_name in &done.stamped {
        out(&format!("stamped   {dir_name}  (marked applied, SQL not run)"));
    }
    out(&format!(
        "{} migration(s) stamped up to {version} (Alembic revision {} on {}); `cargo anonmigrate run` continues from there",
        done.stamped.len(),
        done.alembic_revisions.join(", "),
        url.describe()
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn heads(ctx: &Context) -> anyhow::Result<ExitCode> {
    // After a git merge two migrations may share a version; heads still shows them (merge separates them).
    let chain = anonmigrate_core::chain::Chain::load_allowing_shared_versions(&ctx.workspace.migrations_dir)?;
    match maintenance::heads(&chain)? {
        Heads::New(names) if names.is_empty() => {
            note("nothing new: every migration on disk is listed in migrations/anonmigrate.lock");
        }
        Heads::New(names) => {
            for dir_name in names {
                out(&dir_name);
            }
        }
        Heads::Conflict { ours_label, theirs_label, ours, theirs, unlisted } => {
            for (label, names) in [(&ours_label, &ours), (&theirs_label, &theirs)] {
                out(&format!("{label} added:{}", if names.is_empty() { " nothing" } else { "" }));
                for name in names {
                    out(&format!("  {name}"));
                }
            }
            if !unlisted.is_empty() {
                out("on disk, in neither side:");
                for name in &unlisted {
                    out(&format!("  {name}"));
                }
            }
            note("migrations/anonmigrate.lock holds git conflict markers; `cargo anonmigrate merge` resolves them");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn merge(ctx: &mut Context) -> anyhow::Result<ExitCode> {
    ctx.refuse_if_locked("`merge` rewrites the lock file and may rename migrations")?;
    let separated = maintenance::separate_shared_versions(&ctx.workspace.migrations_dir)?;
    let chain = ctx.chain()?;
    let status = match merge_database(ctx)? {
        Some(url) => {
            let mut conn = anonmigrate_core::db::connect(&url)?;
            let (status, _) = anonmigrate_core::runner::read_status(&mut conn, &chain)?;
            Some((url.describe(), status))
        }
        None => None,
    };
    let merged = maintenance::merge(&ctx.workspace.migrations_dir, status.as_ref().map(|(_, s)| s), separated)?;
    if let Some((ours_label, theirs_label, ours, theirs)) = &merged.conflict {
        let list = |names: &Vec<String>| if names.is_empty() { "nothing".to_owned() } else { names.join(", ") };
        out(&format!("lock file conflict: {ours_label} added {}; {theirs_label} added {}", list(ours), list(theirs)));
    }
    for r in &merged.separated {
        out(&format!("renamed   {} -> {}  (both branches used its version)", r.from, r.to));
    }
    match &status {
        Some((database, _)) => {
            let newest = merged.newest_applied.as_deref().unwrap_or("none");
            for r in &merged.renamed {
                out(&format!("renamed   {} -> {}  (pending on {database}, older than its newest applied version {newest})", r.from, r.to));
            }
            if merged.renamed.is_empty() {
                out(&format!("nothing to renumber: no pending migration is older than the newest applied one on {database} ({newest})"));
            }
        }
        None => out("no database to compare with (none configured and no managed server yet): nothing renumbered"),
    }
    let lock = "migrations/anonmigrate.lock";
    if !merged.separated.is_empty() || !merged.renamed.is_empty() {
        out(&format!(
            "recorded the renames in {lock}: a database that applied a renamed migration under its old version renumbers its record on the next `run` (not applied again)"
        ));
    }
    let what = if merged.conflict.is_some() { "both sides, " } else { "" };
    if merged.change.is_empty() && merged.conflict.is_none() {
        out(&format!("{lock} was already up to date ({} migrations)", merged.entries));
    } else if merged.change.is_empty() {
        out(&format!("wrote {lock}: {what}{} migrations in chain order", merged.entries));
    } else {
        out(&format!(
            "wrote {lock}: {what}{} migrations in chain order ({})",
            merged.entries,
            anonmigrate_core::lock_sync::describe(&merged.change)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The database `merge` consults: the configured one, or the managed server if it was ever created (merge does
/// not create one: a database that never existed has nothing applied).
fn merge_database(ctx: &mut Context) -> anyhow::Result<Option<anonmigrate_core::database_url::DatabaseUrl>> {
    if ctx.workspace.configured_url()?.is_none() && !ctx.workspace.dev_server_dir().exists() {
        return Ok(None);
    }
    let chain = ctx.chain()?;
    Ok(Some(ctx.database(Some(&chain))?))
}
