//! `check`: the CI gate. One pass that answers "is anything off?" and says what:
//!
//! 1. the lock file matches the migrations on disk (the runner's own check);
//! 2. each configured schema.rs (generated or hand-maintained) matches a fresh replay of the chain, compared
//!    structurally ([`schema::parse`] + [`schema::compare`]), and the build-script drift gate agrees;
//! 3. every migration's down.sql undoes its up.sql, in three passes over one scratch database: the chain up (what
//!    each up.sql changes is recorded, object by object), then down again newest first (each down.sql must give
//!    back the state before its up.sql; the last one must leave what was there before the first migration: the
//!    "revert all" check, on the whole schema), then up again (which must end in the same schema as the first
//!    time). Every broken down.sql is named with what differs, and the pass goes on from a correct state;
//! 4. optionally, the live database has the schema the chain gives at its version (no drift made by hand).
//!
//! Snapshots are [`fingerprint`]s (indexes, constraints, types, functions, triggers, ...). The migrations are
//! applied and reverted by the runner (`run`/`revert` with one step), so they run exactly as in production.
//! Returns a [`Report`]; the CLI renders it and picks the exit code.

use std::path::{Path, PathBuf};

use anonmigrate_chain::Chain;
use serde::Serialize;

use crate::config::Workspace;
use crate::database_url::DatabaseUrl;
use crate::error::{Error, Result};
use crate::events::{Event, Observer};
use crate::runner::{self, RevertOptions, RevertScope, RunOptions};
use crate::schema::compare::{self, Difference};
use crate::schema::config::{SchemaConfig, Settings};
use crate::schema::fingerprint::{self, Change, Fingerprint, Object};
use crate::schema::model::Catalog;
use crate::schema::parse::parse_schema_rs;
use crate::schema::touched::{Delta, Mark, Tracker};
use crate::schema::{render, scratch::ScratchDatabase};

/// What to check besides the lock file.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Compare schema.rs with the migrations.
    pub schema: bool,
    /// Compare this file instead of the configured ones (with the first section's settings).
    pub schema_file: Option<PathBuf>,
    /// Check every down.sql, and that reverting everything leaves an empty schema.
    pub down: bool,
    /// Compare this live database with the chain.
    pub database: Option<DatabaseUrl>,
}

/// The checks, in report order (also the order in which a failure picks the CLI's exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SectionKind {
    LockFile,
    Schema,
    Down,
    RevertAll,
    Database,
    Lint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Passed, with something worth saying (no lock file, a migration without down.sql).
    Warn,
    Fail,
    /// Not run: turned off, or it needs a check that failed first.
    Skipped,
}

/// One problem, as a sentence, with the structured difference behind it for `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_rs: Option<Difference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_object: Option<Change>,
}

