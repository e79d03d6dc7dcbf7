//! Data-driven check that `schema::render` writes what `diesel print-schema` (diesel_cli 2.3) writes.
//!
//! Each folder in `tests/fixtures/print_schema/<case>/` has `schema.sql`, optionally `diesel.toml` (and a
//! `rustfmt.toml`), and `expected.rs`, produced by the real diesel_cli on a database loaded with `schema.sql`
//! (`tests/fixtures/print_schema/regenerate.sh`). This test loads the same SQL into a fresh database, reads the
//! catalogs, renders every `[print_schema]` section one after the other (as print-schema prints them) and
//! compares byte for byte. A case with `not-from-diesel.txt` pins anonmigrate's own output where diesel's is
//! wrong on purpose; that file says why.

use std::path::{Path, PathBuf};

use anonmigrate_core::events::{Event, Observer};
use anonmigrate_core::schema::config::{Layout, SchemaConfig};
use anonmigrate_core::schema::{introspect, render_sections};
use anonmigrate_testkit::{TestDb, repo_root};

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/print_schema")
}

fn config_for(case: &Path) -> SchemaConfig {
    let layout = Layout::discover(case).unwrap();
    let toml = case.join("diesel.toml");
    match std::fs::read_to_string(&toml) {
        Ok(text) => SchemaConfig::from_diesel_toml(&text, &toml, layout)
            .unwrap()
            .expect("the fixture's diesel.toml has [print_schema]"),
        Err(_) => SchemaConfig::defaults(None, layout),
    }
}

#[derive(Default)]
struct Warnings(Vec<String>);

impl Observer for Warnings {
    fn event(&mut self, event: Event) {
        if let Event::Warning(text) = event {
            self.0.push(text);
        }
    }
}

/// Renders `case` against a fresh database; returns the printed sections and the warnings.
fn render_case(case: &Path) -> (String, Vec<String>, SchemaConfig) {
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    let db = TestDb::new(&format!("ps_{name}"));
    db.execute(&std::fs::read_to_string(case.join("schema.sql")).unwrap());
    let config = config_for(case);
    let mut conn = db.connect();
    let catalog = introspect::read(&mut conn, &config.pg_schemas()).unwrap();
    let mut warnings = Warnings::default();
    let files = render_sections(&catalog, &config, &mut warnings).unwrap();
    (files.iter().map(|f| f.content.as_str()).collect(), warnings.0, config)
}

fn first_difference(expected: &str, actual: &str) -> String {
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    format!(
        "first difference at line {}:\n  expected: {:?}\n  actual:   {:?}",
        line + 1,
        expected.lines().nth(line).unwrap_or("<end>"),
        actual.lines().nth(line).unwrap_or("<end>")
    )
}

