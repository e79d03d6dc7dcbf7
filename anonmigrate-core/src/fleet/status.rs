//! `fleet status`: where each target stands (version, pending, partial, changed or missing migrations), read-only,
//! several targets at a time.

use anonmigrate_chain::Chain;
use serde::Serialize;

use super::Target;
use crate::db;
use crate::runner;
use crate::status::MigrationState;

/// One target's position: the JSON record of `fleet status --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    pub name: String,
    pub target: String,
    pub version: Option<String>,
    /// Migrations `run` would apply (partial ones included).
    pub pending: usize,
    /// Non-transactional migrations stopped part-way, as `dir_name (done/total)`.
    pub partial: Vec<String>,
    /// Applied migrations whose up.sql changed since.
    pub changed: Vec<String>,
    /// Applied migrations not on disk.
    pub missing: Vec<String>,
    /// Why the target could not be read (unreachable, missing database, ...).
    pub error: Option<String>,
}

impl TargetStatus {
    pub fn up_to_date(&self) -> bool {
        self.error.is_none() && self.pending == 0 && self.changed.is_empty() && self.missing.is_empty()
    }
}

/// Reads every target, `jobs` at a time, in target order.
pub fn status(targets: &[Target], chain: &Chain, jobs: usize) -> Vec<TargetStatus> {
    super::parallel_map(targets, jobs, |target| one(target, chain))
}

fn one(target: &Target, chain: &Chain) -> TargetStatus {
    let mut report = TargetStatus {
        name: target.name.clone(),
        target: target.url.describe(),
        version: None,
        pending: 0,
        partial: Vec::new(),
        changed: Vec::new(),
        missing: Vec::new(),
        error: None,
    };
    let read = db::connect(&target.url).and_then(|mut conn| runner::read_status(&mut conn, chain));
    match read {
        Ok((status, _)) => {
            report.pending = status.pending().count();
            report.partial = status
                .entries
                .iter()
                .filter_map(|e| match e.state {
                    MigrationState::Partial { statements_done, statements_total } => {
                        Some(format!("{} ({statements_done}/{statements_total} statements)", e.dir_name))
                    }
                    _ => None,
                })
                .collect();
            report.changed = status.changed().map(|e| e.dir_name.clone()).collect();
            report.missing = status.missing.iter().map(|m| m.version.clone()).collect();
            report.version = status.current_version;
        }
        Err(error) => report.error = Some(crate::database_url::redact_text(&error.to_string())),
    }
    report
}

/// One target's plan: the JSON record of `fleet run --dry-run --format json`.
#[derive(Debug, Serialize)]
pub struct TargetPlan {
    pub name: String,
    pub target: String,
    /// What `run` would do there (and why it would refuse, if it would); `None` when the target could not be read.
    pub plan: Option<runner::DryRun>,
    /// Why the target could not be read.
    pub error: Option<String>,
}

/// `fleet run --dry-run`: what `run` with `options` would do on each target, `jobs` at a time, in target order.
/// Read-only (one read-only transaction per target, no lock), like `run --dry-run`.
pub fn plan(targets: &[Target], chain: &Chain, options: &runner::RunOptions, jobs: usize) -> Vec<TargetPlan> {
    super::parallel_map(targets, jobs, |target| {
        let (plan, error) = match runner::dry_run(&target.url, chain, options) {
            Ok(plan) => (Some(plan), None),
            Err(error) => (None, Some(crate::database_url::redact_text(&error.to_string()))),
        };
        TargetPlan { name: target.name.clone(), target: target.url.describe(), plan, error }
    })
}
