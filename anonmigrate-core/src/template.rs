//! Template databases for chain prefixes: a replay copies the longest prefix already built (`CREATE DATABASE …
//! TEMPLATE`) and applies only the migrations after it, so `schema`, `check`, `generate --autogenerate` and test
//! databases cost what the newest migrations cost, not what the whole chain costs.
//!
//! A template is named `anonmigrate_tpl_<label>_<migrations>_<hash>`: the label is the workspace's directory
//! name, the hash the first twelve hex digits of the lock-file chain hash of the prefix it holds (for the whole
//! chain, the lock file's own header hash), so `\l` in psql says whose it is and how far it goes; its comment names
//! the newest migration in it and when it was last used. At most [`KEEP`] per label are kept (a few more between
//! evictions), the least recently used dropped first. A template is built under a scratch name (the only time
//! anything connects to it), then renamed and closed to connections (`ALLOW_CONNECTIONS false`), because PostgreSQL copies only a database
//! nobody is connected to. Builders of one label take turns (an advisory lock on the maintenance database), so
//! parallel tests or commands build a template once. Where the role may not copy or rename databases, replays
//! fall back to applying the whole chain, and say so once.
//!
//! Test databases ([`crate::testdb`]) also keep a few *spare* copies of the whole chain's template ready,
//! `anonmigrate_spare_<label>_<migrations>_<hash>_<k>` (the template's name with another prefix and a number): a
//! test claims one by renaming it ([`TemplateCache::claim_spare`]) instead of waiting for a copy, and a background
//! thread makes the next ([`TemplateCache::fill_spares`]). A spare is created closed to connections, so nothing
//! connects to it before it is claimed; the hash in its name means a changed chain never claims a stale one. A
//! replay that built on a cached prefix also leaves one spare of the chain-without-its-newest template being made
//! (`TemplateCache::prefill`), which the next edit of the newest migration builds in instead of copying. Spares of
//! templates other than the chain's and the one before are discarded whenever a template is built, and dropped with
//! the templates by `cache clear`. Evicted templates and stale spares are renamed into a trash
//! (`anonmigrate_trash_<label>_…`) and dropped in the background, so no replay waits for a drop.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use anonmigrate_chain::{Chain, LockFile};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::database_url::DatabaseUrl;
use crate::db;
use crate::error::{Error, Result};
use crate::events::{Event, Observer};
use crate::runner::{self, RunOptions};
use crate::schema::scratch::{self, ScratchDatabase};

/// Every template's name starts with this.
pub const PREFIX: &str = "anonmigrate_tpl_";
/// Templates kept per label (workspace): the current chain, the chain without its newest migration, and a few
/// older states (another branch) before the least recently used is dropped.
pub const KEEP: usize = 4;
/// Set to `0` (or `off`) to replay every chain from scratch, without templates.
pub const DISABLE_VARIABLE: &str = "ANONMIGRATE_TEMPLATE_CACHE";
/// A template is built in a scratch database (dropped if the build fails or is interrupted), then renamed.
const BUILD_PREFIX: &str = scratch::PREFIX;
/// Every spare copy's name starts with this (see the module documentation).
pub const SPARE_PREFIX: &str = "anonmigrate_spare_";
/// Evicted templates and stale spares are renamed to names starting with this and dropped in the background.
pub const TRASH_PREFIX: &str = "anonmigrate_trash_";
/// First key of the spare fillers' advisory lock, "spr" in ASCII; the second is the template name's `hashtext`.
const SPARE_LOCK_CLASS: i32 = 0x0073_7072;
/// First key of the builders' advisory lock (`pg_advisory_lock(int, int)`), "tpl" in ASCII; the second is the
/// label's `hashtext`.
const LOCK_CLASS: i32 = 0x0074_706c;

static FALLBACK_REPORTED: AtomicBool = AtomicBool::new(false);

/// How a replay went: how many migrations came from a template copy and how many were applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// Migrations in the chain.
    pub migrations: usize,
    /// Migrations the copied template already held (0: replayed from an empty database).
    pub copied: usize,
    /// The template copied, if any.
    pub template: Option<String>,
    /// Why the cache was not used, when it was not (disabled, or the role may not copy databases).
    pub fallback: Option<String>,
    /// The database (or, for a replay that built the whole chain's template, the database it was built in) is a
    /// spare copy made in advance and claimed ([`TemplateCache::claim_spare`]).
    pub from_spare: bool,
}

impl Replay {
    /// One phrase for `--timings`: `12 of 300 migrations applied on a copy of anonmigrate_tpl_app_288_...`.
    pub fn describe(&self) -> String {
        match &self.template {
            Some(name) => format!("{} of {} migration(s) applied on a copy of {name}", self.migrations - self.copied, self.migrations),
            None => format!("{} migration(s) applied on an empty database", self.migrations),
        }
    }

    /// A database claimed from the spare copies of template `head`, which holds the whole chain of `migrations`.
    pub fn spare(head: &str, migrations: usize) -> Replay {
        Replay {
            migrations,
            copied: migrations,
            template: Some(head.to_owned()),
            fallback: None,
            from_spare: true,
        }
    }
}

