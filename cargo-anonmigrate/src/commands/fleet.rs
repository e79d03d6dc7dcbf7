//! `fleet status|run|check`: the targets from the flags or `[workspace.metadata.anonmigrate.fleet]`, one engine
//! call, and the rendering (a live line on a terminal, a line per target otherwise, a summary, or JSON).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anonmigrate_core::database_url::DatabaseUrl;
use anonmigrate_core::fleet::{self, FleetEvent, FleetObserver, FleetOptions, FleetReport, Selection, Target, TargetOutcome};
use anonmigrate_core::runner::RunOptions;

use super::Context;
use crate::cli::{FleetCheckArgs, FleetCommand, FleetRunArgs, FleetStatusArgs, FleetTargetArgs, Format};
use crate::exit;
use crate::output::{json, note, out};

pub fn fleet(ctx: &mut Context, command: &FleetCommand) -> anyhow::Result<ExitCode> {
    match command {
        FleetCommand::Status(args) => status(ctx, args),
        FleetCommand::Run(args) => run(ctx, args),
        FleetCommand::Check(args) => check(ctx, args),
    }
}

/// The selection from the flags, else from `[workspace.metadata.anonmigrate.fleet]`.
fn selection(ctx: &Context, args: &FleetTargetArgs) -> anyhow::Result<Selection> {
    let settings = ctx.workspace.settings.fleet.clone().unwrap_or_default();
    let shared = if !args.shared_schemas.is_empty() {
        args.shared_schemas.clone()
    } else {
        settings.shared_schemas.clone().unwrap_or_else(|| vec!["public".to_owned()])
    };
    let schemas = |pattern: &String| Selection::SchemasLike { pattern: pattern.clone(), shared: shared.clone() };
    let from_flags = if let Some(p) = &args.databases_like {
        Some(Selection::DatabasesLike(p.clone()))
    } else if let Some(p) = &args.schemas_like {
        Some(schemas(p))
    } else if let Some(file) = &args.targets {
        Some(Selection::File(file.clone()))
    } else {
        args.targets_query.as_ref().map(|q| Selection::Query(q.clone()))
    };
    let chosen = from_flags
        .or_else(|| settings.databases_like.as_ref().map(|p| Selection::DatabasesLike(p.clone())))
        .or_else(|| settings.schemas_like.as_ref().map(schemas))
        .or_else(|| settings.targets.as_ref().map(|f| Selection::File(ctx.workspace.root.join(f))))
        .or_else(|| settings.targets_query.as_ref().map(|q| Selection::Query(q.clone())));
    chosen.ok_or_else(|| {
        exit::UsageError(
            "fleet: no targets chosen; pass --databases-like PATTERN, --schemas-like PATTERN, --targets FILE or --targets-query SQL, or set one of them under [workspace.metadata.anonmigrate.fleet]".to_owned(),
        )
        .into()
    })
}

/// The targets, looked up through the direct URL (else the database URL, else the managed server) when the
/// selection needs a server.
fn targets(ctx: &mut Context, args: &FleetTargetArgs) -> anyhow::Result<Vec<Target>> {
    let selection = selection(ctx, args)?;
    let base: Option<DatabaseUrl> = if selection.needs_base() {
        Some(match ctx.workspace.direct_url()? {
            Some(url) => url,
            None => anonmigrate_core::target::server(&ctx.workspace, None, &mut ctx.printer)?,
        })
    } else {
        None
    };
    Ok(fleet::select(&selection, base.as_ref())?)
}

fn jobs(ctx: &Context, args: &FleetTargetArgs) -> usize {
    args.jobs
        .map(usize::from)
        .or_else(|| ctx.workspace.settings.fleet.as_ref().and_then(|f| f.jobs))
        .unwrap_or_else(fleet::default_jobs)
        .max(1)
}

