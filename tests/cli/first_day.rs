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

/// Runs the binary in `env`'s workspace against another database (a teammate's).
fn on<'a>(env: &'a Env, db: &'a anonmigrate_testkit::TestDb) -> impl Fn(&[&str]) -> Outcome + 'a {
    move |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--database-url", db.url.as_str()]);
        env.raw(&full, &[])
    }
}

/// A git repository with one committed migration (users) and its lock file, on branch main.
fn repo_with_users(env: &Env, down: bool) {
    env.ws.write("migrations/2024-01-01-000000_users/up.sql", "CREATE TABLE users (id BIGINT PRIMARY KEY);\n");
    if down {
        env.ws.write("migrations/2024-01-01-000000_users/down.sql", "DROP TABLE users;\n");
    }
    env.cli(&["lock"]).assert_code(0);
    git(env.ws.path(), &["init", "-q"]).assert_code(0);
    git(env.ws.path(), &["add", "-A"]).assert_code(0);
    git(env.ws.path(), &["commit", "-qm", "users"]).assert_code(0);
}

/// Issue 21's merge case: teammate A applied a migration on their branch; B merges it and `merge` gives it a new
/// version; A's database then renumbers its record on the next `run` (same checksum) and applies only what is new.
#[test]
fn a_database_that_applied_a_renamed_migration_renumbers_its_record_and_applies_only_what_is_new() {
    let env = Env::new("merge_renumber_b");
    let db_a = anonmigrate_testkit::TestDb::new("merge_renumber_a");
    let on_a = on(&env, &db_a);
    let root = env.ws.path();
    repo_with_users(&env, true);

    // A's branch adds rooms and applies it to A's development database.
    git(root, &["checkout", "-qb", "rooms"]).assert_code(0);
    env.ws.write("migrations/2024-01-02-000000_rooms/up.sql", "CREATE TABLE rooms (id BIGINT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-02-000000_rooms/down.sql", "DROP TABLE rooms;\n");
    on_a(&["run"]).assert_code(0);
    assert_eq!(db_a.applied_versions(), ["20240101000000", "20240102000000"]);
    // Two more databases of A's: one to revert after the merge, one whose first run after it stops early.
    let db_c = anonmigrate_testkit::TestDb::new("merge_renumber_c");
    let on_c = on(&env, &db_c);
    on_c(&["run"]).assert_code(0);
    let db_d = anonmigrate_testkit::TestDb::new("merge_renumber_d");
    let on_d = on(&env, &db_d);
    on_d(&["run"]).assert_code(0);
    git(root, &["add", "-A"]).assert_code(0);
    git(root, &["commit", "-qm", "rooms"]).assert_code(0);

    // B adds messages, applies it, merges A's branch; merge moves rooms after messages and records it.
    git(root, &["checkout", "-q", "main"]).assert_code(0);
    env.ws.write("migrations/2024-01-03-000000_messages/up.sql", "CREATE TABLE messages (id BIGINT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-01-03-000000_messages/down.sql", "DROP TABLE messages;\n");
    env.cli(&["run"]).assert_code(0);
    git(root, &["add", "-A"]).assert_code(0);
    git(root, &["commit", "-qm", "messages"]).assert_code(0);
    assert_ne!(git(root, &["merge", "rooms"]).code, 0);
    let merged = env.cli(&["merge"]);
    merged.assert_code(0);
    let rooms = dir_ending_with(&env, "_rooms");
    assert!(rooms.as_str() > "2024-01-03-000000_messages", "{rooms}");
    assert!(merged.stdout.contains("recorded the renames in migrations/anonmigrate.lock"), "{}", merged.stdout);
    let new_version: String = rooms.split('_').next().unwrap().chars().filter(|c| *c != '-').collect();
    assert!(lock_text(&env).contains(&format!("\nrenamed 20240102000000 {new_version}\n")), "{}", lock_text(&env));
    env.cli(&["run", "--locked"]).assert_code(0);
    git(root, &["add", "-A"]).assert_code(0);
    git(root, &["commit", "-qm", "merge rooms"]).assert_code(0);

    // A pulls the merge. Status and the dry run say what run will do; nothing is missing, nothing is out of order.
    let status = on_a(&["status"]);
    status.assert_code(0);
    assert!(
        status.stdout.contains(&format!("  {rooms}  (applied here as version 20240102000000, which `merge` changed")),
        "{}",
        status.stdout
    );
    assert!(!status.stderr.contains("not on disk"), "{}", status.stderr);
    let dry = on_a(&["run", "--dry-run"]);
    dry.assert_code(0);
    assert!(dry.stdout.contains(&format!("would renumber  {rooms}  (applied here as version 20240102000000")), "{}", dry.stdout);
    assert!(dry.stdout.contains("would apply  2024-01-03-000000_messages") && !dry.stdout.contains(&format!("would apply  {rooms}")), "{}", dry.stdout);
    assert_eq!(db_a.applied_versions(), ["20240101000000", "20240102000000"], "the dry run changed nothing");

    // run renumbers the record (one line) and applies only messages: rooms' CREATE TABLE does not run again.
    let run = on_a(&["run", "--locked"]);
    run.assert_code(0);
    assert_eq!(
        run.stderr.lines().filter(|l| l.contains("renumbered")).collect::<Vec<_>>(),
        [format!("renumbered the record of {rooms}: applied here as version 20240102000000, which `merge` changed (same checksum, not applied again)")],
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("applied   2024-01-03-000000_messages"), "{}", run.stdout);
    assert!(run.stdout.contains("1 migration applied"), "{}", run.stdout);
    assert_eq!(db_a.applied_versions(), ["20240101000000", "20240103000000", new_version.as_str()]);
    assert_eq!(
        db_a.query("SELECT version || ' ' || name FROM __anonmigrate_migrations ORDER BY version"),
        ["20240101000000 users".to_owned(), "20240103000000 messages".to_owned(), format!("{new_version} rooms")]
    );
    assert_eq!(db_a.query("SELECT action FROM __anonmigrate_audit"), ["renumber from 20240102000000"]);
    let again = on_a(&["run"]);
    again.assert_code(0);
    assert!(again.stdout.contains("nothing to apply") && !again.stderr.contains("renumbered"), "{}{}", again.stdout, again.stderr);
    let status = on_a(&["status", "--exit-code"]);
    status.assert_code(0);
    // revert on A's other database renumbers first too, then reverts rooms (now the newest), not users.
    let reverted = on_c(&["revert"]);
    reverted.assert_code(0);
    assert!(reverted.stderr.contains(&format!("renumbered the record of {rooms}")), "{}", reverted.stderr);
    assert_eq!(db_c.applied_versions(), ["20240101000000"]);
    assert!(!db_c.tables().contains(&"rooms".to_owned()) && db_c.tables().contains(&"users".to_owned()));

    // A run that renumbers and then applies nothing (--to before messages): the next run still sees messages
    // as in order on this database (rooms counts at the version it was applied under) and applies it.
    let early = on_d(&["run", "--to", "2024-01-01-000000_users"]);
    early.assert_code(0);
    assert!(early.stderr.contains(&format!("renumbered the record of {rooms}")), "{}", early.stderr);
    assert_eq!(db_d.applied_versions(), ["20240101000000", new_version.as_str()]);
    let dry = on_d(&["run", "--dry-run"]);
    dry.assert_code(0);
    assert!(dry.stdout.contains("would apply  2024-01-03-000000_messages  (pending;"), "{}", dry.stdout);
    let rest = on_d(&["run"]);
    rest.assert_code(0);
    assert!(rest.stdout.contains("applied   2024-01-03-000000_messages"), "{}{}", rest.stdout, rest.stderr);
    assert_eq!(db_d.applied_versions(), ["20240101000000", "20240103000000", new_version.as_str()]);

    // B's database, which applied rooms under its new version, has nothing to renumber.
    let on_b = env.cli(&["run"]);
    assert!(on_b.stdout.contains("nothing to apply") && !on_b.stderr.contains("renumbered"), "{}{}", on_b.stdout, on_b.stderr);
}

