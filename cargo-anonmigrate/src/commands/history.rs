//! `history [--verbose]`.

use std::process::ExitCode;

use anonmigrate_core::plan::{irreversible, run_in_transaction};
use anonmigrate_core::status::MigrationState;

use super::Context;
use crate::cli::{Format, HistoryArgs};
use crate::output::{json, out};

pub fn history(ctx: &mut Context, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let (chain, _, status) = ctx.status()?;
    if ctx.format == Format::Json {
        json(&status)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.diesel_list && !args.verbose {
        out("Migrations:");
        for entry in &status.entries {
            let applied = matches!(entry.state, MigrationState::Applied { .. });
            out(&format!("  [{}] {}", if applied { "X" } else { " " }, entry.dir_name));
        }
        return Ok(ExitCode::SUCCESS);
    }
    for (entry, migration) in status.entries.iter().zip(&chain.migrations) {
        let state = match &entry.state {
            MigrationState::Applied { run_on, changed: false, .. } => format!("applied {run_on}"),
            MigrationState::Applied { run_on, changed: true, .. } => format!("applied {run_on} (file changed since)"),
            MigrationState::Partial { statements_done, statements_total } => {
                format!("partial ({statements_done} of {statements_total} statements)")
            }
            MigrationState::Pending { out_of_order: false } => "pending".into(),
            MigrationState::Pending { out_of_order: true } => "pending (out of order)".into(),
        };
        out(&format!("{:<44} {state}", entry.dir_name));
        if args.verbose {
            let mode = if run_in_transaction(migration)? { "transactional" } else { "non-transactional (statement by statement)" };
            let irreversible = if irreversible(migration).is_some() { " (irreversible)" } else { "" };
            out(&format!("    path: {}", migration.dir.display()));
            out(&format!(
                "    {mode}; up.sql {} bytes; down.sql {}{irreversible}; sha256 {}",
                migration.up_sql.len(),
                migration.down_sql.as_ref().map_or("missing".to_owned(), |d| format!("{} bytes", d.len())),
                migration.checksum
            ));
        }
    }
    for missing in &status.missing {
        out(&format!("{:<44} applied {} (not on disk)", missing.version, missing.run_on));
    }
    Ok(ExitCode::SUCCESS)
}
