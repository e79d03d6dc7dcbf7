//! Through a real PgBouncer in front of the test cluster: a transaction-mode pool is detected and refused before
//! anything changes (exit 13, no lock left behind); a session-mode pool works. `ANONMIGRATE_STRESS_ROUNDS`
//! repeats the concurrent cases.

use std::process::Output;

use anonmigrate_core::database_url::{DatabaseUrl, UrlSource};
use anonmigrate_core::db;
use anonmigrate_core::Error;
use anonmigrate_core::pooler::{Probe, Session};
use anonmigrate_testkit::{PoolMode, Pooler};

use crate::concurrency::{assert_applied_once, describe, rounds, run_at_once, write_chain};
use crate::support::Env;

/// Advisory locks held in the test database by any session (pooled server connections included).
fn advisory_locks(env: &Env) -> Vec<String> {
    env.db.query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
}

/// The second client is skipped only where the operating system proves the connection direct: the test
/// cluster's Unix socket (with the postmaster's lock file beside it) is; the same database through PgBouncer, a TCP
/// connection the server sees coming from PgBouncer, is not.
#[test]
fn only_a_connection_proven_direct_skips_the_second_client() {
    let env = Env::new("direct");
    let claim = |raw: &str| {
        let url = DatabaseUrl::parse(raw, UrlSource::Flag).unwrap();
        let mut conn = db::connect(&url).unwrap();
        Session::claim(&mut conn, &url, &mut Probe::new(&url), None).unwrap().0.is_direct()
    };
    assert!(claim(&env.db.url), "the cluster's own socket: {}", env.db.url);
    let pooler = Pooler::start(PoolMode::Session);
    assert!(!claim(&pooler.url(&env.db.name)), "through PgBouncer");
}

/// A fresh database behind a session-mode PgBouncer (a connection the OS cannot prove direct, so every check
/// runs), its pooled URL, and a connection through it.
fn through_a_session_pool(label: &str) -> (Env, Pooler, DatabaseUrl, diesel::PgConnection) {
    let env = Env::new(label);
    let pooler = Pooler::start(PoolMode::Session);
    let url = DatabaseUrl::parse(&pooler.url(&env.db.name), UrlSource::Flag).unwrap();
    let conn = db::connect(&url).unwrap();
    (env, pooler, url, conn)
}

/// What many clients at once do to a transaction pool: another client's transaction is served by the marked
/// process between two of the owner's (here: on the owner's own connection, so it happens every time). The other
/// client refuses, and the owner's next transaction refuses too, though it runs on its own process again.
#[test]
fn another_client_served_by_the_marked_process_makes_its_owner_refuse() {
    let (_env, _pooler, url, mut conn) = through_a_session_pool("shared_marker");
    let claim = |conn: &mut diesel::PgConnection| Session::claim(conn, &url, &mut Probe::new(&url), None).map(|(session, _)| session);
    let owner = claim(&mut conn).unwrap();
    owner.verify(&mut conn).unwrap();
    let other = claim(&mut conn).unwrap_err();
    assert!(other.to_string().contains("already carried the session marker of another client"), "{other}");
    let seen = owner.verify(&mut conn).unwrap_err();
    assert!(matches!(seen, Error::Pooler { .. }), "{seen:?}");
    assert!(seen.to_string().contains("another client's transaction was served by this connection's server process"), "{seen}");
    // A second client's check on the owner's process (what another runner's probe sends) leaves the same trace.
    let mut second = db::connect(&url).unwrap();
    let owner = claim(&mut second).unwrap();
    let probe_of_another = claim(&mut conn);
    assert!(probe_of_another.is_err(), "the first connection's process is still marked as shared");
    let stranger = claim(&mut db::connect(&url).unwrap()).unwrap();
    assert!(stranger.verify(&mut second).is_err(), "another session's check on the owner's process");
    let seen = owner.verify(&mut second).unwrap_err();
    assert!(seen.to_string().contains("another client's transaction was served"), "{seen}");
}

