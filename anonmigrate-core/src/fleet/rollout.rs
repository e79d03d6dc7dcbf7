//! `fleet run`: the canary targets one at a time, then the rest `jobs` at a time, each through [`runner::run`]
//! (migration lock, checksums, exactly-once, non-transactional resume). A failure stops scheduling once more than
//! `max_failures` targets failed (any canary failure at once); a stop request (Ctrl-C) stops scheduling too, and
//! targets in flight finish or roll back on their own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use anonmigrate_chain::Chain;
use serde::Serialize;

use super::{FleetEvent, FleetObserver, Target};
use crate::db;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::runner::{self, RunOptions};

#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// What each target's run does (the same options as `run`).
    pub run: RunOptions,
    pub jobs: usize,
    pub canary: usize,
    pub max_failures: usize,
    /// Created once in the shared schema of each schema-per-tenant database before any tenant runs.
    pub extensions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetOutcome {
    /// Migrations were applied.
    Applied,
    /// Nothing was pending.
    UpToDate,
    Failed,
    /// Not started: the rollout stopped first.
    NotRun,
}

/// One target's result: the JSON record of `fleet run --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub name: String,
    /// Where it is (`database ... on ...`, or `schema ... of database ...`), password-free.
    pub target: String,
    pub canary: bool,
    pub outcome: TargetOutcome,
    pub version_before: Option<String>,
    pub version_after: Option<String>,
    /// Directory names of the migrations applied by this run, in order.
    pub applied: Vec<String>,
    pub duration_ms: u128,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    /// A canary target failed: nothing else was touched.
    CanaryFailed,
    /// More than `max` targets failed.
    MaxFailures { failures: usize, max: usize },
    /// A stop was requested (Ctrl-C).
    Interrupted,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::CanaryFailed => f.write_str("a canary target failed, so no other target was started"),
            StopReason::MaxFailures { failures, max } => {
                write!(f, "{failures} target(s) failed, more than --max-failures {max}, so no new target was started")
            }
            StopReason::Interrupted => f.write_str("interrupted: no new target was started, the ones in flight finished"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub targets: Vec<TargetReport>,
    pub stopped: Option<StopReason>,
    pub duration_ms: u128,
}

impl FleetReport {
    pub fn failed(&self) -> impl Iterator<Item = &TargetReport> {
        self.targets.iter().filter(|t| t.outcome == TargetOutcome::Failed)
    }

    /// Every target ran and none failed.
    pub fn succeeded(&self) -> bool {
        self.stopped.is_none() && self.targets.iter().all(|t| matches!(t.outcome, TargetOutcome::Applied | TargetOutcome::UpToDate))
    }

    /// Targets per version after the run (targets that did not run: where they were, unknown).
    pub fn histogram(&self) -> std::collections::BTreeMap<String, usize> {
        super::histogram(self.targets.iter().filter(|t| t.outcome != TargetOutcome::NotRun).map(|t| t.version_after.as_deref()))
    }
}

