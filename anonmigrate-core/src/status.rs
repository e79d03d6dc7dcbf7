//! Where the database stands relative to the chain on disk: a pure function of the chain and the bookkeeping
//! rows, shared by `status`, `history`, `run` (its safety checks) and `--dry-run`.

use std::collections::{HashMap, HashSet};

use anonmigrate_chain::{Chain, Migration, Rename};
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

/// An applied record whose migration is on disk under a new version (`merge` renumbered it on another branch):
/// same checksum, so `run` moves the record to the new version instead of applying the migration again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renumber {
    /// The version the database applied it under.
    pub from: String,
    pub to: String,
    pub dir_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub entries: Vec<Entry>,
    /// Applied, not on disk, and not explained by [`Status::renumber`].
    pub missing: Vec<MissingMigration>,
    /// Records `run` moves to a new version before applying anything (their entries still show as pending).
    pub renumber: Vec<Renumber>,
    /// Newest applied version.
    pub current_version: Option<String>,
}

/// Applied records whose migration moved to a new version: a migration with no record of its own, the same
/// checksum, and either a `renamed` line of the lock file from the record's version, or (when no migration on
/// disk has the record's version any more) the same name, as after a directory renamed by hand. A record whose
/// version is on disk with other content (both branches generated the same version, `merge` moved theirs) needs
/// the `renamed` line. Only one-to-one matches count: two identical files are never guessed between.
pub fn renumbering(chain: &Chain, rows: &[AppliedRow], renames: &[Rename]) -> Vec<Renumber> {
    let recorded: HashSet<&str> = rows.iter().map(|r| r.version.as_str()).collect();
    let unrecorded: Vec<&Migration> = chain.migrations.iter().filter(|m| !recorded.contains(m.version.as_str())).collect();
    if unrecorded.is_empty() {
        return Vec::new();
    }
    let on_disk: HashMap<&str, &Migration> = chain.migrations.iter().map(|m| (m.version.as_str(), m)).collect();
    let mut found: Vec<Renumber> = Vec::new();
    for row in rows.iter().filter(|r| r.is_applied()) {
        let Some(checksum) = &row.checksum else { continue };
        let same_version = on_disk.get(row.version.as_str());
        if same_version.is_some_and(|m| &m.checksum == checksum) {
            continue;
        }
        let matches: Vec<&&Migration> = unrecorded
            .iter()
            .filter(|m| &m.checksum == checksum)
            .filter(|m| {
                renames.iter().any(|r| r.from == row.version && r.to == m.version)
                    || (same_version.is_none() && row.name.as_deref() == Some(m.name.as_str()))
            })
            .collect();
        if let [migration] = matches.as_slice() {
            found.push(Renumber { from: row.version.clone(), to: migration.version.clone(), dir_name: migration.dir_name.clone() });
        }
    }
    // Two records claiming one migration: neither is guessed.
    let claimed = |to: &str| found.iter().filter(|r| r.to == to).count();
    let unique: Vec<Renumber> = found.iter().filter(|r| claimed(&r.to) == 1).cloned().collect();
    unique
}

impl Status {
    pub fn compute(chain: &Chain, rows: &[AppliedRow]) -> Status {
        Status::compute_with(chain, rows, &[])
    }

    /// [`Status::compute`], with the lock file's record of versions `merge` changed.
    pub fn compute_with(chain: &Chain, rows: &[AppliedRow], renames: &[Rename]) -> Status {
        let renumber = renumbering(chain, rows, renames);
        // Records about to move are judged where they are going: their entries show as pending (with the
        // renumbering), nothing is missing, and they do not make the migrations around them out of order.
        let kept: Vec<AppliedRow>;
        let rows = if renumber.is_empty() {
            rows
        } else {
            kept = rows.iter().filter(|r| renumber.iter().all(|n| n.from != r.version)).cloned().collect();
            &kept
        };
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
            renumber,
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
