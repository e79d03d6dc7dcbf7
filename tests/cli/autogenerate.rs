//! `generate NAME --autogenerate`: each case in tests/fixtures/autogenerate/<case>/ (a chain, the edited schema.rs,
//! the CLI arguments and the expected up.sql / down.sql) is generated, applied with `run` (schema.rs must then
//! render exactly as edited) and reverted (the schema must render as before). `AUTOGEN_BLESS=1` rewrites the
//! expected SQL files; review them like code.

use std::path::{Path, PathBuf};

use anonmigrate_testkit::{TestDb, Workspace, repo_root};

use crate::support::Env;

const DIESEL_TOML: &str = "[print_schema]\nfile = \"src/schema.rs\"\n";

fn case_dir(case: &str) -> PathBuf {
    repo_root().join("tests/fixtures/autogenerate").join(case)
}

fn env_for(case: &str) -> Env {
    let env = Env { ws: Workspace::with_migrations(&case_dir(case).join("migrations")), db: TestDb::new(&format!("autogen_{case}")) };
    // A case with a Cargo.toml of its own configures `schema-file` there: anonmigrate's defaults (pgvector's
    // types) instead of diesel.toml's exact diesel behaviour.
    match std::fs::read_to_string(case_dir(case).join("Cargo.toml")) {
        Ok(manifest) => env.ws.write("Cargo.toml", manifest),
        Err(_) => env.ws.write("diesel.toml", DIESEL_TOML),
    }
    env.cli(&["lock"]).assert_code(0);
    env
}

fn migration_dirs(env: &Env) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(env.ws.migrations())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn printed_schema(env: &Env) -> String {
    let outcome = env.cli(&["schema", "--stdout"]);
    outcome.assert_code(0);
    outcome.stdout
}

fn check_expected(path: &Path, actual: &str) {
    if std::env::var_os("AUTOGEN_BLESS").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(actual, expected, "{} differs (AUTOGEN_BLESS=1 rewrites it)", path.display());
}

/// Generate, compare, run, compare the schema, revert, compare again. Returns the generate outcome's stderr.
fn round_trip(case: &str) -> (Env, String) {
    let dir = case_dir(case);
    let env = env_for(case);
    let before = printed_schema(&env);
    let edited = std::fs::read_to_string(dir.join("schema.rs")).unwrap();
    env.ws.write("src/schema.rs", &edited);
    let args_text = std::fs::read_to_string(dir.join("args.txt")).unwrap();
    let mut args = vec!["generate", "change", "--autogenerate"];
    args.extend(args_text.lines().filter(|l| !l.is_empty()));
    let generated = env.cli(&args);
    generated.assert_code(0);
    let dirs = migration_dirs(&env);
    assert_eq!(dirs.len(), 2, "one new migration: {dirs:?}");
    let new = &dirs[1];
    check_expected(&dir.join("expected_up.sql"), &std::fs::read_to_string(new.join("up.sql")).unwrap());
    check_expected(&dir.join("expected_down.sql"), &std::fs::read_to_string(new.join("down.sql")).unwrap());

    env.cli(&["run"]).assert_code(0);
    assert_eq!(printed_schema(&env), edited, "{case}: the applied migration renders to the edited schema.rs");
    assert_eq!(std::fs::read_to_string(env.ws.path().join("src/schema.rs")).unwrap(), edited);
    env.cli(&["revert"]).assert_code(0);
    let reverted = env.cli(&["schema", "--from-database"]);
    reverted.assert_code(0);
    assert_eq!(reverted.stdout, before, "{case}: down.sql restores the schema");
    env.cli(&["run"]).assert_code(0);
    (env, generated.stderr)
}

#[test]
fn new_and_dropped_tables_with_keys_and_foreign_keys() {
    let (env, stderr) = round_trip("tables");
    assert!(stderr.contains("warning: DROP TABLE old_logs"), "{stderr}");
    let fk = env.db.query(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'posts'::regclass AND contype = 'f'",
    );
    assert_eq!(fk, ["FOREIGN KEY (user_id) REFERENCES users(id)"]);
    // The new table's integer key is an identity column, so an insert that leaves `id` out works.
    assert_eq!(env.db.query("SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'posts'::regclass AND attname = 'id'"), ["d"]);
    assert!(stderr.contains("warning: posts.created_at has no default (see the WARNING in up.sql)"), "{stderr}");
}