/// One template on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    /// Migrations it holds (from its name).
    pub migrations: usize,
    /// Its comment: the newest migration in it, the workspace, when it was last used.
    pub comment: String,
    /// Seconds since the epoch of its last use (from the comment; 0 if unknown).
    pub used: i64,
    /// On-disk size, for `cache list`; `None` when not asked for.
    pub size_bytes: Option<i64>,
    /// Spare copies of it waiting for a test database, for `cache list`; `None` when not asked for.
    pub spares: Option<i64>,
}

/// What a failure in the cache means: fall back to a plain replay, or stop (a migration failed, which a plain
/// replay would hit too).
enum Failure {
    Cache(String),
    /// Nothing to cache, or the cache is turned off: a plain replay, nothing said.
    Skip(String),
    Replay(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Replay(error)
    }
}

/// The templates of one label on one server.
#[derive(Debug, Clone)]
pub struct TemplateCache {
    server: DatabaseUrl,
    label: String,
    workspace: String,
    run: RunOptions,
}

/// A label from any text (a directory name): lowercase ASCII letters, digits and `_`, at most 20 characters, so
/// the whole template name stays within PostgreSQL's 63 bytes.
pub fn label_for(text: &str) -> String {
    let mut label = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            label.push(c);
        } else if !label.ends_with('_') && !label.is_empty() {
            label.push('_');
        }
        if label.len() >= 20 {
            break;
        }
    }
    let label = label.trim_end_matches('_').to_owned();
    if label.is_empty() { "chain".to_owned() } else { label }
}

/// Set by [`turn_off_for_this_process`].
static OFF_FOR_THIS_PROCESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns the cache off for the rest of this process: a deployment's `run` on a configured server regenerates
/// schema.rs with a plain replay rather than leave template databases on that server.
pub fn turn_off_for_this_process() {
    OFF_FOR_THIS_PROCESS.store(true, Ordering::SeqCst);
}

/// Whether `ANONMIGRATE_TEMPLATE_CACHE` (and this process) leaves the cache on.
pub fn enabled() -> bool {
    !OFF_FOR_THIS_PROCESS.load(Ordering::SeqCst)
        && !std::env::var(DISABLE_VARIABLE).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "off" | "false" | "no"))
}

/// `pattern` as a literal for `LIKE … ESCAPE '\'`.
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\").replace('_', "\\_").replace('%', "\\%")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    comment: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    size: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    spares: Option<i64>,
}

impl TemplateCache {
    /// `label` names the workspace (see [`label_for`]); `workspace` is shown in each template's comment.
    pub fn new(server: &DatabaseUrl, label: &str, workspace: &str, run: RunOptions) -> TemplateCache {
        TemplateCache {
            server: server.clone(),
            label: label_for(label),
            workspace: workspace.to_owned(),
            run,
        }
    }

    /// The name of the template holding the first `migrations` migrations, whose chain hash is `hash`.
    pub fn name(&self, migrations: usize, hash: &str) -> String {
        format!("{PREFIX}{}_{migrations}_{}", self.label, &hash[..hash.len().min(12)])
    }

    /// This label's templates, most recently used first.
    pub fn list(&self, with_sizes: bool) -> Result<Vec<Template>> {
        let mut conn = crate::setup::maintenance_connection(&self.server)?;
        list_on(&mut conn, &format!("{PREFIX}{}_", self.label), with_sizes)
    }

    /// Drops this label's templates and their spare copies; returns their names.
    pub fn clear(&self) -> Result<Vec<String>> {
        clear_on(&self.server, &format!("{PREFIX}{}_", self.label), &self.spares_regex(), &format!("^{TRASH_PREFIX}{}_[0-9]+_[0-9]+$", self.label))
    }

    /// A regular expression matching the names of every spare copy of this label's templates.
    fn spares_regex(&self) -> String {
        format!("^{SPARE_PREFIX}{}_[0-9]+_[0-9a-z]+_[0-9]+$", self.label)
    }

    /// The name of the template holding the whole `chain` (whether it exists or not); `None` when the cache is off
    /// or the chain empty.
    pub fn head_name(&self, chain: &Chain) -> Option<String> {
        if !enabled() || chain.migrations.is_empty() {
            return None;
        }
        let hashes = anonmigrate_chain::chain_prefix_hashes(&LockFile::from_chain(chain).entries);
        hashes.last().map(|hash| self.name(chain.migrations.len(), hash))
    }

    /// Claims a spare copy of template `head` (see [`TemplateCache::fill_spares`]): in one statement, renames it to
    /// a fresh `<prefix><pid>_<n>` and opens it to connections; a spare another process renames first is skipped
    /// for the next. `None` when none is left, or the claim failed for any other reason: the caller copies the
    /// template as usual, which reports what is wrong.
    pub fn claim_spare(&self, head: &str, prefix: &str) -> Option<ScratchDatabase> {
        let mut conn = crate::setup::maintenance_connection(&self.server).ok()?;
        self.claim_spare_on(&mut conn, head, prefix)
    }

