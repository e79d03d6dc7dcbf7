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
/// How often a copy of a template that another session is connected to is retried (PostgreSQL itself waits up to
/// five seconds for such sessions to leave before refusing).
const BUSY_RETRIES: u64 = 5;
/// Scratch databases that exist right now, for the Ctrl-C handler.
static ACTIVE: Mutex<Vec<DatabaseUrl>> = Mutex::new(Vec::new());

/// A scratch database; dropped (with `WITH (FORCE)`) when this value is dropped, unless it became a template
/// ([`ScratchDatabase::keep_as`]).
#[derive(Debug)]
pub struct ScratchDatabase {
    pub url: DatabaseUrl,
    kept: bool,
}

impl ScratchDatabase {
    /// Creates `anonmigrate_scratch_<pid>_<n>` from `template0` (so nothing added to `template1` leaks in) on the
    /// server `server` points at.
    pub fn create(server: &DatabaseUrl) -> Result<ScratchDatabase> {
        Self::create_named(server, PREFIX, None)
    }

    /// Creates `<prefix><pid>_<n>` as a copy of `template` (a cached chain prefix, see [`crate::template`]), or of
    /// `template0` when `None`. A copy is retried while the template is briefly in use by another session (its
    /// builder disconnecting, autovacuum): PostgreSQL refuses to copy a database anyone is connected to.
    pub fn create_named(server: &DatabaseUrl, prefix: &str, template: Option<&str>) -> Result<ScratchDatabase> {
        let mut conn = crate::setup::maintenance_connection(server)?;
        Self::create_on(&mut conn, server, prefix, template)
    }

    /// [`ScratchDatabase::create_named`] through an open maintenance connection `conn` to `server`.
    pub fn create_on(conn: &mut diesel::pg::PgConnection, server: &DatabaseUrl, prefix: &str, template: Option<&str>) -> Result<ScratchDatabase> {
        let mut busy_retries = 0;
        loop {
            let name = fresh_name(prefix);
            let sql = format!(
                "CREATE DATABASE {} TEMPLATE {}{}",
                db::quote_ident(&name),
                db::quote_ident(template.unwrap_or("template0")),
                copy_strategy(conn, server)
            );
            match db::execute(conn, &sql) {
                Ok(()) => {
                    let url = server.with_database(&name);
                    lock_active().push(url.clone());
                    return Ok(ScratchDatabase { url, kept: false });
                }
                // A leftover of an earlier process with the same pid: take the next number.
                Err(e) if e.message.contains("already exists") => continue,
                Err(e) if e.message.contains("is being accessed by other users") && busy_retries < BUSY_RETRIES => {
                    busy_retries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50 * busy_retries));
                    continue;
                }
                Err(error) if template.is_some() => {
                    return Err(Error::Postgres {
                        context: format!("copying the template database `{}` into `{name}`", template.unwrap_or_default()),
                        error,
                    });
                }
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

    /// Takes charge of database `name` on `server`, which the caller made (a claimed spare copy, see
    /// [`crate::template::TemplateCache::claim_spare`]): dropped with the returned value like any other.
    pub(crate) fn adopt(server: &DatabaseUrl, name: &str) -> ScratchDatabase {
        let url = server.with_database(name);
        lock_active().push(url.clone());
        ScratchDatabase { url, kept: false }
    }

    pub fn name(&self) -> String {
        self.url.database()
    }

    /// Keeps this database: it is no longer dropped with this value.
    pub fn keep(mut self) {
        self.kept = true;
        lock_active().retain(|u| u.database() != self.url.database());
    }

    /// Renames this database to `name` and keeps it (it is no longer dropped): how a template is finished. `conn` is
    /// a connection to another database of the server; `also` is more SQL run in the same implicit transaction
    /// (closing the database to connections, its comment: one round trip, all or nothing). The caller has closed
    /// its connections to it; a session still leaving is waited for, as for a copy.
    pub fn keep_as(mut self, conn: &mut diesel::pg::PgConnection, name: &str, also: &str) -> std::result::Result<(), crate::error::PgError> {
        let sql = format!("ALTER DATABASE {} RENAME TO {};{also}", db::quote_ident(&self.name()), db::quote_ident(name));
        // The caller's sessions may still be leaving (a backend exits a moment after its client closes), and the
        // server, finding one, sleeps 100 ms before it looks again: looking every millisecond here is cheaper.
        wait_for_sessions_to_leave(conn, &self.name());
        let mut busy_retries = 0;
        loop {
            match db::execute(conn, &sql) {
                Ok(()) => break,
                Err(e) if e.message.contains("is being accessed by other users") && busy_retries < BUSY_RETRIES => {
                    busy_retries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50 * busy_retries));
                }
                Err(e) => return Err(e),
            }
        }
        self.kept = true;
        lock_active().retain(|u| u.database() != self.url.database());
        Ok(())
    }
}

/// Waits (at most a second) until no session is connected to database `name`.
fn wait_for_sessions_to_leave(conn: &mut diesel::pg::PgConnection, name: &str) {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        left: bool,
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        let left = diesel::sql_query("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1) AS left")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result::<Left>(conn);
        if !left.is_ok_and(|l| !l.left) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// `<prefix><pid>_<n>`: a name no other database of this process has (an earlier process with the same pid may
/// have left one: creating it then fails with "already exists" and the caller takes the next).
pub(crate) fn fresh_name(prefix: &str) -> String {
    format!("{prefix}{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// Whether copying a database file by file (`STRATEGY FILE_COPY`, PostgreSQL 15+) beats the default block-by-block
/// copy (`WAL_LOG`): it forces two checkpoints, which cost little only on a server without fsync (the managed
/// development server and test clusters), and there it wins at every size measured, `template0` included (7.4 MB:
/// 32 ms instead of 40; a 300-migration template of 13.4 MB: 50 ms instead of 68; 27 MB: 0.46 s instead of
/// 0.5-0.8). Asked once per server and process: the answer is one more round trip per copy otherwise.
pub(crate) fn file_copy_is_cheap(conn: &mut diesel::pg::PgConnection, server: &DatabaseUrl) -> bool {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Cheap {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        cheap: bool,
    }
    static KNOWN: Mutex<Vec<(String, bool)>> = Mutex::new(Vec::new());
    let key = server.server();
    if let Some((_, cheap)) = KNOWN.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(k, _)| *k == key) {
        return *cheap;
    }
    let cheap = diesel::sql_query("SELECT current_setting('fsync') = 'off' AND current_setting('server_version_num')::int >= 150000 AS cheap")
        .get_result::<Cheap>(conn)
        .is_ok_and(|c| c.cheap);
    KNOWN.lock().unwrap_or_else(|p| p.into_inner()).push((key, cheap));
    cheap
}

/// ` STRATEGY FILE_COPY` where [`file_copy_is_cheap`], else nothing: the tail of a `CREATE DATABASE … TEMPLATE`.
pub(crate) fn copy_strategy(conn: &mut diesel::pg::PgConnection, server: &DatabaseUrl) -> &'static str {
    if file_copy_is_cheap(conn, server) { " STRATEGY FILE_COPY" } else { "" }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
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
