//! The embedded default: with no database configured, commands use a managed local server (the README's quick
//! start), and `server status|url|stop|start` manage it.

use std::path::{Path, PathBuf};

use crate::support::{Env, Outcome};

/// A managed server directory for one test, in a temp directory the server's OS user can reach (root cannot run
/// PostgreSQL, so the server may run as another user). Dropping it stops the server, so a failed assertion never
/// leaves one running.
pub struct ManagedServer<'a> {
    pub env: &'a Env,
    pub dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl<'a> ManagedServer<'a> {
    /// `name` is the server directory's last component (tests put spaces and shell syntax in it).
    pub fn new(env: &'a Env, name: &str) -> ManagedServer<'a> {
        let parent = tempfile::Builder::new().prefix("anonmigrate-dev").tempdir().unwrap();
        std::fs::set_permissions(parent.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        ManagedServer { env, dir: parent.path().join(name), _parent: parent }
    }

    /// Runs the binary with `ANONMIGRATE_SERVER_DIR` pointing here, plus `extra` environment.
    pub fn cli(&self, args: &[&str], extra: &[(&str, &str)]) -> Outcome {
        let dir = self.dir.to_str().unwrap();
        let mut env = vec![("ANONMIGRATE_SERVER_DIR", dir)];
        env.extend_from_slice(extra);
        self.env.raw(args, &env)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ManagedServer<'_> {
    fn drop(&mut self) {
        if self.dir.join("data/postmaster.pid").exists() {
            let _ = self.cli(&["server", "stop"], &[]);
        }
    }
}

#[test]
fn quick_start_applies_the_chain_on_the_managed_server() {
    let env = Env::anonchat("embedded");
    let server = ManagedServer::new(&env, "server");
    let with_server: [(&str, &str); 0] = [];
    let before = server.cli(&["server", "status"], &with_server);
    before.assert_code(0);
    assert!(before.stdout.contains("managed server: not created yet"), "{}", before.stdout);

    // doctor works with no database configured: it reports on the managed server without starting it.
    let doctor = server.cli(&["doctor"], &with_server);
    doctor.assert_code(0);
    assert!(doctor.stdout.contains("commands use the managed local server"), "{}", doctor.stdout);
    assert!(doctor.stdout.contains("local server: not running"), "{}", doctor.stdout);

    let run = server.cli(&["run"], &with_server);
    run.assert_code(0);
    assert!(run.stderr.contains("started the managed local server"), "{}", run.stderr);
    assert!(run.stdout.contains("5 migrations applied"), "{}", run.stdout);

    let url = server.cli(&["server", "url"], &with_server);
    url.assert_code(0);
    let db = anonmigrate_testkit::TestDb { name: String::new(), url: url.stdout.trim().to_owned() };
    assert_eq!(db.applied_versions().len(), 5);
    std::mem::forget(db); // not ours to drop: it lives on the managed server

    let status = server.cli(&["status"], &with_server);
    assert_eq!(status.stderr.matches("using the managed local server").count(), 1, "said once: {}", status.stderr);
    assert!(server.cli(&["server", "status"], &with_server).stdout.contains("managed server: running"));

    // After `database drop`, the read-only commands report the database missing instead of creating it again.
    server.cli(&["database", "drop", "--yes"], &with_server).assert_code(0);
    for read_only in ["status", "history"] {
        let missing = server.cli(&[read_only], &with_server);
        assert_eq!(missing.code, 5, "{read_only}: {}", missing.stderr);
        assert!(missing.stderr.contains("does not exist on") && !missing.stderr.contains("created database"), "{read_only}: {}", missing.stderr);
    }
    let rebuilt = server.cli(&["run"], &with_server);
    rebuilt.assert_code(0);
    assert!(rebuilt.stderr.contains("created database") && rebuilt.stdout.contains("5 migrations applied"), "{}{}", rebuilt.stdout, rebuilt.stderr);

    let stop = server.cli(&["server", "stop"], &with_server);
    stop.assert_code(0);
    assert!(stop.stdout.contains("stopped; its data is kept"), "{}", stop.stdout);
    assert!(server.cli(&["server", "status"], &with_server).stdout.contains("managed server: stopped"));

    // Data survives a restart.
    server.cli(&["server", "start"], &with_server).assert_code(0);
    let again = server.cli(&["run"], &with_server);
    assert!(again.stdout.contains("nothing to apply"), "{}", again.stdout);
    server.cli(&["server", "stop"], &with_server).assert_code(0);
}

/// Runs the binary with no PostgreSQL version asked for from outside (the suite may run with
/// ANONMIGRATE_POSTGRES=16), plus `env`.
fn bare(ws: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> crate::support::Outcome {
    let output = std::process::Command::new(crate::support::bin())
        .current_dir(ws)
        .args(std::iter::once(&"anonmigrate").chain(args))
        .env_remove("DATABASE_URL")
        .env_remove("ANONMIGRATE_POSTGRES")
        .env_remove("ANONMIGRATE_PG_BINDIR")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    crate::support::Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A server directory the server's OS user can reach, removed (server stopped first) when dropped.
struct ServerDir {
    dir: tempfile::TempDir,
    ws: std::path::PathBuf,
}

impl ServerDir {
    fn new(ws: &std::path::Path) -> ServerDir {
        let dir = tempfile::Builder::new().prefix("anonmigrate-dev").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        ServerDir { dir, ws: ws.to_path_buf() }
    }

    fn path(&self) -> String {
        self.dir.path().join("server").to_str().unwrap().to_owned()
    }
}

impl Drop for ServerDir {
    fn drop(&mut self) {
        // Whichever major made it: stop never refuses a cluster of another version.
        for major in ["18", "16"] {
            bare(&self.ws, &["server", "stop"], &[("ANONMIGRATE_SERVER_DIR", &self.path()), ("ANONMIGRATE_POSTGRES", major)]);
        }
    }
}

#[test]
fn with_nothing_configured_halfvec_sparsevec_and_a_concurrent_hnsw_index_run_on_postgres_18() {
    let ws = anonmigrate_testkit::Workspace::with_migrations(
        &anonmigrate_testkit::repo_root().join("tests/fixtures/pgvector_crate/migrations"),
    );
    let server = ServerDir::new(ws.path());
    let env = [("ANONMIGRATE_SERVER_DIR", server.path())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let run = bare(ws.path(), &["run"], &env);
    run.assert_code(0);
    assert!(run.stdout.contains("3 migrations applied"), "{}", run.stdout);

    let status = bare(ws.path(), &["server", "status"], &env);
    status.assert_code(0);
    assert!(status.stdout.contains("version: PostgreSQL 18.4, pgvector 0.8.5"), "{}", status.stdout);
    assert!(!status.stdout.contains("warning"), "{}", status.stdout);

    let url = bare(ws.path(), &["server", "url"], &env);
    let url = url.stdout.trim();
    let db = anonmigrate_testkit::TestDb { name: String::new(), url: url.to_owned() };
    assert_eq!(db.query("SELECT current_setting('server_version_num')")[0].get(..2), Some("18"));
    assert_eq!(db.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'"), ["0.8.5"]);
    assert_eq!(
        db.query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 1 ORDER BY attnum"),
        ["text", "halfvec(3)", "sparsevec(5)", "bit(4)", "vector(3)"]
    );
    assert_eq!(
        db.query("SELECT indisvalid::text || ' ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indexrelid = 'items_embedding_hnsw'::regclass"),
        ["true CREATE INDEX items_embedding_hnsw ON public.items USING hnsw (embedding halfvec_l2_ops)"]
    );
    std::mem::forget(db); // lives on the managed server
}

#[test]
fn a_data_directory_of_another_major_version_is_explained_and_never_started() {
    let env_anonchat = crate::support::Env::anonchat("other_major");
    let ws = env_anonchat.ws.path();
    let server = ServerDir::new(ws);
    let dir = server.path();
    let on = |major: &'static str| vec![("ANONMIGRATE_SERVER_DIR", dir.as_str()), ("ANONMIGRATE_POSTGRES", major)];
    let nothing = [("ANONMIGRATE_SERVER_DIR", dir.as_str())];

    // Made by PostgreSQL 16 (asked for through the environment), then stopped.
    bare(ws, &["run"], &on("16")).assert_code(0);
    let status = bare(ws, &["server", "status"], &on("16"));
    assert!(status.stdout.contains("version: PostgreSQL 16.14, pgvector 0.8.5"), "{}", status.stdout);
    bare(ws, &["server", "stop"], &on("16")).assert_code(0);

    // With nothing configured the cluster keeps the binaries it was created with (recorded in its directory),
    // although 18 would be today's choice; server status and doctor say so.
    let kept = bare(ws, &["run"], &nothing);
    kept.assert_code(0);
    assert!(kept.stdout.contains("nothing to apply"), "{}", kept.stdout);
    let status = bare(ws, &["server", "status"], &nothing);
    assert!(status.stdout.contains("version: PostgreSQL 16.14, pgvector 0.8.5"), "{}", status.stdout);
    assert!(status.stdout.contains("; recorded when the server was created, kept for it)"), "{}", status.stdout);
    let doctor = bare(ws, &["doctor"], &nothing);
    assert!(doctor.stdout.contains("recorded when the server was created, kept for it"), "{}", doctor.stdout);
    bare(ws, &["server", "stop"], &nothing).assert_code(0);

    // Recorded binaries that are gone are named, never silently replaced by others.
    let record = std::path::Path::new(&dir).join("server-binaries");
    let recorded = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, "/nonexistent/postgresql/bin\n").unwrap();
    let gone = bare(ws, &["run"], &nothing);
    assert_eq!(gone.code, 5, "{}", gone.stderr);
    assert!(gone.stderr.contains("was created with the server binaries in `/nonexistent/postgresql/bin`, which are no longer there"), "{}", gone.stderr);
    assert!(!std::path::Path::new(&dir).join("data/postmaster.pid").exists());
    std::fs::write(&record, recorded).unwrap();

    // Asking for 18 (or a data directory made before binaries were recorded, where 18 is the default): refused
    // with both ways out, and nothing started.
    assert!(record.is_file());
    for (what, env) in [("asked for 18", on("18")), ("no record", nothing.to_vec())] {
        if what == "no record" {
            std::fs::remove_file(&record).unwrap();
        }
        let run = bare(ws, &["run"], &env);
        run.assert_code(4);
        assert!(run.stderr.contains("was made by PostgreSQL 16, but this workspace now gets PostgreSQL 18"), "{what}: {}", run.stderr);
        assert!(run.stderr.contains("set `postgres = \"16\"` in [workspace.metadata.anonmigrate] (or ANONMIGRATE_POSTGRES=16)"), "{what}: {}", run.stderr);
        assert!(run.stderr.contains("cargo anonmigrate server stop"), "{what}: {}", run.stderr);
        assert!(!std::path::Path::new(&dir).join("data/postmaster.pid").exists(), "{what}: started with the wrong binaries");
        bare(ws, &["server", "start"], &env).assert_code(4);
        assert!(!std::path::Path::new(&dir).join("data/postmaster.pid").exists(), "{what}: started with the wrong binaries");
        let status = bare(ws, &["server", "status"], &env);
        status.assert_code(0);
        assert!(status.stdout.contains("managed server: stopped"), "{what}: {}", status.stdout);
        assert!(status.stdout.contains("warning: the managed server's data"), "{what}: {}", status.stdout);
    }

    // The workspace key keeps it: the data is there, nothing to apply.
    // The test workspace is a Cargo project already (`[workspace]`), so only the metadata table is added.
    let manifest = std::fs::read_to_string(std::path::Path::new(ws).join("Cargo.toml")).expect("the test workspace's Cargo.toml");
    assert!(manifest.contains("[workspace]") && !manifest.contains("[workspace.metadata.anonmigrate]"), "{manifest}");
    std::fs::write(
        std::path::Path::new(ws).join("Cargo.toml"),
        format!("{manifest}\n[workspace.metadata.anonmigrate]\npostgres = \"16\"\n"),
    )
    .unwrap();
    let again = bare(ws, &["run"], &nothing);
    again.assert_code(0);
    assert!(again.stdout.contains("nothing to apply"), "{}", again.stdout);
    bare(ws, &["server", "stop"], &nothing).assert_code(0);
}