impl Finding {
    pub fn text(message: impl Into<String>) -> Finding {
        Finding {
            message: message.into(),
            schema_rs: None,
            database_object: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub kind: SectionKind,
    /// `lock file`, `schema.rs (src/schema.rs)`, `down.sql`, ...
    pub title: String,
    pub outcome: Outcome,
    /// One line: what was checked and the verdict.
    pub summary: String,
    pub findings: Vec<Finding>,
    /// What to run or do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Section {
    pub fn new(kind: SectionKind, title: impl Into<String>, outcome: Outcome, summary: impl Into<String>) -> Section {
        Section {
            kind,
            title: title.into(),
            outcome,
            summary: summary.into(),
            findings: Vec::new(),
            fix: None,
        }
    }

    pub fn skipped(kind: SectionKind, title: impl Into<String>, why: impl Into<String>) -> Section {
        Section::new(kind, title, Outcome::Skipped, why)
    }

    pub fn failed(kind: SectionKind, title: impl Into<String>, summary: impl Into<String>, findings: Vec<Finding>, fix: impl Into<String>) -> Section {
        Section {
            findings,
            fix: Some(fix.into()),
            ..Section::new(kind, title, Outcome::Fail, summary)
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub sections: Vec<Section>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.sections.iter().all(|s| s.outcome != Outcome::Fail)
    }

    /// The first failed section, in report order.
    pub fn first_failure(&self) -> Option<&Section> {
        self.sections.iter().find(|s| s.outcome == Outcome::Fail)
    }
}

const LOCK_FIX: &str = "`cargo anonmigrate lock` if the change is intended (and commit migrations/anonmigrate.lock); after a git merge, `cargo anonmigrate merge`";
const SCHEMA_FIX: &str = "`cargo anonmigrate schema` regenerates schema.rs from the migrations, then commit it with migrations/anonmigrate.lock; a hand-maintained schema.rs must be edited to match";
const REVERT_ALL_FIX: &str =
    "make each down.sql drop everything its up.sql creates (listed above); `cargo anonmigrate redo` on a development database tries one";

/// Runs every check asked for. Errors are reserved for what stops the checks themselves (no server, a migration
/// whose up.sql fails); everything the checks find is in the report.
pub fn check(workspace: &Workspace, chain: &Chain, options: &CheckOptions, observer: &mut dyn Observer) -> Result<Report> {
    let mut report = Report::default();
    let lock = lock_file_section(chain);
    let lock_ok = lock.outcome != Outcome::Fail;
    report.sections.push(lock);

    let schema_files = if options.schema { schema_files(workspace, options)? } else { Vec::new() };
    let replay_needed = !schema_files.is_empty() || options.down || options.database.is_some();
    if !lock_ok {
        let why = "needs the lock file to match the migrations (the runner refuses otherwise); fix that first";
        if options.schema {
            report.sections.push(Section::skipped(SectionKind::Schema, "schema.rs", why));
        }
        if options.down {
            report.sections.push(Section::skipped(SectionKind::Down, "down.sql", why));
            report.sections.push(Section::skipped(SectionKind::RevertAll, "revert all", why));
        }
        if options.database.is_some() {
            report.sections.push(Section::skipped(SectionKind::Database, "live database", why));
        }
        return Ok(report);
    }
    let no_schema_file = (options.schema && schema_files.is_empty()).then(|| {
        Section::skipped(
            SectionKind::Schema,
            "schema.rs",
            "no schema file is configured ([print_schema] `file` in diesel.toml, or `schema-file`); pass --schema-file PATH to compare a hand-maintained one",
        )
    });
    if !replay_needed {
        report.sections.extend(no_schema_file);
        return Ok(report);
    }

    let server = crate::target::server(workspace, Some(chain), observer)?;
    let live = match &options.database {
        Some(url) => Some(live_state(url, chain)?),
        None => None,
    };
    let replayer = Replayer::new(workspace, chain)?;
    let mut stops: Vec<usize> = Vec::new();
    if let Some(Some(Some(index))) = live.as_ref().map(|l| l.compare_at) {
        stops.push(index);
    }
    if options.down
        && let Some(index) = chain.migrations.iter().rposition(|m| crate::plan::irreversible(m).is_some())
    {
        stops.push(index);
    }

    // One scratch database for the down.sql pass and everything after it, unless a down.sql broke the state.
    // Without the down.sql pass and snapshots along the way, a copy of the chain's template does.
    let from_template = !options.down && stops.is_empty() && !matches!(live.as_ref().map(|l| l.compare_at), Some(Some(None)));
    let (mut scratch, empty) = if from_template {
        let cache = crate::schema::template_cache(workspace, &server)?;
        (cache.migrated(chain, crate::schema::scratch::PREFIX, observer)?.0, Fingerprint::default())
    } else {
        let scratch = ScratchDatabase::create(&server)?;
        let empty = fingerprint::read_url(&scratch.url)?;
        (scratch, empty)
    };
    let down = if options.down {
        observer.event(Event::Notice(format!(
            "checking the down.sql of {} migration(s) on scratch database {}",
            chain.migrations.len(),
            scratch.name()
        )));
        Some(replayer.down_pass(&server, &mut scratch, &stops, &empty, observer)?)
    } else {
        None
    };
    // After the down.sql pass the scratch database holds the whole chain (restored after each broken down.sql).
    let snapshots = match &down {
        Some(pass) => pass.snapshots.clone(),
        None => replayer.replay_with_stops(&scratch.url, &stops)?,
    };
    let schemas = schema_pg_schemas(&schema_files);
    let (catalog, head) = fingerprint::read_with_catalog(&scratch.url, &schemas)?;
    drop(scratch);

    for (path, settings) in &schema_files {
        report.sections.push(schema_section(workspace, chain, path, settings, &catalog)?);
    }
    report.sections.extend(no_schema_file);
    if let Some(pass) = down {
        let (down_section, revert_all) = replayer.finish_down_pass(pass, &head, &server, &empty)?;
        report.sections.push(down_section);
        report.sections.push(revert_all);
    }

    if let Some(live) = live {
        let reference = match live.compare_at {
            None => &head,
            Some(None) => &empty,
            Some(Some(index)) => snapshot_at(&snapshots, index).unwrap_or(&head),
        };
        report.sections.push(database_section(live, reference));
    }
    Ok(report)
}

/// The runner's lock-file check, as a section.
fn lock_file_section(chain: &Chain) -> Section {
    let mut warnings = Vec::new();
    let result = runner::check_lock_file(chain, &mut |event: Event| {
        if let Event::Warning(message) = event {
            warnings.push(message);
        }
    });
    let title = "lock file";
    match result {
        Err(error) => Section::failed(
            SectionKind::LockFile,
            title,
            "migrations/anonmigrate.lock does not match the migrations on disk",
            vec![Finding::text(error.to_string())],
            LOCK_FIX,
        ),
        Ok(()) if !warnings.is_empty() => Section {
            findings: warnings.into_iter().map(Finding::text).collect(),
            ..Section::new(SectionKind::LockFile, title, Outcome::Warn, "no lock file")
        },
        Ok(()) => Section::new(
            SectionKind::LockFile,
            title,
            Outcome::Ok,
            format!("matches the {} migration(s) on disk", chain.migrations.len()),
        ),
    }
}

/// The schema files to compare, with the settings each is rendered with.
fn schema_files(workspace: &Workspace, options: &CheckOptions) -> Result<Vec<(PathBuf, Settings)>> {
    let config = SchemaConfig::load(workspace)?;
    if let Some(path) = &options.schema_file {
        let settings = config.sections.first().map(|s| s.settings.clone()).unwrap_or_default();
        return Ok(vec![(workspace.root.join(path), settings)]);
    }
    Ok(config.files().map(|s| (s.file.clone().expect("files() have a file"), s.settings.clone())).collect())
}

fn schema_pg_schemas(files: &[(PathBuf, Settings)]) -> Vec<String> {
    let mut schemas: Vec<String> = files.iter().map(|(_, s)| s.pg_schema().to_owned()).collect();
    if schemas.is_empty() {
        schemas.push("public".into());
    }
    schemas.sort();
    schemas.dedup();
    schemas
}

fn shown_path(workspace: &Workspace, path: &Path) -> String {
    path.strip_prefix(&workspace.root).unwrap_or(path).display().to_string()
}

/// One schema file against the replayed chain: the structural diff, then the build-script drift gate (only for a
/// file the lock file records as generated).
fn schema_section(workspace: &Workspace, chain: &Chain, path: &Path, settings: &Settings, catalog: &Catalog) -> Result<Section> {
    let shown = shown_path(workspace, path);
    let title = format!("schema.rs ({shown})");
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Section::failed(SectionKind::Schema, title, format!("{shown} does not exist"), Vec::new(), SCHEMA_FIX));
        }
        Err(e) => return Err(Error::Config(format!("cannot read `{}`: {e}", path.display()))),
    };
    let committed = match parse_schema_rs(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            return Ok(Section::failed(
                SectionKind::Schema,
                title,
                format!("{shown} cannot be read as a diesel schema"),
                vec![Finding::text(format!("{shown}: {e}"))],
                SCHEMA_FIX,
            ));
        }
    };
    let rendered = render::render(catalog, settings)?;
    let expected = parse_schema_rs(&rendered.text)
        .map_err(|e| Error::Config(format!("the schema rendered from the migrations does not parse ({e}); please report this")))?;
    let mut findings: Vec<Finding> = compare::compare(&committed, &expected)
        .into_iter()
        .map(|d| Finding {
            message: d.to_string(),
            schema_rs: Some(d),
            database_object: None,
        })
        .collect();
    let structural = findings.len();
    let gate = anonmigrate_chain::drift::Gate::new(chain.dir.clone(), path.to_path_buf()).check()?;
    let generated = !gate.findings.iter().any(|f| matches!(f, anonmigrate_chain::drift::Finding::NeverGenerated))
        && drift_gate_configured(&workspace.root);
    if generated {
        findings.extend(gate.findings.iter().map(|f| Finding::text(format!("build-script drift gate: {f}"))));
    }
    if findings.is_empty() {
        let how = if generated { "same tables, columns, types and keys; the drift gate agrees" } else { "same tables, columns, types and keys" };
        return Ok(Section::new(SectionKind::Schema, title, Outcome::Ok, format!("matches the migrations ({how})")));
    }
    let summary = if structural > 0 {
        format!("{structural} difference(s) from the migrations")
    } else {
        "matches the migrations structurally, but the build-script drift gate would fail".to_owned()
    };
    Ok(Section::failed(SectionKind::Schema, title, summary, findings, SCHEMA_FIX))
}

