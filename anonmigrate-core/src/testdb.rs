//! Migrated databases for an application's tests: each [`TestDatabase`] is a fresh copy of the template database
//! of the current migration chain (built once, by whichever test gets there first), so a test database costs one
//! `CREATE DATABASE … TEMPLATE`, whatever the length of the chain, and is dropped when the handle is.
//!
//! ```no_run
//! use diesel::prelude::*;
//! # fn main() -> anonmigrate_core::Result<()> {
//! // The workspace around the crate under test: its migrations, on its configured or managed server.
//! let db = anonmigrate_core::testdb::TestDatabase::new(env!("CARGO_MANIFEST_DIR"))?;
//! let mut conn = PgConnection::establish(db.url()).unwrap();
//! # Ok(()) }
//! ```
//!
//! Safe from parallel tests, in one process or many: every database has a name of its own
//! (`anonmigrate_test_<pid>_<n>`), and builders of a template take turns.
//!
//! A test does not even wait for the copy when a *spare* is ready: up to [`DEFAULT_SPARES`] (or
//! `ANONMIGRATE_TEST_SPARES`) copies of the template wait on the server, closed to connections, named after it
//! (`anonmigrate_spare_<label>_<migrations>_<hash>_<k>`). A test claims one by renaming it (one statement; of two
//! processes claiming the same spare, one gets the next), and a background thread copies the template again for
//! the next test. With none ready, the test copies the template itself, as it would without spares. Spares stay
//! for the next run; `cargo anonmigrate cache clear` drops them with the templates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use anonmigrate_chain::Chain;

use crate::config::{Overrides, Workspace};
use crate::database_url::{DatabaseUrl, UrlSource};
use crate::error::Result;
use crate::events::Silent;
use crate::runner::RunOptions;
use crate::schema::scratch::ScratchDatabase;
use crate::template::{Replay, TemplateCache};

/// Every test database's name starts with this.
pub const PREFIX: &str = "anonmigrate_test_";
/// How many spare copies of the chain's template to keep ready, when [`SPARES_VARIABLE`] does not say.
pub const DEFAULT_SPARES: usize = 4;
/// The environment variable setting how many spares to keep: a number up to [`MAX_SPARES`]; `0` turns them off
/// (every test database is then a copy made on demand).
pub const SPARES_VARIABLE: &str = "ANONMIGRATE_TEST_SPARES";
/// The most spares kept per template, whatever [`SPARES_VARIABLE`] says: each is a whole copy of the database.
pub const MAX_SPARES: usize = 32;

/// How many spares to keep: [`SPARES_VARIABLE`], else [`DEFAULT_SPARES`].
pub fn spares_wanted() -> usize {
    match std::env::var(SPARES_VARIABLE) {
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "no" => 0,
            other => other.parse::<usize>().map_or(DEFAULT_SPARES, |n| n.min(MAX_SPARES)),
        },
        Err(_) => DEFAULT_SPARES,
    }
}

/// A database with every migration of the chain applied, for one test; dropped (`WITH (FORCE)`) on drop.
#[derive(Debug)]
pub struct TestDatabase {
    database: Option<ScratchDatabase>,
    url: String,
    replay: Replay,
}

/// What the tests of one process share, per migrations directory (or manifest): the chain, its cache, the name of
/// its template, and the refilling of its spares.
struct Shared {
    chain: Chain,
    cache: TemplateCache,
    head: Option<String>,
    refill: Mutex<Refill>,
    refilled: Condvar,
}

#[derive(Default)]
struct Refill {
    /// A thread is making spares.
    running: bool,
    /// A spare was claimed since that thread last counted them.
    again: bool,
    /// Making a spare failed: this process makes no more (its tests copy the template themselves).
    failed: bool,
}

type Prepared = Arc<Shared>;
static PREPARED: Mutex<Option<HashMap<PathBuf, Prepared>>> = Mutex::new(None);

