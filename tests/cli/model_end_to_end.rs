//! The README's "Adding a model end to end", step by step as written, in a workspace whose app crate has the
//! build-script drift gate and diesel: edit schema.rs, `cargo build` fails with the autogenerate advice,
//! `generate add_posts --autogenerate`, `run`, `cargo build` passes, and a `New*` struct without `id` inserts.

use anonmigrate_testkit::repo_root;

use crate::build_gate::{cargo, cargo_build, stderr};
use crate::support::Env;

/// The README section this test follows; if it changes, this test must follow it again.
const README_STEPS: [&str; 4] = [
    "1. Edit schema.rs (the configured schema file)",
    "2. `cargo anonmigrate generate add_posts --autogenerate` writes up.sql",
    "3. Review the SQL (`cargo anonmigrate lint` helps), then `cargo anonmigrate run`",
    "4. `cargo build`, write the diesel model structs",
];

fn workspace(env: &Env) {
    let chain_crate = repo_root().join("anonmigrate-chain");
    env.ws.write("Cargo.toml", "[workspace]\nmembers = [\"app\"]\nresolver = \"2\"\n");
    // The repository's lock file pins the same diesel build the repository uses (and has offline).
    env.ws.write("Cargo.lock", std::fs::read(repo_root().join("Cargo.lock")).unwrap());
    env.ws.write(
        "app/Cargo.toml",
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ndiesel = {{ version = \"2.3\", default-features = false, features = [\"postgres\"] }}\npq-sys = {{ version = \"0.7\", features = [\"bundled\"] }}\n\n[build-dependencies]\nanonmigrate-chain = {{ path = \"{}\" }}\n",
            chain_crate.display()
        ),
    );
    env.ws.write("app/build.rs", "fn main() {\n    anonmigrate_chain::drift::Gate::new(\"../migrations\", \"src/schema.rs\").run();\n}\n");
    env.ws.write("app/src/main.rs", "#[allow(dead_code)]\nmod schema;\n\nfn main() {}\n");
    env.ws.write("diesel.toml", "[print_schema]\nfile = \"app/src/schema.rs\"\n");
    env.ws.write(
        "migrations/2024-01-01-000000_users/up.sql",
        "CREATE TABLE users (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT NOT NULL);\n",
    );
    env.ws.write("migrations/2024-01-01-000000_users/down.sql", "DROP TABLE users;\n");
}

const POSTS: &str = "diesel::table! {\n    posts (id) {\n        id -> Int8,\n        user_id -> Int8,\n        title -> Text,\n    }\n}\n\ndiesel::joinable!(posts -> users (user_id));\n\ndiesel::allow_tables_to_appear_in_same_query!(posts, users,);\n";

const MAIN_WITH_MODELS: &str = r#"use diesel::prelude::*;

mod schema;

#[derive(Insertable)]
#[diesel(table_name = schema::posts)]
struct NewPost<'a> {
    user_id: i64,
    title: &'a str,
}

fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let mut conn = PgConnection::establish(&url).expect("connect");
    let user_id: i64 = diesel::insert_into(schema::users::table)
        .values(schema::users::name.eq("ada"))
        .returning(schema::users::id)
        .get_result(&mut conn)
        .expect("insert user");
    let post_id: i64 = diesel::insert_into(schema::posts::table)
        .values(&NewPost { user_id, title: "hello" })
        .returning(schema::posts::id)
        .get_result(&mut conn)
        .expect("insert post");
    println!("inserted post {post_id}");
}
"#;

#[test]
fn adding_a_model_end_to_end_as_the_readme_says() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for step in README_STEPS {
        assert!(readme.contains(step), "README's \"Adding a model end to end\" changed; follow it again here: {step}");
    }
    let env = Env::new("model_end_to_end");
    workspace(&env);
    let dir = env.ws.path();
    env.cli(&["run"]).assert_code(0);
    let build = cargo_build(dir, &[], &[]);
    assert!(build.status.success(), "the workspace builds before the edit:\n{}", stderr(&build));

    // 1. Edit schema.rs: a new table.
    let schema_path = dir.join("app/src/schema.rs");
    let generated = std::fs::read_to_string(&schema_path).unwrap();
    assert!(!generated.contains("posts"), "{generated}");
    let edited = format!("{}\n{POSTS}", generated.trim_end().to_owned() + "\n");
    std::fs::write(&schema_path, &edited).unwrap();
    let build = cargo_build(dir, &[], &[]);
    let text = stderr(&build);
    assert!(!build.status.success(), "the drift gate fails the build after the edit:\n{text}");
    let first = text.lines().find(|l| l.contains("anonmigrate drift gate")).unwrap_or_default();
    assert!(first.contains("cargo anonmigrate generate NAME --autogenerate"), "the gate leads with autogenerate:\n{text}");

    // 2. Autogenerate the migration.
    let generate = env.cli(&["generate", "add_posts", "--autogenerate"]);
    generate.assert_code(0);
    let up_path = std::fs::read_dir(env.ws.migrations())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("_add_posts"))
        .expect("the add_posts migration")
        .path()
        .join("up.sql");
    let up = std::fs::read_to_string(up_path).unwrap();
    assert!(up.contains("id bigint GENERATED BY DEFAULT AS IDENTITY"), "{up}");

    // 3. Review (lint), then run: applies it and regenerates schema.rs.
    env.cli(&["lint"]).assert_code(0);
    let run = env.cli(&["run"]);
    run.assert_code(0);
    assert!(run.stderr.contains("regenerated app/src/schema.rs"), "{}", run.stderr);

    // 4. cargo build passes; the model structs insert without `id`.
    let build = cargo_build(dir, &[], &[]);
    assert!(build.status.success(), "the build passes after run:\n{}", stderr(&build));
    env.ws.write("app/src/main.rs", MAIN_WITH_MODELS);
    let inserted = cargo("run", dir, &["--quiet"], &[("DATABASE_URL", &env.db.url)]);
    assert!(inserted.status.success(), "insert through NewPost:\n{}", stderr(&inserted));
    assert_eq!(String::from_utf8_lossy(&inserted.stdout), "inserted post 1\n");
    assert_eq!(env.db.query("SELECT id::text || ' ' || title FROM posts"), ["1 hello"]);
}
