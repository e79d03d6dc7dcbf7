//! Applies and reverts migrations: the migration lock, safety checks, transactions, per-statement progress for
//! non-transactional migrations, and the bookkeeping that goes with each step.

use std::time::{Duration, Instant};

use anonmigrate_chain::{Chain, LockFile};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::bookkeeping::{self, AppliedRow};
use crate::database_url::{DatabaseUrl, UrlSource};
use crate::db;
use crate::error::{Error, PgError, Result};
use crate::events::{Event, Observer};
use crate::plan::{Direction, Script};
use crate::pooler;
use crate::status::{MigrationState, Status};

/// Advisory lock key shared by every anonmigrate process (advisory locks are per database already); the offline
/// `--sql` script takes the same lock.
pub const MIGRATION_LOCK_KEY: i64 = 0x616e_6f6e_6d69_6772; // "anonmigr"
const LOCK_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The migration lock of a target: the database's, or for a tenant schema one of its own, so tenants of one
/// database migrate side by side while two runners on the same tenant still exclude each other.
pub fn migration_lock_key(url: &DatabaseUrl) -> i64 {
    match url.tenant() {
        None => MIGRATION_LOCK_KEY,
        Some(tenant) => {
            // FNV-1a, written out: the key must be the same in every process and release, which std's hasher
            // does not promise.
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in tenant.schema.bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            MIGRATION_LOCK_KEY ^ (hash as i64)
        }
    }
}

/// The defaults: every pending migration, in order, no wait for the lock, no DDL lock or statement timeout.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub to: Option<String>,
    pub step: Option<usize>,
    pub ignore_missing: bool,
    pub allow_out_of_order: bool,
    pub lock_timeout: Duration,
    pub ddl_lock_timeout: Option<Duration>,
    /// `statement_timeout` of the migration session; `None`: no limit, whatever the role or database sets.
    pub statement_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub applied: Vec<AppliedMigration>,
    /// The newest applied version before this run (`None`: nothing was applied).
    pub version_before: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AppliedMigration {
    pub version: String,
    pub dir_name: String,
    pub duration_ms: u128,
    pub statements: usize,
}

/// A connection that holds the migration lock for as long as it lives.
pub struct LockedConnection {
    pub conn: PgConnection,
    /// The advisory lock key: the database's, or a tenant schema's own ([`migration_lock_key`]).
    key: i64,
    /// The setup created both bookkeeping tables under the lock (neither existed): nothing is applied, and
    /// there is nothing to read.
    pub created_bookkeeping: bool,
    /// The lock went with the last message of the session ([`LockedConnection::unlock_sql`]).
    released: bool,
    /// The pooler check's session, when the connection was not proven direct: its guard leads each message that
    /// starts a transaction of the migrations ([`Guard`]).
    session: Option<pooler::Session>,
}

impl LockedConnection {
    /// The unlock, for the caller to append to the session's last message (after its final `COMMIT`), saving the
    /// round trip of its own; [`LockedConnection::released`] says it ran.
    pub fn unlock_sql(&self) -> String {
        format!("SELECT pg_advisory_unlock({})", self.key)
    }

    /// The last message, with [`LockedConnection::unlock_sql`] in it, succeeded: the lock is no longer held.
    pub fn released(&mut self) {
        self.released = true;
    }

    /// The connection and the guard its messages carry.
    fn split(&mut self) -> (&mut PgConnection, Guard<'_>) {
        (&mut self.conn, Guard { session: self.session.as_ref(), key: self.key })
    }
}

/// Keeps the messages of a migration session on the server process that holds the lock when `pooler` checked
/// that process (a connection not proven direct): the session's guard statement leads each message that starts
/// a transaction, so if the checks before the lock were fooled (a transaction pooler under many clients at once)
/// the first message that lands elsewhere runs nothing, and the refusal releases the lock from its process. A
/// statement that cannot run in a transaction (`CREATE INDEX CONCURRENTLY`) goes alone; the progress record right
/// after it is guarded.
#[derive(Clone, Copy)]
struct Guard<'a> {
    session: Option<&'a pooler::Session>,
    key: i64,
}

impl Guard<'_> {
    /// The guard statement and its separator, or `""`.
    fn sql(&self) -> String {
        self.session.map_or_else(String::new, |session| format!("{};\n", session.guard_sql()))
    }

    /// The pooler refusal when `error` is the guard's own failure.
    fn refusal(&self, conn: &mut PgConnection, error: &PgError) -> Option<Error> {
        let session = self.session?;
        error.message.contains(pooler::GUARD_FAILED).then(|| session.guard_failed(conn, self.key, true))
    }

    /// Runs `sql` after the guard; a failure of the guard becomes the refusal, any other `what` in context.
    fn execute(&self, conn: &mut PgConnection, sql: &str, what: &str) -> Result<()> {
        db::execute(conn, &format!("{}{sql}", self.sql())).map_err(|error| {
            self.refusal(conn, &error).unwrap_or_else(|| db::context(what)(error))
        })
    }
}

/// What the first message under the migration lock sets up, besides checking that it still runs on the locked
/// server process.
#[derive(Debug, Clone, Copy)]
pub struct SessionSetup {
    /// `statement_timeout` of the session; `None`: no limit, whatever the role or database sets.
    pub statement_timeout: Option<Duration>,
    /// Create the bookkeeping tables (if they do not exist).
    pub bookkeeping: bool,
}

impl std::fmt::Debug for LockedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockedConnection")
    }
}

impl Drop for LockedConnection {
    fn drop(&mut self) {
        // Always a round trip of its own, even on a direct connection: the server ends a closed client's backend
        // (and releases its locks) only some moments after the socket closes, so the next command would find the
        // lock still held and wait. Through a session-mode pool the server connection outlives ours anyway.
        if !self.released {
            let unlock = self.unlock_sql();
            let _ = db::execute(&mut self.conn, &unlock);
        }
    }
}

#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = Text)]
    pid: String,
    #[diesel(sql_type = Text)]
    application: String,
    #[diesel(sql_type = Text)]
    since: String,
}

fn lock_holder(conn: &mut PgConnection, key: i64) -> Option<Holder> {
    diesel::sql_query(
        "SELECT a.pid::text AS pid, coalesce(nullif(a.application_name, ''), 'unknown') AS application, \
                coalesce('connected since ' || to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), 'since an unknown time') AS since \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.classid = ($1 >> 32)::oid AND l.objid = ($1 & 4294967295)::oid AND l.objsubid = 1 LIMIT 1",
    )
    .bind::<BigInt, _>(key)
    .get_result(conn)
    .ok()
}

