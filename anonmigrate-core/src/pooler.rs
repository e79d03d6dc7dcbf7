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
//! One such check can pass by chance when other clients keep the pooled process busy at that moment (eight
//! runners at once), so the claim repeats it [`DETECTION_ROUNDS`] times, and the check after the lock once more.
//! The second client is one connection kept for all of them, so the rounds cost a query each, not a connection.

use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};

use crate::database_url::DatabaseUrl;
use crate::db;
use crate::error::{Error, Result};

/// The custom setting that carries the marker; any two-part name is a valid placeholder setting.
const MARKER: &str = "anonmigrate.session";
/// How long a refusing client keeps trying to land on its marked server process again to release what it holds.
const RELEASE_PATIENCE: Duration = Duration::from_secs(2);
/// How long the second client connection may wait for a server connection before the check counts as passed.
const PROBE_PATIENCE: Duration = Duration::from_secs(1);
/// How many times the claim checks that the next transaction stays on the marked process and a second client
/// does not land on it.
pub const DETECTION_ROUNDS: usize = 3;

/// A connection whose server process was marked as this client's and checked to be its alone.
#[derive(Debug)]
pub struct Session {
    token: String,
    pid: i32,
    url: DatabaseUrl,
    probe: std::cell::RefCell<ProbeState>,
}

/// The second client connection, on a thread of its own (it may wait for a server connection).
#[derive(Debug)]
enum ProbeState {
    Live(Probe),
    /// Closed while this client waits for the migration lock (a session pool has few server connections to
    /// spare); opened again for the check after the lock.
    Parked,
    /// It could not connect or kept us waiting: the checks on the connection itself still run.
    Gone,
}

/// A second client connection that answers "where did this transaction run" on request.
struct Probe {
    requests: std::sync::mpsc::Sender<String>,
    answers: std::sync::mpsc::Receiver<Option<Here>>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

impl Probe {
    /// Connects on its own thread; the thread ends (closing the connection) when the probe is dropped.
    fn start(url: &DatabaseUrl, token: String) -> Probe {
        let (requests, inbox) = std::sync::mpsc::channel::<String>();
        let (outbox, answers) = std::sync::mpsc::channel();
        let url = url.clone();
        std::thread::spawn(move || {
            let mut conn = db::connect(&url).ok();
            for flag in inbox {
                let here = conn.as_mut().and_then(|c| here_query(c, &token, &flag).ok());
                if outbox.send(here).is_err() {
                    break;
                }
            }
        });
        Probe { requests, answers }
    }
}

#[derive(QueryableByName)]
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

impl Session {
    /// Marks the connection's server process and checks that it stays this client's: the next transaction runs
    /// on it, and another client connection does not. Nothing but the marker is taken yet.
    pub fn claim(conn: &mut PgConnection, url: &DatabaseUrl) -> Result<Session> {
        let token = format!("{}-{}", std::process::id(), nanos());
        // The marker is read before it is set: a CTE materialised first makes the order explicit.
        let here: Here = diesel::sql_query(format!(
            "WITH before AS MATERIALIZED (SELECT {marker} AS marker) \
             SELECT pg_backend_pid() AS pid, marker, \
                    CASE WHEN marker = '' THEN set_config('{MARKER}', {token}, false) IS NOT NULL ELSE false END AS flag \
             FROM before",
            marker = marker_sql(),
            token = db::quote_literal(&token),
        ))
        .get_result(conn)
        .map_err(|e| db::context("checking for a connection pooler")(db::pg_error(&e)))?;
        if !here.marker.is_empty() {
            return Err(refusal(
                format!(
                    "the server process of this connection (backend pid {}) already carried the session marker of another client",
                    here.pid
                ),
                None,
            ));
        }
        let probe = ProbeState::Live(Probe::start(url, token.clone()));
        let session = Session { token, pid: here.pid, url: url.clone(), probe: std::cell::RefCell::new(probe) };
        for _ in 0..DETECTION_ROUNDS {
            // A second client landing on our process clears the marker there itself; only a move needs a release.
            session.check_alone(None)?;
            if let Err(error) = session.verify(conn) {
                session.release(conn, None);
                return Err(error);
            }
        }
        Ok(session)
    }

    /// Closes the second client connection while this client waits (it is opened again when needed).
    pub fn park_probe(&self) {
        let mut slot = self.probe.borrow_mut();
        if matches!(*slot, ProbeState::Live(_)) {
            *slot = ProbeState::Parked;
        }
    }