fn status(ctx: &mut Context, args: &FleetStatusArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    let targets = targets(ctx, &args.targets)?;
    let statuses = fleet::status(&targets, &chain, jobs(ctx, &args.targets));
    let histogram = fleet::histogram(statuses.iter().filter(|s| s.error.is_none()).map(|s| s.version.as_deref()));
    let head = chain.migrations.last().map(|m| m.version.clone());
    if ctx.format == Format::Json {
        json(&StatusJson { head: head.as_deref(), targets: &statuses, histogram: &histogram })?;
    } else {
        let width = statuses.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &statuses {
            let detail = if let Some(error) = &s.error {
                format!("UNREADABLE  {}", first_line(error))
            } else {
                let mut parts = vec![format!("version {}", s.version.as_deref().unwrap_or("none"))];
                parts.push(if s.pending == 0 { "up to date".to_owned() } else { format!("{} pending", s.pending) });
                if !s.partial.is_empty() {
                    parts.push(format!("partial: {}", s.partial.join(", ")));
                }
                if !s.changed.is_empty() {
                    parts.push(format!("changed since applied: {}", s.changed.join(", ")));
                }
                if !s.missing.is_empty() {
                    parts.push(format!("applied but not on disk: {}", s.missing.join(", ")));
                }
                parts.join(", ")
            };
            out(&format!("{:width$}  {detail}", s.name));
        }
        let up = statuses.iter().filter(|s| s.up_to_date()).count();
        out(&format!(
            "{} target{}: {up} up to date{}",
            statuses.len(),
            if statuses.len() == 1 { "" } else { "s" },
            head.as_ref().map(|h| format!(" (head {h})")).unwrap_or_default()
        ));
        print_histogram(&histogram);
    }
    if statuses.iter().any(|s| s.error.is_some()) {
        return Ok(ExitCode::from(exit::FLEET_FAILED));
    }
    if args.exit_code && !statuses.iter().all(fleet::TargetStatus::up_to_date) {
        return Ok(ExitCode::from(exit::NOT_UP_TO_DATE));
    }
    Ok(ExitCode::SUCCESS)
}

/// `fleet status --format json`, fields in this order (one record per target).
#[derive(serde::Serialize)]
struct StatusJson<'a> {
    head: Option<&'a str>,
    targets: &'a [fleet::TargetStatus],
    histogram: &'a std::collections::BTreeMap<String, usize>,
}

/// `fleet run --format json`: one record per target in target order, then the summary.
#[derive(serde::Serialize)]
struct RunJson<'a> {
    targets: &'a [fleet::TargetReport],
    histogram: &'a std::collections::BTreeMap<String, usize>,
    stopped: Option<fleet::StopReason>,
    duration_ms: u128,
}

fn print_histogram(histogram: &std::collections::BTreeMap<String, usize>) {
    if histogram.is_empty() {
        return;
    }
    out("versions:");
    let width = histogram.values().max().map_or(1, |n| n.to_string().len());
    for (version, count) in histogram {
        out(&format!("  {version:<14}  {count:>width$} target{}", if *count == 1 { "" } else { "s" }));
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Set by the first Ctrl-C: no new target starts. A second one exits at once.
static STOP: AtomicBool = AtomicBool::new(false);

fn run(ctx: &mut Context, args: &FleetRunArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    let targets = targets(ctx, &args.targets)?;
    let settings = ctx.workspace.settings.fleet.clone().unwrap_or_default();
    let to = super::optional_version(&chain, "--to", args.to.as_ref())?;
    let options = FleetOptions {
        run: RunOptions {
            to,
            allow_out_of_order: args.allow_out_of_order,
            lock_timeout: ctx.lock_timeout(args.lock.lock_timeout.as_deref())?,
            ddl_lock_timeout: ctx.workspace.ddl_lock_timeout()?,
            statement_timeout: ctx.workspace.statement_timeout()?,
            ..RunOptions::default()
        },
        jobs: jobs(ctx, &args.targets),
        canary: args.canary.or(settings.canary).unwrap_or(0),
        max_failures: args.max_failures.or(settings.max_failures).unwrap_or(0),
        extensions: anonmigrate_core::setup::required_extensions(&ctx.workspace, Some(&chain)),
    };
    if args.dry_run {
        return dry_run(ctx, &targets, &chain, &options);
    }
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            // Open transactions roll back when their connections close.
            std::process::exit(130);
        }
    });
    let mut printer = FleetPrinter::new(ctx.format, targets.len());
    let report = fleet::run(&targets, &chain, &options, &STOP, &mut printer)?;
    printer.clear();
    if ctx.format == Format::Json {
        json(&RunJson {
            targets: &report.targets,
            histogram: &report.histogram(),
            stopped: report.stopped,
            duration_ms: report.duration_ms,
        })?;
    } else {
        print_summary(&report);
    }
    Ok(if report.succeeded() { ExitCode::SUCCESS } else { ExitCode::from(exit::FLEET_FAILED) })
}