/// Whether a build script of the project runs the drift gate (`anonmigrate_chain::drift::Gate`): only then can
/// `cargo build` fail on it, so only then does `check` report what the gate would say. Looks at `build.rs` files
/// up to three directories below the root, skipping `target` and hidden directories.
fn drift_gate_configured(root: &Path) -> bool {
    fn visit(dir: &Path, depth: usize) -> bool {
        if std::fs::read_to_string(dir.join("build.rs")).is_ok_and(|text| text.contains("drift::Gate")) {
            return true;
        }
        if depth == 0 {
            return false;
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let skip = name.starts_with('.') || name == "target" || name == "node_modules";
            !skip && entry.file_type().is_ok_and(|t| t.is_dir()) && visit(&entry.path(), depth - 1)
        })
    }
    visit(root, 3)
}

fn snapshot_at(snapshots: &[(usize, Fingerprint)], index: usize) -> Option<&Fingerprint> {
    snapshots.iter().find(|(i, _)| *i == index).map(|(_, f)| f)
}

/// Applies and reverts migrations of one chain on a scratch database, one step at a time, through the runner.
struct Replayer<'a> {
    chain: &'a Chain,
    run: RunOptions,
    revert: RevertOptions,
}

/// Where the down.sql pass stopped.
enum Broken {
    /// down.sql (or up.sql run again) failed with an error.
    Failed { migration: String, what: String, error: String },
    /// The state after a step differs from what it should be.
    Differs { migration: String, what: String, changes: Vec<Change> },
}

/// What the down.sql pass found before the final schema is read ([`Replayer::finish_down_pass`] adds the rest).
struct DownPass {
    /// Fingerprints after the migrations `check` asked for (see `stops`).
    snapshots: Vec<(usize, Fingerprint)>,
    /// Broken down.sql files (and up.sql run again), with the index of their migration.
    broken: Vec<(usize, Broken)>,
    without_down: Vec<(String, crate::plan::Irreversible)>,
    /// The whole schema after the first pass up: what the pass up again must end in.
    first_head: Fingerprint,
    /// What each up.sql changed in the first pass (index: migration), for the migrations the pass down reverts.
    deltas: Vec<Option<Delta>>,
    /// The revert-all section when the pass down reverted everything without a broken down.sql on the way.
    revert_all: Option<Section>,
}

