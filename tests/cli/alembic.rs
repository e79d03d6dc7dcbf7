//! `import alembic`, `stamp --from-alembic` and `baseline` with the real Alembic (pinned, in a venv under target/)
//! on the fixture project in tests/fixtures/alembic/, and the real server: the imported chain against what
//! `alembic upgrade` builds, compared through the catalogs.

use std::path::PathBuf;

use anonmigrate_testkit::{TestDb, Workspace, alembic, alembic_bin, copy_tree, repo_root, schema_differences};

use crate::support::{Env, Outcome};

const REV1: &str = "3f1a9c2b7d10";
const REV2: &str = "8c2e4b6a9f31";
const REV3: &str = "d4b7e1f05a62";

/// The fixture Alembic project copied into the workspace as `backend/`, plus the revisions of `variants/<name>`
/// for each name (`merged_branches` holds only the merge revision of `two_heads`' two branches).
fn project(env: &Env, variants: &[&str]) -> PathBuf {
    let source = repo_root().join("tests/fixtures/alembic");
    let backend = env.ws.path().join("backend");
    copy_tree(&source, &backend);
    std::fs::remove_dir_all(backend.join("variants")).unwrap();
    for variant in variants {
        copy_tree(&source.join("variants").join(variant), &backend.join("alembic/versions"));
    }
    backend
}

/// `cargo anonmigrate import alembic` with the venv's alembic; env.py gets DATABASE_URL as it would in the app.
fn import(env: &Env) -> Outcome {
    let alembic = alembic_bin().join("alembic");
    env.raw(
        &["import", "alembic", "--config", "backend/alembic.ini", "--alembic", alembic.to_str().unwrap()],
        &[("DATABASE_URL", "postgresql+asyncpg://app:s3cret-pw@db.invalid/anonchat")],
    )
}

fn migration_dirs(env: &Env) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(env.ws.migrations())
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    dirs
}

fn assert_same_schema(a: &TestDb, b: &TestDb) {
    let differences = schema_differences(&a.url, &b.url);
    assert!(differences.is_empty(), "{} and {} differ:\n{}", a.name, b.name, differences.join("\n"));
}

#[test]
fn the_imported_chain_builds_what_alembic_upgrade_head_builds_and_reverts_to_nothing() {
    let env = Env::new("alembic_import");
    let backend = project(&env, &[]);
    let outcome = import(&env);
    outcome.assert_code(0);
    crate::snap!(env, outcome);
    assert_eq!(
        migration_dirs(&env),
        [
            "2025-01-10-093000_create_users",
            "2025-01-11-140512_add_request_log",
            // Same Create Date as the one before it: one second later keeps Alembic's order.
            "2025-01-11-140513_add_messages_with_embeddings"
        ]
    );
    let migrations = env.ws.migrations();
    let up = std::fs::read_to_string(migrations.join("2025-01-11-140512_add_request_log/up.sql")).unwrap();
    insta::assert_snapshot!("request_log_up_sql", up);
    let metadata = std::fs::read_to_string(migrations.join("2025-01-11-140512_add_request_log/metadata.toml")).unwrap();
    assert!(metadata.contains(&format!("alembic_revision = \"{REV2}\"")) && metadata.contains(&format!("[\"{REV1}\"]")), "{metadata}");
    // Explicit: diesel takes a metadata.toml without the key as `run_in_transaction = false`.
    assert!(metadata.contains("run_in_transaction = true"), "{metadata}");
    for dir in migration_dirs(&env) {
        for file in ["up.sql", "down.sql"] {
            let text = std::fs::read_to_string(migrations.join(&dir).join(file)).unwrap();
            for leftover in ["alembic_version", "BEGIN;", "COMMIT;", "REVIEW"] {
                assert!(!text.contains(leftover) || text.lines().all(|l| !l.contains(leftover) || l.starts_with("-- ")), "{dir}/{file} holds {leftover}:\n{text}");
            }
        }
    }
    assert!(migrations.join("anonmigrate.lock").is_file());

    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.applied_versions().len(), 3);
    let reference = TestDb::new("alembic_head");
    alembic(&backend, &reference.url, &["upgrade", "head"]);
    assert_eq!(reference.query("SELECT version_num FROM alembic_version"), [REV3]);
    assert_same_schema(&reference, &env.db);

    let reverted = env.cli(&["revert", "--all", "--yes"]);
    reverted.assert_code(0);
    assert_same_schema(&TestDb::new("alembic_empty"), &env.db);
    assert!(env.db.query("SELECT extname FROM pg_extension WHERE extname = 'vector'").is_empty(), "vector stays installed");

    // Alembic's own downgrade agrees: the reference database ends empty the same way.
    alembic(&backend, &reference.url, &["downgrade", "base"]);
    assert_same_schema(&reference, &env.db);

    // Importing again adds nothing and touches nothing.
    let again = import(&env);
    again.assert_code(0);
    assert!(again.stdout.contains("3 revision(s) were imported before"), "{}", again.stdout);
    let alembic_cmd = alembic_bin().join("alembic");
    let as_json = env.raw(
        &["import", "alembic", "--config", "backend/alembic.ini", "--alembic", alembic_cmd.to_str().unwrap(), "--format", "json"],
        &[("DATABASE_URL", "postgresql://app@db.invalid/anonchat")],
    );
    as_json.assert_code(0);
    let report: serde_json::Value = serde_json::from_str(&as_json.stdout).expect("JSON on stdout");
    assert_eq!(report["already_imported"], serde_json::json!([REV1, REV2, REV3]));
    assert_eq!(report["imported"], serde_json::json!([]));
    assert_eq!(migration_dirs(&env).len(), 3);
}