    /// [`TemplateCache::claim_spare`] through an open maintenance connection.
    fn claim_spare_on(&self, conn: &mut PgConnection, head: &str, prefix: &str) -> Option<ScratchDatabase> {
        let regex = spare_regex(head)?;
        loop {
            let target = scratch::fresh_name(prefix);
            // The rename takes the database's lock and looks its name up again once it has it, so of two
            // sessions renaming one spare the second finds it gone (invalid_catalog_name) and tries the next;
            // random order keeps parallel tests off each other's.
            let sql = format!(
                "DO $claim$ DECLARE spare text; BEGIN \
                   FOR spare IN SELECT datname FROM pg_database WHERE datname ~ {regex} ORDER BY random() LOOP \
                     BEGIN \
                       EXECUTE format('ALTER DATABASE %I RENAME TO %I', spare, {target}); \
                       EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS true', {target}); \
                       RETURN; \
                     EXCEPTION WHEN invalid_catalog_name OR object_in_use THEN NULL; \
                     END; \
                   END LOOP; \
                   RAISE EXCEPTION 'no spare copy left' USING ERRCODE = 'no_data_found'; \
                 END $claim$",
                regex = db::quote_literal(&regex),
                target = db::quote_literal(&target)
            );
            return match db::execute(conn, &sql) {
                Ok(()) => Some(ScratchDatabase::adopt(&self.server, &target)),
                // A leftover of an earlier process with this pid holds the name: the next number.
                Err(e) if e.message.contains("already exists") => continue,
                Err(_) => None,
            };
        }
    }

    /// Copies template `head` into new spares, closed to connections, until `want` of them wait; returns how many it
    /// made. One filler per template at a time (an advisory lock, held by its session): when another process is
    /// filling, returns 0 at once. A copy is one `CREATE DATABASE`, so a filler that stops half way (its process
    /// exits) leaves either a whole spare or none.
    pub fn fill_spares(&self, head: &str, want: usize) -> Result<usize> {
        self.fill_spares_telling(head, want, None)
    }