impl<'a> Replayer<'a> {
    fn new(workspace: &Workspace, chain: &'a Chain) -> Result<Replayer<'a>> {
        let lock_timeout = workspace.run_lock_timeout()?;
        let ddl_lock_timeout = workspace.ddl_lock_timeout()?;
        Ok(Replayer {
            chain,
            run: RunOptions {
                lock_timeout,
                ddl_lock_timeout,
                ..RunOptions::default()
            },
            revert: RevertOptions { lock_timeout, ddl_lock_timeout, statement_timeout: None },
        })
    }

    fn up(&self, url: &DatabaseUrl, step: Option<usize>, to: Option<&str>) -> Result<()> {
        let options = RunOptions {
            step,
            to: to.map(str::to_owned),
            ..self.run.clone()
        };
        runner::run(url, self.chain, &options, &mut crate::events::Silent).map(drop)
    }

    fn down(&self, url: &DatabaseUrl, scope: RevertScope) -> Result<()> {
        runner::revert(url, self.chain, scope, &self.revert, &mut crate::events::Silent).map(drop)
    }

    /// Three passes on one session, comparing states on what each step touched ([`Tracker`]), so the whole check
    /// costs about three replays of the chain rather than a whole-schema read per step:
    ///
    /// 1. up, migration by migration, recording what each up.sql changed ([`Delta`], object by object);
    /// 2. down, newest first: each down.sql must give back the state before its up.sql, on every object either of
    ///    them touched; the end state is compared whole with the schema before the first migration (revert all);
    /// 3. up again through the runner, ending in the schema [`Replayer::finish_down_pass`] compares whole with
    ///    the end of pass 1 (so up.sql after down.sql does what it did the first time).
    ///
    /// Migrations up to the newest irreversible one (no down.sql) cannot be reverted in pass 2: each of those gets
    /// its own up, down, up in pass 1. After a broken down.sql the pass goes on from a correct state (a fresh
    /// replay up to the migration before it), so every broken one is reported, each with its own differences.
    /// `scratch` holds the whole chain afterwards.
    fn down_pass(
        &self,
        server: &DatabaseUrl,
        scratch: &mut ScratchDatabase,
        stops: &[usize],
        empty: &Fingerprint,
        observer: &mut dyn Observer,
    ) -> Result<DownPass> {
        let migrations = &self.chain.migrations;
        let reverted_from = migrations.iter().rposition(|m| crate::plan::irreversible(m).is_some()).map_or(0, |k| k + 1);
        let mut stepper = self.stepper(&scratch.url)?;
        let mut tracker = Tracker::start(stepper.conn())?;
        if !tracker.linear() {
            observer.event(Event::Notice(
                "this role may not create event triggers (superusers only), so each down.sql step compares the whole schema; as a superuser (the managed server) the check costs only what each migration touches".into(),
            ));
        }
        let mut pass = DownPass {
            snapshots: Vec::new(),
            broken: Vec::new(),
            without_down: Vec::new(),
            first_head: Fingerprint::default(),
            deltas: vec![None; migrations.len()],
            revert_all: None,
        };

        // Pass 1: up.
        for (index, migration) in migrations.iter().enumerate() {
            tracker.clear_marks();
            let before = tracker.mark();
            // A failing up.sql fails the check itself: a plain replay fails the same way.
            stepper.up(index)?;
            tracker.refresh(stepper.conn())?;
            if index >= reverted_from {
                pass.deltas[index] = Some(tracker.delta_since(before));
            } else if let Some(why) = crate::plan::irreversible(migration) {
                pass.without_down.push((migration.dir_name.clone(), why));
            } else {
                let (found, restore) = round_trip(&mut stepper, &mut tracker, index, &migration.dir_name, before)?;
                pass.broken.extend(found.map(|b| (index, b)));
                if restore {
                    (stepper, tracker) = self.rebuilt(server, scratch, Some(index))?;
                }
            }
            if stops.contains(&index) {
                pass.snapshots.push((index, tracker.fingerprint()));
            }
        }
        pass.first_head = tracker.fingerprint();

        // Pass 2: down, newest first.
        let mut clean = true;
        for index in (reverted_from..migrations.len()).rev() {
            let name = &migrations[index].dir_name;
            tracker.clear_marks();
            let mark = tracker.mark();
            let broken = match stepper.down(index) {
                Err(error) => Some(Broken::Failed { migration: name.clone(), what: "down.sql".into(), error: error.to_string() }),
                Ok(()) => {
                    tracker.refresh(stepper.conn())?;
                    let up = pass.deltas[index].as_ref().expect("pass 1 recorded every migration pass 2 reverts");
                    let (expected, actual) = down_outcome(up, &tracker.delta_since(mark));
                    let changes = fingerprint::diff(&expected, &actual);
                    (!changes.is_empty()).then(|| Broken::Differs { migration: name.clone(), what: "down".into(), changes })
                }
            };
            if let Some(broken) = broken {
                pass.broken.push((index, broken));
                clean = false;
                (stepper, tracker) = self.rebuilt(server, scratch, index.checked_sub(1))?;
            }
        }
        if clean {
            // Revert all, compared on the whole schema: read it again rather than trust the step-by-step state.
            let (reference, target) = self.revert_all_reference(empty, &pass.snapshots);
            let section = match reference {
                Some(reference) => {
                    let now = fingerprint::read(stepper.conn())?;
                    revert_all_section(fingerprint::diff(reference, &now), &target)
                }
                None => Section::skipped(SectionKind::RevertAll, "revert all", "no snapshot to compare with"),
            };
            pass.revert_all = Some(section);
        }

        // Pass 3: up again, without the event triggers (nothing is compared step by step).
        tracker.stop(stepper.conn())?;
        let mut index = reverted_from;
        while index < migrations.len() {
            if let Err(error) = stepper.up(index) {
                let migration = migrations[index].dir_name.clone();
                pass.broken.push((index, Broken::Failed { migration, what: "up.sql run again after down.sql".into(), error: error.to_string() }));
                drop(stepper);
                *scratch = ScratchDatabase::create(server)?;
                self.up(&scratch.url, None, Some(&migrations[index].version))?;
                stepper = self.stepper(&scratch.url)?;
            }
            index += 1;
        }
        drop(stepper);
        Ok(pass)
    }

    /// A fresh scratch database holding the chain up to and including migration `to` (none: empty), with a session
    /// and a tracker on it: how the pass goes on from a correct state after a broken step.
    fn rebuilt(&self, server: &DatabaseUrl, scratch: &mut ScratchDatabase, to: Option<usize>) -> Result<(runner::Stepper<'a>, Tracker)> {
        *scratch = ScratchDatabase::create(server)?;
        if let Some(to) = to {
            self.up(&scratch.url, None, Some(&self.chain.migrations[to].version))?;
        }
        let mut stepper = self.stepper(&scratch.url)?;
        let tracker = Tracker::start(stepper.conn())?;
        Ok((stepper, tracker))
    }

    /// The down.sql and revert-all sections, once the schema at the end of the pass up again (`head`) is known.
    fn finish_down_pass(&self, mut pass: DownPass, head: &Fingerprint, server: &DatabaseUrl, empty: &Fingerprint) -> Result<(Section, Section)> {
        // up.sql run again after down.sql ends elsewhere than the first time: name the newest migration that
        // touched each differing object (the passes up and down agreed on everything else).
        let mut again: std::collections::BTreeMap<usize, Vec<Change>> = std::collections::BTreeMap::new();
        for change in fingerprint::diff(&pass.first_head, head) {
            let key = change.object().key();
            let touched = |d: &Delta| d.before.objects.iter().chain(&d.after.objects).any(|o| o.key() == key);
            let owner = (0..pass.deltas.len()).rev().find(|&i| pass.deltas[i].as_ref().is_some_and(touched));
            let owner = owner.unwrap_or(self.chain.migrations.len().saturating_sub(1));
            again.entry(owner).or_default().push(change);
        }
        for (index, changes) in again {
            if !pass.broken.iter().any(|(i, _)| *i == index) {
                let migration = self.chain.migrations[index].dir_name.clone();
                pass.broken.push((index, Broken::Differs { migration, what: "up again".into(), changes }));
            }
        }
        pass.broken.sort_by_key(|(index, _)| *index);
        let revert_all = match pass.revert_all.take() {
            Some(section) => section,
            // A broken down.sql stopped the pass down, which went on from a rebuilt state: revert everything for
            // real on a database of its own, to say what a `revert --all` leaves.
            None => {
                let scratch = ScratchDatabase::create(server)?;
                self.up(&scratch.url, None, None)?;
                self.revert_all(&scratch.url, empty, &pass.snapshots)?
            }
        };
        let broken = pass.broken.into_iter().map(|(_, b)| b).collect();
        Ok((self.down_section(broken, &pass.without_down), revert_all))
    }

    fn stepper(&self, url: &DatabaseUrl) -> Result<runner::Stepper<'a>> {
        runner::Stepper::open(url, self.chain, self.run.lock_timeout, self.run.ddl_lock_timeout)
    }