/// Takes the migration lock by polling `pg_try_advisory_lock`: a blocking `pg_advisory_lock` would keep a
/// transaction waiting that `CREATE INDEX CONCURRENTLY` in the holder's session waits for, a deadlock. Then sets
/// the session up (`setup`) in the same message that checks the connection still runs where the lock is held.
///
/// Round trips before the first migration (a fresh database, the lock free): on a connection proven direct, the
/// claim (which takes the lock too) and the setup message, which creates the bookkeeping tables and so makes the
/// bookkeeping read unnecessary; otherwise also a check of this connection, the lock, and two queries on one
/// second connection. The managed local server (started by this tool, on its own socket) needs no pooler check at
/// all. The lock is released explicitly: in the caller's last message ([`LockedConnection::unlock_sql`]) or when
/// the connection is dropped.
pub fn lock(url: &DatabaseUrl, timeout: Duration, setup: SessionSetup, observer: &mut dyn Observer) -> Result<LockedConnection> {
    let mut conn = db::connect(url)?;
    // Through a transaction-mode pooler the lock would not serialise anything: find out before taking it.
    let key = migration_lock_key(url);
    // A connection proven direct in the claim tries the lock in the same round trip.
    let mut first_try = None;
    // Whether the first look saw no bookkeeping: a hint for the setup, which checks it under the lock.
    let mut absent_at_first = false;
    let mut checked = match url.source {
        UrlSource::LocalServer => None,
        _ => {
            let mut probe = pooler::Probe::new(url);
            let (session, claim) = pooler::Session::claim(&mut conn, url, &mut probe, Some(key))?;
            if session.is_direct() {
                first_try = Some(claim.locked);
            }
            absent_at_first = claim.bookkeeping_absent;
            Some((session, probe))
        }
    };
    let started = Instant::now();
    let mut announced = false;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let taken = match (first_try.take(), &checked) {
            (Some(taken), _) => taken,
            (None, Some((session, _))) => session.try_lock(&mut conn, key)?,
            (None, None) => {
                let (taken, absent) = try_lock_plain(&mut conn, key)?;
                absent_at_first = absent;
                taken
            }
        };
        if taken {
            if let Some((session, probe)) = &mut checked {
                session.confirm_lock(probe, key)?;
            }
            // After a wait another runner has most likely created the tables: the hint is stale.
            let fresh_hint = absent_at_first && attempt == 1;
            let mut locked = LockedConnection { conn, key, created_bookkeeping: false, released: false, session: None };
            locked.created_bookkeeping =
                setup_session(&mut locked.conn, checked.as_ref().map(|(session, _)| session), setup, key, fresh_hint)?;
            locked.session = checked.map(|(session, _)| session).filter(|session| !session.is_direct());
            return Ok(locked);
        }
        if let Some((_, probe)) = &mut checked {
            // Not while waiting: in a session-mode pool it would keep a server connection from the others.
            probe.close();
        }
        let holder = lock_holder(&mut conn, key);
        if started.elapsed() >= timeout {
            let holder = holder.unwrap_or(Holder {
                pid: "unknown".into(),
                application: "unknown".into(),
                since: "since an unknown time".into(),
            });
            return Err(Error::LockTimeout {
                database: url.describe(),
                pid: holder.pid,
                application: holder.application,
                since: holder.since,
                waited_secs: timeout.as_secs(),
            });
        }
        if !announced {
            announced = true;
            let who = holder
                .map(|h| format!("pid {} ({}, {})", h.pid, h.application, h.since))
                .unwrap_or_else(|| "another session".into());
            observer.event(Event::WaitingForLock { holder: who });
        }
        // Jitter spreads the retries of many runners started at the same instant.
        let jitter = Duration::from_millis(u64::from(std::process::id() % 50));
        std::thread::sleep(LOCK_POLL_INTERVAL + jitter);
    }
}

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    taken: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    absent: bool,
}

/// Whether the lock was taken, and whether diesel's bookkeeping table was absent (the setup's hint, as in
/// [`pooler::Claim::bookkeeping_absent`]).
fn try_lock_plain(conn: &mut PgConnection, key: i64) -> Result<(bool, bool)> {
    diesel::sql_query(format!(
        "SELECT pg_try_advisory_lock({key}) AS taken, to_regclass('__diesel_schema_migrations') IS NULL AS absent"
    ))
    .get_result::<Taken>(conn)
    .map(|t| (t.taken, t.absent))
    .map_err(|e| db::context("taking the migration lock")(db::pg_error(&e)))
}

/// One message: the pooler guard (first, so nothing else runs on another server process), `statement_timeout`,
/// `client_connection_check_interval`, and the bookkeeping tables. Returns whether it created both tables.
///
/// `client_connection_check_interval`: if this process dies (kill -9, a lost network), the server notices
/// within a second even in the middle of a long statement and rolls back, releasing the migration lock and the
/// table locks instead of holding them until the statement ends. PostgreSQL 14+ on Linux, macOS and the BSDs;
/// where the server refuses it the message is sent again without it.
///
/// `fresh_hint` (diesel's table was not there at the first look): the tables are created without `IF NOT
/// EXISTS`, in the message's one transaction. Under the lock that succeeds only when neither table exists, so
/// nothing is applied and `run` need not read them (a round trip and about a millisecond of server time on a
/// fresh database, issue 20). When they exist after all (another tool made them meanwhile) the message fails,
/// nothing of it stays, and it is sent again as usual.
fn setup_session(conn: &mut PgConnection, session: Option<&pooler::Session>, setup: SessionSetup, key: i64, fresh_hint: bool) -> Result<bool> {
    let mut check_interval = true;
    let mut create_fresh = setup.bookkeeping && fresh_hint;
    loop {
        let mut sql = String::new();
        if let Some(session) = session {
            sql.push_str(&session.guard_sql());
            sql.push_str(";\n");
        }
        sql.push_str(&statement_timeout_sql(setup.statement_timeout));
        sql.push_str(";\n");
        if check_interval {
            sql.push_str("SET client_connection_check_interval = 1000;\n");
        }
        if create_fresh {
            sql.push_str(&bookkeeping::CREATE_TABLES.replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE"));
        } else if setup.bookkeeping {
            sql.push_str(bookkeeping::CREATE_TABLES);
        }
        let Err(error) = db::execute(conn, &sql) else { return Ok(create_fresh) };
        if let Some(session) = session
            && error.message.contains(pooler::GUARD_FAILED)
        {
            return Err(session.guard_failed(conn, key, false));
        }
        if check_interval && error.message.contains("client_connection_check_interval") {
            check_interval = false;
            continue;
        }
        if create_fresh {
            // Whatever failed (most likely a table that exists after all), the usual message decides.
            create_fresh = false;
            continue;
        }
        let what = if setup.bookkeeping { "creating the bookkeeping tables" } else { "setting statement_timeout" };
        return Err(db::context(what)(error));
    }
}

pub fn read_status(conn: &mut PgConnection, chain: &Chain) -> Result<(Status, Vec<AppliedRow>)> {
    let rows = bookkeeping::read(conn)?;
    Ok((Status::compute_with(chain, &rows, &renames_of(chain)), rows))
}

/// The versions `merge` changed, from the lock file beside the chain (none when it is missing or unreadable:
/// the commands that need it report the lock file themselves).
fn renames_of(chain: &Chain) -> Vec<anonmigrate_chain::Rename> {
    LockFile::read(&chain.dir).ok().flatten().map(|(lock, _)| lock.renames).unwrap_or_default()
}

#[derive(QueryableByName)]
struct RenumberedRow {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Text)]
    old: String,
}