#[test]
fn every_fixture_renders_exactly_like_diesel_print_schema() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("schema.sql").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "fixture cases went missing: {cases:?}");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("print_schema");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected = std::fs::read_to_string(case.join("expected.rs")).unwrap_or_default();
        let (actual, _, _) = render_case(case);
        if actual != expected {
            let path = out_dir.join(format!("{name}.actual.rs"));
            std::fs::write(&path, &actual).unwrap();
            failures.push(format!("{name}: {} (full output in {})", first_difference(&expected, &actual), path.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn a_table_without_a_primary_key_is_left_out_with_a_warning_that_says_how_to_fix_it() {
    // expected.rs is diesel's output with the table excluded by a filter (reference.toml): diesel itself refuses
    // the whole schema when one table has no primary key.
    let case = fixtures().join("no_primary_key");
    let (actual, warnings, _) = render_case(&case);
    assert_eq!(actual, std::fs::read_to_string(case.join("expected.rs")).unwrap());
    assert!(!actual.contains("raw_events"));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = &warnings[0];
    for needle in ["`public.raw_events` has no primary key", "ALTER TABLE raw_events ADD PRIMARY KEY", "except_tables = [\"^raw_events$\"]"] {
        assert!(warning.contains(needle), "{warning}");
    }
}

#[test]
fn without_print_schema_pgvector_types_come_from_the_pgvector_crate() {
    // diesel's default output defines its own `Vector` (see not-from-diesel.txt); ours imports pgvector's (the real
    // halfvec, sparsevec and bit types of pgvector 0.8 included) and still generates the enum.
    let case = fixtures().join("pgvector_default");
    assert!(case.join("not-from-diesel.txt").is_file());
    let (actual, _, _) = render_case(&case);
    assert_eq!(actual, std::fs::read_to_string(case.join("expected.rs")).unwrap());
    assert!(actual.contains("use pgvector::sql_types::Vector;"));
    assert!(actual.contains("use pgvector::sql_types::HalfVector;"));
    assert!(actual.contains("use pgvector::sql_types::SparseVector;"));
    assert!(actual.contains("use pgvector::sql_types::Bit;"));
    assert!(actual.contains("pub struct Mood;"));
    assert!(!actual.contains("pub struct Vector"), "no clashing definition:\n{actual}");
}

#[test]
fn file_settings_resolve_relative_to_diesel_toml() {
    let case = fixtures().join("multiple_sections");
    let config = config_for(&case);
    let files: Vec<(String, Option<PathBuf>)> = config.sections.iter().map(|s| (s.key.clone(), s.file.clone())).collect();
    assert_eq!(
        files,
        [
            ("app".to_owned(), Some(case.join("src/app_schema.rs"))),
            ("audit".to_owned(), Some(case.join("src/audit_schema.rs"))),
            ("blog".to_owned(), Some(case.join("src/blog_schema.rs"))),
            ("default".to_owned(), None),
        ]
    );
    let single = config_for(&fixtures().join("file"));
    assert_eq!(single.sections[0].file, Some(fixtures().join("file/src/schema.rs")));
}

mod layout_matches_rustfmt {
    //! The renderer lays out what diesel leaves to rustfmt (derive lists, `postgres_type` attributes, long
    //! `allow_tables_to_appear_in_same_query!` lists) itself. Here rustfmt checks many generated shapes: our
    //! output must already be formatted, for several `max_width`s.

    use std::io::Write;
    use std::process::{Command, Stdio};

    use anonmigrate_core::schema::config::{Layout, Settings};
    use anonmigrate_core::schema::model::{Catalog, Column, ColumnType, QualifiedName, Table, TableKind};
    use anonmigrate_core::schema::render::render;

    /// A small deterministic generator (no dependency, same cases every run).
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
        fn name(&mut self, prefix: &str, max: usize) -> String {
            let len = 1 + self.below(max);
            let mut s = prefix.to_owned();
            for _ in 0..len {
                s.push((b'a' + self.below(26) as u8) as char);
            }
            s
        }
    }

    fn rustfmt(text: &str, max_width: usize) -> String {
        let mut child = Command::new("rustfmt")
            .args(["--edition", "2021", "--config", &format!("max_width={max_width}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rustfmt runs");
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "rustfmt failed: {}\n{text}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn catalog(rng: &mut Lcg, schema: &str) -> Catalog {
        let tables = (0..2 + rng.below(40))
            .map(|i| {
                let max = if rng.below(3) == 0 { 40 } else { 6 };
                let name = rng.name(&format!("t{i}_"), max);
                let enum_type = rng.name("enum_", 70);
                let type_schema = if rng.below(2) == 0 { "public" } else { "some_other_schema" };
                Table {
                    name: QualifiedName::new(schema, name),
                    kind: TableKind::Ordinary,
                    comment: None,
                    columns: vec![
                        Column {
                            name: "id".into(),
                            position: 1,
                            sql_type: ColumnType { udt: QualifiedName::new("pg_catalog", "int4"), is_array: false, domain: None },
                            nullable: false,
                            max_length: None,
                            comment: None,
                            declared_type: String::new(),
                        },
                        Column {
                            name: "e".into(),
                            position: 2,
                            sql_type: ColumnType {
                                udt: QualifiedName::new(type_schema, enum_type),
                                is_array: false,
                                domain: None,
                            },
                            nullable: true,
                            max_length: None,
                            comment: None,
                            declared_type: String::new(),
                        },
                    ],
                    primary_key: vec!["id".into()],
                }
            })
            .collect();
        Catalog { tables, ..Catalog::default() }
    }

    #[test]
    fn generated_layout_is_already_rustfmt_formatted() {
        // The fixtures pin the layout without rustfmt; this widens the net. rustfmt is part of rustup's default
        // toolchain: without it this test fails (saying so) rather than passing without checking anything.
        let version = Command::new("rustfmt").arg("--version").output();
        assert!(
            version.is_ok_and(|v| v.status.success()),
            "rustfmt is needed for this test: `rustup component add rustfmt`"
        );
        let mut rng = Lcg(42);
        for round in 0..60 {
            let max_width = [80, 100, 120][round % 3];
            let wrapped = round % 4 == 3;
            let schema = if wrapped { "app" } else { "public" };
            let count = rng.below(6);
            let derives: Vec<String> = (0..count).map(|_| rng.name("derive_", 25)).chain(["diesel::sql_types::SqlType".to_owned()]).collect();
            let settings = Settings {
                schema: wrapped.then(|| schema.to_owned()),
                custom_type_derives: derives,
                layout: Layout::parse(&format!("max_width = {max_width}\n")).unwrap(),
                ..Settings::default()
            };
            let text = render(&catalog(&mut rng, schema), &settings).unwrap().text;
            let formatted = rustfmt(&text, max_width);
            if formatted != text {
                let line = text.lines().zip(formatted.lines()).position(|(a, b)| a != b).unwrap_or(0);
                panic!(
                    "round {round} (max_width {max_width}): rustfmt changes line {}:\n  ours:    {:?}\n  rustfmt: {:?}",
                    line + 1,
                    text.lines().nth(line),
                    formatted.lines().nth(line)
                );
            }
        }
    }
}