/// `fleet run --dry-run`: per target what `run` would apply or why it would refuse; exit 14 when a target could not
/// be read or would refuse (as `fleet run` would count it failed), else 0.
fn dry_run(ctx: &Context, targets: &[Target], chain: &anonmigrate_core::chain::Chain, options: &FleetOptions) -> anyhow::Result<ExitCode> {
    let plans = fleet::plan(targets, chain, &options.run, options.jobs);
    let refuses = |p: &fleet::TargetPlan| p.error.is_some() || p.plan.as_ref().is_some_and(|plan| plan.refusal.is_some());
    if ctx.format == Format::Json {
        json(&PlanJson { targets: &plans })?;
    } else {
        let width = plans.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in &plans {
            let detail = match (&p.plan, &p.error) {
                (_, Some(error)) => format!("UNREADABLE  {}", first_line(error)),
                (Some(plan), None) => {
                    let from = plan.current_version.as_deref().unwrap_or("none");
                    match (&plan.refusal, plan.actions.len()) {
                        (Some(refusal), _) => format!("version {from}, WOULD REFUSE  {}", first_line(&refusal.to_string())),
                        (None, 0) => format!("version {from}, up to date"),
                        (None, n) => format!(
                            "version {from}, would apply {n}: {}",
                            plan.actions.iter().map(|a| a.dir_name.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    }
                }
                (None, None) => "no plan".to_owned(),
            };
            out(&format!("{:width$}  {detail}", p.name));
        }
        let would = plans.iter().filter(|p| !refuses(p) && p.plan.as_ref().is_some_and(|plan| !plan.actions.is_empty())).count();
        let up = plans.iter().filter(|p| !refuses(p) && p.plan.as_ref().is_some_and(|plan| plan.actions.is_empty())).count();
        out(&format!(
            "fleet run --dry-run: {} target{}: {would} would migrate, {up} up to date, {} would refuse or could not be read; nothing was changed",
            plans.len(),
            if plans.len() == 1 { "" } else { "s" },
            plans.iter().filter(|p| refuses(p)).count()
        ));
    }
    Ok(if plans.iter().any(refuses) { ExitCode::from(exit::FLEET_FAILED) } else { ExitCode::SUCCESS })
}

/// `fleet run --dry-run --format json`.
#[derive(serde::Serialize)]
struct PlanJson<'a> {
    targets: &'a [fleet::TargetPlan],
}

fn print_summary(report: &FleetReport) {
    let count = |outcome: TargetOutcome| report.targets.iter().filter(|t| t.outcome == outcome).count();
    out(&format!(
        "fleet: {} target{}: {} migrated, {} already up to date, {} failed, {} not run ({:.1}s)",
        report.targets.len(),
        if report.targets.len() == 1 { "" } else { "s" },
        count(TargetOutcome::Applied),
        count(TargetOutcome::UpToDate),
        count(TargetOutcome::Failed),
        count(TargetOutcome::NotRun),
        report.duration_ms as f64 / 1000.0
    ));
    print_histogram(&report.histogram());
    let failed: Vec<_> = report.failed().collect();
    if !failed.is_empty() {
        out("failed:");
        for target in failed {
            out(&format!("  {} ({}): {}", target.name, target.target, target.error.as_deref().unwrap_or("unknown error")));
        }
    }
    if let Some(reason) = &report.stopped {
        out(&format!("stopped: {reason}; `cargo anonmigrate fleet run` again continues where this run stopped"));
    }
}

/// Renders fleet events: on a terminal one live line (done / failed / running, elapsed) on stderr; otherwise, in
/// text mode, one line per finished target on stdout. JSON mode prints only the final document.
struct FleetPrinter {
    format: Format,
    live: bool,
    started: Instant,
    total: usize,
    done: usize,
    failed: usize,
    running: usize,
}

impl FleetPrinter {
    fn new(format: Format, total: usize) -> FleetPrinter {
        use std::io::IsTerminal;
        FleetPrinter {
            format,
            live: std::io::stderr().is_terminal() && std::env::var_os("TERM").is_some_and(|t| t != "dumb"),
            started: Instant::now(),
            total,
            done: 0,
            failed: 0,
            running: 0,
        }
    }

    fn redraw(&self) {
        if self.live {
            let _ = write!(
                std::io::stderr().lock(),
                "\r\x1b[2Kfleet: {} of {} done, {} failed, {} running, {:.1}s elapsed",
                self.done,
                self.total,
                self.failed,
                self.running,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn clear(&self) {
        if self.live {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

impl FleetObserver for FleetPrinter {
    fn event(&mut self, event: FleetEvent) {
        match event {
            FleetEvent::Prepared { what } => {
                self.clear();
                note(&format!("created {what}"));
            }
            FleetEvent::Phase { canary, targets, jobs } => {
                self.clear();
                if canary {
                    note(&format!("canary: {targets} target{} first, one at a time", if targets == 1 { "" } else { "s" }));
                } else {
                    note(&format!("migrating {targets} target{}, {jobs} at a time", if targets == 1 { "" } else { "s" }));
                }
            }
            FleetEvent::TargetStarted { .. } => self.running += 1,
            FleetEvent::TargetFinished { report } => {
                self.running = self.running.saturating_sub(1);
                self.done += 1;
                if report.outcome == TargetOutcome::Failed {
                    self.failed += 1;
                }
                if self.format == Format::Text && !self.live {
                    let line = match report.outcome {
                        TargetOutcome::Failed => format!(
                            "FAILED   {}  {}",
                            report.name,
                            first_line(report.error.as_deref().unwrap_or("unknown error"))
                        ),
                        TargetOutcome::Applied => format!(
                            "migrated {}  {} -> {} ({} migration{}, {} ms)",
                            report.name,
                            report.version_before.as_deref().unwrap_or("none"),
                            report.version_after.as_deref().unwrap_or("none"),
                            report.applied.len(),
                            if report.applied.len() == 1 { "" } else { "s" },
                            report.duration_ms
                        ),
                        TargetOutcome::UpToDate | TargetOutcome::NotRun => format!(
                            "ok       {}  up to date at {}",
                            report.name,
                            report.version_after.as_deref().unwrap_or("none")
                        ),
                    };
                    out(&line);
                }
            }
            FleetEvent::Stopping { reason } => {
                self.clear();
                note(&format!("stopping: {reason}"));
            }
        }
        self.redraw();
    }
}

fn check(ctx: &mut Context, args: &FleetCheckArgs) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain()?;
    let targets = targets(ctx, &args.targets)?;
    let jobs = jobs(ctx, &args.targets);
    let checks = fleet::check::check(&ctx.workspace, &chain, &targets, jobs, &mut ctx.printer)?;
    if ctx.format == Format::Json {
        json(&serde_json::json!({ "targets": checks }))?;
    } else {
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in &checks {
            match (&check.section, &check.error) {
                (Some(section), _) => {
                    let verdict = if check.passed() { "ok  " } else { "FAIL" };
                    out(&format!("{verdict}  {:width$}  {}", check.name, section.summary));
                    for finding in &section.findings {
                        out(&format!("        {}", finding.message));
                    }
                }
                (None, error) => out(&format!("FAIL  {:width$}  cannot be read: {}", check.name, first_line(error.as_deref().unwrap_or("")))),
            }
        }
        let failed = checks.iter().filter(|c| !c.passed()).count();
        out(&format!(
            "{} target{}: {} match the migrations, {failed} differ or are behind{}",
            checks.len(),
            if checks.len() == 1 { "" } else { "s" },
            checks.len() - failed,
            if failed > 0 {
                "; turn a deliberate change into a migration (`cargo anonmigrate generate NAME`) or undo it in that database; pending migrations: `cargo anonmigrate fleet run`"
            } else {
                ""
            }
        ));
    }
    if checks.iter().any(|c| c.error.is_some()) {
        return Ok(ExitCode::from(exit::FLEET_FAILED));
    }
    if checks.iter().any(|c| !c.passed()) {
        return Ok(ExitCode::from(exit::CHECK_DATABASE));
    }
    Ok(ExitCode::SUCCESS)
}