    /// Takes the advisory lock `key` if this transaction runs on the marked process; an error (nothing taken)
    /// when it does not.
    pub fn try_lock(&self, conn: &mut PgConnection, key: i64) -> Result<bool> {
        let here = self.here(conn, &format!("pg_try_advisory_lock({key})"))?;
        if here.pid != self.pid || here.marker != self.token {
            self.release(conn, None);
            return Err(self.moved(&here, None));
        }
        Ok(here.flag)
    }

    /// After the lock `key` was taken: checks once more that another client does not land on the process that
    /// holds it (releasing it from there if one does) and that this connection still runs on it.
    pub fn confirm_lock(&self, conn: &mut PgConnection, key: i64) -> Result<()> {
        self.check_alone(Some(key))?;
        match self.verify(conn) {
            Ok(()) => Ok(()),
            Err(Error::Pooler { found, .. }) => Err(Error::Pooler {
                found,
                released: self.release(conn, Some(key)),
            }),
            Err(other) => Err(other),
        }
    }

    /// This transaction runs on the marked process.
    fn verify(&self, conn: &mut PgConnection) -> Result<()> {
        let here = self.here(conn, "false")?;
        if here.pid != self.pid || here.marker != self.token {
            return Err(self.moved(&here, None));
        }
        Ok(())
    }

    /// Runs one transaction that reports where it ran, evaluating `flag` only on the marked process.
    fn here(&self, conn: &mut PgConnection, flag: &str) -> Result<Here> {
        here_query(conn, &self.token, flag)
    }

    /// A second client connection must get a server process of its own. When it lands on ours instead, it
    /// clears the marker and releases the lock `key` (if taken) right there, in the same transaction.
    ///
    /// The probe gives up after [`PROBE_PATIENCE`]: a session-mode pool with every server connection taken
    /// queues it until a client leaves, which may be this one (a transaction pool would have handed it our
    /// idle process at once). Without a spare connection at all the checks on the connection itself still run.
    fn check_alone(&self, key: Option<i64>) -> Result<()> {
        let unlock = key.map_or_else(|| "true".to_owned(), |key| format!("pg_advisory_unlock({key})"));
        let flag = format!("set_config('{MARKER}', '', false) IS NOT NULL AND {unlock}");
        let mut slot = self.probe.borrow_mut();
        if matches!(*slot, ProbeState::Parked) {
            *slot = ProbeState::Live(Probe::start(&self.url, self.token.clone()));
        }
        let ProbeState::Live(probe) = &*slot else { return Ok(()) };
        let answer = probe.requests.send(flag).ok().and_then(|()| probe.answers.recv_timeout(PROBE_PATIENCE).ok());
        let Some(Some(here)) = answer else {
            // No answer in time (a late one must not answer a later question) or no connection: no probe.
            *slot = ProbeState::Gone;
            return Ok(());
        };
        if here.pid == self.pid || here.marker == self.token {
            return Err(refusal(
                format!(
                    "a second connection was served by the same server process as the first (backend pid {})",
                    here.pid
                ),
                key.map(|_| here.flag),
            ));
        }
        Ok(())
    }

    fn moved(&self, here: &Here, released: Option<bool>) -> Error {
        let found = if here.pid == self.pid {
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
            match self.here(conn, &flag) {
                Ok(here) if here.marker == self.token => return key.map(|_| here.flag),
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

/// One transaction on `conn` that reports where it ran, evaluating `flag` only on the process marked `token`.
fn here_query(conn: &mut PgConnection, token: &str, flag: &str) -> Result<Here> {
    diesel::sql_query(format!(
        "SELECT pg_backend_pid() AS pid, {marker} AS marker, \
                CASE WHEN {marker} = {token} THEN {flag} ELSE false END AS flag",
        marker = marker_sql(),
        token = db::quote_literal(token),
    ))
    .get_result(conn)
    .map_err(|e| db::context("checking for a connection pooler")(db::pg_error(&e)))
}

fn refusal(found: String, released: Option<bool>) -> Error {
    Error::Pooler {
        found,
        released,
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
    match Session::claim(&mut conn, url) {
        Ok(_) => Ok(None),
        Err(Error::Pooler { found, .. }) => Ok(Some(found)),
        Err(other) => Err(other),
    }
}