    fn down_section(&self, broken: Vec<Broken>, without_down: &[(String, crate::plan::Irreversible)]) -> Section {
        let title = "down.sql";
        let no_down = |(m, why): &(String, crate::plan::Irreversible)| {
            Finding::text(format!("{m}: irreversible: {} (not checked; `revert` and `redo` refuse it)", why.describe()))
        };
        if broken.is_empty() {
            if without_down.is_empty() {
                return Section::new(
                    SectionKind::Down,
                    title,
                    Outcome::Ok,
                    format!("each of the {} migration(s): up, down, up leaves the same schema", self.chain.migrations.len()),
                );
            }
            return Section {
                findings: without_down.iter().map(no_down).collect(),
                ..Section::new(
                    SectionKind::Down,
                    title,
                    Outcome::Warn,
                    format!("up, down, up leaves the same schema; {} migration(s) are irreversible", without_down.len()),
                )
            };
        }
        let mut findings = Vec::new();
        let mut names = Vec::new();
        let mut single = String::new();
        for b in broken {
            match b {
                Broken::Failed { migration, what, error } => {
                    single = format!("{migration}: {what} failed");
                    findings.push(Finding::text(format!("{migration}: {what} failed: {error}")));
                    names.push(migration);
                }
                Broken::Differs { migration, what, changes } => {
                    let words = if what == "down" { &DOWN_WORDS } else { &UP_AGAIN_WORDS };
                    single = if what == "down" {
                        format!("{migration}: down.sql does not undo up.sql")
                    } else {
                        format!("{migration}: up.sql after down.sql gives a different schema than the first time")
                    };
                    findings.extend(changes.into_iter().map(|c| change_finding(&migration, c, words)));
                    names.push(migration);
                }
            }
        }
        let (summary, fix) = if names.len() == 1 {
            (
                format!("broken: {single}"),
                format!("make {}/down.sql undo exactly what its up.sql does; `cargo anonmigrate redo` on a development database tries it", names[0]),
            )
        } else {
            (
                format!("{} broken down.sql: {}", names.len(), names.join(", ")),
                "make each of these down.sql files undo exactly what its up.sql does; `cargo anonmigrate redo` on a development database tries one".to_owned(),
            )
        };
        Section::failed(SectionKind::Down, title, summary, findings, fix)
    }