    /// [`TemplateCache::fill_spares`], sending the filler's backend pid on `copying` just before its first copy
    /// (and dropping it without a word when there is nothing to copy).
    fn fill_spares_telling(&self, head: &str, want: usize, mut copying: Option<std::sync::mpsc::Sender<i32>>) -> Result<usize> {
        use diesel::sql_types::{Bool, Integer};
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = Bool)]
            locked: bool,
            #[diesel(sql_type = Integer)]
            pid: i32,
        }
        let Some(regex) = spare_regex(head) else { return Ok(0) };
        let mut conn = crate::setup::maintenance_connection(&self.server)?;
        let locked: Locked = diesel::sql_query(format!("SELECT pg_try_advisory_lock({SPARE_LOCK_CLASS}, hashtext($1)) AS locked, pg_backend_pid() AS pid"))
            .bind::<Text, _>(head)
            .get_result(&mut conn)
            .map_err(|e| db::context("taking the spare fillers' lock")(db::pg_error(&e)))?;
        if !locked.locked {
            return Ok(0);
        }
        let _ = touch(&mut conn, head);
        let strategy = scratch::copy_strategy(&mut conn, &self.server);
        let mut made = 0;
        loop {
            let existing = matching(&mut conn, &regex)?;
            if existing.len() >= want {
                return Ok(made);
            }
            let Some(name) = (0..want + existing.len()).filter_map(|k| spare_name(head, k)).find(|n| !existing.contains(n)) else {
                return Ok(made);
            };
            let sql = format!("CREATE DATABASE {} TEMPLATE {} ALLOW_CONNECTIONS false{strategy}", db::quote_ident(&name), db::quote_ident(head));
            if let Some(copying) = copying.take() {
                let _ = copying.send(locked.pid);
            }
            match db::execute(&mut conn, &sql) {
                Ok(()) => made += 1,
                Err(e) if e.message.contains("already exists") => {}
                Err(error) => {
                    return Err(Error::Postgres {
                        context: format!("copying the template database `{head}` into the spare `{name}`"),
                        error,
                    });
                }
            }
        }
    }

    /// Runs `read` on a database holding the whole chain, which `read` must not change: the template while it is
    /// being built, or a copy of it when it exists. Falls back to a plain replay where templates cannot be used.
    pub fn with_head<R>(
        &self,
        chain: &Chain,
        observer: &mut dyn Observer,
        read: impl FnOnce(&DatabaseUrl) -> Result<R>,
    ) -> Result<(R, Replay)> {
        let mut read = Some(read);
        let mut result = None;
        let attempt = self.ensure(chain, observer, &mut |url: &DatabaseUrl| {
            if let Some(read) = read.take() {
                result = Some(read(url)?);
            }
            Ok(())
        });
        let attempt = match attempt {
            Ok((replay, _, _)) if result.is_some() => Ok(replay),
            Ok((replay, head, mut conn)) => {
                // A spare test database of the chain is as good as a copy, and ready (when spares are on).
                let spare = if crate::testdb::spares_wanted() > 0 { self.claim_spare_on(&mut conn, &head, scratch::PREFIX) } else { None };
                let from_spare = spare.is_some();
                spare.map_or_else(|| self.copy(&mut conn, &head, scratch::PREFIX), Ok).and_then(|copy| {
                    let read = read.take().expect("the reader has not run");
                    result = Some(read(&copy.url)?);
                    Ok(Replay { from_spare, ..replay })
                })
            }
            Err(failure) => Err(failure),
        };
        match (attempt, result) {
            (Ok(replay), Some(result)) => Ok((result, replay)),
            (Err(Failure::Replay(error)), _) => Err(error),
            // Read while building, and the rename failed after: the reading stands.
            (Err(Failure::Cache(why) | Failure::Skip(why)), Some(result)) => Ok((result, self.fallback(why, chain, observer))),
            (Err(Failure::Cache(why) | Failure::Skip(why)), None) => {
                let replay = self.fallback(why, chain, observer);
                let database = self.plain(chain, scratch::PREFIX, observer)?;
                let read = read.take().expect("the reader has not run");
                Ok((read(&database.url)?, replay))
            }
            (Ok(_), None) => unreachable!("the reader ran on the template or a copy"),
        }
    }

    /// A database of the caller's own holding the whole chain, made by copying its template (built first if
    /// missing); dropped when the returned value is. Its name starts with `prefix`.
    pub fn migrated(&self, chain: &Chain, prefix: &str, observer: &mut dyn Observer) -> Result<(ScratchDatabase, Replay)> {
        let attempt = self
            .ensure(chain, observer, &mut |_: &DatabaseUrl| Ok(()))
            .and_then(|(replay, head, mut conn)| Ok((self.copy(&mut conn, &head, prefix)?, replay)));
        match attempt {
            Ok(done) => Ok(done),
            Err(Failure::Replay(error)) => Err(error),
            Err(Failure::Cache(why) | Failure::Skip(why)) => {
                let replay = self.fallback(why, chain, observer);
                Ok((self.plain(chain, prefix, observer)?, replay))
            }
        }
    }

    /// Starts copying template `template` into one spare in a thread of its own, for the next replay (see
    /// [`TemplateCache::building_copy`]), and returns once the server runs the copy: a command may exit right after,
    /// and the server finishes a `CREATE DATABASE` whose client is gone (committed before its reply is sent). Waits
    /// a few milliseconds (at most a second on a very busy machine); a copy not started by then is simply not there
    /// next time.
    fn prefill(&self, conn: &mut PgConnection, template: &str) {
        if crate::testdb::spares_wanted() == 0 {
            return;
        }
        let (tell, told) = std::sync::mpsc::channel();
        let (cache, template) = (self.clone(), template.to_owned());
        let spawned = std::thread::Builder::new()
            .name("anonmigrate-prefill".into())
            .spawn(move || cache.fill_spares_telling(&template, 1, Some(tell)));
        if spawned.is_ok() {
            wait_until_received(conn, &told, "CREATE DATABASE");
        }
    }

    /// Drops this label's discarded databases ([`TRASH_PREFIX`]) in a thread of its own; returns once the server
    /// runs the first `DROP DATABASE` (which it finishes even if this process exits: each drop is whole or not
    /// done, and what is left is dropped next time).
    fn empty_trash(&self, conn: &mut PgConnection) {
        let (tell, told) = std::sync::mpsc::channel();
        let (server, regex) = (self.server.clone(), format!("^{TRASH_PREFIX}{}_[0-9]+_[0-9]+$", self.label));
        let spawned = std::thread::Builder::new().name("anonmigrate-trash".into()).spawn(move || -> Result<()> {
            let mut conn = crate::setup::maintenance_connection(&server)?;
            let pid: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
                .get_result(&mut conn)
                .map_err(|e| db::context("emptying the template trash")(db::pg_error(&e)))?;
            let mut tell = Some(tell);
            for trash in matching(&mut conn, &regex)? {
                if let Some(tell) = tell.take() {
                    let _ = tell.send(pid.pid);
                }
                let _ = db::execute(&mut conn, &format!("DROP DATABASE IF EXISTS {}", db::quote_ident(&trash)));
            }
            Ok(())
        });
        if spawned.is_ok() {
            wait_until_received(conn, &told, "DROP DATABASE");
        }
    }

    /// The database a template is built in: a spare copy of `source` when one waits (made by the previous replay's
    /// [`TemplateCache::prefill`]; when it is still being made, waiting for it beats a second copy racing it for
    /// the disk), else a new copy of `source` (or of `template0`).
    /// Also says whether it was a spare.
    fn building_copy(&self, conn: &mut PgConnection, source: Option<&str>) -> Result<(ScratchDatabase, bool)> {
        if let Some(source) = source
            && crate::testdb::spares_wanted() > 0
        {
            if let Some(claimed) = self.claim_spare_on(conn, source, BUILD_PREFIX) {
                return Ok((claimed, true));
            }
            // A filler of `source` holds its lock until its copies are done: wait for it (bounded), then claim.
            let wait = format!(
                "BEGIN; SET LOCAL lock_timeout = '3s'; \
                 SELECT pg_advisory_xact_lock({SPARE_LOCK_CLASS}, hashtext({})) WHERE NOT pg_try_advisory_xact_lock({SPARE_LOCK_CLASS}, hashtext({0})); COMMIT",
                db::quote_literal(source)
            );
            let waited = db::execute(conn, &wait);
            if waited.is_err() {
                let _ = db::execute(conn, "ROLLBACK");
            }
            if let Some(claimed) = self.claim_spare_on(conn, source, BUILD_PREFIX) {
                return Ok((claimed, true));
            }
        }
        Ok((ScratchDatabase::create_on(conn, &self.server, BUILD_PREFIX, source)?, false))
    }

    fn fallback(&self, why: String, chain: &Chain, observer: &mut dyn Observer) -> Replay {
        let quiet = !enabled() || chain.migrations.is_empty();
        if !quiet && !FALLBACK_REPORTED.swap(true, Ordering::SeqCst) {
            observer.event(Event::Warning(format!(
                "template cache not used on {}: {why}; the whole chain is replayed each time (grant this role CREATEDB and ownership of what it creates, or set {DISABLE_VARIABLE}=0 to silence this)",
                self.server.describe()
            )));
        }
        Replay {
            migrations: chain.migrations.len(),
            copied: 0,
            template: None,
            fallback: Some(why),
            from_spare: false,
        }
    }

    /// The whole chain applied to a fresh database (no templates).
    fn plain(&self, chain: &Chain, prefix: &str, observer: &mut dyn Observer) -> Result<ScratchDatabase> {
        let database = ScratchDatabase::create_named(&self.server, prefix, None)?;
        runner::run(&database.url, chain, &self.run, &mut Quiet(observer))?;
        Ok(database)
    }

    /// Copies template `name` into a new database named `<prefix>…` and records the use.
    fn copy(&self, conn: &mut PgConnection, name: &str, prefix: &str) -> std::result::Result<ScratchDatabase, Failure> {
        let database = ScratchDatabase::create_on(conn, &self.server, prefix, Some(name)).map_err(|e| Failure::Cache(e.to_string()))?;
        let _ = touch(conn, name);
        Ok(database)
    }

    /// Applies the chain (up to and including index `to`, or all of it) on `url`.
    fn apply(&self, url: &DatabaseUrl, chain: &Chain, to: Option<usize>, observer: &mut dyn Observer) -> std::result::Result<(), Failure> {
        let options = RunOptions {
            to: to.map(|i| chain.migrations[i].version.clone()),
            ..self.run.clone()
        };
        runner::run(url, chain, &options, &mut Quiet(observer))?;
        Ok(())
    }

    /// Makes sure the template of the whole chain exists, building what is missing from the longest prefix that
    /// has one, and returns its name. `at_head` runs on the whole-chain template while it is being built (not
    /// when it existed already).
    fn ensure(
        &self,
        chain: &Chain,
        observer: &mut dyn Observer,
        at_head: &mut dyn FnMut(&DatabaseUrl) -> Result<()>,
    ) -> std::result::Result<(Replay, String, PgConnection), Failure> {
        if !enabled() {
            return Err(Failure::Skip(format!("{DISABLE_VARIABLE} turns it off")));
        }
        let n = chain.migrations.len();
        if n == 0 {
            return Err(Failure::Skip("the chain is empty".into()));
        }
        let hashes = anonmigrate_chain::chain_prefix_hashes(&LockFile::from_chain(chain).entries);
        let names: Vec<String> = (1..=n).map(|k| self.name(k, &hashes[k - 1])).collect();
        let head = names[n - 1].clone();
        let mut conn = crate::setup::maintenance_connection(&self.server)?;
        let pattern = format!("{PREFIX}{}_", self.label);
        let found = |replay_template: &str| Replay {
            migrations: n,
            copied: n,
            template: Some(replay_template.to_owned()),
            fallback: None,
            from_spare: false,
        };

        // Most calls find the whole chain: no lock needed.
        let existing = names_on(&mut conn, &pattern).map_err(|e| Failure::Cache(e.to_string()))?;
        if existing.contains(&head) {
            return Ok((found(&head), head, conn));
        }

        // Builders of this label take turns; whoever waited finds what the one before built.
        let lock = format!("SELECT pg_advisory_lock({LOCK_CLASS}, hashtext({}))", db::quote_literal(&self.label));
        db::execute(&mut conn, &lock).map_err(|e| Failure::Cache(format!("cannot take the template builders' lock: {}", e.message)))?;
        let result = self.build(&mut conn, chain, &names, observer, at_head);
        let unlock = format!("SELECT pg_advisory_unlock({LOCK_CLASS}, hashtext({}))", db::quote_literal(&self.label));
        let _ = db::execute(&mut conn, &unlock);
        let replay = result?;
        let _ = evict(&mut conn, &pattern, &self.label, &names[n.saturating_sub(2)..]);
        let _ = drop_spares(&mut conn, &self.spares_regex(), &names[n.saturating_sub(2)..], Some(&self.label));
        // Someone iterating on this chain (it had a cached prefix): the next replay most likely edits the newest
        // migration again and builds on the chain without it, so a copy of that template is made for it now.
        if replay.copied > 0 && n >= 2 {
            self.prefill(&mut conn, &names[n - 2]);
        } else if replay.copied == 0 && costly_to_copy(&mut conn, &head) {
            // A first build (a fresh clone, or after `cache clear`): the next replay most likely appends a
            // migration and builds on this whole chain. Only where a copy costs more than the rest of such a
            // replay: a small template copies in a few tens of milliseconds, and a copy made for nothing (every
            // test workspace builds once) is disk work for no one.
            self.prefill(&mut conn, &head);
        }
        // Every build drops what this and earlier ones discarded (a command exits once the first drop runs, so a
        // few may be left for the next build; a test process drops them all).
        self.empty_trash(&mut conn);
        Ok((replay, head, conn))
    }

    fn build(
        &self,
        conn: &mut PgConnection,
        chain: &Chain,
        names: &[String],
        observer: &mut dyn Observer,
        at_head: &mut dyn FnMut(&DatabaseUrl) -> Result<()>,
    ) -> std::result::Result<Replay, Failure> {
        let n = names.len();
        let pattern = format!("{PREFIX}{}_", self.label);
        let existing = names_on(conn, &pattern).map_err(|e| Failure::Cache(e.to_string()))?;
        let found = (1..=n).rev().find(|k| existing.contains(&names[k - 1])).unwrap_or(0);
        let replay = Replay {
            migrations: n,
            copied: found,
            template: (found > 0).then(|| names[found - 1].clone()),
            fallback: None,
            from_spare: false,
        };
        if found == n {
            return Ok(replay);
        }
        let mut source = replay.template.clone();
        if let Some(source) = &source {
            let _ = touch(conn, source);
        }
        // The chain without its newest migration gets a template too, so editing that migration (the usual thing
        // while writing it) copies everything before it.
        if n >= 2 && found < n - 1 {
            self.build_one(conn, chain, source.as_deref(), n - 2, &names[n - 2], observer, &mut |_| Ok(()))?;
            source = Some(names[n - 2].clone());
        }
        let from_spare = self.build_one(conn, chain, source.as_deref(), n - 1, &names[n - 1], observer, at_head)?;
        Ok(Replay { from_spare, ..replay })
    }

    /// Builds template `name` holding migrations `..=last` from a copy of `source` (or an empty database), calls
    /// `at_head` on it while it is still ours, then renames it and closes it to connections.
    #[allow(clippy::too_many_arguments)]
    fn build_one(
        &self,
        conn: &mut PgConnection,
        chain: &Chain,
        source: Option<&str>,
        last: usize,
        name: &str,
        observer: &mut dyn Observer,
        at_head: &mut dyn FnMut(&DatabaseUrl) -> Result<()>,
    ) -> std::result::Result<bool, Failure> {
        let (building, from_spare) = self.building_copy(conn, source).map_err(|e| match e {
            Error::InsufficientPrivilege { .. } => Failure::Replay(e),
            other => Failure::Cache(other.to_string()),
        })?;
        let to = (last + 1 < chain.migrations.len()).then_some(last);
        self.apply(&building.url, chain, to, observer)?;
        at_head(&building.url)?;
        // Nobody may connect to a template (a copy needs it free); its owner may still copy and drop it. Renamed,
        // closed and commented in one round trip.
        let migration = &chain.migrations[last];
        let also = format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false; {}",
            db::quote_ident(name),
            comment_sql(name, last + 1, &migration.dir_name, &self.workspace, now_secs())
        );
        building
            .keep_as(conn, name, &also)
            .map_err(|e| Failure::Cache(format!("cannot rename the template database: {}", e.message)))?;
        Ok(from_spare)
    }
}

