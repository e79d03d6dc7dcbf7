//! `check`: the CI gate. Runs the engine's checks (lock file, schema.rs, down.sql, the live database) and the
//! linter, prints one ok / FAIL line per section, then the findings and what to run; the exit code names the first
//! failing section (see `exit.rs`).

use std::process::ExitCode;

use anonmigrate_core::check::{self, CheckOptions, Finding, Outcome, Report, Section, SectionKind};

use super::Context;
use crate::cli::{CheckArgs, Format};
use crate::exit;
use crate::output::{json, out};

pub fn check(ctx: &mut Context, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    let database = if args.database { Some(ctx.database(Some(&chain))?) } else { None };
    let options = CheckOptions {
        schema: !args.no_schema_check,
        schema_file: args.schema_file.clone(),
        down: !args.no_down_check,
        database,
    };
    super::schema::drop_scratch_databases_on_interrupt();
    let mut report = check::check(&ctx.workspace, &chain, &options, &mut ctx.printer)?;
    if !args.no_lint {
        report.sections.push(lint_section(ctx));
    }
    let code = exit_code(&report);
    match ctx.format {
        Format::Json => json(&JsonReport {
            passed: report.passed(),
            exit_code: code,
            sections: &report.sections,
        })?,
        Format::Text => print_text(&report),
    }
    Ok(ExitCode::from(code))
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    passed: bool,
    exit_code: u8,
    sections: &'a [Section],
}

/// The code of the first failing section, 0 when none failed.
fn exit_code(report: &Report) -> u8 {
    match report.first_failure().map(|s| s.kind) {
        None => 0,
        Some(SectionKind::LockFile) => exit::INTEGRITY,
        Some(SectionKind::Schema) => exit::CHECK_SCHEMA,
        Some(SectionKind::Down | SectionKind::RevertAll) => exit::CHECK_DOWN,
        Some(SectionKind::Database) => exit::CHECK_DATABASE,
        Some(SectionKind::Lint) => exit::CHECK_LINT,
    }
}

fn print_text(report: &Report) {
    for section in &report.sections {
        let tag = match section.outcome {
            Outcome::Ok => "ok  ",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "skip",
        };
        out(&format!("{tag}  {}: {}", section.title, section.summary));
    }
    let noted: Vec<&Section> = report.sections.iter().filter(|s| !s.findings.is_empty()).collect();
    for section in &noted {
        out("");
        out(&format!("{}:", section.title));
        for finding in &section.findings {
            let mut lines = finding.message.lines();
            if let Some(first) = lines.next() {
                out(&format!("  {first}"));
            }
            for line in lines {
                out(&format!("    {}", line.trim_start()));
            }
        }
    }
    let fixes: Vec<&Section> = report.sections.iter().filter(|s| s.outcome == Outcome::Fail && s.fix.is_some()).collect();
    out("");
    if fixes.is_empty() {
        out("check passed");
        return;
    }
    out("to fix:");
    for section in fixes {
        out(&format!("  {}: {}", section.title, section.fix.as_deref().unwrap_or_default()));
    }
}

/// The linter (in process, see `lint.rs`) on every migration newer than the lint baseline.
fn lint_section(ctx: &Context) -> Section {
    const TITLE: &str = "lint";
    const FIX: &str = "`cargo anonmigrate lint` shows each finding with its safe alternative; a deliberate statement takes `-- anonmigrate:allow RULE-ID reason` above it";
    let (report, base) = match super::lint::run_linter(ctx, &[]).and_then(|(_, _, report)| {
        Ok((report, std::env::current_dir().map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?))
    }) {
        Ok(found) => found,
        Err(error) => {
            return Section::failed(SectionKind::Lint, TITLE, "the linter could not run", vec![Finding::text(format!("{error:#}"))], FIX);
        }
    };
    let findings: Vec<Finding> = report
        .findings
        .iter()
        .map(|f| {
            let file = f.path.strip_prefix(&base).unwrap_or(&f.path).display();
            Finding::text(format!("{file}:{}: {} [{}] {}", f.line, f.level.label(), f.rule, f.message))
        })
        .collect();
    let summary = format!("{} migration(s) linted: {} error(s), {} warning(s)", report.linted, report.errors(), report.warnings());
    let outcome = if report.failed() {
        Outcome::Fail
    } else if findings.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Warn
    };
    Section {
        fix: (outcome == Outcome::Fail).then(|| FIX.to_owned()),
        findings,
        ..Section::new(SectionKind::Lint, TITLE, outcome, summary)
    }
}