/// Migrates every target. Errors are reserved for what stops the fleet before any target runs (the shared
/// extensions); each target's failure is in its report.
pub fn run(
    targets: &[Target],
    chain: &Chain,
    options: &FleetOptions,
    stop: &AtomicBool,
    observer: &mut dyn FleetObserver,
) -> Result<FleetReport> {
    let started = Instant::now();
    prepare_shared_schemas(targets, &options.extensions, observer)?;
    let mut reports: Vec<Option<TargetReport>> = vec![None; targets.len()];
    let canary = options.canary.min(targets.len());
    let mut stopped = None;

    if canary > 0 {
        observer.event(FleetEvent::Phase { canary: true, targets: canary, jobs: 1 });
        for (index, target) in targets[..canary].iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                stopped = Some(StopReason::Interrupted);
                break;
            }
            observer.event(FleetEvent::TargetStarted { name: target.name.clone() });
            let report = run_one(target, chain, &options.run, true);
            let failed = report.outcome == TargetOutcome::Failed;
            observer.event(FleetEvent::TargetFinished { report: report.clone() });
            reports[index] = Some(report);
            if failed {
                stopped = Some(StopReason::CanaryFailed);
                break;
            }
        }
        if let Some(reason) = stopped {
            observer.event(FleetEvent::Stopping { reason });
        }
    }

    if stopped.is_none() && canary < targets.len() {
        let rest = &targets[canary..];
        let jobs = options.jobs.clamp(1, rest.len());
        observer.event(FleetEvent::Phase { canary: false, targets: rest.len(), jobs });
        let (rest_reports, reason) = run_parallel(rest, chain, options, jobs, stop, observer);
        for (offset, report) in rest_reports.into_iter().enumerate() {
            reports[canary + offset] = report;
        }
        stopped = reason;
    }

    let targets = targets
        .iter()
        .zip(reports)
        .enumerate()
        .map(|(index, (target, report))| report.unwrap_or_else(|| not_run(target, index < canary)))
        .collect();
    Ok(FleetReport { targets, stopped, duration_ms: started.elapsed().as_millis() })
}

enum Message {
    Started(String),
    Finished(usize, TargetReport),
}

/// Workers take the next target until none is left or scheduling stops; events travel to this thread, which owns
/// the observer (it need not be `Send`).
fn run_parallel(
    targets: &[Target],
    chain: &Chain,
    options: &FleetOptions,
    jobs: usize,
    stop: &AtomicBool,
    observer: &mut dyn FleetObserver,
) -> (Vec<Option<TargetReport>>, Option<StopReason>) {
    let next = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    let halted: Mutex<Option<StopReason>> = Mutex::new(None);
    let mut reports: Vec<Option<TargetReport>> = vec![None; targets.len()];
    let (sender, receiver) = mpsc::channel::<Message>();
    let mut announced = false;
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let sender = sender.clone();
            let (next, failures, halted) = (&next, &failures, &halted);
            scope.spawn(move || {
                loop {
                    {
                        let mut halted = halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if halted.is_none() && stop.load(Ordering::SeqCst) {
                            *halted = Some(StopReason::Interrupted);
                        }
                        if halted.is_some() {
                            break;
                        }
                    }
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(target) = targets.get(index) else { break };
                    let _ = sender.send(Message::Started(target.name.clone()));
                    let report = run_one(target, chain, &options.run, false);
                    if report.outcome == TargetOutcome::Failed {
                        let failed = failures.fetch_add(1, Ordering::SeqCst) + 1;
                        if failed > options.max_failures {
                            let mut halted = halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            halted.get_or_insert(StopReason::MaxFailures { failures: failed, max: options.max_failures });
                        }
                    }
                    let _ = sender.send(Message::Finished(index, report));
                }
            });
        }
        drop(sender);
        for message in receiver {
            match message {
                Message::Started(name) => observer.event(FleetEvent::TargetStarted { name }),
                Message::Finished(index, report) => {
                    observer.event(FleetEvent::TargetFinished { report: report.clone() });
                    reports[index] = Some(report);
                }
            }
            if !announced && let Some(reason) = *halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
                announced = true;
                observer.event(FleetEvent::Stopping { reason });
            }
        }
    });
    let mut reason = *halted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // A failure count may have been raised by the last target to finish, when nothing was left to stop anyway.
    if reports.iter().all(Option::is_some) && matches!(reason, Some(StopReason::MaxFailures { .. })) {
        reason = None;
    }
    if !announced && let Some(reason) = reason {
        observer.event(FleetEvent::Stopping { reason });
    }
    (reports, reason)
}

fn not_run(target: &Target, canary: bool) -> TargetReport {
    TargetReport {
        name: target.name.clone(),
        target: target.url.describe(),
        canary,
        outcome: TargetOutcome::NotRun,
        version_before: None,
        version_after: None,
        applied: Vec::new(),
        duration_ms: 0,
        error: None,
    }
}