/// Whether copying template `name` takes long enough to be worth doing ahead of need: over 16 MB (an empty
/// database is about 8; a 300-table one about 13, which copies in well under 100 ms).
fn costly_to_copy(conn: &mut PgConnection, name: &str) -> bool {
    #[derive(QueryableByName)]
    struct Costly {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        costly: bool,
    }
    diesel::sql_query("SELECT coalesce(pg_database_size($1) > 16 * 1024 * 1024, false) AS costly")
        .bind::<Text, _>(name)
        .get_result::<Costly>(conn)
        .is_ok_and(|c| c.costly)
}

/// Forwards what a user should see from a replay (warnings, notices) and drops per-migration progress.
pub(crate) struct Quiet<'a>(pub(crate) &'a mut dyn Observer);

impl Observer for Quiet<'_> {
    fn event(&mut self, event: Event) {
        match event {
            Event::Applying { .. } | Event::Applied { .. } | Event::Resuming { .. } => {}
            other => self.0.event(other),
        }
    }
}

fn comment_sql(name: &str, migrations: usize, newest: &str, workspace: &str, used: i64) -> String {
    let text = format!("anonmigrate template: {migrations} migration(s) up to {newest}; workspace {workspace}; used {used}");
    format!("COMMENT ON DATABASE {} IS {}", db::quote_ident(name), db::quote_literal(&text))
}