/// The second connection reads the owner's process in `pg_stat_activity` while the owner is between
/// transactions: a last query that is not the owner's means the process served someone else meanwhile.
#[test]
fn a_query_of_another_client_on_the_marked_process_is_seen_by_the_probe() {
    let (_env, _pooler, url, mut conn) = through_a_session_pool("probe_history");
    let (owner, _) = Session::claim(&mut conn, &url, &mut Probe::new(&url), None).unwrap();
    let key = 4_242;
    owner.confirm_lock(&mut Probe::new(&url), key).unwrap();
    db::execute(&mut conn, "SELECT 1").unwrap();
    let seen = owner.confirm_lock(&mut Probe::new(&url), key).unwrap_err();
    assert!(matches!(seen, Error::Pooler { .. }), "{seen:?}");
    assert!(seen.to_string().contains("served another client"), "{seen}");
}

/// What a migration leaves behind that marks its session's process as shared, as another client served there
/// between two messages would.
const MARK_SHARED: &str = "SELECT set_config('anonmigrate.session', 'shared:' || current_setting('anonmigrate.session'), false);";

/// Past the checks before the lock, each message that starts a transaction carries the guard: after a migration
/// that marks its process as shared, the next migration's first message runs nothing, and the run refuses (exit
/// 13) with the first migration kept and the lock released. Through a session-mode pool, so the connection is not
/// proven direct; a non-transactional migration's start record is guarded the same way.
#[test]
fn a_message_after_the_lock_that_lands_elsewhere_runs_nothing() {
    let pooler = Pooler::start(PoolMode::Session);
    for (label, second, metadata) in [("guarded_tx", "CREATE TABLE b (id int);", None), ("guarded_ntx", "CREATE INDEX CONCURRENTLY b ON a (id);", Some("run_in_transaction = false\n"))] {
        let env = Env::new(label);
        env.ws.write("migrations/2024-01-01-000000_a/up.sql", &format!("CREATE TABLE a (id int);\n{MARK_SHARED}"));
        env.ws.write("migrations/2024-01-02-000000_b/up.sql", second);
        if let Some(metadata) = metadata {
            env.ws.write("migrations/2024-01-02-000000_b/metadata.toml", metadata);
        }
        let refused = env.raw(&["run", "--database-url", &pooler.url(&env.db.name)], &[]);
        refused.assert_code(13);
        let stderr = &refused.stderr;
        assert!(stderr.contains("another client's transaction was served by this connection's server process"), "{label}: {stderr}");
        assert!(stderr.contains("the session stopped at the message that ran elsewhere"), "{label}: {stderr}");
        assert!(stderr.contains("was released there"), "{label}: {stderr}");
        assert_eq!(env.db.applied_versions(), ["20240101000000"], "{label}");
        assert_eq!(env.db.query("SELECT coalesce(to_regclass('b')::text, 'none')"), ["none"], "{label}");
        let started = env.db.query("SELECT count(*) FROM __anonmigrate_migrations WHERE version = '20240102000000'");
        assert_eq!(started, ["0"], "{label}: not even recorded as started");
        assert_eq!(advisory_locks(&env), ["0"], "{label}");
        // Directly, nothing is guarded (nothing can come between): the rest applies.
        env.raw(&["run", "--database-url", &env.db.url], &[]).assert_code(0);
        assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000"], "{label}");
    }
}

/// A migration that resets every setting (`RESET ALL`) clears the session's marker on its own process: the next
/// message's guard marks it again instead of refusing.
#[test]
fn a_migration_that_resets_every_setting_does_not_stop_the_run() {
    let env = Env::new("guard_reset_all");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);\nRESET ALL;");
    env.ws.write("migrations/2024-01-02-000000_b/up.sql", "RESET ALL;\nCREATE INDEX CONCURRENTLY a_id ON a (id);");
    env.ws.write("migrations/2024-01-02-000000_b/metadata.toml", "run_in_transaction = false\n");
    env.ws.write("migrations/2024-01-03-000000_c/up.sql", "CREATE TABLE c (id int);");
    let pooler = Pooler::start(PoolMode::Session);
    let run = env.raw(&["run", "--database-url", &pooler.url(&env.db.name)], &[]);
    run.assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000", "20240103000000"]);
    assert_eq!(advisory_locks(&env), ["0"]);
}