/// A pending migration is out of order only against what this database applied in chain order: a record an
/// earlier `run` renumbered (audited `renumber from OLD`) counts at its old version, so what arrived next to it
/// stays in order even when that run stopped before applying it. Read only when something is out of order.
fn tolerate_renumbered(conn: &mut PgConnection, status: &mut Status) {
    if status.out_of_order().next().is_none() {
        return;
    }
    let renumbered: Vec<RenumberedRow> = diesel::sql_query(
        "SELECT version::text AS version, substr(action, length('renumber from ') + 1) AS old \
         FROM __anonmigrate_audit WHERE action LIKE 'renumber from %'",
    )
    .load(conn)
    .unwrap_or_default();
    if renumbered.is_empty() {
        return;
    }
    let effective = |version: &str| renumbered.iter().find(|r| r.version == version).map_or(version.to_owned(), |r| r.old.clone());
    let Some(newest) = status.applied().map(|e| effective(&e.version)).max() else { return };
    for entry in &mut status.entries {
        if matches!(entry.state, MigrationState::Pending { out_of_order: true }) && entry.version > newest {
            entry.state = MigrationState::Pending { out_of_order: false };
        }
    }
}

/// Moves the records that [`Status::renumber`] found to their new versions (one transaction, audited), says so
/// in one line each, and returns the rows and status as they are afterwards. The migrations are not run again.
fn apply_renumbering(
    conn: &mut PgConnection,
    chain: &Chain,
    status: Status,
    mut rows: Vec<AppliedRow>,
    observer: &mut dyn Observer,
) -> Result<(Status, Vec<AppliedRow>)> {
    if status.renumber.is_empty() {
        return Ok((status, rows));
    }
    let mut sql = String::from("BEGIN;\n");
    for renumber in &status.renumber {
        let (from, to) = (db::quote_literal(&renumber.from), db::quote_literal(&renumber.to));
        let name = chain.find(&renumber.to).map_or_else(String::new, |m| m.name.clone());
        sql.push_str(&format!(
            "UPDATE __diesel_schema_migrations SET version = {to} WHERE version = {from};\n\
             UPDATE __anonmigrate_migrations SET version = {to}, name = {} WHERE version = {from};\n",
            db::quote_literal(&name)
        ));
        let checksum = chain.find(&renumber.to).map(|m| m.checksum.as_str());
        sql.push_str(&bookkeeping::record_audit_sql(&renumber.to, &format!("renumber from {}", renumber.from), checksum, checksum));
        sql.push('\n');
    }
    sql.push_str("COMMIT;");
    db::execute(conn, &sql).map_err(db::context("renumbering migration records"))?;
    for renumber in &status.renumber {
        observer.event(Event::Notice(format!(
            "renumbered the record of {}: applied here as version {}, which `merge` changed (same checksum, not applied again)",
            renumber.dir_name, renumber.from
        )));
        for row in rows.iter_mut().filter(|r| r.version == renumber.from) {
            row.version = renumber.to.clone();
        }
    }
    rows.sort_by(|a, b| a.version.cmp(&b.version));
    Ok((Status::compute(chain, &rows), rows))
}

/// `check`'s strict test: an error when the lock file disagrees with the migrations on disk (a missing lock file
/// only warns). Other commands bring the lock file up to date instead (`lock_sync`).
pub fn check_lock_file(chain: &Chain, observer: &mut dyn Observer) -> Result<()> {
    match LockFile::read(&chain.dir)? {
        None => {
            observer.event(Event::Warning(format!(
                "no {} beside the migrations; create it with `cargo anonmigrate lock` and commit it, so concurrent branches conflict in git",
                anonmigrate_chain::LOCK_FILE_NAME
            )));
            Ok(())
        }
        Some((lock, header_ok)) => {
            let mismatch = lock.compare(chain, header_ok);
            if mismatch.is_empty() {
                return Ok(());
            }
            let mut lines = Vec::new();
            for name in &mismatch.added {
                lines.push(format!("  added (not in the lock file): {name}"));
            }
            for name in &mismatch.edited {
                lines.push(format!("  edited since the lock file was written: {name}"));
            }
            for name in &mismatch.removed {
                lines.push(format!("  removed (in the lock file, not on disk): {name}"));
            }
            if mismatch.corrupt_header {
                lines.push("  the chain hash on the first line does not match the entries (edited by hand or merged)".into());
            }
            Err(Error::Integrity(format!(
                "{} does not match the migrations on disk:\n{}\nif these changes are intended, any command that works on the chain (`cargo anonmigrate lock`, `run`, `schema`) updates it: commit the result; after a git merge run `cargo anonmigrate merge`",
                LockFile::path_in(&chain.dir).display(),
                lines.join("\n")
            )))
        }
    }
}

fn check_safe_to_run(chain: &Chain, status: &Status, options: &RunOptions) -> Result<()> {
    let changed: Vec<String> = status
        .changed()
        .map(|e| match &e.state {
            MigrationState::Applied { recorded_checksum, .. } => format!(
                "  {}: applied with up.sql sha256 {}, file now has sha256 {}",
                e.dir_name,
                recorded_checksum.as_deref().unwrap_or("?"),
                chain.find(&e.version).map_or("?", |m| m.checksum.as_str())
            ),
            _ => unreachable!("changed() only yields applied entries"),
        })
        .collect();
    if !changed.is_empty() {
        return Err(Error::Integrity(format!(
            "applied migrations were modified after they ran:\n{}\nrestore the original files (git checkout), or if the edit is deliberate and already reflected in the database run `cargo anonmigrate accept VERSION`",
            changed.join("\n")
        )));
    }
    if !status.missing.is_empty() && !options.ignore_missing {
        let names: Vec<String> = status
            .missing
            .iter()
            .map(|m| format!("  {} {}", m.version, m.name.as_deref().unwrap_or("")))
            .collect();
        return Err(Error::Integrity(format!(
            "the database has applied migrations that are not on disk:\n{}\nyou may be on an old branch: check out the branch that has them, or pass --ignore-missing to run anyway",
            names.join("\n")
        )));
    }
    let late: Vec<String> = status.out_of_order().map(|e| format!("  {}", e.dir_name)).collect();
    if !late.is_empty() && !options.allow_out_of_order {
        return Err(Error::OutOfOrder(format!(
            "pending migrations are older than the newest applied one ({}), typically after a git merge:\n{}\nrun `cargo anonmigrate merge` to move them after the current head, or pass --allow-out-of-order",
            status.current_version.as_deref().unwrap_or("?"),
            late.join("\n")
        )));
    }
    Ok(())
}

/// Everything `run` checks before it connects: `--to`, and every up.sql split and checked. (The lock file is the
/// caller's: the CLI brings it up to date, or refuses under `--locked`, before anything runs.)
fn prepare_run(chain: &Chain, options: &RunOptions) -> Result<Vec<Script>> {
    if let Some(to) = &options.to {
        known_version(chain, "--to", to)?;
    }
    chain.migrations.iter().map(|m| Script::prepare(m, Direction::Up)).collect()
}

