//! The first-day flow as a new user walks it, against a real server: generate → write the SQL → run; a migration
//! directory made by hand; and a real `git merge` of two branches that each added a migration, resolved by
//! `cargo anonmigrate merge` alone. Each step checks what the user sees, the lock file and the database.

use std::path::Path;
use std::process::Command;

use crate::support::{Env, Outcome};

fn lock_text(env: &Env) -> String {
    std::fs::read_to_string(env.ws.migrations().join("anonmigrate.lock")).unwrap()
}

fn dir_ending_with(env: &Env, suffix: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(env.ws.migrations())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(suffix))
        .collect();
    assert_eq!(names.len(), 1, "one directory ending with {suffix}: {names:?}");
    names.remove(0)
}

fn git(dir: &Path, args: &[&str]) -> Outcome {
    let output = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"])
        .args(["-c", "merge.conflictStyle=merge", "-c", "core.autocrlf=false"])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git is installed");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn generate_then_write_the_sql_then_run() {
    let env = Env::new("first_day");
    env.cli(&["generate", "add_users"]).assert_code(0);
    let dir = dir_ending_with(&env, "_add_users");
    env.ws.write(&format!("migrations/{dir}/up.sql"), "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL);\n");
    env.ws.write(&format!("migrations/{dir}/down.sql"), "DROP TABLE users;\n");

    let run = env.cli(&["run"]);
    run.assert_code(0);
    assert_eq!(
        run.stderr,
        format!("updated migrations/anonmigrate.lock: edited {dir}\n"),
        "one line says what changed in the lock file"
    );
    assert!(run.stdout.contains(&format!("applied   {dir}")), "{}", run.stdout);
    assert!(env.db.tables().contains(&"users".to_owned()));
    assert_eq!(env.db.applied_versions().len(), 1);
    // The lock file now matches: --locked (CI) passes and nothing more is said.
    let again = env.cli(&["run", "--locked"]);
    again.assert_code(0);
    assert_eq!(again.stderr, "");
    let checksum = env.db.query("SELECT checksum FROM __anonmigrate_migrations");
    assert!(lock_text(&env).contains(&format!("{} {dir}\n", checksum[0])), "{}", lock_text(&env));

    // Editing it after it ran is still refused, by the checksum the database recorded.
    env.ws.write(&format!("migrations/{dir}/up.sql"), "CREATE TABLE users (id BIGINT PRIMARY KEY);\n");
    let refused = env.cli(&["run"]);
    refused.assert_code(7);
    assert!(refused.stderr.contains("applied migrations were modified after they ran"), "{}", refused.stderr);
    assert!(refused.stderr.contains("cargo anonmigrate accept"), "{}", refused.stderr);
}

#[test]
fn a_hand_made_directory_runs_and_its_schema_prints() {
    let env = Env::new("hand_made");
    // What every diesel user does: a directory with up.sql and down.sql, no lock file anywhere.
    env.ws.write("migrations/2024-05-01-120000_create_posts/up.sql", "CREATE TABLE posts (id BIGINT PRIMARY KEY, body TEXT NOT NULL);\n");
    env.ws.write("migrations/2024-05-01-120000_create_posts/down.sql", "DROP TABLE posts;\n");
    let run = env.cli(&["run"]);
    run.assert_code(0);
    assert_eq!(run.stderr, "created migrations/anonmigrate.lock (1 migration); commit it with the migrations\n");
    assert_eq!(env.db.applied_versions(), ["20240501120000"]);

    env.ws.write("migrations/2024-05-02-120000_add_title/up.sql", "ALTER TABLE posts ADD COLUMN title TEXT;\n");
    env.ws.write("migrations/2024-05-02-120000_add_title/down.sql", "ALTER TABLE posts DROP COLUMN title;\n");
    let schema = env.cli(&["schema", "--stdout"]);
    schema.assert_code(0);
    assert!(schema.stderr.contains("updated migrations/anonmigrate.lock: added 2024-05-02-120000_add_title\n"), "{}", schema.stderr);
    assert!(schema.stdout.contains("posts (id)") && schema.stdout.contains("title -> Nullable<Text>"), "{}", schema.stdout);
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.applied_versions().len(), 2);
}

#[test]
fn check_refuses_a_stale_lock_file_that_run_would_update() {
    let env = Env::new("check_stale");
    env.ws.write("migrations/2024-05-01-120000_a/up.sql", "CREATE TABLE a (id INT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-05-01-120000_a/down.sql", "DROP TABLE a;\n");
    env.cli(&["lock"]).assert_code(0);
    env.ws.write("migrations/2024-05-02-120000_b/up.sql", "CREATE TABLE b (id INT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-05-02-120000_b/down.sql", "DROP TABLE b;\n");
    let before = lock_text(&env);
    let check = env.cli(&["check", "--no-lint"]);
    check.assert_code(7);
    assert!(check.stdout.contains("not in the lock file): 2024-05-02-120000_b"), "{}", check.stdout);
    assert_eq!(lock_text(&env), before, "check never writes the lock file");
}