/// Moves the "used" time in a template's comment to now (least recently used templates are evicted first), unless
/// it moved less than a minute ago. A comment waits for every copy of the template in progress (it locks the
/// database against them), so it gives up after 50 ms rather than hold up a test behind another's copy: the time
/// only orders evictions.
fn touch(conn: &mut PgConnection, name: &str) -> Result<()> {
    let sql = format!(
        "DO $$ DECLARE comment text := coalesce(shobj_description((SELECT oid FROM pg_database WHERE datname = {name}), 'pg_database'), ''); \
         BEGIN \
           IF coalesce(substring(comment FROM 'used ([0-9]+)$')::bigint, 0) > {now} - 60 THEN RETURN; END IF; \
           PERFORM set_config('lock_timeout', '50ms', true); \
           EXECUTE format('COMMENT ON DATABASE %I IS %L', {name}, regexp_replace(comment, 'used [0-9]+$', 'used {now}')); \
         EXCEPTION WHEN lock_not_available THEN NULL; \
         END $$",
        name = db::quote_literal(name),
        now = now_secs()
    );
    db::execute(conn, &sql).map_err(db::context("recording the template's use"))
}

fn names_on(conn: &mut PgConnection, prefix: &str) -> Result<HashSet<String>> {
    Ok(list_on(conn, prefix, false)?.into_iter().map(|t| t.name).collect())
}

