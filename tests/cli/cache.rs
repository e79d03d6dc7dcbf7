//! The template cache: replays copy the longest cached chain prefix and apply only the migrations after it;
//! templates are named after the workspace, closed to connections, bounded, listed and dropped by `cache`, and a
//! role that may not copy them falls back to a plain replay (said once) with the same result.

use anonmigrate_core::template::label_for;

use crate::support::{Env, Outcome};

fn label(env: &Env) -> String {
    label_for(&env.ws.path().file_name().unwrap().to_string_lossy())
}

/// This workspace's templates on the test cluster: `name allow_connections`, sorted.
fn templates(env: &Env) -> Vec<String> {
    env.db.query(&format!(
        "SELECT datname || ' ' || datallowconn FROM pg_database WHERE datname LIKE 'anonmigrate\\_tpl\\_{}\\_%' ORDER BY 1",
        label(env)
    ))
}

/// Runs the binary and checks that its process left no scratch or template-build database behind (other tests
/// run at the same time, so only this process's names count).
fn cli_leaving_nothing(env: &Env, args: &[&str], extra_env: &[(&str, &str)]) -> Outcome {
    let mut command = std::process::Command::new(crate::support::bin());
    command.current_dir(env.ws.path()).args(args).env_remove("DATABASE_URL").env("NO_COLOR", "1");
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let child = command.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let left = env.db.query(&format!(
        "SELECT datname FROM pg_database WHERE datname LIKE 'anonmigrate\\_scratch\\_{pid}\\_%'"
    ));
    assert!(left.is_empty(), "databases left behind: {left:?}");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn schema_stdout(env: &Env, expected_copy: &str) -> Outcome {
    let outcome = cli_leaving_nothing(env, &["schema", "--stdout", "--timings", "--database-url", &env.db.url], &[]);
    outcome.assert_code(0);
    assert!(outcome.stderr.contains(expected_copy), "expected `{expected_copy}` in:\n{}", outcome.stderr);
    outcome
}

fn add_migration(env: &Env, dir: &str, up: &str, down: &str) {
    env.ws.write(&format!("migrations/{dir}/up.sql"), up);
    env.ws.write(&format!("migrations/{dir}/down.sql"), down);
}

#[test]
fn schema_copies_the_longest_cached_prefix_and_applies_only_the_rest() {
    let env = Env::anonchat("cache_schema");
    let cold = schema_stdout(&env, "(0 of 5 migration(s) from a template copy)");
    // The chain and the chain without its newest migration, both closed to connections.
    let made = templates(&env);
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(made.iter().all(|t| t.ends_with(" false")), "templates must not accept connections: {made:?}");
    assert!(made[0].starts_with(&format!("anonmigrate_tpl_{}_4_", label(&env))), "{made:?}");
    assert!(made[1].starts_with(&format!("anonmigrate_tpl_{}_5_", label(&env))), "{made:?}");

    let warm = schema_stdout(&env, "(5 of 5 migration(s) from a template copy)");
    assert_eq!(warm.stdout, cold.stdout, "a template copy must give the same schema as a replay");

    // Appending a migration copies the five before it.
    add_migration(&env, "2025-02-01-000000_add_reactions", "CREATE TABLE reactions (id BIGINT PRIMARY KEY, emoji TEXT NOT NULL);\n", "DROP TABLE reactions;\n");
    let appended = schema_stdout(&env, "(5 of 6 migration(s) from a template copy)");
    assert!(appended.stdout.contains("reactions (id)"), "{}", appended.stdout);
    // Before exiting, that replay started a copy of the five-migration template for the next one (the server
    // finishes it after the process is gone): one spare, closed to connections.
    let spares = || {
        env.db.query(&format!(
            "SELECT datname || ' ' || datallowconn FROM pg_database WHERE datname LIKE 'anonmigrate\\_spare\\_{}\\_5\\_%'",
            label(&env)
        ))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while spares().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let made = spares();
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made[0].ends_with(" false"), "a spare must not accept connections: {made:?}");
    // Editing the newest one copies the same five again: that copy made in advance.
    add_migration(
        &env,
        "2025-02-01-000000_add_reactions",
        "CREATE TABLE reactions (id BIGINT PRIMARY KEY, emoji TEXT NOT NULL, weight INTEGER);\n",
        "DROP TABLE reactions;\n",
    );
    let edited = schema_stdout(&env, "(5 of 6 migration(s) from a template copy made in advance)");
    assert!(edited.stdout.contains("weight -> Nullable<Int4>"), "{}", edited.stdout);
    // The same chain with ANONMIGRATE_TEMPLATE_CACHE=0 replays from nothing and gives the same text.
    let mut args = vec!["schema", "--stdout", "--timings", "--database-url"];
    args.push(&env.db.url);
    let plain = cli_leaving_nothing(&env, &args, &[("ANONMIGRATE_TEMPLATE_CACHE", "0")]);
    plain.assert_code(0);
    assert!(plain.stderr.contains("(0 of 6 migration(s) from a template copy)"), "{}", plain.stderr);
    assert!(!plain.stderr.contains("warning"), "turning the cache off is not a warning: {}", plain.stderr);
    assert_eq!(plain.stdout, edited.stdout);

    // Bounded: four per workspace, six at most between evictions.
    assert!(templates(&env).len() <= anonmigrate_core::template::KEEP + 2, "{:?}", templates(&env));

    let listed = env.cli(&["cache", "list"]);
    listed.assert_code(0);
    for template in templates(&env) {
        let name = template.split(' ').next().unwrap();
        assert!(listed.stdout.contains(name), "`cache list` misses {name}:\n{}", listed.stdout);
    }
    assert!(listed.stdout.contains("2025-02-01-000000_add_reactions"), "{}", listed.stdout);

    let cleared = env.cli(&["cache", "clear"]);
    cleared.assert_code(0);
    assert!(cleared.stdout.starts_with("dropped "), "{}", cleared.stdout);
    assert!(templates(&env).is_empty(), "{:?}", templates(&env));
    let again = env.cli(&["cache", "clear"]);
    again.assert_code(0);
    assert!(again.stdout.starts_with("no template databases to drop"), "{}", again.stdout);
}

#[test]
fn check_without_the_down_pass_uses_the_template_too() {
    let env = Env::anonchat("cache_check");
    env.ws.write("diesel.toml", "[print_schema]\nfile = \"anonchat-schema/src/schema.rs\"\n");
    env.cli(&["check", "--no-down-check", "--no-lint"]).assert_code(0);
    assert_eq!(templates(&env).len(), 2, "{:?}", templates(&env));
    let again = env.cli(&["check", "--no-down-check", "--no-lint"]);
    again.assert_code(0);
    assert!(again.stdout.contains("schema.rs (anonchat-schema/src/schema.rs)"), "{}", again.stdout);
}

#[test]
fn a_role_that_cannot_copy_the_templates_falls_back_to_a_plain_replay_and_says_so_once() {
    let env = Env::new("cache_fallback");
    add_migration(&env, "2025-01-01-000000_users", "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL);\n", "DROP TABLE users;\n");
    add_migration(&env, "2025-01-02-000000_rooms", "CREATE TABLE rooms (id BIGINT PRIMARY KEY);\n", "DROP TABLE rooms;\n");
    let owner = schema_stdout(&env, "(0 of 2 migration(s) from a template copy)");
    assert_eq!(templates(&env).len(), 2);

    // Another role with CREATEDB does not own the templates, so PostgreSQL refuses to copy them.
    let role = format!("cache_other_{}", env.db.name);
    anonmigrate_testkit::admin_execute(&format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN CREATEDB"));
    let url = env.db.url.replacen("postgres@", &format!("{role}@"), 1);
    let other = cli_leaving_nothing(&env, &["schema", "--stdout", "--timings", "--database-url", &url], &[]);
    other.assert_code(0);
    assert_eq!(other.stdout, owner.stdout);
    assert_eq!(other.stderr.matches("template cache not used").count(), 1, "{}", other.stderr);
    assert!(other.stderr.contains("(0 of 2 migration(s) from a template copy)"), "{}", other.stderr);
}

#[test]
fn run_on_a_configured_server_regenerates_schema_rs_without_leaving_templates_there() {
    let env = Env::anonchat("cache_run_deploy");
    // The repository's schema configuration: `run` regenerates schema.rs after applying, through a replay.
    env.ws.write("diesel.toml", std::fs::read(anonmigrate_testkit::repo_root().join("diesel.toml")).unwrap());
    let run = cli_leaving_nothing(&env, &["run", "--database-url", &env.db.url], &[]);
    run.assert_code(0);
    assert!(templates(&env).is_empty(), "a deployment's run left templates: {:?}", templates(&env));
    // A development command on the same server still keeps them.
    schema_stdout(&env, "(0 of 5 migration(s) from a template copy)");
    assert_eq!(templates(&env).len(), 2, "{:?}", templates(&env));
}

#[test]
fn cache_list_counts_the_spare_test_databases_and_cache_clear_drops_them() {
    let env = Env::anonchat("cache_spares");
    // A test database of this workspace's chain, as the application's tests make one: the template is built and
    // spare copies of it are made in the background.
    let db = anonmigrate_core::testdb::TestDatabase::on_server(&env.db.url, &env.ws.migrations()).expect("a migrated test database");
    drop(db);
    anonmigrate_core::testdb::wait_for_spares();
    let stem = format!("anonmigrate\\_spare\\_{}\\_", label(&env));
    let spares = || env.db.query(&format!("SELECT datname FROM pg_database WHERE datname LIKE '{stem}%' ORDER BY 1"));
    let want = anonmigrate_core::testdb::spares_wanted();
    assert!(want >= 2, "this test needs at least two spares ({} says {want})", anonmigrate_core::testdb::SPARES_VARIABLE);
    assert_eq!(spares().len(), want, "{:?}", spares());

    let listed = env.cli(&["cache", "list"]);
    listed.assert_code(0);
    let head = templates(&env).into_iter().map(|t| t.split(' ').next().unwrap().to_owned()).find(|t| t.contains("_5_")).unwrap();
    let line = listed.stdout.lines().find(|l| l.starts_with(&head)).unwrap_or_else(|| panic!("{head} not listed:\n{}", listed.stdout));
    assert!(line.contains(&format!("  {want} spare(s)")), "{line}");
    let json = env.cli(&["--format", "json", "cache", "list"]);
    json.assert_code(0);
    assert!(json.stdout.contains(&format!("\"spares\": {want}")), "{}", json.stdout);

    // `schema` on the unchanged chain reads a spare instead of copying the template (and drops it after).
    let warm = schema_stdout(&env, "(5 of 5 migration(s) from a template copy made in advance)");
    assert!(warm.stdout.contains("messages (id)"), "{}", warm.stdout);
    assert_eq!(spares().len(), want - 1, "{:?}", spares());

    let cleared = env.cli(&["cache", "clear"]);
    cleared.assert_code(0);
    assert!(cleared.stdout.contains(&format!("and {} spare test database(s)", want - 1)), "{}", cleared.stdout);
    assert!(spares().is_empty(), "spares left after cache clear: {:?}", spares());
    assert!(templates(&env).is_empty(), "{:?}", templates(&env));
}

#[test]
fn evicted_templates_leave_through_the_trash_and_nothing_is_left_of_them() {
    let env = Env::new("cache_evict");
    add_migration(&env, "2025-01-01-000000_users", "CREATE TABLE users (id BIGINT PRIMARY KEY);\n", "DROP TABLE users;\n");
    let trash = || env.db.query(&format!("SELECT datname FROM pg_database WHERE datname LIKE 'anonmigrate\\_trash\\_{}\\_%'", label(&env)));
    // Editing the newest migration again and again: each edit builds one more template, and once there are more
    // than six the least recently used are renamed into the trash and dropped in the background.
    for i in 0..8 {
        add_migration(&env, "2025-01-02-000000_rooms", &format!("CREATE TABLE rooms (id BIGINT PRIMARY KEY, n{i} INT);\n"), "DROP TABLE rooms;\n");
        let replay = schema_stdout(&env, "migration(s) from a template copy");
        assert!(replay.stdout.contains(&format!("n{i} -> Nullable<Int4>")), "{}", replay.stdout);
        assert!(templates(&env).len() <= anonmigrate_core::template::KEEP + 2, "{:?}", templates(&env));
    }
    // Each build drops what earlier ones discarded, at least one before its command exits: a few may wait for the
    // next build (three are discarded at a time), never more.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while trash().len() > 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(trash().len() <= 2, "the trash is not being emptied: {:?}", trash());
    assert!(templates(&env).len() <= anonmigrate_core::template::KEEP + 2, "{:?}", templates(&env));
    env.cli(&["cache", "clear"]).assert_code(0);
    let left = env.db.query(&format!("SELECT datname FROM pg_database WHERE datname ~ '^anonmigrate_(tpl|spare|trash)_{}_'", label(&env)));
    assert!(left.is_empty(), "cache clear left {left:?}");
}

/// A first build of a large chain (over 16 MB, where a copy costs more than the rest of a replay) leaves a copy of
/// the whole chain's template for the next replay, which appends a migration and builds on it without copying; a
/// small chain's first build leaves none (every test workspace builds once).
#[test]
fn a_large_chains_first_build_leaves_a_copy_for_the_next_append() {
    let env = Env::new("cache_large_first_build");
    // 400 tables: about 18 MB, past the threshold (an empty database is about 8, 300 tables about 13).
    let mut up = String::new();
    let mut down = String::new();
    for i in 0..400 {
        up.push_str(&format!("CREATE TABLE t_{i} (id BIGINT PRIMARY KEY, name TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());\n"));
        down.push_str(&format!("DROP TABLE t_{i};\n"));
    }
    add_migration(&env, "2025-01-01-000000_many_tables", &up, &down);
    add_migration(&env, "2025-01-02-000000_one_more", "CREATE TABLE extra (id BIGINT PRIMARY KEY);\n", "DROP TABLE extra;\n");
    env.raw(&["lock"], &[]).assert_code(0);
    schema_stdout(&env, "(0 of 2 migration(s) from a template copy)");
    let head_spares = || {
        env.db.query(&format!("SELECT datname FROM pg_database WHERE datname LIKE 'anonmigrate\\_spare\\_{}\\_2\\_%'", label(&env)))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while head_spares().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(head_spares().len(), 1, "the first build of a large chain leaves one copy of its template");
    add_migration(&env, "2025-01-03-000000_appended", "CREATE TABLE appended (id BIGINT PRIMARY KEY);\n", "DROP TABLE appended;\n");
    let appended = schema_stdout(&env, "(2 of 3 migration(s) from a template copy made in advance)");
    assert!(appended.stdout.contains("appended (id)"), "{}", appended.stdout);

    // The Anonymous Chat chain is small: its first build leaves nothing behind.
    let small = Env::anonchat("cache_small_first_build");
    schema_stdout(&small, "(0 of 5 migration(s) from a template copy)");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let spares = small.db.query(&format!("SELECT datname FROM pg_database WHERE datname LIKE 'anonmigrate\\_spare\\_{}\\_%'", label(&small)));
    assert!(spares.is_empty(), "{spares:?}");
    env.cli(&["cache", "clear"]).assert_code(0);
    small.cli(&["cache", "clear"]).assert_code(0);
}
