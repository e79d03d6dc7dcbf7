//! Test harness: one throwaway PostgreSQL (+ pgvector) cluster per test process, a fresh database per test,
//! and fixture workspaces in temporary directories. Uses the engine's own local-server code, so the tests also
//! exercise it. No mocks: everything talks to a real server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use anonmigrate_core::local_server::{self, Cluster};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

struct Shared {
    cluster: Cluster,
    /// Kept alive for the whole process; the watchdog removes it when the process is gone.
    _root: PathBuf,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
static SECOND: OnceLock<Shared> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The cluster of this test process, started on first use. A watchdog shell stops it and removes its files once
/// this process exits, however it exits (even `kill -9`), so no server outlives the run.
pub fn cluster() -> &'static Cluster {
    &SHARED.get_or_init(start_cluster).cluster
}

/// A second cluster of this test process (another server, for targets on several servers), started on first use
/// and cleaned up like the first.
pub fn second_cluster() -> &'static Cluster {
    &SECOND.get_or_init(start_cluster).cluster
}

fn start_cluster() -> Shared {
    // ANONMIGRATE_POSTGRES=16 runs the suite on the other provisioned major version.
    let major = local_server::requested_major(None).unwrap_or_else(|e| panic!("{e}"));
    let binaries = local_server::find_binaries(&["vector".to_owned()], major, true).unwrap_or_else(|e| {
        panic!("the tests need a PostgreSQL server with pgvector and none could be found or provisioned: {e}")
    });
    assert!(
        binaries.has_extension("vector"),
        "the PostgreSQL in {} has no pgvector; unset ANONMIGRATE_PG_BINDIR or point it at one with pgvector",
        binaries.bindir.display()
    );
    let root = std::env::temp_dir().join(format!("anonmigrate-test-{}-{}", std::process::id(), nanos()));
    let cluster = Cluster::new(root.clone(), binaries);
    cluster.init(true).unwrap_or_else(|e| panic!("initdb for the test cluster failed: {e}"));
    cluster.start(true).unwrap_or_else(|e| panic!("starting the test cluster failed: {e}"));
    spawn_watchdog(&cluster);
    Shared { cluster, _root: root }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn spawn_watchdog(cluster: &Cluster) {
    let pg_ctl = cluster.binaries.tool("pg_ctl");
    let stop = if local_server::is_root() {
        format!("runuser -u postgres -- '{}' stop -m immediate -D '{}'", pg_ctl.display(), cluster.data_dir().display())
    } else {
        format!("'{}' stop -m immediate -D '{}'", pg_ctl.display(), cluster.data_dir().display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.3; done; {stop} >/dev/null 2>&1; rm -rf '{root}' '{sock}'",
        pid = std::process::id(),
        root = cluster.root.display(),
        sock = cluster.socket_dir().display(),
    );
    spawn_watchdog_script(&script);
}

/// Runs a shell loop in the background that cleans up after this process, however it ends.
fn spawn_watchdog_script(script: &str) {
    Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start a watchdog");
}

/// A database created for one test and dropped when the test ends.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A fresh, empty database; `label` makes names readable in server logs.
    pub fn new(label: &str) -> TestDb {
        let name = format!("t_{}_{}", label, COUNTER.fetch_add(1, Ordering::SeqCst));
        admin_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"));
        TestDb {
            url: cluster().url(&name),
            name,
        }
    }

    /// A name for a database that does not exist yet (for `setup`); dropped at the end if it was created.
    pub fn not_created(label: &str) -> TestDb {
        let name = format!("t_{}_{}", label, COUNTER.fetch_add(1, Ordering::SeqCst));
        TestDb {
            url: cluster().url(&name),
            name,
        }
    }

    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name))
    }

    /// Runs a query whose single column is cast to text; returns the values.
    pub fn query(&self, sql: &str) -> Vec<String> {
        query_url(&self.url, sql)
    }

    pub fn execute(&self, sql: &str) {
        execute_url(&self.url, sql);
    }

    /// A connection of the test's own (to hold a lock or an open transaction), named `application_name`.
    pub fn session(&self, application_name: &str) -> Session {
        let mut conn = self.connect();
        conn.batch_execute(&format!("SET application_name = '{application_name}'"))
            .unwrap_or_else(|e| panic!("cannot name the session: {e}"));
        let pid = run_query(&mut conn, "SELECT pg_backend_pid()").remove(0);
        Session { conn, pid }
    }

    /// Tables in the public schema, sorted.
    pub fn tables(&self) -> Vec<String> {
        self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    }

    /// `pg_dump` of this database (schema only, or schema and data), for before/after and side-by-side
    /// comparisons; pg_dump's per-dump `\restrict` key lines are dropped.
    pub fn dump(&self, schema_only: bool) -> String {
        let mut cmd = Command::new(cluster().binaries.tool("pg_dump"));
        cmd.args(["--no-owner", "--no-privileges", "-d", &self.url]);
        if schema_only {
            cmd.arg("--schema-only");
        }
        let output = cmd.stdin(Stdio::null()).output().expect("cannot run pg_dump");
        assert!(output.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs a SQL file with `psql -v ON_ERROR_STOP=1 -f FILE`, as a user would apply an offline script.
    pub fn psql_file(&self, file: &Path) -> Output {
        Command::new(cluster().binaries.tool("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(file)
            .arg(&self.url)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run psql")
    }

    /// Versions recorded in diesel's bookkeeping table (empty when it does not exist).
    pub fn applied_versions(&self) -> Vec<String> {
        if self.query("SELECT to_regclass('__diesel_schema_migrations')") == ["NULL"] {
            return Vec::new();
        }
        self.query("SELECT version FROM __diesel_schema_migrations ORDER BY 1")
    }
}

impl TestDb {
    /// A fresh database with the chain in `migrations` applied: a copy of the chain's template database
    /// (`anonmigrate_core::testdb`, the API applications use), built by the runner on first use.
    pub fn migrated(label: &str, migrations: &Path) -> TestDb {
        let copy = anonmigrate_core::testdb::TestDatabase::on_server(&cluster().url("postgres"), migrations)
            .unwrap_or_else(|e| panic!("migrating a database for {label} with {} failed: {e}", migrations.display()));
        let name = copy.keep();
        TestDb {
            url: cluster().url(&name),
            name,
        }
    }
}

/// A connection held open by a test; `pid` is its backend.
#[allow(missing_debug_implementations)]
pub struct Session {
    conn: PgConnection,
    pub pid: String,
}

impl Session {
    pub fn execute(&mut self, sql: &str) {
        self.conn
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("statement failed: {sql}: {e}"));
    }
}

fn run_query(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        value: Option<String>,
    }
    let wrapped = format!("SELECT x::text AS value FROM ({sql}) AS q(x)");
    diesel::sql_query(&wrapped)
        .load::<Row>(conn)
        .unwrap_or_else(|e| panic!("query failed: {sql}: {e}"))
        .into_iter()
        .map(|r| r.value.unwrap_or_else(|| "NULL".into()))
        .collect()
}

/// Runs a query against any database URL (another cluster, say); its single column is cast to text.
pub fn query_url(url: &str, sql: &str) -> Vec<String> {
    let mut conn = PgConnection::establish(url).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    run_query(&mut conn, sql)
}

pub fn execute_url(url: &str, sql: &str) {
    PgConnection::establish(url)
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("statement failed: {sql}: {e}"));
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = try_admin_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name.replace('"', "\"\"")));
    }
}

