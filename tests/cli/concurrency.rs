//! Several runners started at once on one database (app instances deploying together): each migration is
//! applied exactly once and every process succeeds. `ANONMIGRATE_STRESS_ROUNDS` repeats it (stress mode).

use std::process::{Command, Stdio};

use crate::support::{Env, bin};

const RUNNERS: usize = 8;

#[test]
fn eight_runners_at_once_apply_each_migration_once() {
    let rounds: usize = std::env::var("ANONMIGRATE_STRESS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    for round in 0..rounds {
        let env = Env::new(&format!("concurrent{round}"));
        env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (a int, b int);\nCREATE TABLE log (n serial);");
        env.ws.write("migrations/2024-01-02-000000_idx/up.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\nINSERT INTO log DEFAULT VALUES;");
        env.ws.write("migrations/2024-01-02-000000_idx/metadata.toml", "run_in_transaction = false\n");
        env.ws.write("migrations/2024-01-03-000000_more/up.sql", "ALTER TABLE t ADD COLUMN c int;\nINSERT INTO log DEFAULT VALUES;");
        let children: Vec<_> = (0..RUNNERS)
            .map(|_| {
                Command::new(bin())
                    .current_dir(env.ws.path())
                    .args(["run", "--database-url", &env.db.url])
                    .env_remove("DATABASE_URL")
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn runner")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "round {round}: a runner failed\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert_eq!(env.db.applied_versions(), ["20240101000000", "20240102000000", "20240103000000"], "round {round}");
        assert_eq!(env.db.query("SELECT count(*) FROM log"), ["2"], "round {round}: each migration ran once");
        assert_eq!(env.db.query("SELECT count(*) FROM pg_indexes WHERE tablename = 't'"), ["2"], "round {round}");
    }
}
