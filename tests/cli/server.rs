//! The embedded default: with no database configured, commands use a managed local server (the README's quick
//! start), and `server status|url|stop|start` manage it.

use crate::support::Env;

#[test]
fn quick_start_applies_the_chain_on_the_managed_server() {
    let env = Env::anonchat("embedded");
    let server_dir = tempfile::Builder::new().prefix("anonmigrate-dev").tempdir().unwrap();
    // The server may run as another OS user (root cannot run PostgreSQL): it must reach the directory.
    std::fs::set_permissions(server_dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let dir = server_dir.path().join("server");
    let dir = dir.to_str().unwrap();
    let with_server = [("ANONMIGRATE_SERVER_DIR", dir)];

    let before = env.raw(&["server", "status"], &with_server);
    before.assert_code(0);
    assert!(before.stdout.contains("managed server: not created yet"), "{}", before.stdout);

    // doctor works with no database configured: it reports on the managed server without starting it.
    let doctor = env.raw(&["doctor"], &with_server);
    doctor.assert_code(0);
    assert!(doctor.stdout.contains("commands use the managed local server"), "{}", doctor.stdout);
    assert!(doctor.stdout.contains("local server: not running"), "{}", doctor.stdout);

    let run = env.raw(&["run"], &with_server);
    run.assert_code(0);
    assert!(run.stderr.contains("started the managed local server"), "{}", run.stderr);
    assert!(run.stdout.contains("5 migrations applied"), "{}", run.stdout);

    let url = env.raw(&["server", "url"], &with_server);
    url.assert_code(0);
    let db = anonmigrate_testkit::TestDb { name: String::new(), url: url.stdout.trim().to_owned() };
    assert_eq!(db.applied_versions().len(), 5);
    std::mem::forget(db); // not ours to drop: it lives on the managed server

    let status = env.raw(&["status"], &with_server);
    assert!(status.stderr.contains("using the managed local server"), "{}", status.stderr);
    assert!(env.raw(&["server", "status"], &with_server).stdout.contains("managed server: running"));

    let stop = env.raw(&["server", "stop"], &with_server);
    stop.assert_code(0);
    assert!(stop.stdout.contains("stopped; its data is kept"), "{}", stop.stdout);
    assert!(env.raw(&["server", "status"], &with_server).stdout.contains("managed server: stopped"));

    // Data survives a restart.
    env.raw(&["server", "start"], &with_server).assert_code(0);
    let again = env.raw(&["run"], &with_server);
    assert!(again.stdout.contains("nothing to apply"), "{}", again.stdout);
    env.raw(&["server", "stop"], &with_server).assert_code(0);
}