fn try_admin_execute(sql: &str) -> Result<(), diesel::result::Error> {
    let mut conn = PgConnection::establish(&cluster().url("postgres")).expect("cannot connect to the test cluster");
    conn.batch_execute(sql)
}

pub fn admin_execute(sql: &str) {
    try_admin_execute(sql).unwrap_or_else(|e| panic!("admin statement failed: {sql}: {e}"));
}

/// The repository root (for the real Anonymous Chat migrations).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A scratch workspace directory with a `migrations/` folder copied from `source` (if any).
#[derive(Debug)]
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// A Cargo project (a `[workspace]` manifest without members) with an empty `migrations/`; tests of what
    /// happens outside any Cargo project use a plain temporary directory instead.
    pub fn empty() -> Workspace {
        let dir = tempfile::Builder::new().prefix("anonmigrate-ws").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nresolver = \"2\"\n").unwrap();
        Workspace { dir }
    }

    pub fn with_migrations(source: &Path) -> Workspace {
        let ws = Workspace::empty();
        copy_tree(source, &ws.migrations());
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn migrations(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    /// Writes a file below the workspace, creating parents.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs the CLI binary in `cwd` with DATABASE_URL and friends cleared, so only what the test passes counts.
pub fn run_cli(bin: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("DIRECT_URL")
        .env_remove("ANONMIGRATE_DRIFT")
        // clap wraps help to COLUMNS when it is exported: snapshots are taken at the default width.
        .env_remove("COLUMNS")
        .env_remove("LINES")
        .env_remove("MIGRATION_DIRECTORY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("cannot run the cargo-anonmigrate binary")
}

/// How a [`Pooler`] hands server connections to clients (PgBouncer's `pool_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
    Statement,
}

impl PoolMode {
    fn name(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

/// A real PgBouncer (Debian's `pgbouncer`) in front of this process's cluster, on a free loopback port, run as
/// the cluster's unprivileged user when we are root (it refuses root too). Stopped when dropped; a watchdog stops
/// it if the test process dies first.
#[derive(Debug)]
pub struct Pooler {
    pub port: u16,
    dir: PathBuf,
}

static POOLERS: AtomicUsize = AtomicUsize::new(0);

impl Pooler {
    pub fn start(mode: PoolMode) -> Pooler {
        let binary = pgbouncer_binary();
        let dir = std::env::temp_dir().join(format!(
            "anonmigrate-pgbouncer-{}-{}",
            std::process::id(),
            POOLERS.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A few tries: the free port found here may be taken by someone else before PgBouncer binds it.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            std::fs::write(dir.join("users.txt"), format!("\"{}\" \"\"\n", cluster().superuser)).unwrap();
            let ini = format!(
                "[databases]\n* = host={sock} port=5432\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {dir}/users.txt\npool_mode = {mode}\ndefault_pool_size = 4\nmax_client_conn = 200\n\
                 logfile = {dir}/pgbouncer.log\npidfile = {dir}/pgbouncer.pid\n\
                 ignore_startup_parameters = extra_float_digits,options,application_name\n",
                sock = cluster().socket_dir().display(),
                dir = dir.display(),
                mode = mode.name(),
            );
            std::fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
            let _ = std::fs::remove_file(dir.join("pgbouncer.pid"));
            if local_server::is_root() {
                let status = Command::new("chown").arg("-R").arg(format!("{}:", local_server::server_os_user())).arg(&dir).status();
                assert!(status.is_ok_and(|s| s.success()), "cannot hand {} to the server's OS user", dir.display());
            }
            let mut cmd = if local_server::is_root() {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", &local_server::server_os_user(), "--"]).arg(&binary);
                cmd
            } else {
                Command::new(&binary)
            };
            // -d: PgBouncer daemonises once it listens, so a zero exit means the port is ours.
            let output = cmd.arg("-d").arg(dir.join("pgbouncer.ini")).stdin(Stdio::null()).output().expect("cannot run pgbouncer");
            let pooler = Pooler { port, dir: dir.clone() };
            if output.status.success() && pooler.wait_listening() {
                pooler.spawn_watchdog();
                return pooler;
            }
            pooler.stop();
            std::mem::forget(pooler);
        }
        let log = std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default();
        panic!("PgBouncer did not start in {} ({mode:?} mode); its log:\n{log}", dir.display());
    }

    /// The URL of `database` through the pooler.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://{}@127.0.0.1:{}/{database}", cluster().superuser, self.port)
    }

    fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("pgbouncer.pid")).ok().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty())
    }

    fn wait_listening(&self) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.pid().is_some() && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    fn spawn_watchdog(&self) {
        let Some(pid) = self.pid() else { return };
        let script = format!(
            "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 0.3; done; kill -TERM {pid} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            dir = self.dir.display(),
        );
        spawn_watchdog_script(&script);
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pooler {
    fn stop(&self) {
        // SIGTERM: immediate shutdown, server connections closed, so test databases can be dropped.
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            for _ in 0..100 {
                if !Command::new("kill").args(["-0", &pid]).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// Debian's `pgbouncer` (`.ci/run` installs it), or `ANONMIGRATE_PGBOUNCER`.
fn pgbouncer_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ANONMIGRATE_PGBOUNCER") {
        return PathBuf::from(path);
    }
    for candidate in ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"] {
        if Path::new(candidate).is_file() {
            return PathBuf::from(candidate);
        }
    }
    panic!("the pooler tests need PgBouncer and none was found: `apt-get install -y pgbouncer` (what .ci/run does), or set ANONMIGRATE_PGBOUNCER to its path")
}

/// The bin directory of the venv holding the pinned Alembic (`tests/fixtures/alembic/requirements.txt`), created
/// once under the target directory by `scripts/alembic-venv`. Panics with the script's message when python3 or
/// its venv module is missing: the Alembic tests fail then, they never skip.
pub fn alembic_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = repo_root().join("scripts/alembic-venv");
        let output = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "{} failed, so the Alembic tests cannot run (they need python3 with its venv module and the package index):\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// Runs the venv's `alembic` in `project` (the directory of alembic.ini) against `database_url`; panics on failure.
pub fn alembic(project: &Path, database_url: &str, args: &[&str]) -> String {
    let output = Command::new(alembic_bin().join("alembic"))
        .args(args)
        .current_dir(project)
        .env("DATABASE_URL", database_url)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run alembic");
    assert!(output.status.success(), "alembic {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// How the schema of database `b` differs from that of `a`, through the catalogs (the fingerprint `check
/// --database` compares: every table, column, index, constraint, type, function, extension ...; bookkeeping
/// tables, Alembic's included, left out). Empty when they are the same.
pub fn schema_differences(a: &str, b: &str) -> Vec<String> {
    use anonmigrate_core::database_url::{DatabaseUrl, UrlSource};
    use anonmigrate_core::schema::fingerprint;
    let read = |url: &str| {
        let url = DatabaseUrl::parse(url, UrlSource::Flag).expect("a test database URL parses");
        fingerprint::read_url(&url).unwrap_or_else(|e| panic!("cannot read the catalogs: {e}"))
    };
    let (a, b) = (read(a), read(b));
    assert!(!a.objects.is_empty() || !b.objects.is_empty(), "both fingerprints are empty: nothing was compared");
    fingerprint::diff(&a, &b).iter().map(|c| format!("{c:?}")).collect()
}
