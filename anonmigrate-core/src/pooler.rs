//! Telling a session of our own from a connection pooler in transaction or statement mode (PgBouncer, pgcat,
//! Supavisor, ...). Through such a pooler each transaction may run on another server connection: session state
//! (the migration lock, `SET`) does not carry over, and a session lock taken by one transaction stays held by the
//! pooled server connection after the client is gone.
//!
//! How: the first transaction marks its server process with a token of this client (a session-level custom
//! setting). Every later transaction checks it still runs on that process with that token, and a second client
//! connection checks that it does *not* land on it. A direct connection or a session-mode pool passes every
//! check; a transaction pooler hands an idle server connection to whichever client asks next (the most recently
//! used first, in PgBouncer), so the second client lands on ours, or ours moves, before the migration lock is
//! even taken. Whatever was taken on a shared process (the marker, the lock) is released from there.
//!
//! Many clients at once (eight runners started together) can hide both tells: another client's transaction takes
//! our process between two of ours and hands it back, so ours never moves and our probe lands elsewhere. So every
//! query here that finds another client's marker overwrites it with [`SHARED`] in front: the owner's next
//! transaction sees the change and refuses. And the probe, while this client is between transactions, reads our
//! process in `pg_stat_activity`: it must be idle with our last query as its last (every query of ours carries
//! the token). Anything else there (another client's query, a transaction in progress) means the process served
//! someone else meanwhile. Only a pooler can put a second client on a process, so a session of its own passes.
//!
//! Cost: a connection the operating system proves direct (`direct`) skips the second client and the extra
//! transaction. Otherwise one second client connection serves both of its checks when the lock is free at once,
//! and the check of this connection after the lock travels in the first message of the migration session
//! ([`Session::guard_sql`]): as many checks as before, fewer connections and round trips.

use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};

use crate::database_url::DatabaseUrl;
use crate::db;
use crate::direct;
use crate::error::{Error, Result};

/// The custom setting that carries the marker; any two-part name is a valid placeholder setting.
const MARKER: &str = "anonmigrate.session";
/// How long a refusing client keeps trying to land on its marked server process again to release what it holds.
const RELEASE_PATIENCE: Duration = Duration::from_secs(2);
/// How long the second client connection may wait for a server connection before the check counts as passed.
const PROBE_PATIENCE: Duration = Duration::from_secs(1);
/// Put in front of a marker by a client that found it on its own transaction's process: the process served two
/// clients. Its owner recognises its token behind it.
const SHARED: &str = "shared:";
/// Named in the error of [`Session::guard_sql`]: a setting nobody sets, read without `missing_ok`.
pub const GUARD_FAILED: &str = "anonmigrate.transaction_left_the_locked_server_process";

/// A connection whose server process was marked as this client's and checked to be its alone.
#[derive(Debug)]
pub struct Session {
    token: String,
    pid: i32,
    /// Proven to reach the server itself: the second client's checks are skipped.
    direct: bool,
}

/// The claim's answer: the marker as found, whether the connection is proven direct, whether the lock was taken,
/// and whether diesel's bookkeeping table was absent (a hint only: see [`Claim::bookkeeping_absent`]).
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Text)]
    marker: String,
    #[diesel(sql_type = Bool)]
    direct: bool,
    #[diesel(sql_type = Bool)]
    locked: bool,
    #[diesel(sql_type = Bool)]
    absent: bool,
}

/// What [`Session::claim`] found besides the session.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claim {
    /// The advisory lock was taken in the claim (only on a connection proven direct).
    pub locked: bool,
    /// No `__diesel_schema_migrations` was visible to the claim. A hint for the setup, read before the lock was
    /// taken (or in the same statement, with the catalogs as they were when it began): the setup then creates
    /// the tables without `IF NOT EXISTS`, which fails under the lock if they exist after all.
    pub bookkeeping_absent: bool,
}