#[test]
fn a_transaction_pooler_is_refused_before_anything_changes() {
    let env = Env::new("txpool_one");
    write_chain(&env.ws);
    let pooler = Pooler::start(PoolMode::Transaction);
    let pooled = pooler.url(&env.db.name);
    let refused = env.raw(&["run", "--database-url", &pooled], &[]);
    refused.assert_code(13);
    let rendered = env.render(&refused).replace(&pooler.port.to_string(), "[port]");
    insta::with_settings!({filters => vec![(r"pid \d+", "pid [pid]")]}, {
        insta::assert_snapshot!(rendered);
    });
    assert!(env.db.tables().is_empty(), "not even the bookkeeping tables: {:?}", env.db.tables());
    assert_eq!(advisory_locks(&env), ["0"]);
    // Read-only commands still work through it; the dry run reads in one read-only transaction (a session
    // `SET` would not follow it from one pooled server connection to the next).
    env.raw(&["status", "--database-url", &pooled], &[]).assert_code(0);
    let dry = env.raw(&["run", "--dry-run", "--database-url", &pooled], &[]);
    dry.assert_code(0);
    assert!(dry.stdout.contains("run would apply 3 migrations"), "{}", dry.stdout);
    assert!(env.db.tables().is_empty(), "{:?}", env.db.tables());
}

/// `rounds()` times: a fresh database and chain, a pooler in `mode`, eight `run`s at once with `args` (given
/// the pooled URL and the direct one), `check` on their outputs, then no advisory lock may be left.
fn eight_through_a_pooler(label: &str, mode: PoolMode, args: fn(&str, &str) -> Vec<String>, check: fn(&Env, &[Output], usize)) {
    for round in 0..rounds() {
        let env = Env::new(&format!("{label}{round}"));
        write_chain(&env.ws);
        let pooler = Pooler::start(mode);
        let args = args(&pooler.url(&env.db.name), &env.db.url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        check(&env, &run_at_once(&env.ws, &args), round);
        assert_eq!(advisory_locks(&env), ["0"], "round {round}: no advisory lock left held by a pooled connection");
    }
}

fn pooled_only(pooled: &str, _direct: &str) -> Vec<String> {
    vec!["run".into(), "--database-url".into(), pooled.to_owned()]
}

fn all_succeed(env: &Env, outputs: &[Output], round: usize) {
    for output in outputs {
        assert!(output.status.success(), "round {round}: a runner failed\n{}", describe(output));
    }
    assert_applied_once(env, round);
}

#[test]
fn eight_runners_through_a_transaction_pooler_all_refuse_and_leave_nothing() {
    eight_through_a_pooler("txpool", PoolMode::Transaction, pooled_only, |env, outputs, round| {
        for output in outputs {
            assert_eq!(output.status.code(), Some(13), "round {round}: a runner did not refuse\n{}", describe(output));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("connection pooler in transaction or statement mode"), "round {round}: {stderr}");
        }
        assert!(env.db.applied_versions().is_empty(), "round {round}: nothing applied");
        assert!(env.db.tables().is_empty(), "round {round}: nothing created: {:?}", env.db.tables());
    });
}

#[test]
fn eight_runners_through_a_session_pooler_apply_each_migration_once() {
    eight_through_a_pooler("sesspool", PoolMode::Session, pooled_only, all_succeed);
}

#[test]
fn eight_runners_through_a_transaction_pooler_with_a_direct_url_apply_each_migration_once() {
    let with_direct = |pooled: &str, direct: &str| {
        vec!["run".into(), "--database-url".into(), pooled.to_owned(), "--direct-url".into(), direct.to_owned()]
    };
    eight_through_a_pooler("txdirect", PoolMode::Transaction, with_direct, all_succeed);
}