/// One target through the single-database runner, its failure captured in the report.
fn run_one(target: &Target, chain: &Chain, options: &RunOptions, canary: bool) -> TargetReport {
    let started = Instant::now();
    let mut applied: Vec<String> = Vec::new();
    let result = runner::run(&target.url, chain, options, &mut |event: Event| {
        if let Event::Applied { dir_name, .. } = event {
            applied.push(dir_name);
        }
    });
    let duration_ms = started.elapsed().as_millis();
    let mut report = TargetReport {
        name: target.name.clone(),
        target: target.url.describe(),
        canary,
        outcome: TargetOutcome::UpToDate,
        version_before: None,
        version_after: None,
        applied,
        duration_ms,
        error: None,
    };
    match result {
        Ok(run) => {
            report.version_before = run.version_before;
            report.version_after = run.applied.last().map(|a| a.version.clone()).or_else(|| report.version_before.clone());
            if !run.applied.is_empty() {
                report.outcome = TargetOutcome::Applied;
            }
        }
        Err(error) => {
            report.outcome = TargetOutcome::Failed;
            report.error = Some(fleet_advice(&crate::database_url::redact_text(&error.to_string())));
            // Where the failure left it: read again (the runner's own connection may be gone).
            report.version_after = current_version(target, chain);
            report.version_before = match report.applied.first() {
                // The version before the first migration this run applied.
                Some(first) => chain
                    .migrations
                    .iter()
                    .position(|m| &m.dir_name == first)
                    .and_then(|i| i.checked_sub(1))
                    .map(|i| chain.migrations[i].version.clone()),
                None => report.version_after.clone(),
            };
        }
    }
    report
}

fn current_version(target: &Target, chain: &Chain) -> Option<String> {
    let mut conn = db::connect(&target.url).ok()?;
    runner::read_status(&mut conn, chain).ok()?.0.current_version
}

/// Schema-per-tenant: the extensions the chain needs are created once per database, in its first shared schema,
/// before any tenant runs, so each tenant's `CREATE EXTENSION IF NOT EXISTS` finds them (an extension lives in one
/// schema per database, and tenants running side by side would race to create it).
fn prepare_shared_schemas(targets: &[Target], extensions: &[String], observer: &mut dyn FleetObserver) -> Result<()> {
    let mut done = std::collections::HashSet::new();
    for target in targets {
        let Some(tenant) = target.url.tenant() else { continue };
        let Some(shared) = tenant.shared.first() else { continue };
        let database = target.url.without_tenant();
        if extensions.is_empty() || !done.insert((database.server(), database.database())) {
            continue;
        }
        let mut conn = db::connect(&database)?;
        for extension in extensions {
            let sql = format!("CREATE EXTENSION IF NOT EXISTS {} SCHEMA {}", db::quote_ident(extension), db::quote_ident(shared));
            db::execute(&mut conn, &sql).map_err(|error| Error::Postgres {
                context: format!(
                    "creating extension `{extension}` in the shared schema `{shared}` of {} (before any tenant runs; nothing else was changed)",
                    database.describe()
                ),
                error,
            })?;
        }
        observer.event(FleetEvent::Prepared {
            what: format!("extension(s) {} in schema `{shared}` of {}", extensions.join(", "), database.describe()),
        });
    }
    Ok(())
}

/// A target's error as the runner words it, with its advice pointed at the fleet: the runner names `cargo
/// anonmigrate run` (to run again, or as what resumes a migration stopped half-way), which would reach one
/// database (the configured one), not this target.
fn fleet_advice(text: &str) -> String {
    text.replace("run `cargo anonmigrate run` again", "run `cargo anonmigrate fleet run` again (targets at head are skipped)")
        .replace("`cargo anonmigrate run`", "`cargo anonmigrate fleet run`")
}
