//! `fleet status|run|check` against real servers: dozens of tenant databases with one broken, a failing canary,
//! schema-per-tenant with pgvector shared, targets on two servers from a file, resuming after a fix, and the JSON
//! report's shape.

use anonmigrate_testkit::{TestDb, cluster, execute_url, query_url, second_cluster};

use crate::support::{Env, Outcome};

const HEAD: &str = "20250115090400";
const FIRST: &str = "20250115090000";

/// `count` fresh tenant databases named `t_<label>_N`, sorted as the fleet orders them (by name, bytewise).
fn tenants(label: &str, count: usize) -> Vec<TestDb> {
    let mut dbs: Vec<TestDb> = (0..count).map(|_| TestDb::new(label)).collect();
    dbs.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    dbs
}

/// The LIKE pattern that matches exactly the databases of [`tenants`] with this label.
fn pattern(label: &str) -> String {
    format!(r"t\_{label}\_%")
}

/// A tenant whose second migration (`CREATE TABLE users`) fails: the table is already there.
fn break_tenant(db: &TestDb) {
    db.execute("CREATE TABLE users (squatter int)");
}

fn json(outcome: &Outcome) -> serde_json::Value {
    serde_json::from_str(&outcome.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", outcome.stdout, outcome.stderr))
}

#[test]
fn forty_one_tenants_with_one_broken_reach_head_and_the_broken_one_is_named() {
    let env = Env::anonchat("fleet41base");
    let dbs = tenants("fl41", 41);
    let broken = &dbs[17];
    break_tenant(broken);

    let run = env.cli(&["fleet", "run", "--databases-like", &pattern("fl41"), "--jobs", "4", "--max-failures", "3"]);
    run.assert_code(14);
    assert!(
        run.stdout.contains("fleet: 41 targets: 40 migrated, 0 already up to date, 1 failed, 0 not run"),
        "{}",
        run.stdout
    );
    let failed_section = run.stdout.split("failed:\n").nth(1).expect("a failed section");
    assert!(failed_section.contains(&broken.name) && failed_section.contains("create_users"), "{failed_section}");
    assert!(failed_section.contains("already exists"), "the server's error is reported: {failed_section}");
    // The advice is the fleet's: a plain `run` would reach the configured database, not this tenant.
    assert!(failed_section.contains("run `cargo anonmigrate fleet run` again"), "{failed_section}");
    assert!(!failed_section.contains("run `cargo anonmigrate run` again"), "{failed_section}");
    assert!(run.stdout.contains(&format!("  {HEAD}  40 targets")), "histogram: {}", run.stdout);
    assert!(run.stdout.contains(&format!("  {FIRST}   1 target\n")), "histogram: {}", run.stdout);
    for db in &dbs {
        let versions = db.applied_versions();
        if db.name == broken.name {
            assert_eq!(versions, [FIRST], "the broken tenant keeps what ran before its failure");
        } else {
            assert_eq!(versions.len(), 5, "{} reached head", db.name);
            assert_eq!(versions.last().map(String::as_str), Some(HEAD));
        }
    }

    let status = env.cli(&["fleet", "status", "--databases-like", &pattern("fl41"), "--exit-code"]);
    status.assert_code(3);
    assert!(status.stdout.contains("41 targets: 40 up to date"), "{}", status.stdout);
    // Names are padded to the longest (test database numbers differ in length), so the line is found by its name.
    assert!(line_of(&status.stdout, &broken.name).ends_with(&format!("  version {FIRST}, 4 pending")), "{}", status.stdout);
}

#[test]
fn after_the_first_failure_no_new_target_starts_by_default() {
    let env = Env::anonchat("fleetstopbase");
    let dbs = tenants("flstop", 5);
    break_tenant(&dbs[1]);
    let run = env.cli(&["fleet", "run", "--databases-like", &pattern("flstop"), "--jobs", "1"]);
    run.assert_code(14);
    assert_eq!(dbs[0].applied_versions().len(), 5);
    assert_eq!(dbs[1].applied_versions(), [FIRST]);
    for db in &dbs[2..] {
        assert!(db.tables().is_empty(), "{} was not touched: {:?}", db.name, db.tables());
    }
    assert!(run.stdout.contains("1 failed, 3 not run"), "{}", run.stdout);
    assert!(run.stdout.contains("stopped: 1 target(s) failed, more than --max-failures 0"), "{}", run.stdout);
}

#[test]
fn a_failing_canary_leaves_every_other_tenant_untouched() {
    let env = Env::anonchat("fleetcanarybase");
    let dbs = tenants("flcanary", 6);
    break_tenant(&dbs[0]);
    let run = env.cli(&["fleet", "run", "--databases-like", &pattern("flcanary"), "--canary", "2", "--jobs", "4", "--max-failures", "10"]);
    run.assert_code(14);
    assert!(run.stdout.contains("stopped: a canary target failed"), "{}", run.stdout);
    assert!(run.stdout.contains("0 migrated, 0 already up to date, 1 failed, 5 not run"), "{}", run.stdout);
    for db in &dbs[1..] {
        assert!(db.tables().is_empty(), "{} was touched: {:?}", db.name, db.tables());
    }

    // Fixed, the same command goes through: canary first, then the rest.
    dbs[0].execute("DROP TABLE users");
    let again = env.cli(&["fleet", "run", "--databases-like", &pattern("flcanary"), "--canary", "2", "--jobs", "4"]);
    again.assert_code(0);
    assert!(again.stderr.contains("canary: 2 targets first, one at a time"), "{}", again.stderr);
    for db in &dbs {
        assert_eq!(db.applied_versions().len(), 5, "{}", db.name);
    }
}

#[test]
fn twenty_tenant_schemas_share_pgvector_and_keep_their_own_bookkeeping() {
    let env = Env::anonchat("fleetschemas");
    for n in 0..20 {
        env.db.execute(&format!("CREATE SCHEMA tenant_{n:02}"));
    }
    let run = env.cli(&["fleet", "run", "--schemas-like", r"tenant\_%", "--jobs", "4"]);
    run.assert_code(0);
    assert!(run.stdout.contains("fleet: 20 targets: 20 migrated"), "{}", run.stdout);
    assert!(run.stderr.contains("created extension(s) vector in schema `public`"), "{}", run.stderr);
    assert_eq!(
        env.db.query("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'"),
        ["public"],
        "pgvector exists once, in the shared schema"
    );
    assert_eq!(env.db.query("SELECT to_regclass('public.__diesel_schema_migrations')"), ["NULL"], "nothing in public's bookkeeping");
    for n in 0..20 {
        let schema = format!("tenant_{n:02}");
        assert_eq!(env.db.query(&format!("SELECT count(*) FROM {schema}.__diesel_schema_migrations")), ["5"], "{schema}");
        assert_eq!(env.db.query(&format!("SELECT count(*) FROM {schema}.__anonmigrate_migrations WHERE finished_at IS NOT NULL")), ["5"]);
        assert_eq!(
            env.db.query(&format!(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{schema}.messages'::regclass AND attname = 'embedding'"
            )),
            ["vector(384)"]
        );
    }
    assert_eq!(
        env.db.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'messages_embedding_hnsw_idx' AND schemaname LIKE 'tenant%'"),
        ["20"],
        "each tenant built its own HNSW index"
    );
    // A tenant's rows do not leak into another's.
    env.db.execute("INSERT INTO tenant_03.users (username) VALUES ('only-in-03')");
    assert_eq!(env.db.query("SELECT count(*) FROM tenant_04.users"), ["0"]);

    let status = env.cli(&["fleet", "status", "--schemas-like", r"tenant\_%", "--exit-code"]);
    status.assert_code(0);
    assert!(status.stdout.contains("20 targets: 20 up to date"), "{}", status.stdout);
    let again = env.cli(&["fleet", "run", "--schemas-like", r"tenant\_%"]);
    again.assert_code(0);
    assert!(again.stdout.contains("0 migrated, 20 already up to date"), "{}", again.stdout);
}

#[test]
fn targets_on_two_servers_from_a_file() {
    let env = Env::anonchat("fleettwo");
    let name = "fleet_two_servers";
    let first = cluster().url(name);
    let second = second_cluster().url(name);
    execute_url(&cluster().url("postgres"), &format!("CREATE DATABASE {name}"));
    execute_url(&second_cluster().url("postgres"), &format!("CREATE DATABASE {name}"));
    env.ws.write("shards.txt", format!("# two shards, same database name on different servers\n{first}\n\n{second}  # the second server\n"));

    let run = env.raw(&["fleet", "run", "--targets", "shards.txt"], &[]);
    run.assert_code(0);
    assert!(run.stdout.contains("fleet: 2 targets: 2 migrated"), "{}", run.stdout);
    for url in [&first, &second] {
        assert_eq!(query_url(url, "SELECT max(version) FROM __diesel_schema_migrations"), [HEAD], "{url}");
    }
    // The same database name on two servers: names carry the server.
    let status = env.raw(&["fleet", "status", "--targets", "shards.txt", "--format", "json"], &[]);
    status.assert_code(0);
    let names: Vec<String> = json(&status)["targets"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 2);
    assert!(names[0].ends_with(&format!("/{name}")) && names[1].ends_with(&format!("/{name}")) && names[0] != names[1], "{names:?}");
}

#[test]
fn a_rerun_after_the_fix_continues_where_the_failure_stopped() {
    let env = Env::anonchat("fleetresumebase");
    let dbs = tenants("flresume", 3);
    break_tenant(&dbs[1]);
    let first = env.cli(&["fleet", "run", "--databases-like", &pattern("flresume"), "--max-failures", "5", "--format", "json"]);
    first.assert_code(14);
    let report = json(&first);
    assert_eq!(report["targets"][1]["outcome"], "failed");
    assert_eq!(report["targets"][1]["version_after"], FIRST);

    dbs[1].execute("DROP TABLE users");
    let second = env.cli(&["fleet", "run", "--databases-like", &pattern("flresume"), "--format", "json"]);
    second.assert_code(0);
    let report = json(&second);
    let outcomes: Vec<&str> = report["targets"].as_array().unwrap().iter().map(|t| t["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["up_to_date", "applied", "up_to_date"]);
    assert_eq!(report["targets"][1]["version_before"], FIRST);
    assert_eq!(report["targets"][1]["applied"].as_array().unwrap().len(), 4, "only what was left ran");
    assert_eq!(report["histogram"][HEAD], 3);
}

#[test]
fn json_report_shape() {
    let env = Env::anonchat("fleetjsonbase");
    let dbs = tenants("fljson", 3);
    break_tenant(&dbs[2]);
    let run = env.cli(&["fleet", "run", "--databases-like", &pattern("fljson"), "--jobs", "1", "--max-failures", "5", "--format", "json"]);
    run.assert_code(14);
    let status = env.cli(&["fleet", "status", "--databases-like", &pattern("fljson"), "--format", "json"]);
    status.assert_code(0);
    let mut text = format!("--- fleet run --format json\n{}--- fleet status --format json\n{}", run.stdout, status.stdout);
    // Longest names first: t_fljson_10 must not be rewritten through t_fljson_1.
    let mut names: Vec<(usize, &str)> = dbs.iter().enumerate().map(|(i, db)| (i, db.name.as_str())).collect();
    names.sort_by_key(|(_, name)| std::cmp::Reverse(name.len()));
    for (index, name) in names {
        text = text.replace(name, &format!("[tenant{index}]"));
    }
    text = text
        .replace(&env.ws.path().display().to_string(), "[ws]")
        .replace(&cluster().socket_dir().display().to_string(), "[sock]");
    insta::with_settings!({filters => vec![(r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#)]}, {
        insta::assert_snapshot!(text);
    });
}

#[test]
fn fleet_check_names_the_drifted_tenant_and_its_differences() {
    let env = Env::anonchat("fleetcheckbase");
    let dbs = tenants("flcheck", 3);
    env.cli(&["fleet", "run", "--databases-like", &pattern("flcheck")]).assert_code(0);
    dbs[1].execute("ALTER TABLE users ADD COLUMN nickname text");
    // Behind the chain but otherwise what the migrations give: reported as behind, not as drift.
    dbs[2].execute("DROP INDEX messages_embedding_hnsw_idx");
    dbs[2].execute(&format!("DELETE FROM __diesel_schema_migrations WHERE version = '{HEAD}'; DELETE FROM __anonmigrate_migrations WHERE version = '{HEAD}'"));

    let check = env.cli(&["fleet", "check", "--databases-like", &pattern("flcheck")]);
    check.assert_code(11);
    let line_of = |name: &str| check.stdout.lines().find(|l| l.contains(&format!(" {name} "))).unwrap_or_default().to_owned();
    assert!(line_of(&dbs[0].name).starts_with("ok"), "{}", check.stdout);
    assert!(line_of(&dbs[1].name).starts_with("FAIL"), "{}", check.stdout);
    assert!(line_of(&dbs[2].name).starts_with("FAIL") && line_of(&dbs[2].name).contains("is not where the chain is"), "{}", check.stdout);
    assert!(check.stdout.contains("column users.nickname: in the live database"), "{}", check.stdout);
    assert!(check.stdout.contains("1 migration(s) not applied yet: 2025-01-15-090400_index_message_embeddings"), "{}", check.stdout);
    assert!(check.stdout.contains("3 targets: 1 match the migrations, 2 differ or are behind"), "{}", check.stdout);
}

#[test]
fn fleet_check_compares_each_tenant_schema_alone() {
    let env = Env::anonchat("fleetcheckschemas");
    for n in 0..3 {
        env.db.execute(&format!("CREATE SCHEMA tenant_{n}"));
    }
    env.cli(&["fleet", "run", "--schemas-like", r"tenant\_%"]).assert_code(0);
    let clean = env.cli(&["fleet", "check", "--schemas-like", r"tenant\_%"]);
    clean.assert_code(0);
    assert!(clean.stdout.contains("3 targets: 3 match the migrations"), "{}", clean.stdout);

    env.db.execute("CREATE INDEX users_created_at_idx ON tenant_2.users (created_at)");
    let drifted = env.cli(&["fleet", "check", "--schemas-like", r"tenant\_%", "--format", "json"]);
    drifted.assert_code(11);
    let report = json(&drifted);
    let passed: Vec<bool> = report["targets"].as_array().unwrap().iter().map(|t| t["section"]["outcome"] == "ok").collect();
    assert_eq!(passed, [true, true, false], "{report:#}");
    let finding = report["targets"][2]["section"]["findings"][0]["message"].as_str().unwrap();
    assert!(finding.contains("index users_created_at_idx"), "{finding}");
}

#[test]
fn ctrl_c_stops_scheduling_and_lets_the_target_in_flight_finish() {
    let env = Env::new("fleetctrlcbase");
    env.ws.write("migrations/2024-01-01-000000_slow/up.sql", "CREATE TABLE t (a int);\nSELECT pg_sleep(0.8);");
    env.ws.write("migrations/2024-01-02-000000_more/up.sql", "ALTER TABLE t ADD COLUMN b int;");
    let dbs = tenants("flctrlc", 5);
    let child = std::process::Command::new(crate::support::bin())
        .current_dir(env.ws.path())
        .args(["fleet", "run", "--databases-like", &pattern("flctrlc"), "--jobs", "1", "--database-url", &env.db.url])
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start fleet run");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let signal = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(signal.success());
    let output = child.wait_with_output().expect("fleet run ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(14), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("stopped: interrupted"), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "nothing was cut off half-way: {stdout}");
    let done: Vec<usize> = dbs.iter().map(|db| db.applied_versions().len()).collect();
    assert!(done.iter().all(|&n| n == 0 || n == 2), "each tenant has all or nothing: {done:?}");
    assert!(done[0] == 2 && done[4] == 0, "the first finished, the last never started: {done:?}");
}

#[test]
fn targets_from_the_manifest_a_query_and_unreadable_targets() {
    let env = Env::anonchat("fleetconfigbase");
    let dbs = tenants("flq", 3);
    env.ws.write(
        "Cargo.toml",
        r#"[workspace]
resolver = "2"

[workspace.metadata.anonmigrate.fleet]
targets-query = '''SELECT datname FROM pg_database WHERE datname LIKE 't\_flq\_%' ORDER BY datname DESC'''
canary = 1
jobs = 2
"#,
    );
    let run = env.cli(&["fleet", "run", "--format", "json"]);
    run.assert_code(0);
    assert!(run.stderr.contains("canary: 1 target first"), "{}", run.stderr);
    let report = json(&run);
    let names: Vec<&str> = report["targets"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, [dbs[2].name.as_str(), dbs[1].name.as_str(), dbs[0].name.as_str()], "the query's order");
    assert_eq!(report["targets"][0]["canary"], true);
    assert_eq!(report["targets"][1]["canary"], false);

    // Nothing chosen, nothing found, a target that does not exist.
    let plain = Env::anonchat("fleetconfigplain");
    plain.cli(&["fleet", "status"]).assert_code(2);
    let none = plain.cli(&["fleet", "status", "--databases-like", "no\\_such\\_tenant%"]);
    none.assert_code(4);
    assert!(none.stderr.contains("found no targets"), "{}", none.stderr);
    plain.ws.write("targets.txt", format!("{}\n{}\n", dbs[0].url, cluster().url("fleet_no_such_database")));
    let status = plain.raw(&["fleet", "status", "--targets", "targets.txt"], &[]);
    status.assert_code(14);
    assert!(status.stdout.contains("fleet_no_such_database  UNREADABLE  database `fleet_no_such_database` does not exist"), "{}", status.stdout);
    let run = plain.raw(&["fleet", "run", "--targets", "targets.txt"], &[]);
    run.assert_code(14);
    assert!(run.stdout.contains("0 migrated, 1 already up to date, 1 failed"), "{}", run.stdout);
}

/// `fleet run --to`: a rollout in stages. Every tenant stops at the given migration (one already past it is left
/// alone), `fleet status` shows the rest pending, and a plain `fleet run` finishes; an unknown version is refused
/// before any target is touched.
#[test]
fn fleet_run_to_a_version_stops_every_tenant_there() {
    let env = Env::anonchat("fleetto");
    let dbs = tenants("flto", 3);
    let unknown = env.cli(&["fleet", "run", "--databases-like", &pattern("flto"), "--to", "19990101000000"]);
    unknown.assert_code(2);
    assert!(unknown.stderr.contains("19990101000000"), "{}", unknown.stderr);
    for db in &dbs {
        assert_eq!(db.query("SELECT count(*) FROM pg_tables WHERE tablename = '__diesel_schema_migrations'"), ["0"], "{} was touched", db.name);
    }

    let staged = env.cli(&["fleet", "run", "--databases-like", &pattern("flto"), "--to", "2025-01-15-090100"]);
    staged.assert_code(0);
    assert!(staged.stdout.contains("fleet: 3 targets: 3 migrated"), "{}", staged.stdout);
    assert!(staged.stdout.contains("  20250115090100  3 targets"), "histogram: {}", staged.stdout);
    for db in &dbs {
        let versions = db.query("SELECT version FROM __diesel_schema_migrations ORDER BY 1");
        assert_eq!(versions, [FIRST, "20250115090100"], "{}", db.name);
    }
    let status = env.cli(&["fleet", "status", "--databases-like", &pattern("flto")]);
    assert!(status.stdout.contains("3 pending"), "{}", status.stdout);

    let rest = env.cli(&["fleet", "run", "--databases-like", &pattern("flto")]);
    rest.assert_code(0);
    assert!(rest.stdout.contains(&format!("  {HEAD}  3 targets")), "histogram: {}", rest.stdout);
    // Already past it: nothing to do, nothing reverted.
    let past = env.cli(&["fleet", "run", "--databases-like", &pattern("flto"), "--to", FIRST]);
    past.assert_code(0);
    assert!(past.stdout.contains("0 migrated, 3 already up to date"), "{}", past.stdout);
    assert!(dbs.iter().all(|db| db.query("SELECT max(version) FROM __diesel_schema_migrations") == [HEAD]));
}

/// Every piece of the runner's advice that names `cargo anonmigrate run` is pointed at the fleet: a target stopped
/// by the statement timeout in the middle of a non-transactional migration is resumed by `fleet run`.
#[test]
fn a_target_stopped_half_way_is_resumed_by_fleet_run_as_its_error_says() {
    let env = Env::new("fleethalfwaybase");
    env.ws.write("Cargo.toml", "[workspace]\n\n[workspace.metadata.anonmigrate]\nstatement-timeout = \"1s\"\n");
    env.ws.write("migrations/2024-01-01-000000_t/up.sql", "CREATE TABLE t (a int);");
    env.ws.write("migrations/2024-01-02-000000_slow/up.sql", "INSERT INTO t VALUES (1);\nSELECT pg_sleep(3);\nINSERT INTO t VALUES (2);\n");
    env.ws.write("migrations/2024-01-02-000000_slow/metadata.toml", "run_in_transaction = false\n");
    let dbs = tenants("flhalfway", 2);
    let args = ["fleet", "run", "--databases-like", &pattern("flhalfway"), "--database-url", &env.db.url];
    let stopped = env.raw(&args, &[]);
    stopped.assert_code(14);
    let failed = stopped.stdout.split("failed:\n").nth(1).expect("a failed section");
    assert!(failed.contains("statement_timeout"), "{failed}");
    assert!(failed.contains("`cargo anonmigrate fleet run` resumes at this one"), "{failed}");
    assert!(!failed.contains("`cargo anonmigrate run`"), "{failed}");
    for db in &dbs {
        assert_eq!(db.query("SELECT string_agg(a::text, ',') FROM t"), ["1"], "{}: the first statement stays", db.name);
    }
    env.ws.write("Cargo.toml", "[workspace]\n");
    env.raw(&args, &[]).assert_code(0);
    for db in &dbs {
        assert_eq!(db.query("SELECT string_agg(a::text, ',' ORDER BY a) FROM t"), ["1,2"], "{}: resumed, not run again", db.name);
        assert_eq!(db.applied_versions().len(), 2);
    }
}

/// `fleet run --dry-run` reads every target and changes none: what each would apply (with `--to`), which is up to
/// date, and which `run` would refuse (exit 14, as `fleet run` would count it failed).
#[test]
fn a_dry_run_lists_what_each_target_would_apply_and_changes_nothing() {
    let env = Env::anonchat("fleetdrybase");
    let dbs = tenants("fldry", 4);
    env.raw(&["run", "--database-url", &dbs[0].url], &[]).assert_code(0);
    env.raw(&["run", "--step", "1", "--database-url", &dbs[1].url], &[]).assert_code(0);
    let args = ["fleet", "run", "--dry-run", "--databases-like", &pattern("fldry")];

    let dry = env.cli(&args);
    dry.assert_code(0);
    let line = |db: &TestDb| line_of(&dry.stdout, &db.name);
    assert!(line(&dbs[0]).ends_with(&format!("version {HEAD}, up to date")), "{}", dry.stdout);
    assert!(line(&dbs[1]).contains(&format!("version {FIRST}, would apply 4: ")), "{}", dry.stdout);
    assert!(line(&dbs[2]).contains("version none, would apply 5: ") && line(&dbs[2]).contains("create_users"), "{}", dry.stdout);
    assert!(dry.stdout.contains("4 targets: 3 would migrate, 1 up to date, 0 would refuse or could not be read; nothing was changed"), "{}", dry.stdout);

    // With --to: only what each target would apply up to that migration (the one already there counts as up to date).
    let staged = env.cli(&[&args[..], &["--to", FIRST]].concat());
    staged.assert_code(0);
    assert!(staged.stdout.contains("2 would migrate, 2 up to date"), "{}", staged.stdout);

    let json = json(&env.cli(&[&args[..], &["--format", "json"]].concat()));
    assert_eq!(json["targets"][2]["plan"]["actions"].as_array().map(Vec::len), Some(5), "{json}");
    assert_eq!(json["targets"][0]["plan"]["current_version"], HEAD, "{json}");

    env.raw(&["run", "--database-url", &dbs[3].url], &[]).assert_code(0);
    dbs[3].execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('20990101000000')");
    let refused = env.cli(&args);
    refused.assert_code(14);
    assert!(line_of(&refused.stdout, &dbs[3].name).contains("WOULD REFUSE  the database has applied migrations that are not on disk"), "{}", refused.stdout);
    assert!(refused.stdout.contains("1 would refuse or could not be read"), "{}", refused.stdout);

    let after: Vec<usize> = dbs[..3].iter().map(|db| db.applied_versions().len()).collect();
    assert_eq!(after, [5, 1, 0], "nothing was applied by the dry runs");
    assert_eq!(dbs[2].tables(), Vec::<String>::new(), "not even the bookkeeping tables");
}

/// The line of a per-target listing whose first word is `name` (not just starts with it: `t_x_1` is a prefix of
/// `t_x_12`).
fn line_of(stdout: &str, name: &str) -> String {
    stdout.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{name}: {stdout}")).to_owned()
}