    /// Applies the whole chain, pausing after each migration index in `stops` for a snapshot.
    fn replay_with_stops(&self, url: &DatabaseUrl, stops: &[usize]) -> Result<Vec<(usize, Fingerprint)>> {
        let mut stops = stops.to_vec();
        stops.sort_unstable();
        stops.dedup();
        let mut snapshots = Vec::new();
        for index in stops {
            self.up(url, None, Some(&self.chain.migrations[index].version))?;
            snapshots.push((index, fingerprint::read_url(url)?));
        }
        self.up(url, None, None)?;
        Ok(snapshots)
    }

    /// What reverting everything that can be reverted must leave: the schema before the first migration, or the
    /// snapshot right after the newest irreversible one (`None` when there is no such snapshot); and its words.
    fn revert_all_reference<'f>(&self, empty: &'f Fingerprint, snapshots: &'f [(usize, Fingerprint)]) -> (Option<&'f Fingerprint>, String) {
        match self.chain.migrations.iter().rposition(|m| crate::plan::irreversible(m).is_some()) {
            None => (Some(empty), "an empty schema".to_owned()),
            Some(index) => (
                snapshot_at(snapshots, index),
                format!("the schema right after {} (it is irreversible)", self.chain.migrations[index].dir_name),
            ),
        }
    }

    /// Reverts everything that can be (back to the newest migration without down.sql, if any) and compares the
    /// result with the snapshot from before those migrations.
    fn revert_all(&self, url: &DatabaseUrl, empty: &Fingerprint, snapshots: &[(usize, Fingerprint)]) -> Result<Section> {
        let title = "revert all";
        let keep = self.chain.migrations.iter().rposition(|m| crate::plan::irreversible(m).is_some());
        let (reference, target) = self.revert_all_reference(empty, snapshots);
        let Some(reference) = reference else {
            return Ok(Section::skipped(SectionKind::RevertAll, title, "no snapshot to compare with"));
        };
        let scope = keep.map_or(RevertScope::All, RevertScope::To);
        if let Err(error) = self.down(url, scope) {
            return Ok(Section::failed(
                SectionKind::RevertAll,
                title,
                "reverting every migration fails",
                vec![Finding::text(error.to_string())],
                REVERT_ALL_FIX,
            ));
        }
        Ok(revert_all_section(fingerprint::diff(reference, &fingerprint::read_url(url)?), &target))
    }
}

/// The revert-all section for the differences between what reverting everything must leave and what it left.
fn revert_all_section(changes: Vec<Change>, target: &str) -> Section {
    let title = "revert all";
    if changes.is_empty() {
        return Section::new(SectionKind::RevertAll, title, Outcome::Ok, format!("reverting every migration leaves {target}"));
    }
    Section::failed(
        SectionKind::RevertAll,
        title,
        format!("reverting every migration does not leave {target}"),
        changes.into_iter().map(|c| change_finding("", c, &REVERT_ALL_WORDS)).collect(),
        REVERT_ALL_FIX,
    )
}

/// The state before an up.sql and the state after its down.sql, on every object either step touched (`up`: what
/// up.sql changed in pass 1; `down`: what down.sql changed in pass 2, starting from the state up.sql left). An
/// object only one of them touched has, on the other side, the value that step left alone.
fn down_outcome(up: &Delta, down: &Delta) -> (Fingerprint, Fingerprint) {
    use std::collections::{BTreeMap, BTreeSet};
    type Key<'k> = (&'k str, &'k str, &'k str, &'k str);
    fn by_key(f: &Fingerprint) -> BTreeMap<Key<'_>, &Object> {
        f.objects.iter().map(|o| (o.key(), o)).collect()
    }
    let (up_before, up_after) = (by_key(&up.before), by_key(&up.after));
    let (down_before, down_after) = (by_key(&down.before), by_key(&down.after));
    let up_keys: BTreeSet<Key<'_>> = up_before.keys().chain(up_after.keys()).copied().collect();
    let down_keys: BTreeSet<Key<'_>> = down_before.keys().chain(down_after.keys()).copied().collect();
    let (mut expected, mut actual) = (Vec::new(), Vec::new());
    for key in up_keys.union(&down_keys) {
        let before_up = if up_keys.contains(key) { up_before.get(key) } else { down_before.get(key) };
        let after_down = if down_keys.contains(key) { down_after.get(key) } else { up_after.get(key) };
        expected.extend(before_up.map(|o| (*o).clone()));
        actual.extend(after_down.map(|o| (*o).clone()));
    }
    (Fingerprint::new(expected), Fingerprint::new(actual))
}