fn prepared(key: PathBuf, make: impl FnOnce() -> Result<(Chain, TemplateCache)>) -> Result<Prepared> {
    let mut guard = PREPARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(found) = map.get(&key) {
        return Ok(found.clone());
    }
    let (chain, cache) = make()?;
    let made = Arc::new(Shared {
        head: cache.head_name(&chain),
        chain,
        cache,
        refill: Mutex::new(Refill::default()),
        refilled: Condvar::new(),
    });
    map.insert(key, made.clone());
    Ok(made)
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Refill> {
    shared.refill.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes spares of `shared`'s template in a thread of its own, unless one is at it already (it then counts again
/// when done). Nothing waits for it: a process that exits meanwhile leaves a whole spare or none.
fn refill(shared: &Prepared) {
    let want = spares_wanted();
    let Some(head) = shared.head.clone() else { return };
    let mut state = lock(shared);
    state.again = true;
    if want == 0 || state.running || state.failed {
        return;
    }
    state.running = true;
    let worker = shared.clone();
    let spawned = std::thread::Builder::new().name("anonmigrate-spares".into()).spawn(move || {
        loop {
            lock(&worker).again = false;
            let made = worker.cache.fill_spares(&head, want);
            let mut state = lock(&worker);
            state.failed |= made.is_err();
            if !state.again || state.failed {
                state.running = false;
                worker.refilled.notify_all();
                return;
            }
        }
    });
    if spawned.is_err() {
        state.running = false;
    }
}

/// Waits until this process has finished making spares (for every chain it made test databases of): for
/// benchmarks, and for tests that look at the server's databases afterwards.
pub fn wait_for_spares() {
    let all: Vec<Prepared> = PREPARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()
        .map(|map| map.values().cloned().collect())
        .unwrap_or_default();
    for shared in all {
        let mut state = lock(&shared);
        while state.running {
            state = shared.refilled.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

impl TestDatabase {
    /// A migrated database for the workspace around `manifest_dir` (pass `env!("CARGO_MANIFEST_DIR")`): its
    /// migrations, on the server its commands use (the configured DATABASE_URL's server, else the managed local
    /// server, started if needed).
    pub fn new(manifest_dir: impl AsRef<Path>) -> Result<TestDatabase> {
        let manifest = manifest_dir.as_ref().join("Cargo.toml");
        let prepared = prepared(manifest.clone(), || {
            let workspace = Workspace::discover(Overrides {
                manifest_path: Some(manifest),
                ..Overrides::default()
            })?;
            let chain = Chain::load(&workspace.migrations_dir)?;
            let server = crate::target::server(&workspace, Some(&chain), &mut Silent)?;
            Ok((chain, crate::schema::template_cache(&workspace, &server)?))
        })?;
        Self::from_prepared(&prepared)
    }

    /// A migrated database on the server of `server_url` (any database on it; it is only used to reach the
    /// server, and the role needs CREATEDB) with the chain in `migrations` applied.
    pub fn on_server(server_url: &str, migrations: &Path) -> Result<TestDatabase> {
        let prepared = prepared(migrations.join(server_url), || {
            let server = DatabaseUrl::parse(server_url, UrlSource::Flag)?;
            let chain = Chain::load(migrations)?;
            // `…/app/migrations` is `app`'s chain; any other directory names itself.
            let named = match migrations.file_name() {
                Some(name) if name == "migrations" => migrations.parent().and_then(Path::file_name),
                other => other,
            };
            let label = named.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let options = RunOptions {
                lock_timeout: std::time::Duration::from_secs(60),
                ..RunOptions::default()
            };
            Ok((chain, TemplateCache::new(&server, &label, &migrations.display().to_string(), options)))
        })?;
        Self::from_prepared(&prepared)
    }

    fn from_prepared(prepared: &Prepared) -> Result<TestDatabase> {
        let Shared { chain, cache, head, .. } = prepared.as_ref();
        let claimed = match head {
            Some(head) if spares_wanted() > 0 => cache.claim_spare(head, PREFIX).map(|db| (db, Replay::spare(head, chain.migrations.len()))),
            _ => None,
        };
        let (database, replay) = match claimed {
            Some(claimed) => claimed,
            None => cache.migrated(chain, PREFIX, &mut Silent)?,
        };
        if replay.fallback.is_none() {
            refill(prepared);
        }
        let url = database.url.libpq_url(crate::db::CONNECT_TIMEOUT_SECS);
        Ok(TestDatabase {
            database: Some(database),
            url,
            replay,
        })
    }

    /// A libpq connection URL (for `PgConnection::establish` and friends).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name (`anonmigrate_test_<pid>_<n>`).
    pub fn name(&self) -> String {
        self.database.as_ref().map(ScratchDatabase::name).unwrap_or_default()
    }

    /// How the database was made: a claimed spare, copied from a template (and how many migrations it held), or
    /// replayed.
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// Keeps the database after this handle is gone (to look at it after a failing test, or for a harness that
    /// drops it itself); returns its name.
    pub fn keep(mut self) -> String {
        let name = self.name();
        if let Some(database) = self.database.take() {
            database.keep();
        }
        name
    }
}
