//! The throwaway database `schema` replays the chain into: created on the configured (or managed local) server
//! under a name no one else uses, and always dropped: when the guard goes out of scope (also on an error or a
//! panic), or by [`drop_all_active_then`] from a Ctrl-C handler.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::database_url::DatabaseUrl;
use crate::db;
use crate::error::{Error, Result};

/// Every scratch database name starts with this, so leftovers are easy to find (`pg_database`).
pub const PREFIX: &str = "anonmigrate_scratch_";

static COUNTER: AtomicUsize = AtomicUsize::new(0);
/// Scratch databases that exist right now, for the Ctrl-C handler.
static ACTIVE: Mutex<Vec<DatabaseUrl>> = Mutex::new(Vec::new());

/// A scratch database; dropped (with `WITH (FORCE)`) when this value is dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    pub url: DatabaseUrl,
}

impl ScratchDatabase {
    /// Creates `anonmigrate_scratch_<pid>_<n>` from `template0` (so nothing added to `template1` leaks in) on the
    /// server `server` points at.
    pub fn create(server: &DatabaseUrl) -> Result<ScratchDatabase> {
        let mut conn = crate::setup::maintenance_connection(server)?;
        loop {
            let name = format!("{PREFIX}{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
            let sql = format!("CREATE DATABASE {} TEMPLATE template0", db::quote_ident(&name));
            match db::execute(&mut conn, &sql) {
                Ok(()) => {
                    let url = server.with_database(&name);
                    lock_active().push(url.clone());
                    return Ok(ScratchDatabase { url });
                }
                // A leftover of an earlier process with the same pid: take the next number.
                Err(e) if e.message.contains("already exists") => continue,
                Err(e) if e.message.contains("permission denied") => {
                    return Err(Error::InsufficientPrivilege {
                        message: format!(
                            "`cargo anonmigrate schema` replays the migrations into a temporary database and this role cannot create one ({})",
                            e.message
                        ),
                        sql: "ALTER ROLE <this role> CREATEDB;  -- or unset DATABASE_URL to use the managed local server".into(),
                    });
                }
                Err(error) => {
                    return Err(Error::Postgres {
                        context: format!("creating the scratch database `{name}`"),
                        error,
                    });
                }
            }
        }
    }

    pub fn name(&self) -> String {
        self.url.database()
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let _ = drop_database(&self.url);
        lock_active().retain(|u| u.database() != self.url.database());
    }
}

fn lock_active() -> std::sync::MutexGuard<'static, Vec<DatabaseUrl>> {
    ACTIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn drop_database(url: &DatabaseUrl) -> Result<()> {
    let mut conn = crate::setup::maintenance_connection(url)?;
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db::quote_ident(&url.database()));
    db::execute(&mut conn, &sql).map_err(db::context("dropping the scratch database"))
}

/// For a Ctrl-C handler: drops every scratch database this process has open (the replay's own connection is
/// forced off), then calls `finish` with their names, typically to exit. The registry stays locked until `finish`
/// returns, so a replay that fails because its database vanished cannot finish its own error path first.
pub fn drop_all_active_then(finish: impl FnOnce(&[String])) {
    let mut active = lock_active();
    let dropped: Vec<String> = active
        .drain(..)
        .filter(|url| drop_database(url).is_ok())
        .map(|url| url.database())
        .collect();
    finish(&dropped);
}
