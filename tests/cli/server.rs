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
    assert!(status.stderr.contains("using the managed local server"), "{}", status.stderr);
    assert!(server.cli(&["server", "status"], &with_server).stdout.contains("managed server: running"));

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
