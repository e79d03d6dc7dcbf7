//! `doctor`: one line per check with ok / warn / fail and the fix; exit code 1 when anything fails.

use std::process::ExitCode;

use anonmigrate_core::doctor::{self, Level};

use super::Context;
use crate::cli::Format;
use crate::output::{json, out};

pub fn doctor(ctx: &Context) -> anyhow::Result<ExitCode> {
    let checks = doctor::diagnose(&ctx.workspace);
    let failed = checks.iter().any(|c| c.level == Level::Fail);
    if ctx.format == Format::Json {
        json(&checks)?;
    } else {
        for check in &checks {
            let tag = match check.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            out(&format!("{tag}  {}: {}", check.name, check.message));
            if let Some(fix) = &check.fix {
                out(&format!("      fix: {fix}"));
            }
        }
        let (warns, fails) = checks.iter().fold((0, 0), |(w, f), c| match c.level {
            Level::Warn => (w + 1, f),
            Level::Fail => (w, f + 1),
            Level::Ok => (w, f),
        });
        out(&format!("{} checks: {fails} failed, {warns} warnings", checks.len()));
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