/// Refuses a `--to`/`--from` version that is not in the chain.
pub(crate) fn known_version(chain: &Chain, flag: &str, version: &str) -> Result<usize> {
    chain.migrations.iter().position(|m| m.version == version).ok_or_else(|| {
        Error::Refused(format!(
            "{flag} {version}: no migration with that version in {}; `cargo anonmigrate history` lists the versions",
            chain.dir.display()
        ))
    })
}

/// The pending (or partially applied) scripts `run` applies, in order, honouring `--to` and `--step`.
fn select_pending<'a>(scripts: &'a [Script], status: &Status, options: &RunOptions) -> Vec<&'a Script> {
    let pending: std::collections::HashSet<&str> = status.pending().map(|e| e.version.as_str()).collect();
    let mut todo: Vec<&Script> = scripts
        .iter()
        .filter(|s| pending.contains(s.version.as_str()))
        .filter(|s| options.to.as_ref().is_none_or(|to| s.version.as_str() <= to.as_str()))
        .collect();
    if let Some(step) = options.step {
        todo.truncate(step);
    }
    todo
}

/// Applies pending migrations in order under the migration lock.
pub fn run(url: &DatabaseUrl, chain: &Chain, options: &RunOptions, observer: &mut dyn Observer) -> Result<RunReport> {
    // Parse every script before connecting, so a bad file changes nothing.
    let scripts = prepare_run(chain, options)?;

    let setup = SessionSetup { statement_timeout: options.statement_timeout, bookkeeping: true };
    let mut locked = lock(url, options.lock_timeout, setup, observer)?;
    let rows = if locked.created_bookkeeping { Vec::new() } else { bookkeeping::read_existing(&mut locked.conn)? };
    let conn = &mut locked.conn;
    // With no records nothing can have been renumbered: the lock file need not be read again.
    let renames = if rows.is_empty() { Vec::new() } else { renames_of(chain) };
    let mut status = Status::compute_with(chain, &rows, &renames);
    tolerate_renumbered(conn, &mut status);
    // Judged before renumbering: a migration that arrived next to a renumbered one is in order on this database.
    check_safe_to_run(chain, &status, options)?;
    let (status, rows) = apply_renumbering(conn, chain, status, rows, observer)?;

    let todo = select_pending(&scripts, &status, options);
    let total = todo.len();
    let mut report = RunReport { version_before: status.current_version.clone(), ..RunReport::default() };
    let rows_by_version: std::collections::HashMap<&str, &AppliedRow> = rows.iter().map(|r| (r.version.as_str(), r)).collect();
    // The unlock travels with the last migration's closing message (after its COMMIT): one round trip fewer.
    let unlock = locked.unlock_sql();
    let (conn, guard) = locked.split();
    for (index, script) in todo.into_iter().enumerate() {
        let row = rows_by_version.get(script.version.as_str()).copied();
        observer.event(Event::Applying {
            index: index + 1,
            total,
            dir_name: script.dir_name.clone(),
        });
        let started = Instant::now();
        let closing = if index + 1 == total { unlock.as_str() } else { "" };
        if script.transactional {
            apply_transactional(conn, guard, script, options.ddl_lock_timeout, Direction::Up, closing)?;
        } else {
            apply_statementwise(conn, guard, script, row, options.ddl_lock_timeout, observer, closing)?;
        }
        let duration = started.elapsed();
        observer.event(Event::Applied {
            index: index + 1,
            total,
            dir_name: script.dir_name.clone(),
            duration,
            statements: script.statements.len(),
        });
        report.applied.push(AppliedMigration {
            version: script.version.clone(),
            dir_name: script.dir_name.clone(),
            duration_ms: duration.as_millis(),
            statements: script.statements.len(),
        });
    }
    if total > 0 {
        locked.released();
    }
    Ok(report)
}

/// Set explicitly for the whole migration session: a role or database default (`statement_timeout = '30s'` is
/// common in production) would otherwise cancel a long `CREATE INDEX CONCURRENTLY` or backfill half-way.
fn statement_timeout_sql(timeout: Option<Duration>) -> String {
    match timeout {
        Some(d) => format!("SET statement_timeout = '{}ms'", d.as_millis()),
        None => "SET statement_timeout = 0".to_owned(),
    }
}

pub(crate) fn lock_timeout_sql(ddl_lock_timeout: Option<Duration>, local: bool) -> String {
    let scope = if local { "SET LOCAL" } else { "SET" };
    match ddl_lock_timeout {
        Some(d) => format!("{scope} lock_timeout = '{}ms'", d.as_millis()),
        None => format!("{scope} lock_timeout = 0"),
    }
}

/// The bookkeeping that closes one direction of a migration (inside its transaction, or in a transaction of
/// its own for a non-transactional one); `duration_ms` is `None` in the offline script.
pub(crate) fn finish_sql(script: &Script, direction: Direction, elapsed: bookkeeping::Elapsed) -> String {
    match direction {
        Direction::Up => {
            bookkeeping::record_applied_sql(&script.version, &script.name, &script.checksum, script.statements.len(), elapsed)
        }
        Direction::Down => bookkeeping::record_reverted_sql(&script.version),
    }
}

/// One transaction: lock_timeout, every statement, bookkeeping. A crash anywhere leaves nothing behind.
///
/// Round trips dominate small migrations, so `BEGIN` and `SET LOCAL lock_timeout` travel with the first
/// statement and the bookkeeping and `COMMIT` with the last: a one-statement migration is one message. Each
/// message still holds exactly one of the migration's statements, so a failure names its statement.
///
/// `closing`: SQL that runs after the `COMMIT`, in the same message (the session's unlock after its last
/// migration), or `""`.
fn apply_transactional(
    conn: &mut PgConnection,
    guard: Guard<'_>,
    script: &Script,
    ddl_lock_timeout: Option<Duration>,
    direction: Direction,
    closing: &str,
) -> Result<()> {
    let prefix = format!("{}BEGIN;\n{};\n", guard.sql(), lock_timeout_sql(ddl_lock_timeout, true));
    // The newline first: it ends a trailing `--` comment of the last statement before our `;`.
    let suffix = format!("\n;\n{}\nCOMMIT;{}", finish_sql(script, direction, bookkeeping::Elapsed::SinceTransactionStart), closing_sql(closing));
    let count = script.statements.len();
    if count == 0 {
        return db::execute(conn, &format!("{prefix}{suffix}")).map_err(|error| {
            rollback(conn);
            guard.refusal(conn, &error).unwrap_or_else(|| db::context("recording the migration")(error))
        });
    }
    for (index, statement) in script.statements.iter().enumerate() {
        let first = index == 0;
        let last = index + 1 == count;
        let message = match (first, last) {
            (true, true) => format!("{prefix}{}{suffix}", statement.sql),
            (true, false) => format!("{prefix}{}", statement.sql),
            (false, true) => format!("{}{suffix}", statement.sql),
            (false, false) => statement.sql.clone(),
        };
        if let Err(mut error) = db::execute(conn, &message) {
            // The failed statement is explained after the rollback: inside the aborted transaction no query (the
            // blocking sessions, for instance) can run, and a lost connection must not hide the first error.
            rollback(conn);
            if first && let Some(refusal) = guard.refusal(conn, &error) {
                return Err(refusal);
            }
            if first {
                // Positions count from the start of the message; the prefix is ours.
                let prefix_chars = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
                error.position = error.position.map(|p| p - prefix_chars).filter(|p| *p > 0);
            }
            if last && is_bookkeeping_error(&error) {
                return Err(db::context("recording the migration")(error));
            }
            return Err(statement_failed(conn, script, index, error, Recovery::RolledBack));
        }
    }
    Ok(())
}

