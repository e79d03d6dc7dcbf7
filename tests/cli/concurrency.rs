//! Several runners started at once on one database (app instances deploying together): each migration is
//! applied exactly once and every process succeeds. `ANONMIGRATE_STRESS_ROUNDS` repeats it (stress mode).

use std::process::{Command, Output, Stdio};

use anonmigrate_testkit::Workspace;

use crate::support::{Env, bin};

pub const RUNNERS: usize = 8;

/// Rounds per concurrency test: 1, or `ANONMIGRATE_STRESS_ROUNDS` (stress mode).
pub fn rounds() -> usize {
    std::env::var("ANONMIGRATE_STRESS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// Three migrations, the middle one non-transactional with two `CREATE INDEX CONCURRENTLY`; `log` counts runs.
pub fn write_chain(ws: &Workspace) {
    ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (a int, b int);\nCREATE TABLE log (n serial);");
    ws.write("migrations/2024-01-02-000000_idx/up.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\nINSERT INTO log DEFAULT VALUES;");
    ws.write("migrations/2024-01-02-000000_idx/metadata.toml", "run_in_transaction = false\n");
    ws.write("migrations/2024-01-03-000000_more/up.sql", "ALTER TABLE t ADD COLUMN c int;\nINSERT INTO log DEFAULT VALUES;");
}

/// Starts `RUNNERS` processes with these arguments at once in the workspace and waits for all of them.
pub fn run_at_once(ws: &Workspace, args: &[&str]) -> Vec<Output> {
    let children: Vec<_> = (0..RUNNERS)
        .map(|_| {
            Command::new(bin())
                .current_dir(ws.path())
                .args(args)
                .env_remove("DATABASE_URL")
                .env_remove("DIRECT_URL")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn runner")
        })
        .collect();
    children.into_iter().map(|child| child.wait_with_output().unwrap()).collect()
}

/// The chain of [`write_chain`] is applied completely, each migration once, its indexes valid.
pub fn assert_applied_once(env: &Env, round: usize) {
    assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000", "20240103000000"], "round {round}");
    assert_eq!(env.db.query("SELECT count(*) FROM log"), ["2"], "round {round}: each migration ran once");
    assert_eq!(
        env.db.query("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname = 't' AND i.indisvalid"),
        ["2"],
        "round {round}: both indexes built and valid"
    );
}

pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn eight_runners_at_once_apply_each_migration_once() {
    for round in 0..rounds() {
        let env = Env::new(&format!("concurrent{round}"));
        write_chain(&env.ws);
        // The first migration holds the lock for a second, so the runners really overlap.
        env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (a int, b int);\nCREATE TABLE log (n serial);\nSELECT pg_sleep(1);");
        let outputs = run_at_once(&env.ws, &["run", "--database-url", &env.db.url]);
        let (mut applied, mut nothing, mut waited) = (0, 0, 0);
        for output in &outputs {
            assert!(output.status.success(), "round {round}: a runner failed\n{}", describe(output));
            let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            if stdout.contains("3 migrations applied") {
                applied += 1;
            } else if stdout.contains("nothing to apply: the database is up to date") && !stdout.contains("applied   ") {
                nothing += 1;
            } else {
                panic!("round {round}: a runner applied part of the chain\n{}", describe(output));
            }
            waited += usize::from(stderr.contains("waiting for the migration lock held by pid"));
        }
        assert_eq!((applied, nothing), (1, RUNNERS - 1), "round {round}: exactly one runner applied the chain");
        assert!(waited >= 1, "round {round}: no runner waited for the lock, so they did not overlap");
        assert_applied_once(&env, round);
    }
}
