//! Crashes and faults against a real server: the runner killed mid-migration, the server restarting, the
//! session terminated, unreachable and silent servers, bad credentials, a missing database, a held migration
//! lock, a held table lock. Each case checks what the user sees and what the database holds afterwards.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anonmigrate_core::local_server::Cluster;
use anonmigrate_core::runner::MIGRATION_LOCK_KEY;
use anonmigrate_testkit::{TestDb, cluster, execute_url, query_url};

use crate::support::{Env, Outcome, bin};

const BOOKKEEPING_TABLES: [&str; 2] = ["__anonmigrate_migrations", "__diesel_schema_migrations"];

/// A runner started in the background against `url`; stdout and stderr go to files so a test can watch them.
struct Background {
    child: Child,
    stderr: PathBuf,
    stdout: PathBuf,
}

impl Background {
    fn start(env: &Env, url: &str, args: &[&str]) -> Background {
        let stderr = env.ws.path().join(format!("stderr-{}.txt", std::process::id()));
        let stdout = env.ws.path().join(format!("stdout-{}.txt", std::process::id()));
        let child = Command::new(bin())
            .current_dir(env.ws.path())
            .args(args)
            .args(["--database-url", url])
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn the runner");
        Background { child, stderr, stdout }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait(mut self) -> Outcome {
        let status = self.child.wait().unwrap();
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: self.stderr_text(),
        }
    }

    /// SIGKILL, as `kill -9` does.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the user saw, for `--nocapture` runs (the closing note lists every fault and its message).
#[allow(clippy::print_stderr)]
fn show(fault: &str, outcome: &Outcome) {
    eprintln!("=== {fault}: exit {}\n{}{}", outcome.code, outcome.stdout, outcome.stderr);
}

/// Polls `check` until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// Waits until the runner's own session runs a statement containing `needle`; returns its backend pid.
/// The runner is found by `application_name = 'anonmigrate'`, which is also what operators see.
fn runner_backend(db: &TestDb, runner: &mut Background, needle: &str) -> String {
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'anonmigrate' AND state = 'active' \
         AND datname = current_database() AND query LIKE '%{needle}%'"
    );
    let mut found = Vec::new();
    let ok = eventually(Duration::from_secs(30), || {
        assert!(runner.child.try_wait().unwrap().is_none(), "the runner exited early: {}", runner.stderr_text());
        found = db.query(&sql);
        !found.is_empty()
    });
    assert!(ok, "the runner never ran `{needle}`: {}", runner.stderr_text());
    found.remove(0)
}

fn backend_gone(db: &TestDb, pid: &str) -> bool {
    eventually(Duration::from_secs(15), || db.query(&format!("SELECT pid FROM pg_stat_activity WHERE pid = {pid}")).is_empty())
}

fn advisory_locks(db: &TestDb) -> Vec<String> {
    db.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
}

#[test]
fn kill_9_during_a_transactional_migration_leaves_nothing_and_the_next_run_completes() {
    let env = Env::new("kill_tx");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let slow = "migrations/2024-01-02-000000_slow/up.sql";
    let body = "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\nSELECT pg_sleep(SECONDS);\nCREATE TABLE c (id int);";
    env.ws.write(slow, body.replace("SECONDS", "60"));
    let mut runner = Background::start(&env, &env.db.url, &["run"]);
    let pid = runner_backend(&env.db, &mut runner, "pg_sleep");
    runner.kill_9();

    // The server notices the dead client within about a second, even inside pg_sleep(60), and rolls back.
    assert!(backend_gone(&env.db, &pid), "the killed runner's session outlived it");
    let mut tables: Vec<String> = BOOKKEEPING_TABLES.iter().map(|t| t.to_string()).collect();
    tables.push("a".into());
    assert_eq!(env.db.tables(), tables, "nothing of the killed migration stays");
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
    assert_eq!(env.db.query("SELECT version FROM __anonmigrate_migrations ORDER BY 1"), ["20240101000000"]);
    assert!(advisory_locks(&env.db).is_empty(), "the migration lock was released");

    env.ws.write(slow, body.replace("SECONDS", "0"));
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000"]);
    assert_eq!(env.db.query("SELECT count(*) FROM b"), ["1"]);
}

