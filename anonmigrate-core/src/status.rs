//! Where the database stands relative to the chain on disk: a pure function of the chain and the bookkeeping
//! rows, shared by `status`, `history`, `run` (its safety checks) and `--dry-run`.

use std::collections::{HashMap, HashSet};

use anonmigrate_chain::{Chain, Migration};
use serde::Serialize;

use crate::bookkeeping::AppliedRow;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MigrationState {
    Applied {
        run_on: String,
        /// `None` when no checksum was recorded (applied by diesel_cli or another tool).
        recorded_checksum: Option<String>,
        changed: bool,
    },
    /// A non-transactional migration that stopped part-way.
    Partial { statements_done: i32, statements_total: i32 },
    Pending { out_of_order: bool },
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub version: String,
    pub name: String,
    pub dir_name: String,
    #[serde(flatten)]
    pub state: MigrationState,
}

/// Applied in the database but not on disk.
#[derive(Debug, Clone, Serialize)]
pub struct MissingMigration {
    pub version: String,
    pub name: Option<String>,
    pub run_on: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub entries: Vec<Entry>,
    pub missing: Vec<MissingMigration>,
    /// Newest applied version.
    pub current_version: Option<String>,
}

impl Status {
    pub fn compute(chain: &Chain, rows: &[AppliedRow]) -> Status {
        let newest_applied = rows.iter().filter(|r| r.is_applied()).map(|r| r.version.as_str()).max();
        // Lookups by version keep this linear: `status` on a long chain pays for every quadratic scan.
        let mut row_of: HashMap<&str, &AppliedRow> = HashMap::with_capacity(rows.len());
        for row in rows {
            row_of.entry(row.version.as_str()).or_insert(row);
        }
        let on_disk: HashSet<&str> = chain.migrations.iter().map(|m| m.version.as_str()).collect();
        let entries = chain
            .migrations
            .iter()
            .map(|m| Entry {
                version: m.version.clone(),
                name: m.name.clone(),
                dir_name: m.dir_name.clone(),
                state: state_of(m, row_of.get(m.version.as_str()).copied(), newest_applied),
            })
            .collect();
        let missing = rows
            .iter()
            .filter(|r| r.is_applied() && !on_disk.contains(r.version.as_str()))
            .map(|r| MissingMigration {
                version: r.version.clone(),
                name: r.name.clone(),
                run_on: r.run_on.clone().unwrap_or_default(),
            })
            .collect();
        Status {
            entries,
            missing,
            current_version: newest_applied.map(str::to_owned),
        }
    }

    pub fn pending(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, MigrationState::Pending { .. } | MigrationState::Partial { .. }))
    }

    pub fn applied(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| matches!(e.state, MigrationState::Applied { .. }))
    }

    pub fn changed(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, MigrationState::Applied { changed: true, .. }))
    }

    pub fn out_of_order(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, MigrationState::Pending { out_of_order: true }))
    }

    pub fn is_up_to_date(&self) -> bool {
        self.pending().next().is_none() && self.missing.is_empty() && self.changed().next().is_none()
    }
}

fn state_of(migration: &Migration, row: Option<&AppliedRow>, newest_applied: Option<&str>) -> MigrationState {
    match row {
        Some(row) if row.is_applied() => MigrationState::Applied {
            run_on: row.run_on.clone().unwrap_or_default(),
            recorded_checksum: row.checksum.clone(),
            changed: row.checksum.as_ref().is_some_and(|c| *c != migration.checksum),
        },
        Some(row) if row.statements_done.unwrap_or(0) > 0 => MigrationState::Partial {
            statements_done: row.statements_done.unwrap_or(0),
            statements_total: row.statements_total.unwrap_or(0),
        },
        _ => MigrationState::Pending {
            out_of_order: newest_applied.is_some_and(|newest| migration.version.as_str() < newest),
        },
    }
}