#[test]
fn a_database_alembic_brought_to_revision_2_is_stamped_and_run_applies_only_revision_3() {
    let env = Env::new("alembic_stamp");
    let backend = project(&env, &[]);
    import(&env).assert_code(0);
    alembic(&backend, &env.db.url, &["upgrade", REV2]);

    let stamped = env.cli(&["stamp", "--from-alembic"]);
    stamped.assert_code(0);
    crate::snap!(env, stamped);
    assert_eq!(env.db.applied_versions(), ["20250110093000", "20250111140512"]);
    let checksums = env.db.query("SELECT count(*) FROM __anonmigrate_migrations WHERE checksum IS NOT NULL");
    assert_eq!(checksums, ["2"], "stamped migrations carry their checksums");

    let run = env.cli(&["run"]);
    run.assert_code(0);
    assert!(run.stdout.contains("2025-01-11-140513_add_messages_with_embeddings"), "{}", run.stdout);
    assert!(!run.stdout.contains("create_users") && !run.stdout.contains("add_request_log"), "only revision 3 runs:\n{}", run.stdout);
    assert_eq!(env.db.applied_versions().len(), 3);

    let reference = TestDb::new("alembic_stamp_head");
    alembic(&backend, &reference.url, &["upgrade", "head"]);
    assert_same_schema(&reference, &env.db);
    env.cli(&["check", "--database", "--no-lint", "--no-schema-check", "--no-down-check"]).assert_code(0);
}

#[test]
fn a_version_table_env_py_renames_is_left_out_and_read_by_stamp() {
    let env = Env::new("alembic_version_table");
    let backend = project(&env, &[]);
    let env_py = backend.join("alembic/env.py");
    let text = std::fs::read_to_string(&env_py).unwrap();
    let renamed = text.replace("target_metadata=target_metadata", "target_metadata=target_metadata, version_table=\"chat_versions\"");
    assert_ne!(text, renamed);
    std::fs::write(&env_py, renamed).unwrap();
    import(&env).assert_code(0);
    let dir = env.ws.migrations().join("2025-01-10-093000_create_users");
    let up = std::fs::read_to_string(dir.join("up.sql")).unwrap();
    assert!(!up.lines().any(|l| l.contains("chat_versions") && !l.starts_with("-- ")), "{up}");
    let metadata = std::fs::read_to_string(dir.join("metadata.toml")).unwrap();
    assert!(metadata.contains("alembic_version_table = \"chat_versions\""), "{metadata}");

    alembic(&backend, &env.db.url, &["upgrade", REV2]);
    let stamped = env.cli(&["stamp", "--from-alembic"]);
    stamped.assert_code(0);
    assert!(stamped.stdout.contains(&format!("Alembic revision {REV2}")), "{}", stamped.stdout);
    env.cli(&["run"]).assert_code(0);
    assert_eq!(env.db.applied_versions().len(), 3);
    // The adopted database keeps Alembic's renamed table: bookkeeping, not a difference from the chain.
    assert_eq!(env.db.query("SELECT coalesce(to_regclass('chat_versions')::text, 'none')"), ["chat_versions"]);
    env.cli(&["check", "--database", "--no-lint", "--no-schema-check", "--no-down-check"]).assert_code(0);
    let fresh = TestDb::new("alembic_version_table_fresh");
    env.raw(&["run", "--database-url", &fresh.url], &[]).assert_code(0);
    assert_eq!(fresh.query("SELECT coalesce(to_regclass('chat_versions')::text, 'none')"), ["none"]);
}

