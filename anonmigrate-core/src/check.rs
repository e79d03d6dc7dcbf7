//! `check`: the CI gate. One pass that answers "is anything off?" and says what:
//!
//! 1. the lock file matches the migrations on disk (the runner's own check);
//! 2. each configured schema.rs (generated or hand-maintained) matches a fresh replay of the chain, compared
//!    structurally ([`schema::parse`] + [`schema::compare`]), and the build-script drift gate agrees;
//! 3. every migration's down.sql undoes its up.sql, in two passes over one scratch database: the chain up (what
//!    each up.sql changes is recorded, object by object), then down again newest first (each down.sql must give
//!    back the state before its up.sql, and up.sql run again must do what it did the first time wherever that
//!    could differ; the last down.sql must leave what was there before the first migration: the "revert all"
//!    check, on the whole schema). Every broken down.sql is named with what differs, and the pass goes on from a
//!    correct state;
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
        Some(url) => Some(live_state(url, chain, crate::import::alembic::renamed_version_table(chain).as_deref())?),
        None => None,
    };
    let replayer = Replayer::new(workspace, chain)?;
    let mut stops: Vec<usize> = Vec::new();
    if let Some(Some(Some(index))) = live.as_ref().map(|l| l.compare_at) {
        stops.push(index);
    }
    if options.down
        && let Some(index) = replayer.newest_irreversible()
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
    let schemas = schema_pg_schemas(&schema_files);
    let mut down = if options.down {
        observer.event(Event::Notice(format!(
            "checking the down.sql of {} migration(s) on scratch database {}",
            chain.migrations.len(),
            scratch.name()
        )));
        Some(replayer.down_pass(&server, &mut scratch, &stops, &empty, &schemas, observer)?)
    } else {
        None
    };
    let (snapshots, catalog, head) = match &mut down {
        Some(pass) => (pass.snapshots.clone(), std::mem::take(&mut pass.catalog), std::mem::take(&mut pass.head)),
        None => {
            let snapshots = replayer.replay_with_stops(&scratch.url, &stops)?;
            let (catalog, head) = fingerprint::read_with_catalog(&scratch.url, &schemas)?;
            (snapshots, catalog, head)
        }
    };
    drop(scratch);

    for (path, settings) in &schema_files {
        report.sections.push(schema_section(workspace, chain, path, settings, &catalog)?);
    }
    report.sections.extend(no_schema_file);
    if let Some(pass) = down {
        let (down_section, revert_all) = replayer.finish_down_pass(pass, &server, &empty)?;
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

/// What the down.sql pass found.
struct DownPass {
    /// Fingerprints after the migrations `check` asked for (see `stops`).
    snapshots: Vec<(usize, Fingerprint)>,
    /// Broken down.sql files (and up.sql run again), in chain order.
    broken: Vec<Broken>,
    without_down: Vec<(String, crate::plan::Irreversible)>,
    /// The whole chain's catalog and fingerprint, read at the end of the pass up.
    catalog: Catalog,
    head: Fingerprint,
    /// The revert-all section when the pass down reverted everything without a broken step on the way.
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

    /// Two passes on one session, comparing states on what each step touched ([`Tracker`]), so the whole check
    /// costs about two replays of the chain rather than a whole-schema read per step:
    ///
    /// 1. up, migration by migration, recording what each up.sql changed ([`Delta`], object by object); at the
    ///    end, the schema of the whole chain is read (`schemas` for the catalog) for the checks after this one;
    /// 2. down, newest first: each down.sql must give back the state before its up.sql, on every object either of
    ///    them touched; then up.sql runs again and must do what it did the first time, and down.sql again to go
    ///    on. The end state is compared whole with the schema before the first migration (revert all).
    ///
    /// up.sql runs again only where running it again can end differently: a migration whose up.sql writes rows
    /// or touches anything the fingerprint does not cover (roles, statistics, `DO` blocks, ... — see
    /// [`crate::split::changes_schema_only`] and [`Tracker::fingerprinted`]). Schema-only DDL run again on a
    /// schema the down.sql check just proved identical does the same thing (the tables it could read hold no row
    /// the first run did not see), so for a chain of such migrations the pass is one replay up and one down.
    ///
    /// Migrations up to the newest irreversible one (no down.sql) cannot be reverted in pass 2: each of those gets
    /// its own up, down, up in pass 1. After a broken step the pass goes on from a correct state (a fresh replay up
    /// to the migration before it), so every broken down.sql is reported, each with its own differences.
    fn down_pass(
        &self,
        server: &DatabaseUrl,
        scratch: &mut ScratchDatabase,
        stops: &[usize],
        empty: &Fingerprint,
        schemas: &[String],
        observer: &mut dyn Observer,
    ) -> Result<DownPass> {
        let migrations = &self.chain.migrations;
        let reverted_from = self.newest_irreversible().map_or(0, |k| k + 1);
        let mut stepper = self.stepper(&scratch.url)?;
        let mut tracker = Tracker::start(stepper.conn())?;
        if !tracker.linear() {
            observer.event(Event::Notice(
                "this role may not create event triggers (superusers only), so each down.sql step compares the whole schema; as a superuser (the managed server) the check costs only what each migration touches".into(),
            ));
        }
        let mut snapshots = Vec::new();
        let mut broken = Vec::new();
        let mut without_down = Vec::new();
        let mut deltas: Vec<Option<Delta>> = vec![None; migrations.len()];
        let mut run_again = vec![true; migrations.len()];

        // Pass 1: up.
        let _ = tracker.take_touched_catalogs();
        for (index, migration) in migrations.iter().enumerate() {
            tracker.clear_marks();
            let before = tracker.mark();
            // A failing up.sql fails the check itself: a plain replay fails the same way.
            stepper.up(index)?;
            tracker.refresh(stepper.conn())?;
            if index >= reverted_from {
                deltas[index] = Some(tracker.delta_since(before));
                let statements_ok = crate::split::split_statements(&migration.up_sql).iter().all(|s| crate::split::changes_schema_only(s.text));
                run_again[index] = !(statements_ok && tracker.take_touched_catalogs().is_none_or(|c| Tracker::fingerprinted(&c)));
            } else if let Some(why) = crate::plan::irreversible(migration) {
                without_down.push((migration.dir_name.clone(), why));
            } else {
                let (found, restore) = round_trip(&mut stepper, &mut tracker, index, &migration.dir_name, before)?;
                broken.extend(found.map(|b| (index, b)));
                if restore {
                    (stepper, tracker) = self.rebuilt(server, scratch, Some(index))?;
                }
            }
            if stops.contains(&index) {
                snapshots.push((index, tracker.fingerprint()));
            }
        }
        // The event triggers' table and functions are left out of both (bookkeeping names).
        let (catalog, head) = fingerprint::read_with_catalog(&scratch.url, schemas)?;

        // Pass 2: down, newest first (and up again where it could end differently).
        let mut clean = true;
        for index in (reverted_from..migrations.len()).rev() {
            let up = deltas[index].take().expect("pass 1 recorded every migration pass 2 reverts");
            let found = self.down_and_up_again(&mut stepper, &mut tracker, index, &up, run_again[index])?;
            if let Some(found) = found {
                broken.push((index, found));
                clean = false;
                (stepper, tracker) = self.rebuilt(server, scratch, index.checked_sub(1))?;
            }
        }
        let revert_all = if clean {
            // Revert all, compared on the whole schema: read it again rather than trust the step-by-step state.
            let (reference, target) = self.revert_all_reference(empty, &snapshots);
            Some(match reference {
                Some(reference) => revert_all_section(fingerprint::diff(reference, &fingerprint::read(stepper.conn())?), &target),
                None => Section::skipped(SectionKind::RevertAll, "revert all", "no snapshot to compare with"),
            })
        } else {
            None
        };
        tracker.stop(stepper.conn())?;
        broken.sort_by_key(|(index, _)| *index);
        Ok(DownPass {
            snapshots,
            broken: broken.into_iter().map(|(_, b)| b).collect(),
            without_down,
            catalog,
            head,
            revert_all,
        })
    }

    /// Migration `index` is the newest applied: down.sql, which must undo `up` (what its up.sql did in pass 1);
    /// then, when `again` (or down.sql touched what the fingerprint does not cover), up.sql (which must do the
    /// same as then) and down.sql once more. Returns what broke; the caller rebuilds the state before the migration
    /// then (the session is not trusted to hold it).
    fn down_and_up_again(&self, stepper: &mut runner::Stepper<'_>, tracker: &mut Tracker, index: usize, up: &Delta, again: bool) -> Result<Option<Broken>> {
        let name = &self.chain.migrations[index].dir_name;
        let failed = |what: &str, error: Error| Some(Broken::Failed { migration: name.clone(), what: what.to_owned(), error: step_failure(&error) });
        tracker.clear_marks();
        let mark = tracker.mark();
        let _ = tracker.take_touched_catalogs();
        if let Err(error) = stepper.down(index) {
            return Ok(failed("down.sql", error));
        }
        tracker.refresh(stepper.conn())?;
        // A down.sql that touches what the fingerprint does not cover may leave it for up.sql to trip over.
        let again = again || !tracker.take_touched_catalogs().is_none_or(|c| Tracker::fingerprinted(&c));
        let undo = Delta { before: up.after.clone(), after: up.before.clone() };
        let (expected, actual) = step_outcome(&undo, &tracker.delta_since(mark));
        let changes = fingerprint::diff(&expected, &actual);
        if !changes.is_empty() {
            return Ok(Some(Broken::Differs { migration: name.clone(), what: "down".into(), changes }));
        }
        if !again {
            return Ok(None);
        }
        tracker.clear_marks();
        let mark = tracker.mark();
        if let Err(error) = stepper.up(index) {
            return Ok(failed("up.sql run again after down.sql", error));
        }
        tracker.refresh(stepper.conn())?;
        let (expected, actual) = step_outcome(up, &tracker.delta_since(mark));
        let changes = fingerprint::diff(&expected, &actual);
        if !changes.is_empty() {
            return Ok(Some(Broken::Differs { migration: name.clone(), what: "up again".into(), changes }));
        }
        if let Err(error) = stepper.down(index) {
            return Ok(failed("down.sql run again", error));
        }
        tracker.refresh(stepper.conn())?;
        Ok(None)
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

    /// The down.sql and revert-all sections.
    fn finish_down_pass(&self, pass: DownPass, server: &DatabaseUrl, empty: &Fingerprint) -> Result<(Section, Section)> {
        let revert_all = match pass.revert_all {
            Some(section) => section,
            // A broken step stopped the pass down, which went on from a rebuilt state: revert everything for real
            // on a database of its own, to say what a `revert --all` leaves.
            None => {
                let scratch = ScratchDatabase::create(server)?;
                self.up(&scratch.url, None, None)?;
                self.revert_all(&scratch.url, empty, &pass.snapshots)?
            }
        };
        Ok((self.down_section(pass.broken, &pass.without_down), revert_all))
    }

    /// The newest migration that cannot be reverted (no down.sql, or one that says so): nothing before it can be
    /// reverted past it.
    fn newest_irreversible(&self) -> Option<usize> {
        self.chain.migrations.iter().rposition(|m| crate::plan::irreversible(m).is_some())
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
        match self.newest_irreversible() {
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
        let keep = self.newest_irreversible();
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

/// Two steps that started from the same state, one known to be right (`reference`) and one to judge (`actual`):
/// the state each ended in, on every object either touched. An object only one of them touched has, on the other
/// side, the value both started from. (A down.sql is judged against its up.sql's changes turned around.)
fn step_outcome(reference: &Delta, actual: &Delta) -> (Fingerprint, Fingerprint) {
    use std::collections::{BTreeMap, BTreeSet};
    type Key<'k> = (&'k str, &'k str, &'k str, &'k str);
    fn by_key(f: &Fingerprint) -> BTreeMap<Key<'_>, &Object> {
        f.objects.iter().map(|o| (o.key(), o)).collect()
    }
    let (reference_before, reference_after) = (by_key(&reference.before), by_key(&reference.after));
    let (actual_before, actual_after) = (by_key(&actual.before), by_key(&actual.after));
    let reference_keys: BTreeSet<Key<'_>> = reference_before.keys().chain(reference_after.keys()).copied().collect();
    let actual_keys: BTreeSet<Key<'_>> = actual_before.keys().chain(actual_after.keys()).copied().collect();
    let (mut expected, mut ended) = (Vec::new(), Vec::new());
    for key in reference_keys.union(&actual_keys) {
        let want = if reference_keys.contains(key) { reference_after.get(key) } else { actual_before.get(key) };
        let have = if actual_keys.contains(key) { actual_after.get(key) } else { reference_before.get(key) };
        expected.extend(want.map(|o| (*o).clone()));
        ended.extend(have.map(|o| (*o).clone()));
    }
    (Fingerprint::new(expected), Fingerprint::new(ended))
}

/// What went wrong in a step, without the runner's advice for a deployment (check's own fix line says what to do).
fn step_failure(error: &Error) -> String {
    match error {
        Error::MigrationFailed { location, error, .. } => format!("at {location}: {error}"),
        other => other.to_string(),
    }
}

/// down, then up again, for migration `index` (just applied; `before` marks the state before it). Returns what
/// broke, if anything, and whether the state must be rebuilt to go on (it is not the state after `index` then).
fn round_trip(stepper: &mut runner::Stepper<'_>, tracker: &mut Tracker, index: usize, name: &str, before: Mark) -> Result<(Option<Broken>, bool)> {
    let after_up = tracker.mark();
    let failed = |what: &str, error: Error| Broken::Failed { migration: name.to_owned(), what: what.to_owned(), error: step_failure(&error) };
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
/// `version_table`: the Alembic version table the chain's import renamed ([`crate::import::alembic::renamed_version_table`],
/// read once by the caller however many databases it compares).
fn live_state(url: &DatabaseUrl, chain: &Chain, version_table: Option<&str>) -> Result<LiveState> {
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
        fingerprint: fingerprint::read_url_leaving_out(url, version_table)?,
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
    let version_table = crate::import::alembic::renamed_version_table(chain);
    let lives: Vec<Result<LiveState>> = crate::fleet::parallel_map(targets, jobs, |url| {
        let mut live = live_state(url, chain, version_table.as_deref())?;
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