fn closing_sql(closing: &str) -> String {
    if closing.is_empty() { String::new() } else { format!("\n{closing};") }
}

fn rollback(conn: &mut PgConnection) {
    let _ = db::execute(conn, "ROLLBACK");
}

/// Our own bookkeeping statements name our tables in their errors; the user's statements practically never do.
fn is_bookkeeping_error(error: &PgError) -> bool {
    [bookkeeping::DIESEL_TABLE, "__anonmigrate_migrations"]
        .iter()
        .any(|table| error.message.contains(table) || error.detail.as_deref().is_some_and(|d| d.contains(table)))
}

/// How many statements of a non-transactional migration already ran in an earlier, interrupted run (0 for a
/// fresh start); an error when those statements have changed since, because their old effect is in the database.
fn resume_point(script: &Script, row: Option<&AppliedRow>) -> Result<usize> {
    let done = row.map_or(0, |r| usize::try_from(r.statements_done.unwrap_or(0)).unwrap_or(0));
    if done == 0 {
        return Ok(0);
    }
    let unchanged = done <= script.statements.len()
        && row.and_then(|r| r.done_prefix_hash.as_deref()) == Some(script.prefix_hash(done).as_str());
    if !unchanged {
        return Err(Error::Integrity(format!(
            "migration `{}` stopped after statement {done} of a previous run, and those {done} statements have changed since; the database holds their old effect: undo it by hand, then run `cargo anonmigrate stamp --delete {}` and `cargo anonmigrate run`",
            script.dir_name, script.version
        )));
    }
    Ok(done)
}

/// Non-transactional: each statement on its own, progress recorded after each, resuming where a previous run
/// stopped if the statements that already ran are unchanged.
fn apply_statementwise(
    conn: &mut PgConnection,
    guard: Guard<'_>,
    script: &Script,
    row: Option<&AppliedRow>,
    ddl_lock_timeout: Option<Duration>,
    observer: &mut dyn Observer,
    closing: &str,
) -> Result<()> {
    let started = Instant::now();
    let total = script.statements.len();
    let first = resume_point(script, row)?;
    if first > 0 {
        observer.event(Event::Resuming {
            dir_name: script.dir_name.clone(),
            from_statement: first + 1,
            total,
        });
    }
    // One message each for the start (with the session's lock_timeout) and the end (with its reset).
    let record = bookkeeping::record_started_sql(&script.version, &script.name, &script.checksum, total);
    let start = format!("{record}\n{};", lock_timeout_sql(ddl_lock_timeout, false));
    guard.execute(conn, &start, "recording the migration start")?;
    let mut last_progress = String::new();
    let hashes = script.prefix_hashes();
    for index in first..total {
        let statement = &script.statements[index];
        let block = script.block_of(index);
        let progress = bookkeeping::record_progress_sql(&script.version, index + 1, &hashes[index + 1]);
        // Inside an author block the progress rows are part of the block's transaction: a failure leaves nothing of
        // the block, and the recorded progress points at its BEGIN. The closing COMMIT's own progress goes in first,
        // so it commits with the block.
        let closes_block = script.closes_block(index);
        if closes_block {
            guard.execute(conn, &progress, "recording progress").inspect_err(|_| rollback(conn))?;
        }
        db::execute(conn, &statement.sql).map_err(|error| {
            if block.is_some() {
                rollback(conn);
            }
            let done = block.map_or(index, |(begin, _)| begin);
            let mut err = statement_failed(conn, script, index, error, Recovery::Resume { done });
            if let Error::MigrationFailed { error, .. } = &mut err
                && let Some(hint) = invalid_index_hint(conn)
            {
                error.hint = Some(hint);
            }
            err
        })?;
        if index + 1 == total && !closes_block && block.is_none() {
            // The last statement's progress travels with the final record, still committed on its own first.
            last_progress = format!("BEGIN;\n{progress}\nCOMMIT;\n");
        } else if !closes_block {
            guard.execute(conn, &progress, "recording progress").inspect_err(|_| {
                if block.is_some() {
                    rollback(conn);
                }
            })?;
        }
    }
    let done = finish_sql(script, Direction::Up, bookkeeping::Elapsed::Millis(started.elapsed().as_millis()));
    guard.execute(conn, &format!("{last_progress}RESET lock_timeout;\nBEGIN;\n{done}\nCOMMIT;{}", closing_sql(closing)), "recording the migration")
}

/// Reverse of `apply_statementwise` for a non-transactional down.sql (no resume: down steps are re-run).
fn revert_statementwise(conn: &mut PgConnection, guard: Guard<'_>, script: &Script, ddl_lock_timeout: Option<Duration>) -> Result<()> {
    guard.execute(conn, &lock_timeout_sql(ddl_lock_timeout, false), "setting lock_timeout")?;
    for (index, statement) in script.statements.iter().enumerate() {
        db::execute(conn, &statement.sql).map_err(|error| {
            if script.block_of(index).is_some() {
                rollback(conn);
            }
            statement_failed(conn, script, index, error, Recovery::RerunDown)
        })?;
    }
    db::execute(conn, "RESET lock_timeout").map_err(db::context("resetting lock_timeout"))?;
    let forget = finish_sql(script, Direction::Down, bookkeeping::Elapsed::Unknown);
    guard.execute(conn, &format!("BEGIN;\n{forget}\nCOMMIT;"), "recording the revert")
}

#[derive(QueryableByName)]
struct InvalidIndex {
    #[diesel(sql_type = Text)]
    name: String,
}