#[test]
fn stamp_from_alembic_refuses_what_it_cannot_place() {
    let env = Env::new("alembic_stamp_refusals");
    let backend = project(&env, &[]);
    let none_imported = env.cli(&["stamp", "--from-alembic"]);
    none_imported.assert_code(8);
    assert!(none_imported.stderr.contains("run `cargo anonmigrate import alembic` first"), "{}", none_imported.stderr);

    // `--alembic` as words, no shell: the venv's python running Alembic's module.
    let python_m = format!("{} -m alembic", alembic_bin().join("python").display());
    env.raw(
        &["import", "alembic", "--config", "backend/alembic.ini", "--alembic", &python_m],
        &[("DATABASE_URL", "postgresql://app@db.invalid/anonchat")],
    )
    .assert_code(0);
    assert_eq!(migration_dirs(&env).len(), 3);
    let no_table = env.cli(&["stamp", "--from-alembic"]);
    no_table.assert_code(8);
    assert!(no_table.stderr.contains("has no alembic_version table"), "{}", no_table.stderr);

    alembic(&backend, &env.db.url, &["upgrade", REV1]);
    env.db.execute("UPDATE alembic_version SET version_num = 'feedfacecafe'");
    let unknown = env.cli(&["stamp", "--from-alembic"]);
    unknown.assert_code(8);
    crate::snap!(env, unknown);
    assert!(env.db.applied_versions().is_empty(), "nothing stamped");

    env.db.execute("DELETE FROM alembic_version");
    let at_base = env.cli(&["stamp", "--from-alembic"]);
    at_base.assert_code(0);
    assert!(at_base.stdout.contains("nothing to stamp"), "{}", at_base.stdout);
}

#[test]
fn revisions_offline_sql_cannot_stand_for_are_listed_and_marked() {
    let env = Env::new("alembic_data");
    project(&env, &["data_migration"]);
    let outcome = import(&env);
    outcome.assert_code(0);
    crate::snap!(env, outcome);
    let up = std::fs::read_to_string(env.ws.migrations().join("2025-02-03-100000_backfill_usernames/up.sql")).unwrap();
    assert!(up.contains("-- anonmigrate: REVIEW: its Python uses op.get_bind()"), "{up}");
    assert!(up.contains("ALTER TABLE users ADD COLUMN display_name TEXT;"), "{up}");
    let metadata = std::fs::read_to_string(env.ws.migrations().join("2025-02-03-100000_backfill_usernames/metadata.toml")).unwrap();
    assert!(metadata.contains("alembic_review = ["), "{metadata}");
    env.cli(&["run"]).assert_code(0);
}

#[test]
fn an_autocommit_block_becomes_a_non_transactional_migration() {
    let env = Env::new("alembic_concurrently");
    let backend = project(&env, &["concurrent_index"]);
    let outcome = import(&env);
    outcome.assert_code(0);
    assert!(outcome.stdout.contains("2025-02-10-080000_index_messages_by_author  <- alembic 9e8d7c6b5a40 \"index messages by author\"  (non-transactional)"), "{}", outcome.stdout);
    assert!(outcome.stderr.is_empty(), "an autocommit block needs no review:\n{}", outcome.stderr);
    let dir = env.ws.migrations().join("2025-02-10-080000_index_messages_by_author");
    let up = std::fs::read_to_string(dir.join("up.sql")).unwrap();
    assert!(up.contains("\nCREATE INDEX CONCURRENTLY ix_messages_author_id ON messages (author_id);\n") && !up.contains("COMMIT"), "{up}");
    let metadata = std::fs::read_to_string(dir.join("metadata.toml")).unwrap();
    assert!(metadata.contains("run_in_transaction = false"), "{metadata}");
    env.cli(&["run"]).assert_code(0);
    let reference = TestDb::new("alembic_concurrently_head");
    alembic(&backend, &reference.url, &["upgrade", "head"]);
    assert_same_schema(&reference, &env.db);
    env.cli(&["revert", "--all", "--yes"]).assert_code(0);
    assert_same_schema(&TestDb::new("alembic_concurrently_empty"), &env.db);
}