/// The second client connection. Opened on the first check (after the claim, so a transaction pooler hands it
/// the process the claim just released) and kept for the check after the lock: one connection for both. Closed
/// when dropped; a check that waited in vain gives it up, like a connection still waiting for a pool slot.
#[derive(Debug)]
pub struct Probe {
    url: DatabaseUrl,
    worker: Option<Worker>,
}

#[derive(Debug)]
struct Worker {
    requests: std::sync::mpsc::Sender<(u64, String)>,
    answers: std::sync::mpsc::Receiver<(u64, Option<ProbeHere>)>,
    next: u64,
}

impl Probe {
    pub fn new(url: &DatabaseUrl) -> Probe {
        Probe { url: url.clone(), worker: None }
    }

    /// Runs `sql` (a [`Session::probe_sql`] query) on the second connection; `None` when it cannot connect or no
    /// answer comes within [`PROBE_PATIENCE`].
    fn ask(&mut self, sql: String) -> Option<ProbeHere> {
        let url = &self.url;
        let worker = self.worker.get_or_insert_with(|| {
            let (requests, inbox) = std::sync::mpsc::channel::<(u64, String)>();
            let (outbox, answers) = std::sync::mpsc::channel();
            let url = url.clone();
            // A thread, so a pool that queues the connection cannot hold this client up for longer than the
            // patience; it ends (closing its connection) when the Probe is dropped.
            std::thread::spawn(move || {
                let mut conn = db::connect(&url).ok();
                for (id, sql) in inbox {
                    let here = conn.as_mut().and_then(|c| diesel::sql_query(sql).get_result::<ProbeHere>(c).ok());
                    if outbox.send((id, here)).is_err() {
                        break;
                    }
                }
            });
            Worker { requests, answers, next: 0 }
        });
        worker.next += 1;
        let id = worker.next;
        let answer = worker.requests.send((id, sql)).ok().and_then(|()| {
            let deadline = Instant::now() + PROBE_PATIENCE;
            loop {
                let left = deadline.checked_duration_since(Instant::now())?;
                match worker.answers.recv_timeout(left) {
                    Ok((got, here)) if got == id => return Some(here),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        });
        match answer {
            Some(here) => here,
            None => {
                self.worker = None;
                None
            }
        }
    }

    /// Closes the second connection (a later check opens a new one), so it holds no pool slot while this client
    /// waits for the migration lock.
    pub fn close(&mut self) {
        self.worker = None;
    }
}

/// A probe's answer: where it ran, and whether our process served another client since our last transaction.
#[derive(Debug, QueryableByName)]
struct ProbeHere {
    #[diesel(embed)]
    here: Here,
    #[diesel(sql_type = Bool)]
    intruded: bool,
}

#[derive(Debug, QueryableByName)]
struct Here {
    #[diesel(sql_type = Integer)]
    pid: i32,
    /// The marker found on the process (before this query changed it), `''` when none.
    #[diesel(sql_type = Text)]
    marker: String,
    #[diesel(sql_type = Bool)]
    flag: bool,
}

fn marker_sql() -> String {
    format!("coalesce(current_setting('{MARKER}', true), '')")
}

/// An expression (always false) that marks the process as shared, for when `marker` (a column holding the
/// marker found) is another client's.
fn trample_sql(marker: &str) -> String {
    format!(
        "set_config('{MARKER}', CASE WHEN starts_with({marker}, '{SHARED}') THEN {marker} ELSE '{SHARED}' || {marker} END, false) IS NULL"
    )
}

impl Session {
    /// Marks the connection's server process and, unless the connection is proven direct, checks with `probe`
    /// that another client connection does not land on it and that this connection's next transaction still
    /// runs on it. Nothing but the marker is taken, except that a connection proven direct in this very query
    /// also tries the advisory lock `lock` (the answer's second value: whether it was taken).
    pub fn claim(conn: &mut PgConnection, url: &DatabaseUrl, probe: &mut Probe, lock: Option<i64>) -> Result<(Session, Claim)> {
        let token = format!("{}-{}", std::process::id(), nanos());
        let direct = direct::condition(url.unix_socket().as_deref()).unwrap_or_else(|| "false".to_owned());
        let lock = lock.map_or_else(|| "false".to_owned(), |key| format!("pg_try_advisory_lock({key})"));
        // The marker is read before it is set: a CTE materialised first makes the order explicit. The lock is
        // only tried on an unmarked process of a connection proven direct; another client's marker is trampled.
        // Each query of ours starts with the token (in a comment), so `pg_stat_activity`'s query text keeps it
        // however short `track_activity_query_size` is ([`Session::probe_sql`]).
        let claimed: Claimed = diesel::sql_query(format!(
            "/* anonmigrate {token} */ WITH before AS MATERIALIZED (SELECT {marker} AS marker, coalesce({direct}, false) AS direct) \
             SELECT pg_backend_pid() AS pid, marker, direct, \
                    CASE WHEN marker = '' THEN set_config('{MARKER}', {token}, false) IS NOT NULL \
                         AND CASE WHEN direct THEN {lock} ELSE false END ELSE {trample} END AS locked, \
                    to_regclass('__diesel_schema_migrations') IS NULL AS absent \
             FROM before",
            marker = marker_sql(),
            token = db::quote_literal(&token),
            trample = trample_sql("marker"),
        ))
        .get_result(conn)
        .map_err(|e| db::context("checking for a connection pooler")(db::pg_error(&e)))?;
        if !claimed.marker.is_empty() {
            return Err(refusal(
                format!(
                    "the server process of this connection (backend pid {}) already carried the session marker of another client",
                    claimed.pid
                ),
                None,
            ));
        }
        let session = Session { token, pid: claimed.pid, direct: claimed.direct };
        let claim = Claim { locked: claimed.locked, bookkeeping_absent: claimed.absent };
        if session.direct {
            return Ok((session, claim));
        }
        // A second client landing on our process clears the marker there itself; only a move needs a release.
        session.check_alone(probe, None)?;
        if !session.direct
            && let Err(error) = session.verify(conn)
        {
            session.release(conn, None);
            return Err(error);
        }
        Ok((session, Claim { locked: false, ..claim }))
    }

    /// Whether the operating system proved the connection direct (so the second client was not needed).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Takes the advisory lock `key` if this transaction runs on the marked process; an error (nothing taken)
    /// when it does not.
    pub fn try_lock(&self, conn: &mut PgConnection, key: i64) -> Result<bool> {
        let here = self.here(conn, &format!("pg_try_advisory_lock({key})"), Owned::Exactly)?;
        if here.pid != self.pid || here.marker != self.token {
            self.release(conn, None);
            return Err(self.moved(&here, None));
        }
        Ok(here.flag)
    }

    /// After the lock `key` was taken: checks once more that another client does not land on the process that
    /// holds it (releasing it from there if one does). That this connection still runs on it is checked by
    /// [`Session::guard_sql`] in the caller's next message.
    pub fn confirm_lock(&self, probe: &mut Probe, key: i64) -> Result<()> {
        self.check_alone(probe, Some(key))
    }

    /// A statement that fails (with [`GUARD_FAILED`] in its message) unless it runs on the marked process; put
    /// first in a message, it keeps the rest of the message from running anywhere else.
    ///
    /// On our own process with no marker at all it marks it again and passes: a migration of ours ran `RESET ALL`
    /// (which clears every setting), and no pooler clears a marker while the client is connected without the checks
    /// before the lock seeing it. Another client's marker, or ours marked shared, still fails.
    pub fn guard_sql(&self) -> String {
        format!(
            "/* anonmigrate {token} */ SELECT CASE WHEN {marker} = {token} THEN '' \
             WHEN {marker} = '' AND pg_backend_pid() = {pid} THEN set_config('{MARKER}', {token}, false) \
             ELSE current_setting('{GUARD_FAILED}') END",
            marker = marker_sql(),
            token = db::quote_literal(&self.token),
            pid = self.pid,
        )
    }

    /// The refusal after [`Session::guard_sql`] failed under the lock `key`: where the transaction ran instead,
    /// with the lock released from the marked process if that can be done. `stopped_midway`: the failed message
    /// came after migrations of this session had run (not the setup before the first).
    pub fn guard_failed(&self, conn: &mut PgConnection, key: i64, stopped_midway: bool) -> Error {
        let found = match self.verify(conn) {
            Err(Error::Pooler { found, .. }) => found,
            _ => format!(
                "a transaction after the migration lock ran without this connection's session state (backend pid {} holds the lock)",
                self.pid
            ),
        };
        Error::Pooler {
            found,
            released: self.release(conn, Some(key)),
            stopped_midway,
        }
    }

    /// This transaction runs on the marked process.
    pub fn verify(&self, conn: &mut PgConnection) -> Result<()> {
        let here = self.here(conn, "false", Owned::Exactly)?;
        if here.pid != self.pid || here.marker != self.token {
            return Err(self.moved(&here, None));
        }
        Ok(())
    }

    /// Runs one transaction that reports where it ran, evaluating `flag` only on the marked process.
    fn here(&self, conn: &mut PgConnection, flag: &str, owned: Owned) -> Result<Here> {
        diesel::sql_query(self.here_sql(flag, owned))
        .get_result(conn)
        .map_err(|e| db::context("checking for a connection pooler")(db::pg_error(&e)))
    }

    /// The query of [`Session::here`]: `flag` is evaluated on a process carrying this session's marker (as
    /// `owned` says); another client's marker is trampled, the marker as found is returned.
    fn here_sql(&self, flag: &str, owned: Owned) -> String {
        let token = db::quote_literal(&self.token);
        let owned = match owned {
            Owned::Exactly => format!("marker = {token}"),
            Owned::EvenShared => format!("marker IN ({token}, {})", db::quote_literal(&self.shared_token())),
        };
        format!(
            "/* anonmigrate {token} */ WITH before AS MATERIALIZED (SELECT {marker} AS marker) \
             SELECT pg_backend_pid() AS pid, marker, \
                    CASE WHEN {owned} THEN {flag} WHEN marker = '' THEN false ELSE {trample} END AS flag \
             FROM before",
            marker = marker_sql(),
            trample = trample_sql("marker"),
        )
    }

    /// This session's marker after another client was served by its process.
    fn shared_token(&self) -> String {
        format!("{SHARED}{}", self.token)
    }

    /// `marker` is this session's, as set or after another client was served by its process.
    fn owns(&self, marker: &str) -> bool {
        marker == self.token || marker == self.shared_token()
    }

    /// A second client connection must get a server process of its own. When it lands on ours instead, it
    /// clears the marker and releases the lock `key` (if taken) right there, in the same transaction.
    ///
    /// The probe gives up after [`PROBE_PATIENCE`]: a session-mode pool with every server connection taken
    /// queues it until a client leaves, which may be this one (a transaction pool would have handed it our
    /// idle process at once). Without a spare connection at all the checks on the connection itself still run.
    fn check_alone(&self, probe: &mut Probe, key: Option<i64>) -> Result<()> {
        if self.direct {
            return Ok(());
        }
        let unlock = key.map_or_else(|| "true".to_owned(), |key| format!("pg_advisory_unlock({key})"));
        let flag = format!("set_config('{MARKER}', '', false) IS NOT NULL AND {unlock}");
        let Some(ProbeHere { here, intruded }) = probe.ask(self.probe_sql(&flag)) else { return Ok(()) };
        if here.pid == self.pid || self.owns(&here.marker) {
            return Err(refusal(
                format!(
                    "a second connection was served by the same server process as the first (backend pid {})",
                    here.pid
                ),
                key.map(|_| here.flag),
            ));
        }
        if intruded {
            return Err(refusal(
                format!(
                    "while this connection was between transactions, its server process (backend pid {}) served another client",
                    self.pid
                ),
                None,
            ));
        }
        Ok(())
    }

    /// [`Session::here_sql`] for the second connection, which also reads this session's process in
    /// `pg_stat_activity`: between two of our transactions it is idle with our last query (which carries the
    /// token) as its last. A query text we cannot see (no privilege, `track_activities` off) proves nothing.
    fn probe_sql(&self, flag: &str) -> String {
        let token = db::quote_literal(&self.token);
        format!(
            "WITH here AS MATERIALIZED ({here}) \
             SELECT here.*, EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = {pid} AND a.pid <> pg_backend_pid() \
                 AND (a.state IN ('active', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call') \
                      OR (a.state = 'idle' AND a.query <> '' AND a.query NOT LIKE '<%' AND strpos(a.query, {token}) = 0))) AS intruded \
             FROM here",
            here = self.here_sql(flag, Owned::EvenShared),
            pid = self.pid,
        )
    }

    fn moved(&self, here: &Here, released: Option<bool>) -> Error {
        let found = if here.pid == self.pid && here.marker == self.shared_token() {
            format!(
                "another client's transaction was served by this connection's server process (backend pid {}) between two of its own",
                here.pid
            )
        } else if here.pid == self.pid {
            format!(
                "the next transaction ran on the same server process (backend pid {}) but without this connection's session state",
                here.pid
            )
        } else {
            format!(
                "one transaction ran on server process backend pid {}, the next on backend pid {}",
                self.pid, here.pid
            )
        };
        refusal(found, released)
    }

    /// Lands on the marked process again (new transactions, until the pooler hands it back) to clear the marker
    /// and release the lock `key`; as a last resort for a lock, ends that process if it is idle. Whether the lock
    /// was released, when one was held.
    fn release(&self, conn: &mut PgConnection, key: Option<i64>) -> Option<bool> {
        let unlock = key.map_or_else(|| "true".to_owned(), |key| format!("pg_advisory_unlock({key})"));
        let flag = format!("set_config('{MARKER}', '', false) IS NOT NULL AND {unlock}");
        let started = Instant::now();
        while started.elapsed() < RELEASE_PATIENCE {
            match self.here(conn, &flag, Owned::EvenShared) {
                Ok(here) if self.owns(&here.marker) => return key.map(|_| here.flag),
                Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        key?;
        // The pooled process is idle (no client's transaction on it): ending it drops the lock with it.
        let ended: Option<Here> = diesel::sql_query(format!(
            "SELECT pid, '' AS marker, pg_terminate_backend(pid) AS flag FROM pg_stat_activity \
             WHERE pid = {} AND state = 'idle'",
            self.pid
        ))
        .get_result(conn)
        .optional()
        .ok()
        .flatten();
        Some(ended.is_some_and(|e| e.flag))
    }
}

/// Which markers make a process this session's for [`Session::here_sql`]'s flag.
#[derive(Debug, Clone, Copy)]
enum Owned {
    /// Only its own token: a lock is taken only where no other client was served.
    Exactly,
    /// Also its token after another client was served there: to clear the marker and release the lock.
    EvenShared,
}

fn refusal(found: String, released: Option<bool>) -> Error {
    Error::Pooler {
        found,
        released,
        stopped_midway: false,
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// For `doctor`: what a transaction- or statement-mode pooler in front of `url` gave away, or `None` when the
/// connection behaves as a session of its own. Takes nothing but the marker, released before returning.
pub fn detect(url: &DatabaseUrl) -> Result<Option<String>> {
    let mut conn = db::connect(url)?;
    match Session::claim(&mut conn, url, &mut Probe::new(url), None) {
        Ok(_) => Ok(None),
        Err(Error::Pooler { found, .. }) => Ok(Some(found)),
        Err(other) => Err(other),
    }
}
