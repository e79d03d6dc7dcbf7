//! `status` (alias `current`).

use std::process::ExitCode;

use anonmigrate_core::status::MigrationState;

use super::Context;
use crate::cli::{Format, StatusArgs};
use crate::exit;
use crate::output::{json, note, out};

pub fn status(ctx: &mut Context, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let (chain, url, status) = ctx.status()?;
    if ctx.format == Format::Json {
        json(&status)?;
    } else {
        out(&format!("database: {}", url.describe()));
        out(&format!("current version: {}", status.current_version.as_deref().unwrap_or("none (nothing applied)")));
        let pending: Vec<_> = status.pending().collect();
        if pending.is_empty() {
            out("pending: none");
        } else {
            out(&format!("pending: {}", pending.len()));
            for entry in pending {
                let renumber = status.renumber.iter().find(|r| r.to == entry.version);
                let detail = match (&entry.state, renumber) {
                    (_, Some(r)) => format!(
                        "  (applied here as version {}, which `merge` changed: the next `run` renumbers the record, same checksum, and does not apply it again)",
                        r.from
                    ),
                    (MigrationState::Partial { statements_done, statements_total }, None) => {
                        format!("  (partially applied: {statements_done} of {statements_total} statements ran)")
                    }
                    (MigrationState::Pending { out_of_order: true }, None) => "  (out of order: older than the current version)".into(),
                    _ => String::new(),
                };
                out(&format!("  {}{detail}", entry.dir_name));
            }
        }
        for entry in status.changed() {
            if let MigrationState::Applied { recorded_checksum, .. } = &entry.state {
                let current = chain.find(&entry.version).map(|m| m.checksum.as_str()).unwrap_or("?");
                note(&format!(
                    "warning: {} changed after it was applied (applied sha256 {}, file sha256 {current}); restore it, or run `cargo anonmigrate accept {}`",
                    entry.dir_name,
                    recorded_checksum.as_deref().unwrap_or("?"),
                    entry.version
                ));
            }
        }
        for missing in &status.missing {
            note(&format!(
                "warning: applied migration {} {} is not on disk (old branch?)",
                missing.version,
                missing.name.as_deref().unwrap_or("")
            ));
        }
    }
    if args.exit_code && !status.is_up_to_date() {
        return Ok(ExitCode::from(exit::NOT_UP_TO_DATE));
    }
    Ok(ExitCode::SUCCESS)
}

/// `pending`: diesel's `migration pending` prints `true` or `false` and exits 0 either way.
pub fn pending(ctx: &mut Context) -> anyhow::Result<ExitCode> {
    let (_, _, status) = ctx.status()?;
    let pending = status.pending().next().is_some();
    match ctx.format {
        Format::Json => json(&serde_json::json!({ "pending": pending }))?,
        Format::Text => out(if pending { "true" } else { "false" }),
    }
    Ok(ExitCode::SUCCESS)
}
