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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

/// A database with every migration of the chain applied, for one test; dropped (`WITH (FORCE)`) on drop.
#[derive(Debug)]
pub struct TestDatabase {
    database: Option<ScratchDatabase>,
    url: String,
    replay: Replay,
}

/// What the tests of one process share: the chain and its cache, per migrations directory (or manifest).
type Prepared = Arc<(Chain, TemplateCache)>;
static PREPARED: Mutex<Option<HashMap<PathBuf, Prepared>>> = Mutex::new(None);

fn prepared(key: PathBuf, make: impl FnOnce() -> Result<(Chain, TemplateCache)>) -> Result<Prepared> {
    let mut guard = PREPARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(found) = map.get(&key) {
        return Ok(found.clone());
    }
    let made = Arc::new(make()?);
    map.insert(key, made.clone());
    Ok(made)
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
        let (chain, cache) = prepared.as_ref();
        let (database, replay) = cache.migrated(chain, PREFIX, &mut Silent)?;
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

    /// How the database was made: copied from a template (and how many migrations it held) or replayed.
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