/// A failed `CREATE INDEX CONCURRENTLY` leaves an INVALID index behind; name it with the command to drop it.
fn invalid_index_hint(conn: &mut PgConnection) -> Option<String> {
    let invalid: Vec<InvalidIndex> = diesel::sql_query(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .load(conn)
    .ok()?;
    if invalid.is_empty() {
        return None;
    }
    let drops: Vec<String> = invalid.iter().map(|i| format!("DROP INDEX CONCURRENTLY {};", i.name)).collect();
    Some(format!(
        "an interrupted CREATE INDEX CONCURRENTLY left an INVALID index; drop it before retrying: {}",
        drops.join(" ")
    ))
}

#[derive(QueryableByName)]
struct Activity {
    #[diesel(sql_type = Text)]
    summary: String,
}

/// Sessions that may be holding the lock a timed-out statement waited for, with the table locks they hold. Never
/// their query text: another session's SQL may carry secrets (`ALTER ROLE … PASSWORD '…'`, data values).
fn likely_blockers(conn: &mut PgConnection) -> String {
    // After a lock timeout the failed transaction is aborted; a fresh statement needs a clean state.
    let rows: Vec<Activity> = diesel::sql_query(
        "SELECT 'pid ' || a.pid || ' (' || coalesce(nullif(a.application_name, ''), 'unknown') || ', ' || coalesce(a.state, '?') || \
                ', since ' || coalesce(to_char(a.xact_start, 'HH24:MI:SS'), '?') || ')' || \
                coalesce(' holds ' || (SELECT string_agg(DISTINCT l.mode || ' on ' || l.relation::regclass::text, ', ') \
                                       FROM pg_locks l WHERE l.pid = a.pid AND l.granted AND l.relation IS NOT NULL \
                                         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                                         AND l.relation >= 16384), '') AS summary \
         FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() \
           AND a.xact_start IS NOT NULL ORDER BY a.xact_start LIMIT 5",
    )
    .load(conn)
    .unwrap_or_default();
    rows.into_iter().map(|r| r.summary).collect::<Vec<_>>().join("; ")
}

/// What a failed statement left behind, for the hint after a lost connection.
#[derive(Debug, Clone, Copy)]
enum Recovery {
    /// The migration ran in one transaction, rolled back by now.
    RolledBack,
    /// A `redo`: every down.sql and up.sql ran in one transaction, rolled back by now.
    RolledBackRedo,
    /// A non-transactional up.sql: progress is recorded per statement (per block inside an author block);
    /// `done` statements are recorded as done.
    Resume { done: usize },
    /// A non-transactional down.sql: no progress is kept, the whole file runs again.
    RerunDown,
}

/// Explains a failed migration statement (for a transactional migration after the rollback, so the connection
/// can still be queried unless it was lost).
fn statement_failed(conn: &mut PgConnection, script: &Script, index: usize, mut error: PgError, recovery: Recovery) -> Error {
    if error.message.contains("lock timeout") {
        let blockers = likely_blockers(conn);
        let kept = match recovery {
            Recovery::RolledBack => "; the migration ran in one transaction, so none of it was committed",
            Recovery::RolledBackRedo => "; the redo ran in one transaction, so nothing was changed",
            Recovery::Resume { .. } => "; the statements before it stay recorded as done and `cargo anonmigrate run` resumes here",
            Recovery::RerunDown => "",
        };
        error.hint = Some(format!(
            "the statement waited longer than the DDL lock timeout for a lock held by another session{}{kept}; nothing in the file needs fixing: run `cargo anonmigrate run` again when it is quiet, or raise ddl-lock-timeout",
            if blockers.is_empty() { String::new() } else { format!(" (open transactions: {blockers})") }
        ));
        // Not `MigrationFailed`, which tells the user to fix the file.
        return Error::Postgres {
            context: format!("migration `{}` failed at {}", script.dir_name, script.location(index, error.position)),
            error,
        };
    } else if db::statement_timed_out(&error.message) {
        let setting = diesel::sql_query("SELECT current_setting('statement_timeout') AS summary")
            .get_result::<Activity>(conn)
            .map_or_else(|_| "as configured".to_owned(), |a| a.summary);
        let after = match recovery {
            Recovery::RolledBack => "; the migration ran in one transaction, so none of it was committed",
            Recovery::RolledBackRedo => "; the redo ran in one transaction, so nothing was changed",
            Recovery::Resume { done } if done < index => {
                "; the statements before its BEGIN … COMMIT block stay recorded as done and `cargo anonmigrate run` resumes at the block"
            }
            Recovery::Resume { .. } => "; the statements before it stay recorded as done and `cargo anonmigrate run` resumes at this one",
            Recovery::RerunDown => "",
        };
        error.hint = Some(format!(
            "the statement ran longer than the migration session's statement_timeout ({setting}, from `statement-timeout` in [workspace.metadata.anonmigrate]){after}; raise `statement-timeout`, or remove it for no limit (the default)"
        ));
        // The file is not wrong, the limit is too short: not `MigrationFailed` (which says to fix the file).
        return Error::Postgres {
            context: format!("running migration `{}` ({}) timed out", script.dir_name, script.location(index, None)),
            error,
        };
    } else if db::connection_lost(&error.message) {
        let lost = "the connection to the server was lost (server restart, terminated session or network failure)";
        error.hint = Some(match recovery {
            Recovery::RolledBack => format!(
                "{lost}; the migration ran in one transaction, so none of it was committed: run `cargo anonmigrate run` again once the server is reachable"
            ),
            Recovery::RolledBackRedo => format!(
                "{lost}; the redo ran in one transaction, so nothing was changed: run `cargo anonmigrate redo` again once the server is reachable"
            ),
            Recovery::Resume { done: 0 } => format!(
                "{lost}; no statement of this migration is recorded as done, so `cargo anonmigrate run` starts it again once the server is reachable"
            ),
            Recovery::Resume { done } => format!(
                "{lost}; {} recorded as done, so `cargo anonmigrate run` resumes at statement {} once the server is reachable",
                if done == 1 { "statement 1 is".to_owned() } else { format!("statements 1 to {done} are") },
                done + 1
            ),
            Recovery::RerunDown => format!(
                "{lost}; the first {index} statement(s) of this down.sql ran and the migration is still recorded as applied: make the down.sql safe to run again (IF EXISTS) and revert again"
            ),
        });
        // Nothing in the file needs fixing, so not `MigrationFailed` (which says to fix it).
        return Error::Postgres {
            context: format!("running migration `{}` ({})", script.dir_name, script.location(index, None)),
            error,
        };
    }
    let statement = &script.statements[index].sql;
    if let Some(extension) = missing_extension(&error.message, statement) {
        return Error::ExtensionUnavailable {
            extension,
            server: "the target server".into(),
            message: error.message,
        };
    }
    Error::MigrationFailed {
        migration: script.dir_name.clone(),
        file: script.file.clone(),
        location: script.location(index, error.position),
        error,
    }
}

fn missing_extension(message: &str, statement: &str) -> Option<String> {
    let unavailable = message.contains("is not available") || message.contains("could not open extension control file");
    if !unavailable || !statement.to_ascii_lowercase().contains("extension") {
        return None;
    }
    if let Some(end) = message.find(".control\"") {
        let start = message[..end].rfind('/').map_or(0, |slash| slash + 1);
        return Some(message[start..end].to_owned());
    }
    let start = message.find("extension \"")? + "extension \"".len();
    let end = message[start..].find('"')? + start;
    Some(message[start..end].to_owned())
}

/// What `run --dry-run` found: what `run` would do with the same options, and whether it would refuse.
#[derive(Debug, serde::Serialize)]
pub struct DryRun {
    pub database: String,
    pub current_version: Option<String>,
    /// Another session holding the migration lock right now (`run` would wait for it).
    pub lock_holder: Option<String>,
    /// Records `run` would move to the version `merge` gave their migration (not applied again).
    pub renumber: Vec<crate::status::Renumber>,
    pub actions: Vec<PlannedMigration>,
    /// Why `run` would stop before applying anything; `None` when it would go ahead.
    #[serde(serialize_with = "error_text")]
    pub refusal: Option<Error>,
}

fn error_text<S: serde::Serializer>(error: &Option<Error>, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    match error {
        Some(error) => serializer.serialize_some(&error.to_string()),
        None => serializer.serialize_none(),
    }
}

/// One migration `run` would apply, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedMigration {
    pub version: String,
    pub dir_name: String,
    pub transactional: bool,
    pub statements: usize,
    /// 1-based statement `run` starts at: 1, or later for a partially applied non-transactional migration.
    pub from_statement: usize,
    /// Pending, older than the newest applied one (`run` refuses unless `--allow-out-of-order`).
    pub out_of_order: bool,
}