#[test]
fn unmerged_heads_are_refused_and_merged_branches_are_linearised() {
    let env = Env::new("alembic_heads");
    project(&env, &["two_heads"]);
    let refused = import(&env);
    refused.assert_code(8);
    crate::snap!(env, refused);
    assert!(!env.ws.migrations().exists() || migration_dirs(&env).is_empty(), "nothing written");

    let env = Env::new("alembic_merged");
    let backend = project(&env, &["two_heads", "merged_branches"]);
    import(&env).assert_code(0);
    let dirs = migration_dirs(&env);
    assert_eq!(
        dirs[3..],
        ["2025-02-04-090000_add_user_bio", "2025-02-04-093000_add_room_topic", "2025-02-05-120000_merge_bio_and_rooms"]
    );
    let merge = std::fs::read_to_string(env.ws.migrations().join(&dirs[5]).join("up.sql")).unwrap();
    assert!(merge.contains("-- A merge revision: nothing to run."), "{merge}");
    env.cli(&["run"]).assert_code(0);
    let reference = TestDb::new("alembic_merged_head");
    alembic(&backend, &reference.url, &["upgrade", "head"]);
    assert_same_schema(&reference, &env.db);
    env.cli(&["revert", "--all", "--yes"]).assert_code(0);
    assert_same_schema(&TestDb::new("alembic_merged_empty"), &env.db);
}

#[test]
fn a_failing_alembic_is_named_with_its_error_and_no_password() {
    let env = Env::new("alembic_fails");
    project(&env, &[]);
    let alembic = alembic_bin().join("alembic");
    // env.py needs DATABASE_URL; without it Alembic fails, and the message says which command and why.
    let outcome = env.raw(&["import", "alembic", "--config", "backend/alembic.ini", "--alembic", alembic.to_str().unwrap()], &[]);
    outcome.assert_code(4);
    assert!(outcome.stderr.contains("upgrade base:d4b7e1f05a62 --sql` (in "), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("KeyError: 'DATABASE_URL'"), "{}", outcome.stderr);
    let missing = env.raw(&["import", "alembic", "--config", "backend/alembic.ini", "--alembic", "no-such-alembic"], &[]);
    missing.assert_code(4);
    assert!(missing.stderr.contains("cannot run `no-such-alembic -c "), "{}", missing.stderr);
    let no_config = env.raw(&["import", "alembic"], &[]);
    no_config.assert_code(4);
    assert!(no_config.stderr.contains("no Alembic configuration at `alembic.ini`"), "{}", no_config.stderr);
    // A revision that breaks in offline mode: the password in the URL env.py echoes never reaches the output.
    let broken = env.ws.path().join("backend/alembic/versions/2025_03_01_0000-0badc0ffee00_broken.py");
    std::fs::write(
        &broken,
        "\"\"\"broken\n\nRevision ID: 0badc0ffee00\nRevises: d4b7e1f05a62\nCreate Date: 2025-03-01 00:00:00\n\"\"\"\nimport os\nrevision = '0badc0ffee00'\ndown_revision = 'd4b7e1f05a62'\nbranch_labels = None\ndepends_on = None\n\ndef upgrade():\n    raise RuntimeError('cannot reach ' + os.environ['DATABASE_URL'])\n\ndef downgrade():\n    pass\n",
    )
    .unwrap();
    let failed = import(&env);
    failed.assert_code(4);
    assert!(failed.stderr.contains("RuntimeError: cannot reach postgresql+asyncpg://app:***@db.invalid/anonchat"), "{}", failed.stderr);
    assert!(!failed.stderr.contains("s3cret-pw") && !failed.stdout.contains("s3cret-pw"), "{}", failed.stderr);
    assert!(!env.ws.migrations().exists() || migration_dirs(&env).is_empty(), "nothing written");
}

