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
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The cluster of this test process, started on first use. A watchdog shell stops it and removes its files once
/// this process exits, however it exits (even `kill -9`), so no server outlives the run.
pub fn cluster() -> &'static Cluster {
    &SHARED.get_or_init(start_cluster).cluster
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
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start the cluster watchdog");
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
    /// A fresh database with the chain in `migrations` applied by the engine's runner (for crates' model tests).
    pub fn migrated(label: &str, migrations: &Path) -> TestDb {
        use anonmigrate_core::database_url::{DatabaseUrl, UrlSource};
        use anonmigrate_core::runner::{self, RunOptions};
        let db = TestDb::new(label);
        let chain = anonmigrate_core::chain::Chain::load(migrations)
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", migrations.display()));
        let url = DatabaseUrl::parse(&db.url, UrlSource::Flag).expect("the test database URL parses");
        let options = RunOptions {
            to: None,
            step: None,
            ignore_missing: false,
            allow_out_of_order: false,
            lock_timeout: std::time::Duration::from_secs(30),
            ddl_lock_timeout: Some(std::time::Duration::from_secs(10)),
        };
        runner::run(&url, &chain, &options, &mut anonmigrate_core::events::Silent)
            .unwrap_or_else(|e| panic!("migrating {} failed: {e}", db.name));
        db
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
    pub fn empty() -> Workspace {
        let dir = tempfile::Builder::new().prefix("anonmigrate-ws").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
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
        .env_remove("ANONMIGRATE_DRIFT")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("cannot run the cargo-anonmigrate binary")
}
