//! Fleets: the same chain on many targets (a database per tenant, a schema per tenant, shards on several servers),
//! each through the single-database runner with all its guarantees, several at a time, canary first, one target's
//! failure kept to that target. The library never prints: progress goes through [`FleetObserver`].

pub mod check;
pub mod rollout;
pub mod select;
pub mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::database_url::DatabaseUrl;

pub use rollout::{FleetOptions, FleetReport, StopReason, TargetOutcome, TargetReport, run};
pub use select::{Selection, select};
pub use status::{TargetPlan, TargetStatus, plan, status};

/// `[workspace.metadata.anonmigrate.fleet]`: the same choices as the `fleet` flags, all optional; a flag wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FleetSettings {
    /// SQL `LIKE` pattern: every database of the server whose name matches is a target.
    pub databases_like: Option<String>,
    /// SQL `LIKE` pattern: every schema of the database whose name matches is a target.
    pub schemas_like: Option<String>,
    /// A file of target URLs, one a line (`#` comments), relative to the workspace root.
    pub targets: Option<PathBuf>,
    /// A query on the database URL returning one text column of URLs or database names.
    pub targets_query: Option<String>,
    /// Schemas after the tenant's in `search_path` (default `["public"]`); extensions are created in the first.
    pub shared_schemas: Option<Vec<String>>,
    /// Targets migrated at a time.
    pub jobs: Option<usize>,
    /// The first N targets run first, one at a time; any failure among them stops the rollout.
    pub canary: Option<usize>,
    /// Failures tolerated before no new target starts (default 0).
    pub max_failures: Option<usize>,
}

/// One database (or one schema of a database) the chain is applied to.
#[derive(Debug, Clone)]
pub struct Target {
    /// How reports name it: the database or schema name, with the server when names alone are ambiguous.
    pub name: String,
    pub url: DatabaseUrl,
}

/// The default number of targets migrated at a time: a migration mostly waits on the server, so twice the
/// cores keeps a local server busy; capped so a large fleet does not take a server's connection slots.
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    (cores * 2).clamp(1, 16)
}

/// Targets per version (`none` for nothing applied), in version order.
pub fn histogram<'a>(versions: impl IntoIterator<Item = Option<&'a str>>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for version in versions {
        *counts.entry(version.unwrap_or("none").to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Runs `work` on every item with at most `jobs` at a time, results in item order. Scoped threads rather than an
/// async runtime: each target's work is blocking libpq calls, and `jobs` is small.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], jobs: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<R>>> = std::sync::Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(index) else { break };
                    let result = work(item);
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|r| r.expect("every item was worked on"))
        .collect()
}

/// What a fleet command reports while it works; the CLI renders it (a live line on a terminal).
#[derive(Debug, Clone)]
pub enum FleetEvent {
    /// Something done once before the targets (an extension created in the shared schema).
    Prepared { what: String },
    /// A phase begins: the canary targets (one at a time) or the rest (`jobs` at a time).
    Phase { canary: bool, targets: usize, jobs: usize },
    TargetStarted { name: String },
    TargetFinished { report: TargetReport },
    /// No new target starts from now on; those in flight finish.
    Stopping { reason: StopReason },
}

pub trait FleetObserver {
    fn event(&mut self, event: FleetEvent);
}

impl<F: FnMut(FleetEvent)> FleetObserver for F {
    fn event(&mut self, event: FleetEvent) {
        self(event)
    }
}