/// down, then up again, for migration `index` (just applied; `before` marks the state before it). Returns what
/// broke, if anything, and whether the state must be rebuilt to go on (it is not the state after `index` then).
fn round_trip(stepper: &mut runner::Stepper<'_>, tracker: &mut Tracker, index: usize, name: &str, before: Mark) -> Result<(Option<Broken>, bool)> {
    let after_up = tracker.mark();
    let failed = |what: &str, error: Error| Broken::Failed { migration: name.to_owned(), what: what.to_owned(), error: error.to_string() };
    if let Err(error) = stepper.down(index) {
        // A transactional down.sql rolled back: nothing changed, and the migration is still applied.
        tracker.refresh(stepper.conn())?;
        let changed = !tracker.changes_since(after_up).is_empty();
        return Ok((Some(failed("down.sql", error)), changed));
    }
    tracker.refresh(stepper.conn())?;
    let changes = tracker.changes_since(before);
    let down_broken = (!changes.is_empty()).then(|| Broken::Differs { migration: name.to_owned(), what: "down".into(), changes });
    if let Err(error) = stepper.up(index) {
        // After a down.sql that left things behind, up.sql typically fails on them: that is the same fault.
        return Ok((Some(down_broken.unwrap_or_else(|| failed("up.sql run again after down.sql", error))), true));
    }
    tracker.refresh(stepper.conn())?;
    let again = tracker.changes_since(after_up);
    if again.is_empty() {
        return Ok((down_broken, false));
    }
    let broken = down_broken.unwrap_or(Broken::Differs { migration: name.to_owned(), what: "up again".into(), changes: again });
    Ok((Some(broken), true))
}

/// How a [`Change`] is put into words, depending on which two states were compared ("before" and "after" in
/// [`fingerprint::diff`]'s sense). `{label}` names the object, `{definition}` is ` (`its definition`)` or empty,
/// `{before}` and `{after}` are the two definitions of a changed object.
struct Words {
    added: &'static str,
    removed: &'static str,
    changed: &'static str,
}

/// Before up.sql vs after up.sql + down.sql.
const DOWN_WORDS: Words = Words {
    added: "{label}: still there after down.sql (up.sql created it, down.sql does not drop it)",
    removed: "{label}: gone after down.sql, but it existed before up.sql",
    changed: "{label}: before up.sql `{before}`, after down.sql `{after}`",
};

/// After the first up.sql vs after up.sql, down.sql, up.sql.
const UP_AGAIN_WORDS: Words = Words {
    added: "{label}: only there after up.sql ran a second time",
    removed: "{label}: missing after up.sql ran a second time",
    changed: "{label}: `{before}` after the first up.sql, `{after}` after the second",
};

/// The schema before the first migration vs everything reverted.
const REVERT_ALL_WORDS: Words = Words {
    added: "{label}: left behind",
    removed: "{label}: dropped, but it existed before the first migration",
    changed: "{label}: `{before}` before the first migration, `{after}` after reverting everything",
};

/// The chain's schema (before) vs the live database (after).
const LIVE_WORDS: Words = Words {
    added: "{label}: in the live database{definition}, not created by any migration",
    removed: "{label}: in the migrations, missing from the live database",
    changed: "{label}: the live database has `{after}`, the migrations give `{before}`",
};

fn change_finding(migration: &str, change: Change, words: &Words) -> Finding {
    let (template, object, before, after) = match &change {
        Change::Added { object } => (words.added, object, String::new(), object.shown_definition()),
        Change::Removed { object } => (words.removed, object, object.shown_definition(), String::new()),
        Change::Changed { before, after } => (words.changed, after, before.shown_definition(), after.shown_definition()),
    };
    let definition = if after.is_empty() { String::new() } else { format!(" (`{after}`)") };
    let message = template
        .replace("{label}", &object.label())
        .replace("{definition}", &definition)
        .replace("{before}", &before)
        .replace("{after}", &after);
    Finding {
        message: if migration.is_empty() { message } else { format!("{migration}: {message}") },
        schema_rs: None,
        database_object: Some(change),
    }
}

/// What the live database says before its schema is compared.
#[derive(Debug)]
struct LiveState {
    fingerprint: Fingerprint,
    database: String,
    /// Findings about where the database stands (pending, changed or missing migrations).
    position: Vec<String>,
    /// Which snapshot to compare with: `None` the whole chain, `Some(None)` nothing applied, `Some(Some(i))` the
    /// chain up to migration `i`.
    compare_at: Option<Option<usize>>,
}

/// Reads the live database (read-only, no lock): what `run` would do there, and its fingerprint.
fn live_state(url: &DatabaseUrl, chain: &Chain) -> Result<LiveState> {
    let options = RunOptions::default();
    // The lock file was checked already; a warning about it is not repeated.
    let dry = runner::dry_run(url, chain, &options)?;
    let mut position = Vec::new();
    if let Some(refusal) = &dry.refusal {
        position.push(refusal.to_string());
    }
    let pending: Vec<&str> = dry.actions.iter().map(|a| a.dir_name.as_str()).collect();
    let compare_at = if pending.is_empty() {
        None
    } else {
        position.push(format!(
            "{} migration(s) not applied yet: {} (`cargo anonmigrate run`); compared with the chain as far as it is applied",
            pending.len(),
            pending.join(", ")
        ));
        let first = chain.migrations.iter().position(|m| m.dir_name == pending[0]).unwrap_or(0);
        Some(first.checked_sub(1))
    };
    Ok(LiveState {
        fingerprint: fingerprint::read_url(url)?,
        database: dry.database,
        position,
        compare_at,
    })
}

fn database_section(live: LiveState, reference: &Fingerprint) -> Section {
    let title = "live database";
    let changes = fingerprint::diff(reference, &live.fingerprint);
    let mut findings: Vec<Finding> = live.position.iter().map(Finding::text).collect();
    let drifted = changes.len();
    findings.extend(changes.into_iter().map(|c| change_finding("", c, &LIVE_WORDS)));
    if findings.is_empty() {
        return Section::new(
            SectionKind::Database,
            title,
            Outcome::Ok,
            format!("{} has exactly the schema the migrations give", live.database),
        );
    }
    let summary = if drifted > 0 {
        format!("{} differs from the migrations in {drifted} place(s) (changed outside the migrations)", live.database)
    } else {
        format!("{} is not where the chain is", live.database)
    };
    let fix = if drifted > 0 {
        "turn a deliberate change into a migration (`cargo anonmigrate generate NAME`), or undo it in the database; pending migrations: `cargo anonmigrate run`"
    } else {
        "`cargo anonmigrate run` (and `cargo anonmigrate status` for the details)"
    };
    Section::failed(SectionKind::Database, title, summary, findings, fix)
}