fn list_on(conn: &mut PgConnection, prefix: &str, with_sizes: bool) -> Result<Vec<Template>> {
    let (size, spares) = if with_sizes {
        // A template's name is lowercase letters, digits and `_`: safe inside the regular expression.
        let spares = format!(
            "(SELECT count(*) FROM pg_database s WHERE s.datname ~ ('^{SPARE_PREFIX}' || substr(d.datname, {}) || '_[0-9]+$'))",
            PREFIX.len() + 1
        );
        ("pg_database_size(d.oid)", spares)
    } else {
        ("NULL::bigint", "NULL::bigint".to_owned())
    };
    let sql = format!(
        "SELECT datname::text AS name, coalesce(shobj_description(d.oid, 'pg_database'), '') AS comment, {size} AS size, \
                {spares} AS spares \
         FROM pg_database d WHERE datname LIKE {} ESCAPE '\\'",
        db::quote_literal(&format!("{}%", like_literal(prefix)))
    );
    let rows: Vec<Row> = diesel::sql_query(sql)
        .load(conn)
        .map_err(|e| db::context("listing the template databases")(db::pg_error(&e)))?;
    let mut templates: Vec<Template> = rows
        .into_iter()
        .map(|row| {
            let migrations = row.name.rsplit('_').nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
            let used = row.comment.rsplit("used ").next().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
            Template {
                name: row.name,
                migrations,
                comment: row.comment,
                used,
                size_bytes: row.size,
                spares: row.spares,
            }
        })
        .collect();
    templates.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.name.cmp(&b.name)));
    Ok(templates)
}

/// Once there are more than [`KEEP`] + 2 templates of `prefix`, discards the least recently used down to [`KEEP`]
/// (into `label`'s trash), never one of `keep`.
fn evict(conn: &mut PgConnection, prefix: &str, label: &str, keep: &[String]) -> Result<()> {
    let templates = list_on(conn, prefix, false)?;
    if templates.len() <= KEEP + 2 {
        return Ok(());
    }
    let mut kept = templates.iter().filter(|t| keep.contains(&t.name)).count();
    for template in templates.iter().filter(|t| !keep.contains(&t.name)) {
        if kept < KEEP {
            kept += 1;
            continue;
        }
        let _ = discard(conn, &template.name, label);
    }
    Ok(())
}

fn clear_on(server: &DatabaseUrl, prefix: &str, spares: &str, trash: &str) -> Result<Vec<String>> {
    let mut conn = crate::setup::maintenance_connection(server)?;
    // Spares first, and again after the templates: a copy still being made is not listed yet, but dropping its
    // template waits for it to finish.
    let mut dropped = drop_spares(&mut conn, spares, &[], None)?;
    for template in list_on(&mut conn, prefix, false)? {
        db::execute(&mut conn, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db::quote_ident(&template.name)))
            .map_err(db::context("dropping a template database"))?;
        dropped.push(template.name);
    }
    dropped.extend(drop_spares(&mut conn, spares, &[], None)?);
    dropped.extend(drop_spares(&mut conn, trash, &[], None)?);
    Ok(dropped)
}

/// Every anonmigrate template on the server (any workspace), most recently used first, with sizes.
pub fn list_all(server: &DatabaseUrl) -> Result<Vec<Template>> {
    let mut conn = crate::setup::maintenance_connection(server)?;
    list_on(&mut conn, PREFIX, true)
}

