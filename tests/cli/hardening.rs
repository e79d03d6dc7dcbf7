//! Hardening cases found by reviewing the tool as an attacker would: files written through symlinks, SQL and
//! shell through path names, the managed server reachable by other local users, secrets in messages.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anonmigrate_testkit::cluster;

use crate::server::ManagedServer;
use crate::support::Env;

/// A symlink where `lock` used to put its fixed-name temporary file must not make it overwrite the target.
#[test]
fn lock_never_writes_through_a_planted_symlink() {
    let env = Env::with_fixture("symlink_lock", "realworld");
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let migrations = env.ws.migrations();
    std::os::unix::fs::symlink(&victim, migrations.join(".anonmigrate.lock.tmp")).unwrap();

    env.raw(&["lock"], &[]).assert_code(0);

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let lock = std::fs::read_to_string(migrations.join("anonmigrate.lock")).unwrap();
    assert!(lock.starts_with("anonmigrate-lock v1"), "{lock}");
}

/// `psql` run as the unprivileged `nobody` user against a socket directory (root only: it switches users).
fn psql_as_nobody(socket_dir: &Path) -> std::process::Output {
    std::process::Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(cluster().binaries.tool("psql"))
        .args(["-X", "-h"])
        .arg(socket_dir)
        .args(["-U", "postgres", "-d", "postgres", "-c", "SELECT 1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

/// The managed server trusts every connection on its socket, so only its owner may reach the socket; a server
/// directory with a space and `$(…)` in its name works and runs nothing (pg_ctl hands its options to a shell).
#[test]
fn managed_server_is_private_and_its_path_never_reaches_a_shell() {
    let env = Env::anonchat("private_server");
    let marker = std::env::temp_dir().join(format!("anonmigrate-injected-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let server = ManagedServer::new(&env, "dev server $(touch${IFS}$ANONMIGRATE_MARKER)");
    let marker_env = [("ANONMIGRATE_MARKER", marker.to_str().unwrap())];

    server.cli(&["server", "start"], &marker_env).assert_code(0);
    server.cli(&["run"], &marker_env).assert_code(0);
    assert!(!marker.exists(), "a command in the server path ran");

    let socket_dir = server.path().join("sock");
    assert_eq!(mode(server.path()), 0o700, "cluster directory");
    assert_eq!(mode(&socket_dir), 0o700, "socket directory");
    assert_eq!(mode(&socket_dir.join(".s.PGSQL.5432")), 0o700, "socket");
    if anonmigrate_core::local_server::is_root() {
        let denied = psql_as_nobody(&socket_dir);
        let stderr = String::from_utf8_lossy(&denied.stderr);
        assert!(!denied.status.success(), "another local user connected to the managed server");
        assert!(stderr.contains("Permission denied"), "{stderr}");
        assert!(psql_as_nobody_reaches_something(), "psql as nobody cannot run at all; the check above proves nothing");
    }
}

/// A control run: `nobody` can start psql and gets an answer about the socket (here: there is none), so the
/// denial above is about permissions, not a psql that cannot run.
fn psql_as_nobody_reaches_something() -> bool {
    let out = psql_as_nobody(Path::new("/nonexistent-anonmigrate-socket-dir"));
    String::from_utf8_lossy(&out.stderr).contains("No such file or directory")
}

/// A server directory too long for a socket address gets a private socket directory with a random name under the
/// temp dir; a recorded one that someone else owns, or that others can enter, is refused.
#[test]
fn long_server_paths_get_a_private_random_socket_dir_and_planted_ones_are_refused() {
    let env = Env::new("long_server_path");
    let server = ManagedServer::new(&env, &"long".repeat(30));

    server.cli(&["server", "start"], &[]).assert_code(0);
    let recorded = std::fs::read_to_string(server.path().join("socket-dir")).unwrap();
    let socket_dir = PathBuf::from(recorded.trim_end());
    assert!(socket_dir.starts_with(std::env::temp_dir()), "{recorded}");
    assert_eq!(mode(&socket_dir), 0o700);
    server.cli(&["server", "stop"], &[]).assert_code(0);

    // Someone else's directory where the record points (after a reboot emptied /tmp, say).
    let planted = tempfile::Builder::new().prefix("anonmigrate-planted").tempdir().unwrap();
    let planted_dir = planted.path().join("sock");
    std::fs::create_dir(&planted_dir).unwrap();
    let expected = if anonmigrate_core::local_server::is_root() {
        std::os::unix::fs::chown(&planted_dir, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&planted_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        "belongs to another user (uid 65534)"
    } else {
        std::fs::set_permissions(&planted_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        "other users can enter it (mode 755)"
    };
    std::fs::write(server.path().join("socket-dir"), format!("{}\n", planted_dir.display())).unwrap();
    let refused = server.cli(&["server", "start"], &[]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("refusing to use"), "{}", refused.stderr);
    assert!(refused.stderr.contains(expected), "{}", refused.stderr);
    assert!(!server.path().join("data/postmaster.pid").exists(), "the server started anyway");
}

/// A migration directory whose name holds a line break is refused before anything uses it: `run --sql` would
/// otherwise write the rest of the name as SQL after a `--` comment, and `lock` a file it cannot read back.
#[test]
fn migration_names_with_line_breaks_are_refused() {
    let env = Env::new("control_names");
    env.ws.write("migrations/2024-01-01-000000_victim/up.sql", "CREATE TABLE victim (id int);");
    env.ws.write("migrations/2024-01-02-000000_x\nDROP TABLE victim; --/up.sql", "SELECT 1;");
    for args in [&["run", "--sql"][..], &["lock"], &["status"]] {
        let out = env.raw(args, &[]);
        assert_ne!(out.code, 0, "{args:?} accepted it: {out:?}");
        assert!(out.stderr.contains("`2024-01-02-000000_x\\nDROP TABLE victim; --`"), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("control character"), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
    assert!(!env.ws.migrations().join("anonmigrate.lock").exists());
}

/// Paths are not refused, so the one path `run --sql` writes into its header comment is escaped: the script,
/// applied with psql, runs no SQL hidden in the migrations directory's name.
#[test]
fn run_sql_escapes_the_migrations_directory_in_its_comments() {
    let env = Env::new("control_path");
    let dir = "mig\nDROP TABLE victim; --";
    env.ws.write(&format!("{dir}/2024-01-01-000000_one/up.sql"), "CREATE TABLE one (id int);");
    env.db.execute("CREATE TABLE victim (id int)");
    let script = env.raw(&["run", "--sql", "--migrations-dir", dir], &[]);
    script.assert_code(0);
    assert!(script.stdout.contains("-- Migrations directory: ") && script.stdout.contains("mig\\nDROP TABLE victim; --"), "{}", script.stdout);
    let file = env.ws.path().join("deploy.sql");
    std::fs::write(&file, &script.stdout).unwrap();
    let applied = env.db.psql_file(&file);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    assert!(env.db.tables().contains(&"victim".to_owned()), "{:?}", env.db.tables());
    assert_eq!(env.db.applied_versions(), ["20240101000000"]);
}

/// Passwords the invalid-URL error, libpq's percent-escape message and dotenvy's line echo used to print whole.
#[test]
fn secrets_in_bad_urls_and_env_files_never_reach_the_output() {
    let env = Env::new("secret_paths");
    let secret = "s3cr3t-Hunter";
    for url in [
        format!("postgresql://app:{secret}/x@db.example/app"),
        format!("postgresql://app:{secret}#x@db.example/app"),
        format!("postgresql://app:{secret}?x@db.example/app"),
        format!("postgresql://app:12/{secret}@db.example/app"),
        format!("postgresql://app:{secret}%zz@db.example/app"),
        format!("postgresql://app:{secret} with spaces@db.example/app"),
    ] {
        for (args, vars) in [
            (vec!["status", "--database-url", url.as_str()], vec![]),
            (vec!["status"], vec![("DATABASE_URL", url.as_str())]),
        ] {
            let out = env.raw(&args, &vars);
            assert_ne!(out.code, 0, "{url}: {out:?}");
            assert!(!out.stderr.contains(secret) && !out.stdout.contains(secret), "{url}: {}", out.stderr);
            // Spaces are encoded by the URL parser, so that one is accepted (and fails to connect).
            let expected = if url.contains(' ') { "cannot connect to database `app`" } else { "percent-encode" };
            assert!(out.stderr.contains(expected), "{url}: {}", out.stderr);
        }
    }
    // A malformed `.env` line is named by number, not echoed.
    env.ws.write(".env", format!("# settings\nDATABASE_URL=\"postgresql://app:{secret}@db.example/app\n"));
    let out = env.raw(&["status"], &[]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains(secret), "{}", out.stderr);
    assert!(out.stderr.contains(".env` line 2"), "{}", out.stderr);
}

/// Eight `generate` at once (scripts, several terminals): each gets its own version, every one is in the lock
/// file, and a staging directory left by a crash (hidden) does not break the chain.
#[test]
fn eight_generates_at_once_each_get_a_version_and_the_lock_file_lists_all() {
    let env = Env::new("generate_at_once");
    env.ws.write("migrations/.2024-01-01-000000_crashed.123.tmp/up.sql", "");
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|i| {
            let env = &env;
            s.spawn(move || env.raw(&["generate", &format!("step_{i}")], &[]))
        }).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for output in &outputs {
        output.assert_code(0);
    }
    let mut dirs: Vec<String> = std::fs::read_dir(env.ws.migrations())
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 8, "{dirs:?}");
    let versions: std::collections::BTreeSet<&str> = dirs.iter().map(|d| d.split('_').next().unwrap()).collect();
    assert_eq!(versions.len(), 8, "distinct versions: {dirs:?}");
    for dir in &dirs {
        let up = std::fs::read_to_string(env.ws.migrations().join(dir).join("up.sql")).unwrap();
        assert_eq!(up, "-- Your SQL goes here\n", "{dir}");
    }
    let lock = std::fs::read_to_string(env.ws.migrations().join("anonmigrate.lock")).unwrap();
    assert_eq!(dirs.iter().filter(|d| lock.contains(&format!(" {d}\n"))).count(), 8, "{lock}");
    env.raw(&["lock", "--locked"], &[]).assert_code(0);
}