/// `fleet check`: each target compared with the chain at its own version, as `check --database` compares one
/// database; the chain is replayed once, on one scratch database, stopping at every version a target is at.
/// A target that cannot be read gets its error instead of a section.
pub fn check_targets(
    workspace: &Workspace,
    chain: &Chain,
    targets: &[DatabaseUrl],
    jobs: usize,
    observer: &mut dyn Observer,
) -> Result<Vec<Result<Section>>> {
    let lives: Vec<Result<LiveState>> = crate::fleet::parallel_map(targets, jobs, |url| {
        let mut live = live_state(url, chain)?;
        if let Some(tenant) = url.tenant() {
            live.fingerprint = tenant_as_public(live.fingerprint, &tenant.schema, &tenant.shared);
        }
        Ok(live)
    });
    let stops: Vec<usize> = lives.iter().filter_map(|l| l.as_ref().ok().and_then(|l| l.compare_at.flatten())).collect();
    let server = crate::target::server(workspace, Some(chain), observer)?;
    let scratch = ScratchDatabase::create(&server)?;
    observer.event(Event::Notice(format!(
        "replaying {} migration(s) on scratch database {} to compare {} target(s) with",
        chain.migrations.len(),
        scratch.name(),
        targets.len()
    )));
    let empty = fingerprint::read_url(&scratch.url)?;
    let snapshots = Replayer::new(workspace, chain)?.replay_with_stops(&scratch.url, &stops)?;
    let head = fingerprint::read_url(&scratch.url)?;
    drop(scratch);
    Ok(lives
        .into_iter()
        .map(|live| {
            let live = live?;
            let reference = match live.compare_at {
                None => &head,
                Some(None) => &empty,
                Some(Some(index)) => snapshot_at(&snapshots, index).unwrap_or(&head),
            };
            Ok(database_section(live, reference))
        })
        .collect())
}

/// A tenant schema's objects as the chain creates them in a database of its own (in `public`, where the replay
/// runs): other tenants' schemas and the shared schemas' own objects are left out, extensions (created once, in a
/// shared schema) kept as if in `public`, and the tenant's schema name in definitions (`ON tenant_7.users`) read
/// as `public`.
fn tenant_as_public(fingerprint: Fingerprint, tenant: &str, shared: &[String]) -> Fingerprint {
    // The schema name as a qualifier only (`tenant_7.users`, `"Tenant 7".users`), not inside another name.
    let qualifier = regex::Regex::new(&format!(
        r#"(^|[^A-Za-z0-9_$"])(?:{}|{})\."#,
        regex::escape(&crate::db::quote_ident(tenant)),
        regex::escape(tenant)
    ))
    .expect("an escaped name is a valid pattern");
    let mut objects: Vec<fingerprint::Object> = fingerprint
        .objects
        .into_iter()
        .filter_map(|mut object| {
            if object.kind == "extension" {
                // Where the replay creates them (plpgsql stays in pg_catalog).
                if shared.contains(&object.schema) {
                    object.schema = "public".into();
                }
                return Some(object);
            }
            if object.schema != tenant || object.kind == "schema" {
                return None;
            }
            object.schema = "public".into();
            object.definition = qualifier.replace_all(&object.definition, "${1}public.").into_owned();
            Some(object)
        })
        .collect();
    // The replay's own schema, as the fingerprint lists it.
    objects.push(fingerprint::Object {
        kind: "schema".into(),
        schema: "public".into(),
        name: "public".into(),
        parent: String::new(),
        definition: String::new(),
    });
    Fingerprint::new(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_schema_reads_as_public_and_only_as_a_qualifier() {
        let object = |kind: &str, schema: &str, definition: &str| fingerprint::Object {
            kind: kind.into(),
            schema: schema.into(),
            name: "x".into(),
            parent: String::new(),
            definition: definition.into(),
        };
        let live = Fingerprint::new(vec![
            object("index", "a", "CREATE INDEX x ON a.users USING btree (data.a)"),
            object("table", "b", ""),
            object("extension", "shared", "version 0.8.5"),
            object("extension", "pg_catalog", "version 1.0"),
        ]);
        let seen = tenant_as_public(live, "a", &["shared".to_owned()]);
        let shown: Vec<(String, String, String)> =
            seen.objects.iter().map(|o| (o.kind.clone(), o.schema.clone(), o.definition.clone())).collect();
        assert!(shown.contains(&("index".into(), "public".into(), "CREATE INDEX x ON public.users USING btree (data.a)".into())), "{shown:?}");
        assert!(shown.contains(&("extension".into(), "public".into(), "version 0.8.5".into())));
        assert!(shown.contains(&("extension".into(), "pg_catalog".into(), "version 1.0".into())));
        assert!(shown.contains(&("schema".into(), "public".into(), String::new())));
        assert!(!shown.iter().any(|o| o.0 == "table"), "another tenant's objects are left out: {shown:?}");
    }
}