/// Drops every anonmigrate template on the server (any workspace); returns their names.
pub fn clear_all(server: &DatabaseUrl) -> Result<Vec<String>> {
    clear_on(server, PREFIX, &format!("^{SPARE_PREFIX}"), &format!("^{TRASH_PREFIX}"))
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// Waits (at most a second) until the session whose backend pid comes on `told` has received a statement starting
/// with `statement` (or has ended), so that this process may exit while the server runs it. Returns at once when
/// the sender is dropped without a pid (nothing to run).
fn wait_until_received(conn: &mut PgConnection, told: &std::sync::mpsc::Receiver<i32>, statement: &str) {
    use diesel::sql_types::{Bool, Integer};
    #[derive(QueryableByName)]
    struct Received {
        #[diesel(sql_type = Bool)]
        received: bool,
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let Ok(pid) = told.recv_timeout(std::time::Duration::from_secs(1)) else { return };
    // pg_stat_activity.query is the session's latest statement, running or finished (empty where the server does
    // not track activity: nothing to wait for then).
    let sql = format!(
        "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query <> '' AND query NOT LIKE {}) AS received",
        db::quote_literal(&format!("{statement}%"))
    );
    while std::time::Instant::now() < deadline {
        let received = diesel::sql_query(&sql).bind::<Integer, _>(pid).get_result::<Received>(conn);
        if !received.is_ok_and(|r| !r.received) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Renames database `name` out of the cache's way, into this label's trash (`anonmigrate_trash_<label>_<pid>_<n>`),
/// to be dropped later ([`TemplateCache::empty_trash`]): a rename is instant where a drop of a few hundred tables
/// takes 50–200 ms. A copy of it in progress is waited for, as a drop would.
fn discard(conn: &mut PgConnection, name: &str, label: &str) -> std::result::Result<(), crate::error::PgError> {
    let trash = scratch::fresh_name(&format!("{TRASH_PREFIX}{label}_"));
    db::execute(conn, &format!("ALTER DATABASE {} RENAME TO {}", db::quote_ident(name), db::quote_ident(&trash)))
}

/// The name of spare number `k` of template `template`; `None` when it would not fit PostgreSQL's 63 bytes (or
/// `template` is not a template's name).
pub fn spare_name(template: &str, k: usize) -> Option<String> {
    let name = format!("{SPARE_PREFIX}{}_{k}", template.strip_prefix(PREFIX)?);
    (name.len() <= 63).then_some(name)
}

/// A regular expression matching the names of the spares of template `template`.
fn spare_regex(template: &str) -> Option<String> {
    spare_name(template, 0)?;
    Some(format!("^{SPARE_PREFIX}{}_[0-9]+$", template.strip_prefix(PREFIX)?))
}

/// Names of the databases matching the regular expression `regex`.
fn matching(conn: &mut PgConnection, regex: &str) -> Result<HashSet<String>> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let rows: Vec<Name> = diesel::sql_query("SELECT datname::text AS name FROM pg_database WHERE datname ~ $1")
        .bind::<Text, _>(regex)
        .load(conn)
        .map_err(|e| db::context("listing the spare test databases")(db::pg_error(&e)))?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// Drops the spares matching `regex` (or discards them into the trash of label `trash`), except the spares of the
/// templates `keep`; returns their names. Nobody is
/// connected to a spare; one claimed meanwhile has another name and is left alone (`IF EXISTS`).
fn drop_spares(conn: &mut PgConnection, regex: &str, keep: &[String], trash: Option<&str>) -> Result<Vec<String>> {
    let mut kept = HashSet::new();
    for template in keep {
        if let Some(regex) = spare_regex(template) {
            kept.extend(matching(conn, &regex)?);
        }
    }
    let mut dropped = Vec::new();
    for spare in matching(conn, regex)?.into_iter().filter(|s| !kept.contains(s)) {
        match trash {
            Some(label) => {
                let _ = discard(conn, &spare, label);
            }
            None => db::execute(conn, &format!("DROP DATABASE IF EXISTS {}", db::quote_ident(&spare))).map_err(db::context("dropping a spare test database"))?,
        }
        dropped.push(spare);
    }
    dropped.sort();
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_lowercase_identifiers() {
        assert_eq!(label_for("AnonChat"), "anonchat");
        assert_eq!(label_for("my-app.v2"), "my_app_v2");
        assert_eq!(label_for("--"), "chain");
        assert_eq!(label_for(".tmpAbC"), "tmpabc");
        assert!(label_for(&"x".repeat(100)).len() <= 20);
    }

    #[test]
    fn names_fit_postgres_identifiers() {
        let cache = TemplateCache::new(
            &DatabaseUrl::parse("postgres://u@h/db", crate::database_url::UrlSource::Flag).unwrap(),
            &"w".repeat(80),
            "/w",
            RunOptions::default(),
        );
        let name = cache.name(123_456, &"ab".repeat(32));
        assert!(name.len() <= 63, "{name}");
        assert_eq!(name, format!("anonmigrate_tpl_{}_123456_abababababab", "w".repeat(20)));
    }
}