#[test]
fn the_direct_url_comes_from_the_environment_dotenv_or_the_manifest() {
    let env = Env::new("direct_sources");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write("migrations/2024-01-02-000000_b/up.sql", "CREATE TABLE b (id int);");
    env.ws.write("migrations/2024-01-03-000000_c/up.sql", "CREATE TABLE c (id int);");
    let pooler = Pooler::start(PoolMode::Transaction);
    let pooled = pooler.url(&env.db.name);
    env.raw(&["run", "--step", "1"], &[("DATABASE_URL", &pooled)]).assert_code(13);
    env.raw(&["run", "--step", "1"], &[("DATABASE_URL", &pooled), ("DIRECT_URL", &env.db.url)]).assert_code(0);
    env.ws.write(".env", format!("DATABASE_URL={pooled}\nDIRECT_URL={}\n", env.db.url));
    env.raw(&["run", "--step", "1"], &[]).assert_code(0);
    std::fs::remove_file(env.ws.path().join(".env")).unwrap();
    env.ws.write(
        "Cargo.toml",
        format!("[workspace]\n\n[workspace.metadata.anonmigrate]\ndirect-url = \"{}\"\n", env.db.url),
    );
    env.raw(&["run", "--database-url", &pooled], &[]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000", "20240103000000"]);
    // Read-only commands may keep using the pooled URL.
    let status = env.raw(&["status", "--database-url", &pooled], &[]);
    status.assert_code(0);
    assert_eq!(advisory_locks(&env), ["0"]);
}

#[test]
fn a_bad_direct_url_is_named_without_its_password() {
    let env = Env::new("direct_bad");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let direct = format!("postgresql://postgres:hunter2@127.0.0.1:{closed_port}/{}", env.db.name);
    let outcome = env.raw(&["run", "--direct-url", &direct, "--database-url", &env.db.url], &[]);
    outcome.assert_code(5);
    assert!(outcome.stderr.contains("(URL from --direct-url)"), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("hunter2"), "{}", outcome.stderr);
    assert!(env.db.tables().is_empty());
}

#[test]
fn doctor_reports_a_transaction_pooler_and_the_direct_url() {
    let env = Env::new("direct_doctor");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let pooler = Pooler::start(PoolMode::Transaction);
    let pooled = pooler.url(&env.db.name);
    let without = env.raw(&["doctor", "--database-url", &pooled], &[]);
    without.assert_code(1);
    let line = |outcome: &crate::support::Outcome, name: &str| {
        outcome.stdout.lines().find(|l| l.get(6..).is_some_and(|r| r.starts_with(&format!("{name}:")))).unwrap_or_default().to_owned()
    };
    assert!(line(&without, "pooler").starts_with("FAIL") && line(&without, "pooler").contains("transaction or statement mode"), "{}", without.stdout);
    assert!(line(&without, "direct url").contains("not set"), "{}", without.stdout);
    assert!(without.stdout.contains("fix: set DIRECT_URL"), "{}", without.stdout);

    let direct_with_password = env.db.url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@");
    let with = env.raw(&["doctor", "--database-url", &pooled], &[("DIRECT_URL", &direct_with_password)]);
    assert!(line(&with, "pooler").starts_with("ok"), "{}", with.stdout);
    assert!(line(&with, "direct url").starts_with("ok") && line(&with, "direct url").contains("DIRECT_URL in the environment"), "{}", with.stdout);
    assert!(!with.stdout.contains("hunter2"), "{}", with.stdout);

    let direct = env.raw(&["doctor", "--database-url", &env.db.url], &[]);
    assert!(line(&direct, "pooler").starts_with("ok"), "{}", direct.stdout);
    assert_eq!(advisory_locks(&env), ["0"]);
}

#[test]
fn a_role_statement_timeout_does_not_cut_a_migration_unless_configured() {
    let env = Env::new("stmt_timeout");
    let role = format!("slow_{}", env.db.name);
    anonmigrate_testkit::admin_execute(&format!(
        "CREATE ROLE \"{role}\" LOGIN; ALTER ROLE \"{role}\" SET statement_timeout = '1s'; ALTER DATABASE \"{db}\" OWNER TO \"{role}\"",
        db = env.db.name
    ));
    let url = env.db.url.replace("postgresql://postgres@", &format!("postgresql://{role}@"));
    assert_eq!(anonmigrate_testkit::query_url(&url, "SELECT current_setting('statement_timeout')"), ["1s"]);
    env.ws.write("migrations/2024-01-01-000000_slow/up.sql", "CREATE TABLE slow (id int);\nSELECT pg_sleep(2);");
    env.ws.write("migrations/2024-01-01-000000_slow/down.sql", "DROP TABLE slow;");
    env.raw(&["run", "--database-url", &url], &[]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);

    env.raw(&["revert", "--database-url", &url], &[]).assert_code(0);
    env.ws.write("Cargo.toml", "[workspace]\n\n[workspace.metadata.anonmigrate]\nstatement-timeout = \"1s\"\n");
    let timed_out = env.raw(&["run", "--database-url", &url], &[]);
    timed_out.assert_code(1);
    insta::assert_snapshot!(env.render(&timed_out));
    assert!(env.db.applied_versions().is_empty());
    assert!(env.db.tables().iter().all(|t| t != "slow"), "rolled back: {:?}", env.db.tables());
}
