//! `lint [MIGRATION...] [--fix]`: resolves the workspace, runs the linter in process and prints the findings; exit 0
//! when clean or warnings only, 1 when a deny rule fired, 4 for a configuration problem.

use std::process::ExitCode;

use anyhow::Context as _;
use anonmigrate_lint::{Config, Report};

use super::Context;
use crate::cli::{Format, LintArgs};
use crate::output::{note, out};

pub fn lint(ctx: &Context, args: &LintArgs) -> anyhow::Result<ExitCode> {
    let (chain, config, report) = run_linter(ctx, &args.migrations)?;
    let base = std::env::current_dir().context("cannot read the current directory")?;
    if args.fix {
        ctx.refuse_if_locked("`lint --fix` edits up.sql files")?;
        let fixed = anonmigrate_lint::fix::apply(&chain, &config, &report).map_err(config_error)?;
        for file in &fixed {
            note(&format!("fixed {}: {}", file.path.strip_prefix(&base).unwrap_or(&file.path).display(), file.applied.join("; ")));
        }
        if !fixed.is_empty() {
            ctx.sync_lock(anonmigrate_core::lock_sync::LockPolicy::Update)?;
            // What is left after the fixes is what the author still has to decide.
            let (_, _, after) = run_linter(ctx, &args.migrations)?;
            return Ok(print_report(ctx, &after, &base));
        }
    }
    Ok(print_report(ctx, &report, &base))
}

fn print_report(ctx: &Context, report: &Report, base: &std::path::Path) -> ExitCode {
    if ctx.format == Format::Json {
        out(report.to_json(base).trim_end());
    } else {
        let text = report.render_text(base);
        if !text.is_empty() {
            out(text.trim_end());
        }
        note(&report.summary());
    }
    if report.failed() { ExitCode::from(crate::exit::FAILURE) } else { ExitCode::SUCCESS }
}

/// The workspace's chain and lint settings, and the report for `migrations` (empty: every one after the baseline).
pub(super) fn run_linter(ctx: &Context, migrations: &[String]) -> anyhow::Result<(anonmigrate_chain::Chain, Config, Report)> {
    let chain = ctx.chain()?;
    let mut config = Config::parse(ctx.workspace.settings.lint.as_ref()).map_err(config_error)?;
    config.runner_lock_timeout = ctx.workspace.ddl_lock_timeout()?.is_some();
    let selected = anonmigrate_lint::select(&chain, &config, migrations).map_err(config_error)?;
    let report = anonmigrate_lint::lint(&chain, &config, &selected).map_err(config_error)?;
    Ok((chain, config, report))
}

/// Linter errors are configuration problems (exit 4), like the engine's.
fn config_error(error: anonmigrate_lint::Error) -> anyhow::Error {
    anonmigrate_core::Error::Config(error.to_string()).into()
}