/// Both branches generated a migration with the same version: `merge` keeps ours, moves theirs after the head,
/// and a database that applied theirs under the shared version renumbers it and applies ours.
#[test]
fn merge_separates_two_migrations_that_share_a_version() {
    let env = Env::new("merge_shared_b");
    let db_a = anonmigrate_testkit::TestDb::new("merge_shared_a");
    let on_a = on(&env, &db_a);
    let root = env.ws.path();
    repo_with_users(&env, false);
    git(root, &["checkout", "-qb", "theirs"]).assert_code(0);
    env.ws.write("migrations/2024-01-02-000000_rooms/up.sql", "CREATE TABLE rooms (id BIGINT PRIMARY KEY);\n");
    on_a(&["run"]).assert_code(0);
    git(root, &["add", "-A"]).assert_code(0);
    git(root, &["commit", "-qm", "rooms"]).assert_code(0);
    git(root, &["checkout", "-q", "main"]).assert_code(0);
    env.ws.write("migrations/2024-01-02-000000_messages/up.sql", "CREATE TABLE messages (id BIGINT PRIMARY KEY);\n");
    env.cli(&["run"]).assert_code(0);
    git(root, &["add", "-A"]).assert_code(0);
    git(root, &["commit", "-qm", "messages"]).assert_code(0);
    assert_ne!(git(root, &["merge", "theirs"]).code, 0);

    let refused = env.cli(&["run"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("cargo anonmigrate merge"), "{}", refused.stderr);
    let heads = env.cli(&["heads"]);
    heads.assert_code(0);
    assert_eq!(heads.stdout, "HEAD added:\n  2024-01-02-000000_messages\ntheirs added:\n  2024-01-02-000000_rooms\n");

    let merged = env.cli(&["merge"]);
    merged.assert_code(0);
    let rooms = dir_ending_with(&env, "_rooms");
    assert!(merged.stdout.contains(&format!("renamed   2024-01-02-000000_rooms -> {rooms}  (both branches used its version)")), "{}", merged.stdout);
    assert!(env.ws.migrations().join("2024-01-02-000000_messages").is_dir(), "ours keeps the version");
    let run_b = env.cli(&["run", "--locked"]);
    run_b.assert_code(0);
    assert!(run_b.stdout.contains(&format!("applied   {rooms}")), "{}", run_b.stdout);

    let run_a = on_a(&["run", "--locked"]);
    run_a.assert_code(0);
    assert!(run_a.stderr.contains(&format!("renumbered the record of {rooms}: applied here as version 20240102000000")), "{}", run_a.stderr);
    assert!(run_a.stdout.contains("applied   2024-01-02-000000_messages") && !run_a.stdout.contains(&format!("applied   {rooms}")), "{}", run_a.stdout);
    assert_eq!(db_a.tables().iter().filter(|t| ["messages", "rooms", "users"].contains(&t.as_str())).count(), 3);
    assert_eq!(env.cli(&["heads"]).stderr, "nothing new: every migration on disk is listed in migrations/anonmigrate.lock\n");
}

#[test]
fn lock_says_in_one_line_what_changed() {
    let env = Env::new("lock_one_line");
    env.ws.write("migrations/2024-05-01-120000_a/up.sql", "CREATE TABLE a (id INT PRIMARY KEY);\n");
    let created = env.raw(&["lock"], &[]);
    assert_eq!((created.code, created.stdout.as_str(), created.stderr.as_str()), (0, "created migrations/anonmigrate.lock (1 migration); commit it with the migrations\n", ""));
    env.ws.write("migrations/2024-05-01-120000_a/up.sql", "CREATE TABLE a (id BIGINT PRIMARY KEY);\n");
    env.ws.write("migrations/2024-05-02-120000_b/up.sql", "CREATE TABLE b (id INT PRIMARY KEY);\n");
    let stale = env.raw(&["lock"], &[]);
    let line = "updated migrations/anonmigrate.lock: added 2024-05-02-120000_b; edited 2024-05-01-120000_a\n";
    assert_eq!((stale.code, stale.stdout.as_str(), stale.stderr.as_str()), (0, line, ""));
    let current = env.raw(&["lock"], &[]);
    assert_eq!((current.code, current.stdout.as_str(), current.stderr.as_str()), (0, "migrations/anonmigrate.lock is up to date (2 migrations)\n", ""));
}