/// Reads the database and reports what `run` with these options would do, without taking the migration lock or
/// writing anything (not even the bookkeeping tables).
pub fn dry_run(url: &DatabaseUrl, chain: &Chain, options: &RunOptions) -> Result<DryRun> {
    let scripts = prepare_run(chain, options)?;
    let mut conn = db::connect(url)?;
    // One read-only transaction rather than a session setting: through a transaction-mode pooler a `SET` holds
    // for one server connection only, a transaction for every statement in it.
    db::execute(&mut conn, "BEGIN TRANSACTION READ ONLY").map_err(db::context("starting a read-only transaction"))?;
    let (mut status, rows) = read_status(&mut conn, chain)?;
    let lock_holder = lock_holder(&mut conn, migration_lock_key(url)).map(|h| format!("pid {} ({}, {})", h.pid, h.application, h.since));
    db::execute(&mut conn, "ROLLBACK").map_err(db::context("ending the read-only transaction"))?;
    // After the transaction: its query may fail (no audit table yet), which must not abort the reads above.
    tolerate_renumbered(&mut conn, &mut status);
    let mut refusal = check_safe_to_run(chain, &status, options).err();
    let mut actions = Vec::new();
    let renumbered: std::collections::HashSet<&str> = status.renumber.iter().map(|r| r.to.as_str()).collect();
    for script in select_pending(&scripts, &status, options).into_iter().filter(|s| !renumbered.contains(s.version.as_str())) {
        let row = rows.iter().find(|r| r.version == script.version);
        let done = if script.transactional {
            0
        } else {
            match resume_point(script, row) {
                Ok(done) => done,
                Err(error) => {
                    refusal = refusal.or(Some(error));
                    0
                }
            }
        };
        let out_of_order = status.out_of_order().any(|e| e.version == script.version);
        actions.push(PlannedMigration {
            version: script.version.clone(),
            dir_name: script.dir_name.clone(),
            transactional: script.transactional,
            statements: script.statements.len(),
            from_statement: done + 1,
            out_of_order,
        });
    }
    Ok(DryRun {
        database: url.describe(),
        current_version: status.current_version,
        lock_holder,
        renumber: status.renumber,
        actions,
        refusal,
    })
}

/// One migration session for a tool that steps through a chain one migration at a time (`check`'s down.sql
/// pass): the migration lock, session settings and bookkeeping tables are set up once, then each step applies or
/// reverts a single migration exactly as `run` and `revert` do (same transactions, same bookkeeping).
pub struct Stepper<'a> {
    locked: LockedConnection,
    chain: &'a Chain,
    ddl_lock_timeout: Option<Duration>,
}

impl std::fmt::Debug for Stepper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stepper")
    }
}

impl<'a> Stepper<'a> {
    pub fn open(url: &DatabaseUrl, chain: &'a Chain, lock_timeout: Duration, ddl_lock_timeout: Option<Duration>) -> Result<Stepper<'a>> {
        let setup = SessionSetup { statement_timeout: None, bookkeeping: true };
        let locked = lock(url, lock_timeout, setup, &mut crate::events::Silent)?;
        Ok(Stepper { locked, chain, ddl_lock_timeout })
    }

    /// The session's connection, for reading between steps.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.locked.conn
    }

    /// Applies migration `index` (which must not be applied).
    pub fn up(&mut self, index: usize) -> Result<()> {
        let script = Script::prepare(&self.chain.migrations[index], Direction::Up)?;
        let (conn, guard) = self.locked.split();
        if script.transactional {
            apply_transactional(conn, guard, &script, self.ddl_lock_timeout, Direction::Up, "")
        } else {
            apply_statementwise(conn, guard, &script, None, self.ddl_lock_timeout, &mut crate::events::Silent, "")
        }
    }