#[test]
fn added_dropped_and_changed_columns_leave_an_unchanged_enum_column_alone() {
    let (env, stderr) = round_trip("columns");
    assert!(stderr.contains("warning: DROP COLUMN users.bio"), "{stderr}");
    let up = std::fs::read_to_string(case_dir("columns").join("expected_up.sql")).unwrap();
    assert!(!up.contains("mood"), "the enum column is unchanged:\n{up}");
    let types = env.db.query(
        "SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    );
    assert_eq!(types, ["id bigint", "name text", "nickname text", "age bigint", "mood mood", "email character varying(255)"]);
}

#[test]
fn a_rename_is_a_rename_only_when_asked() {
    let (_env, stderr) = round_trip("rename");
    assert!(!stderr.contains("DROP"), "{stderr}");
    // Without --rename the same edit drops the column, loudly.
    let env = env_for("rename");
    env.ws.write("src/schema.rs", std::fs::read_to_string(case_dir("rename").join("schema.rs")).unwrap());
    let outcome = env.cli(&["generate", "change", "--autogenerate"]);
    outcome.assert_code(0);
    assert!(outcome.stderr.contains("warning: DROP COLUMN users.name"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("--rename users.name=NEW_NAME"), "{}", outcome.stderr);
}

#[test]
fn vectors_keep_their_dimension_and_new_enums_get_their_labels() {
    let (env, _) = round_trip("vector_enum");
    let types = env.db.query(
        "SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    );
    assert_eq!(types, ["id bigint", "embedding vector(3)", "note_embedding vector(5)", "status item_status", "labels item_status[]"]);
    assert_eq!(env.db.query("SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum"), ["open,closed"]);
}

#[test]
fn halfvec_sparsevec_and_bit_keep_their_dimensions_with_the_pgvector_types() {
    let (env, _) = round_trip("pgvector_types");
    let types = env.db.query(
        "SELECT attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    );
    assert_eq!(
        types,
        [
            "id bigint not null",
            "embedding halfvec(3)",
            "sparse sparsevec(5) not null",
            "bits bit(4)",
            "half_note halfvec(8)",
            "sparse_note sparsevec(10)",
            "flags bit(2)",
        ]
    );
}

#[test]
fn missing_vector_dimension_or_enum_labels_is_an_error_and_writes_nothing() {
    let env = env_for("vector_enum");
    env.ws.write("src/schema.rs", std::fs::read_to_string(case_dir("vector_enum").join("schema.rs")).unwrap());
    let no_dim = env.cli(&["generate", "change", "--autogenerate", "--enum-values", "item_status=open,closed"]);
    assert_ne!(no_dim.code, 0);
    assert!(no_dim.stderr.contains("--vector-dim items.note_embedding=N"), "{}", no_dim.stderr);
    let no_labels = env.cli(&["generate", "change", "--autogenerate", "--vector-dim", "items.note_embedding=5"]);
    assert_ne!(no_labels.code, 0);
    assert!(no_labels.stderr.contains("--enum-values item_status=label1,label2"), "{}", no_labels.stderr);
    // Neither: both are named in one go, not one per attempt.
    let neither = env.cli(&["generate", "change", "--autogenerate"]);
    assert_ne!(neither.code, 0);
    assert!(neither.stderr.contains("needs 2 more argument(s)"), "{}", neither.stderr);
    assert!(
        neither.stderr.contains("--vector-dim items.note_embedding=N") && neither.stderr.contains("--enum-values item_status=label1,label2"),
        "{}",
        neither.stderr
    );
    assert_eq!(migration_dirs(&env).len(), 1, "nothing was created");
}

#[test]
fn nothing_to_generate_creates_nothing() {
    let env = env_for("tables");
    env.ws.write("src/schema.rs", printed_schema(&env));
    let lock = std::fs::read_to_string(env.ws.migrations().join("anonmigrate.lock")).unwrap();
    let outcome = env.cli(&["generate", "change", "--autogenerate"]);
    outcome.assert_code(0);
    assert!(outcome.stdout.contains("nothing to generate"), "{}", outcome.stdout);
    assert_eq!(migration_dirs(&env).len(), 1);
    assert_eq!(std::fs::read_to_string(env.ws.migrations().join("anonmigrate.lock")).unwrap(), lock);
}

#[test]
fn reserved_words_are_quoted() {
    let (env, stderr) = round_trip("reserved_words");
    assert!(stderr.contains("DROP COLUMN \"user\".left"), "{stderr}");
    let up = std::fs::read_to_string(case_dir("reserved_words").join("expected_up.sql")).unwrap();
    assert!(up.contains("ALTER TABLE \"user\" ADD COLUMN \"from\" text;"), "{up}");
    assert_eq!(env.db.query("SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '\"group\"'::regclass AND attnum > 0"), ["id,user_id,select"]);
}
