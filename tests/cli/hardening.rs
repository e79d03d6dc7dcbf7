//! Hardening cases found by reviewing the tool as an attacker would: files written through symlinks, SQL and
//! shell through path names, the managed server reachable by other local users, secrets in messages.

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