#[test]
fn baseline_of_the_anonymous_chat_database_replays_to_the_same_schema_and_is_applied_there() {
    let source = TestDb::migrated("baseline_src", &repo_root().join("migrations"));
    // Hand-made objects no migration knows (a function, its trigger, a view) and rows: the schema comes over,
    // the rows do not.
    source.execute(
        "CREATE FUNCTION touch_created_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created_at := now(); RETURN NEW; END $$;
         CREATE TRIGGER users_touch BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION touch_created_at();
         CREATE VIEW recent_messages AS SELECT id, room, body FROM messages WHERE created_at > now() - interval '1 day';
         INSERT INTO users (username) VALUES ('ada');",
    );
    let env = Env { ws: Workspace::empty(), db: source };
    let outcome = env.cli(&["baseline", "initial_schema"]);
    outcome.assert_code(0);
    let dirs = migration_dirs(&env);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].ends_with("_initial_schema"), "{dirs:?}");
    assert!(outcome.stderr.contains("also records 5 applied migration(s) that are not on disk"), "{}", outcome.stderr);
    let up = std::fs::read_to_string(env.ws.migrations().join(&dirs[0]).join("up.sql")).unwrap();
    assert!(!up.lines().any(|l| l.starts_with("SET ") || l.starts_with('\\')), "up.sql keeps pg_dump's preamble:\n{up}");
    for gone in ["set_config", "OWNER TO", "GRANT ", "__diesel_schema_migrations", "__anonmigrate_", "alembic_version"] {
        assert!(!up.lines().any(|l| l.contains(gone) && !l.starts_with("--")), "up.sql keeps {gone}:\n{up}");
    }
    assert!(up.contains("CREATE EXTENSION IF NOT EXISTS vector"), "{up}");
    assert!(up.contains("USING hnsw"), "{up}");
    let version: String = dirs[0].split('_').next().unwrap().chars().filter(char::is_ascii_digit).collect();
    assert!(env.db.applied_versions().contains(&version), "{:?}", env.db.applied_versions());

    // Replayed on an empty database: the same schema.
    let replay = TestDb::new("baseline_replay");
    let run = env.raw(&["run", "--database-url", &replay.url], &[]);
    run.assert_code(0);
    assert_same_schema(&env.db, &replay);
    assert_eq!(replay.applied_versions(), [version.as_str()]);
    assert_eq!(replay.query("SELECT count(*) FROM users"), ["0"], "a baseline holds no data");
    assert_eq!(replay.query("SELECT count(*) FROM pg_trigger WHERE tgname = 'users_touch'"), ["1"]);
    // Its down.sql drops what it made.
    env.raw(&["revert", "--database-url", &replay.url], &[]).assert_code(0);
    assert_same_schema(&TestDb::new("baseline_empty"), &replay);

    // The source shows it applied (the old history's records are reported, not deleted).
    let status = env.cli(&["history"]);
    assert!(status.stdout.contains(&dirs[0]), "{}", status.stdout);
    // A password in the URL reaches pg_dump through PGPASSWORD and no output or file (the test cluster trusts
    // local connections, so any password is accepted).
    let with_password = env.db.url.replacen("postgresql://postgres@", "postgresql://postgres:s3cret-pw@", 1);
    assert_ne!(with_password, env.db.url);
    let again = env.raw(&["baseline", "second", "--database-url", &with_password], &[]);
    again.assert_code(0);
    assert!(!again.stdout.contains("s3cret-pw") && !again.stderr.contains("s3cret-pw"), "{}{}", again.stdout, again.stderr);
    let second = migration_dirs(&env).into_iter().find(|d| d.ends_with("_second")).expect("a second baseline");
    let text = std::fs::read_to_string(env.ws.migrations().join(second).join("up.sql")).unwrap();
    assert!(!text.contains("s3cret-pw"), "{text}");

    // Migrations the database has not applied are refused: they would be stamped without running.
    let fresh = Env::new("baseline_pending");
    copy_tree(&repo_root().join("migrations"), &fresh.ws.migrations());
    fresh.db.execute("CREATE TABLE t (id int)");
    let refused = fresh.cli(&["baseline", "initial"]);
    refused.assert_code(8);
    assert!(refused.stderr.contains("has not applied"), "{}", refused.stderr);
}