#[test]
fn a_real_git_merge_of_two_branches_is_resolved_by_merge_alone() {
    let env = Env::new("git_merge");
    let root = env.ws.path();
    env.ws.write("migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id BIGINT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-01-000000_users/down.sql", "DROP TABLE users;\n");
    env.cli(&["lock"]).assert_code(0);
    git(root, &["init", "-q"]).assert_code(0);
    git(root, &["add", "-A"]).assert_code(0);
    git(root, &["commit", "-qm", "users"]).assert_code(0);

    // A teammate's branch adds a migration (generated earlier, so its version is older).
    git(root, &["checkout", "-qb", "rooms"]).assert_code(0);
    env.ws.write("migrations/2024-01-02-000000_rooms/up.sql", "CREATE TABLE rooms (id BIGINT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-02-000000_rooms/down.sql", "DROP TABLE rooms;\n");
    env.cli(&["lock"]).assert_code(0);
    git(root, &["add", "-A"]).assert_code(0);
    git(root, &["commit", "-qm", "rooms"]).assert_code(0);

    // Ours adds another and applies it to the development database.
    git(root, &["checkout", "-q", "main"]).assert_code(0);
    env.ws.write("migrations/2024-01-03-000000_messages/up.sql", "CREATE TABLE messages (id BIGINT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-03-000000_messages/down.sql", "DROP TABLE messages;\n");
    env.cli(&["run"]).assert_code(0);
    git(root, &["add", "-A"]).assert_code(0);
    git(root, &["commit", "-qm", "messages"]).assert_code(0);

    let merged = git(root, &["merge", "rooms"]);
    assert_ne!(merged.code, 0, "the lock file conflicts, as designed:\n{}{}", merged.stdout, merged.stderr);
    assert!(merged.stdout.contains("CONFLICT (content): Merge conflict in migrations/anonmigrate.lock"), "{}", merged.stdout);
    let conflicted = lock_text(&env);
    assert!(conflicted.contains("<<<<<<< HEAD"), "{conflicted}");

    // heads reads both sides.
    let heads = env.cli(&["heads"]);
    heads.assert_code(0);
    assert_eq!(heads.stdout, "HEAD added:\n  2024-01-03-000000_messages\nrooms added:\n  2024-01-02-000000_rooms\n");
    // Other commands refuse a conflicted lock file and point at merge, without rewriting it.
    let refused = env.cli(&["run"]);
    refused.assert_code(7);
    assert!(refused.stderr.contains("holds git conflict markers") && refused.stderr.contains("`cargo anonmigrate merge`"), "{}", refused.stderr);
    assert_eq!(lock_text(&env), conflicted);
    assert_eq!(env.db.applied_versions().len(), 2, "nothing ran");

    // merge alone resolves it: the database applied messages (2024-01-03), so rooms moves after it.
    let resolved = env.cli(&["merge"]);
    resolved.assert_code(0);
    assert!(resolved.stdout.contains("lock file conflict: HEAD added 2024-01-03-000000_messages; rooms added 2024-01-02-000000_rooms\n"), "{}", resolved.stdout);
    assert!(resolved.stdout.contains("renamed   2024-01-02-000000_rooms -> "), "{}", resolved.stdout);
    assert!(resolved.stdout.contains("wrote migrations/anonmigrate.lock: both sides, 3 migrations in chain order"), "{}", resolved.stdout);
    let rooms = dir_ending_with(&env, "_rooms");
    assert!(rooms.as_str() > "2024-01-03-000000_messages", "{rooms}");
    let lock = lock_text(&env);
    assert!(!lock.contains("<<<<<<<") && !lock.contains(">>>>>>>"), "{lock}");
    assert!(lock.contains(&format!(" {rooms}\n")) && lock.contains(" 2024-01-03-000000_messages\n"), "{lock}");

    // The result is consistent: --locked passes, run applies only the newcomer, and git takes it.
    let run = env.cli(&["run", "--locked"]);
    run.assert_code(0);
    assert!(run.stdout.contains(&format!("applied   {rooms}")), "{}", run.stdout);
    assert_eq!(env.db.applied_versions().len(), 3);
    assert!(env.db.tables().contains(&"rooms".to_owned()));
    git(root, &["add", "-A"]).assert_code(0);
    git(root, &["commit", "-qm", "merge rooms"]).assert_code(0);
    assert_eq!(env.cli(&["heads"]).stdout, "");
}