#[test]
fn kill_9_during_a_non_transactional_migration_is_shown_by_status_and_resumed_by_run() {
    let env = Env::new("kill_steps");
    env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (a int, b int);");
    let steps = "migrations/2024-01-02-000000_steps";
    env.ws.write(&format!("{steps}/metadata.toml"), "run_in_transaction = false\n");
    let body = "CREATE INDEX CONCURRENTLY t_a ON t (a);\nINSERT INTO t VALUES (1, 1);\nSELECT pg_sleep(SECONDS);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\nINSERT INTO t VALUES (2, 2);\n";
    env.ws.write(&format!("{steps}/up.sql"), body.replace("SECONDS", "60"));
    let mut runner = Background::start(&env, &env.db.url, &["run"]);
    let pid = runner_backend(&env.db, &mut runner, "pg_sleep");
    runner.kill_9();
    assert!(backend_gone(&env.db, &pid));

    let status = env.cli(&["status"]);
    status.assert_code(0);
    assert!(status.stdout.contains("2024-01-02-000000_steps  (partially applied: 2 of 5 statements ran)"), "{}", status.stdout);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
    assert_eq!(env.db.query("SELECT count(*) FROM t"), ["1"]);
    assert_eq!(env.db.query("SELECT indexname FROM pg_indexes WHERE tablename = 't'"), ["t_a"]);

    // Statement 3 may change (it has not run); the two before it are proven unchanged by their hash.
    env.ws.write(&format!("{steps}/up.sql"), body.replace("SECONDS", "0"));
    let resumed = env.cli(&["run"]);
    resumed.assert_code(0);
    assert!(resumed.stderr.contains("resuming 2024-01-02-000000_steps at statement 3 of 5"), "{}", resumed.stderr);
    assert_eq!(env.db.query("SELECT count(*) FROM t"), ["2"], "statement 2 ran exactly once");
    assert_eq!(env.db.query("SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1"), ["t_a", "t_b"]);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000"]);
}

#[test]
fn a_terminated_session_is_reported_and_the_next_run_resumes() {
    let env = Env::new("terminated");
    env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (n int);");
    let steps = "migrations/2024-01-02-000000_steps";
    env.ws.write(&format!("{steps}/metadata.toml"), "run_in_transaction = false\n");
    env.ws.write(&format!("{steps}/up.sql"), "INSERT INTO t VALUES (1);\nSELECT pg_sleep(60);\nINSERT INTO t VALUES (2);\n");
    let mut runner = Background::start(&env, &env.db.url, &["run"]);
    let pid = runner_backend(&env.db, &mut runner, "pg_sleep");
    // Operators see the tool by name.
    assert_eq!(env.db.query(&format!("SELECT application_name FROM pg_stat_activity WHERE pid = {pid}")), ["anonmigrate"]);
    env.db.execute(&format!("SELECT pg_terminate_backend({pid})"));
    let outcome = runner.wait();
    outcome.assert_code(5);
    show("pg_terminate_backend of the runner", &outcome);
    assert!(outcome.stderr.contains("running migration `2024-01-02-000000_steps` (statement 2 of 3, line 2)"), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("the connection to the server was lost") && outcome.stderr.contains("resumes at statement 2"),
        "{}",
        outcome.stderr
    );
    let status = env.cli(&["status"]);
    assert!(status.stdout.contains("(partially applied: 1 of 3 statements ran)"), "{}", status.stdout);

    env.ws.write(&format!("{steps}/up.sql"), "INSERT INTO t VALUES (1);\nSELECT pg_sleep(0);\nINSERT INTO t VALUES (2);\n");
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.query("SELECT n FROM t ORDER BY 1"), ["1", "2"]);
}

/// A cluster of its own, for a test that restarts the server (the shared one serves every other test).
struct PrivateCluster {
    cluster: Cluster,
    _dir: tempfile::TempDir,
}

impl PrivateCluster {
    fn start() -> PrivateCluster {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("anonmigrate-restart").tempdir().unwrap();
        // As root the server runs as `postgres`, which must reach the directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let cluster = Cluster::new(dir.path().join("c"), cluster().binaries.clone());
        cluster.init(true).unwrap();
        cluster.start(true).unwrap();
        PrivateCluster { cluster, _dir: dir }
    }

    fn create_database(&self, name: &str) -> String {
        execute_url(&self.cluster.url("postgres"), &format!("CREATE DATABASE {name}"));
        self.cluster.url(name)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop(true);
    }
}