    /// Reverts migration `index` (which must be the newest applied).
    pub fn down(&mut self, index: usize) -> Result<()> {
        let script = Script::prepare(&self.chain.migrations[index], Direction::Down)?;
        let (conn, guard) = self.locked.split();
        if script.transactional {
            apply_transactional(conn, guard, &script, self.ddl_lock_timeout, Direction::Down, "")
        } else {
            revert_statementwise(conn, guard, &script, self.ddl_lock_timeout)
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum RevertScope {
    Steps(usize),
    To(usize),
    All,
}

#[derive(Debug, Clone)]
pub struct RevertOptions {
    pub lock_timeout: Duration,
    pub ddl_lock_timeout: Option<Duration>,
    /// `statement_timeout` of the migration session; `None`: no limit, whatever the role or database sets.
    pub statement_timeout: Option<Duration>,
}

/// Reverts applied migrations, newest first. `RevertScope::To(i)` keeps the migration at chain index `i`.
pub fn revert(
    url: &DatabaseUrl,
    chain: &Chain,
    scope: RevertScope,
    options: &RevertOptions,
    observer: &mut dyn Observer,
) -> Result<Vec<AppliedMigration>> {
    let setup = SessionSetup { statement_timeout: options.statement_timeout, bookkeeping: false };
    let mut locked = lock(url, options.lock_timeout, setup, observer)?;
    let (conn, guard) = locked.split();
    let (status, rows) = read_status(conn, chain)?;
    let (status, _) = apply_renumbering(conn, chain, status, rows, observer)?;
    let scripts = revert_scripts(chain, &status, scope)?;
    // A database diesel_cli migrated has only diesel's table; the revert's bookkeeping also deletes from ours.
    if !scripts.is_empty() {
        bookkeeping::ensure_tables(conn)?;
    }
    let total = scripts.len();
    let mut reverted = Vec::new();
    for (index, script) in scripts.iter().enumerate() {
        observer.event(Event::Reverting {
            index: index + 1,
            total,
            dir_name: script.dir_name.clone(),
        });
        let started = Instant::now();
        if script.transactional {
            apply_transactional(conn, guard, script, options.ddl_lock_timeout, Direction::Down, "")?;
        } else {
            revert_statementwise(conn, guard, script, options.ddl_lock_timeout)?;
        }
        let duration = started.elapsed();
        observer.event(Event::Reverted {
            index: index + 1,
            total,
            dir_name: script.dir_name.clone(),
            duration,
        });
        reverted.push(AppliedMigration {
            version: script.version.clone(),
            dir_name: script.dir_name.clone(),
            duration_ms: duration.as_millis(),
            statements: script.statements.len(),
        });
    }
    Ok(reverted)
}

/// The down scripts `revert` runs, newest first, prepared (and irreversible migrations refused) before anything
/// runs.
fn revert_scripts(chain: &Chain, status: &Status, scope: RevertScope) -> Result<Vec<Script>> {
    if let Some(missing) = status.missing.last()
        && status.applied().last().is_none_or(|a| a.version < missing.version)
    {
        return Err(Error::Integrity(format!(
            "the newest applied migration {} is not on disk, so its down.sql cannot run; check out the branch that has it",
            missing.version
        )));
    }
    let applied: Vec<&crate::status::Entry> = status.applied().collect();
    let to_revert: Vec<&crate::status::Entry> = match scope {
        RevertScope::Steps(n) => applied.iter().rev().take(n).copied().collect(),
        RevertScope::All => applied.iter().rev().copied().collect(),
        RevertScope::To(keep_index) => {
            let keep_version = &chain.migrations[keep_index].version;
            applied.iter().rev().filter(|e| &e.version > keep_version).copied().collect()
        }
    };
    to_revert
        .iter()
        .map(|e| Script::prepare(chain.find(&e.version).expect("applied entries come from the chain"), Direction::Down))
        .collect()
}

/// What `redo` did: the migrations reverted (newest first) and applied again (oldest first); `atomic` when it
/// all ran in one transaction.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RedoReport {
    pub reverted: Vec<AppliedMigration>,
    pub applied: Vec<AppliedMigration>,
    pub atomic: bool,
}

/// Reverts the newest applied migrations and applies them again. When every script involved is transactional,
/// all of it (each down.sql, each up.sql, the bookkeeping) runs in one transaction, as diesel's redo does: a
/// failure anywhere changes nothing. A non-transactional migration cannot run inside it, so such a redo reverts
/// and re-applies step by step (and says so).
pub fn redo(
    url: &DatabaseUrl,
    chain: &Chain,
    scope: RevertScope,
    options: &RevertOptions,
    observer: &mut dyn Observer,
) -> Result<RedoReport> {
    let setup = SessionSetup { statement_timeout: options.statement_timeout, bookkeeping: false };
    let mut locked = lock(url, options.lock_timeout, setup, observer)?;
    let (conn, guard) = locked.split();
    let (status, _) = read_status(conn, chain)?;
    let downs = revert_scripts(chain, &status, scope)?;
    // What `run` would refuse for the re-apply is refused before the revert: an edited up.sql is fine only for the
    // migrations being redone (that is what redo is for), and applied migrations missing on disk stop it.
    let mut others = status.clone();
    others.entries.retain(|e| !downs.iter().any(|d| d.version == e.version));
    let strict = RunOptions {
        to: None,
        step: None,
        ignore_missing: false,
        allow_out_of_order: true,
        lock_timeout: options.lock_timeout,
        ddl_lock_timeout: options.ddl_lock_timeout,
        statement_timeout: options.statement_timeout,
    };
    check_safe_to_run(chain, &others, &strict)?;
    if !downs.is_empty() {
        bookkeeping::ensure_tables(conn)?;
    }
    let ups: Vec<Script> = downs
        .iter()
        .rev()
        .map(|d| Script::prepare(chain.find(&d.version).expect("reverted entries come from the chain"), Direction::Up))
        .collect::<Result<_>>()?;
    if downs.is_empty() {
        return Ok(RedoReport { atomic: true, ..RedoReport::default() });
    }
    let total = downs.len();
    if downs.iter().chain(&ups).all(|s| s.transactional) {
        let mut report = RedoReport { atomic: true, ..RedoReport::default() };
        guard.execute(conn, &format!("BEGIN;\n{};", lock_timeout_sql(options.ddl_lock_timeout, true)), "starting the redo transaction")?;
        let steps = downs.iter().map(|s| (s, Direction::Down)).chain(ups.iter().map(|s| (s, Direction::Up)));
        for (script, direction) in steps {
            let (index, list) = match direction {
                Direction::Down => (report.reverted.len() + 1, &mut report.reverted),
                Direction::Up => (report.applied.len() + 1, &mut report.applied),
            };
            let dir_name = script.dir_name.clone();
            observer.event(match direction {
                Direction::Down => Event::Reverting { index, total, dir_name },
                Direction::Up => Event::Applying { index, total, dir_name },
            });
            let step_started = Instant::now();
            for (at, statement) in script.statements.iter().enumerate() {
                db::execute(conn, &statement.sql).map_err(|error| {
                    rollback(conn);
                    match statement_failed(conn, script, at, error, Recovery::RolledBackRedo) {
                        Error::MigrationFailed { migration, file, location, error } => Error::RedoFailed { migration, file, location, error },
                        other => other,
                    }
                })?;
            }
            db::execute(conn, &finish_sql(script, direction, bookkeeping::Elapsed::Millis(step_started.elapsed().as_millis())))
                .map_err(|error| {
                    rollback(conn);
                    db::context("recording the redo")(error)
                })?;
            list.push(AppliedMigration {
                version: script.version.clone(),
                dir_name: script.dir_name.clone(),
                duration_ms: step_started.elapsed().as_millis(),
                statements: script.statements.len(),
            });
        }
        db::execute(conn, "COMMIT").map_err(|error| {
            rollback(conn);
            db::context("committing the redo")(error)
        })?;
        // Reported once committed: a line saying "reverted" before a rollback would be untrue.
        for (i, m) in report.reverted.iter().enumerate() {
            observer.event(Event::Reverted {
                index: i + 1,
                total,
                dir_name: m.dir_name.clone(),
                duration: Duration::from_millis(u64::try_from(m.duration_ms).unwrap_or(u64::MAX)),
            });
        }
        for (i, m) in report.applied.iter().enumerate() {
            observer.event(Event::Applied {
                index: i + 1,
                total,
                dir_name: m.dir_name.clone(),
                duration: Duration::from_millis(u64::try_from(m.duration_ms).unwrap_or(u64::MAX)),
                statements: m.statements,
            });
        }
        return Ok(report);
    }
    // metadata.toml sets the mode of both directions, so the down scripts name each migration once.
    let non_transactional: Vec<String> = downs.iter().filter(|s| !s.transactional).map(|s| format!("`{}`", s.dir_name)).collect();
    observer.event(Event::Warning(format!(
        "{} {} non-transactional (run_in_transaction = false), so this redo cannot run in one transaction: it reverts, then applies again, step by step",
        non_transactional.join(", "),
        if non_transactional.len() == 1 { "is" } else { "are" }
    )));
    drop(locked);
    let reverted = revert(url, chain, scope, options, observer)?;
    let run_options = RunOptions {
        to: None,
        step: Some(reverted.len()),
        ignore_missing: false,
        allow_out_of_order: false,
        lock_timeout: options.lock_timeout,
        ddl_lock_timeout: options.ddl_lock_timeout,
        statement_timeout: options.statement_timeout,
    };
    let applied = run(url, chain, &run_options, observer)?;
    Ok(RedoReport { reverted, applied: applied.applied, atomic: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_missing_extensions() {
        let pg16 = "extension \"vector\" is not available";
        assert_eq!(missing_extension(pg16, "CREATE EXTENSION vector"), Some("vector".into()));
        let pg15 = "could not open extension control file \"/usr/share/postgresql/15/extension/vector.control\": No such file or directory";
        assert_eq!(missing_extension(pg15, "create extension if not exists vector"), Some("vector".into()));
        assert_eq!(missing_extension("syntax error", "CREATE EXTENSION vector"), None);
    }
}