#[test]
fn a_server_restart_mid_migration_rolls_it_back_and_the_next_run_completes() {
    let server = PrivateCluster::start();
    let url = server.create_database("restart");
    let env = Env::new("restart_ws");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let slow = "migrations/2024-01-02-000000_slow/up.sql";
    let body = "CREATE TABLE b (id int);\nSELECT pg_sleep(SECONDS);\nCREATE TABLE c (id int);";
    env.ws.write(slow, body.replace("SECONDS", "60"));
    let runner = Background::start(&env, &url, &["run"]);
    let started = eventually(Duration::from_secs(30), || {
        !query_url(&url, "SELECT pid FROM pg_stat_activity WHERE application_name = 'anonmigrate' AND query LIKE '%pg_sleep%'").is_empty()
    });
    assert!(started, "{}", runner.stderr_text());
    server.cluster.stop(false).unwrap();
    server.cluster.start(true).unwrap();
    let outcome = runner.wait();
    outcome.assert_code(5);
    show("server restart (pg_ctl stop -m fast + start)", &outcome);
    assert!(outcome.stderr.contains("running migration `2024-01-02-000000_slow` (statement 2 of 3, line 2)"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("none of it was committed"), "{}", outcome.stderr);

    assert_eq!(query_url(&url, "SELECT version FROM __diesel_schema_migrations"), ["20240101000000"]);
    assert_eq!(query_url(&url, "SELECT version FROM __anonmigrate_migrations"), ["20240101000000"]);
    assert!(query_url(&url, "SELECT to_regclass('b')::text WHERE to_regclass('b') IS NOT NULL").is_empty(), "table b was rolled back");

    env.ws.write(slow, body.replace("SECONDS", "0"));
    env.raw(&["run", "--database-url", &url], &[]).assert_code(0);
    assert_eq!(query_url(&url, "SELECT version FROM __diesel_schema_migrations ORDER BY 1"), ["20240101000000", "20240102000000"]);
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_server_fails_fast_with_a_clear_message() {
    let env = Env::new("unreachable");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let url = format!("postgres://deploy:hunter2-secret@127.0.0.1:{}/app", closed_port());
    let started = Instant::now();
    let refused = env.raw(&["run", "--database-url", &url], &[]);
    show("nothing listening on the port", &refused);
    refused.assert_code(5);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(refused.stderr.contains("cannot connect to database `app` on 127.0.0.1 (URL from --database-url)"), "{}", refused.stderr);
    assert!(refused.stderr.contains("Connection refused") && refused.stderr.contains("is the server running?"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("hunter2") && !refused.stdout.contains("hunter2"), "{}", refused.stderr);
}

#[test]
fn a_server_that_never_answers_hits_the_connect_timeout() {
    let env = Env::new("silent");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    // The kernel completes the TCP handshake for the backlog, but nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // The URL's own connect_timeout, then the documented default of 10 s.
    for (query, secs) in [("?connect_timeout=2", 2), ("", 10)] {
        let url = format!("postgres://deploy:hunter2-secret@127.0.0.1:{}/app{query}", silent.local_addr().unwrap().port());
        let started = Instant::now();
        let outcome = env.raw(&["run", "--database-url", &url], &[]);
        let took = started.elapsed();
        show(&format!("a listener that never answers, connect_timeout {secs}s"), &outcome);
        outcome.assert_code(5);
        assert!(took >= Duration::from_secs(secs) && took < Duration::from_secs(secs + 10), "{query}: took {took:?}");
        assert!(outcome.stderr.contains("timeout expired") && outcome.stderr.contains("did not answer within the connect timeout (`connect_timeout` in the URL, default 10s)"), "{}", outcome.stderr);
        assert!(!outcome.stderr.contains("hunter2"), "{}", outcome.stderr);
    }
    drop(silent);
}

#[test]
fn a_wrong_password_is_named_and_never_printed() {
    let env = Env::new("password");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    // Password authentication for one role on the shared cluster; every other role keeps trust.
    let hba = cluster().data_dir().join("pg_hba.conf");
    let original = std::fs::read_to_string(&hba).unwrap();
    if !original.contains("anonmigrate_pw") {
        std::fs::write(&hba, format!("local all anonmigrate_pw scram-sha-256\n{original}")).unwrap();
    }
    env.db.execute("SELECT pg_reload_conf()");
    env.db.execute(&format!(
        "CREATE ROLE anonmigrate_pw LOGIN PASSWORD 'right-horse-battery'; ALTER DATABASE \"{}\" OWNER TO anonmigrate_pw",
        env.db.name
    ));
    let url_with = |password: &str| {
        format!(
            "postgresql://anonmigrate_pw:{password}@localhost/{}?host={}",
            env.db.name,
            cluster().socket_dir().display()
        )
    };
    assert!(eventually(Duration::from_secs(10), || {
        let wrong = env.raw(&["run", "--database-url", &url_with("wrong-horse")], &[]);
        wrong.stderr.contains("password authentication failed")
    }));
    let wrong = env.raw(&["run"], &[("DATABASE_URL", &url_with("wrong-horse"))]);
    show("wrong password", &wrong);
    wrong.assert_code(5);
    assert!(wrong.stderr.contains("password authentication failed for user \"anonmigrate_pw\""), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("check the user and password in DATABASE_URL in the environment"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("wrong-horse") && !wrong.stdout.contains("wrong-horse"), "{}", wrong.stderr);
    assert!(env.db.tables().is_empty(), "nothing recorded");

    let right = env.raw(&["run"], &[("DATABASE_URL", &url_with("right-horse-battery"))]);
    right.assert_code(0);
    assert!(!right.stderr.contains("right-horse") && !right.stdout.contains("right-horse"), "{}", right.stderr);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
}

#[test]
fn a_missing_database_points_to_setup_and_is_not_created() {
    let env = Env::new("missing_db_ws");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let missing = TestDb::not_created("missing_db");
    for args in [&["run"][..], &["run", "--dry-run"], &["status"]] {
        let mut full = args.to_vec();
        full.extend(["--database-url", &missing.url]);
        let outcome = env.raw(&full, &[]);
        show(&format!("missing database ({})", args.join(" ")), &outcome);
        outcome.assert_code(5);
        assert!(
            outcome.stderr.contains(&format!("database `{}` does not exist", missing.name))
                && outcome.stderr.contains("create it with `cargo anonmigrate setup`"),
            "{}",
            outcome.stderr
        );
    }
    let count = query_url(&cluster().url("postgres"), &format!("SELECT count(*) FROM pg_database WHERE datname = '{}'", missing.name));
    assert_eq!(count, ["0"], "run does not create the database");
}

#[test]
fn a_held_migration_lock_times_out_naming_the_holder_and_a_waiting_runner_proceeds() {
    let env = Env::new("lock_held");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    let mut holder = env.db.session("fault-test-holder");
    let pid = holder.pid.clone();
    holder.execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"));

    let started = Instant::now();
    let timed_out = env.cli(&["run", "--lock-timeout", "1s"]);
    show("migration lock held by another session, --lock-timeout 1s", &timed_out);
    timed_out.assert_code(6);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        timed_out.stderr.contains(&format!("waiting for the migration lock held by pid {pid} (fault-test-holder, connected since")),
        "{}",
        timed_out.stderr
    );
    assert!(
        timed_out.stderr.contains(&format!("holds the lock on database `{}`", env.db.name))
            && timed_out.stderr.contains(&format!("(pid {pid}, application `fault-test-holder`, connected since")),
        "{}",
        timed_out.stderr
    );
    assert!(env.db.tables().is_empty(), "nothing done without the lock");

    let mut waiting = Background::start(&env, &env.db.url, &["run", "--lock-timeout", "60s"]);
    assert!(eventually(Duration::from_secs(30), || waiting.stderr_text().contains("waiting for the migration lock")));
    assert!(waiting.child.try_wait().unwrap().is_none(), "still waiting");
    assert!(env.db.tables().is_empty());
    holder.execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
    let outcome = waiting.wait();
    show("runner waiting for the migration lock, then released", &outcome);
    outcome.assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
}

#[test]
fn a_ddl_lock_timeout_names_the_blocking_session_and_changes_nothing() {
    let env = Env::new("ddl_lock");
    // The binary finds the workspace (and its ddl-lock-timeout) through `cargo metadata`.
    env.ws.write("Cargo.toml", "[workspace]\n\n[workspace.metadata.anonmigrate]\nddl-lock-timeout = \"500ms\"\n");
    env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (id int);");
    env.cli(&["run"]).assert_code(0);
    env.ws.write("migrations/2024-01-02-000000_note/up.sql", "ALTER TABLE t ADD COLUMN note text;");
    let mut blocker = env.db.session("fault-test-blocker");
    let pid = blocker.pid.clone();
    blocker.execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT 'a-secret-only-the-blocker-knows';");

    let started = Instant::now();
    let outcome = env.cli(&["run"]);
    show("ALTER TABLE behind LOCK TABLE ... ACCESS EXCLUSIVE, ddl-lock-timeout 500ms", &outcome);
    outcome.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(8), "the 500ms lock timeout applied");
    assert!(outcome.stderr.contains("migration `2024-01-02-000000_note` failed at statement 1 of 1, line 1"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("canceling statement due to lock timeout"), "{}", outcome.stderr);
    // Nothing in the file is wrong: the advice is to retry, not to fix up.sql.
    assert!(outcome.stderr.contains("nothing in the file needs fixing: run `cargo anonmigrate run` again when it is quiet"), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("fix `"), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains(&format!("pid {pid} (fault-test-blocker, idle in transaction"))
            && outcome.stderr.contains("holds AccessExclusiveLock on t"),
        "{}",
        outcome.stderr
    );
    // Another session's query text may hold secrets: it is never printed.
    assert!(!outcome.stderr.contains("a-secret-only-the-blocker-knows"), "{}", outcome.stderr);
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
    assert_eq!(env.db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 't'"), ["1"]);

    blocker.execute("ROLLBACK");
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000"]);
}
