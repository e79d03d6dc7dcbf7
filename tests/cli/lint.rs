//! `lint`: the real binary on a fixture chain: text and JSON output, exit codes, the
//! workspace configuration, and the Anonymous Chat chain linting clean. The linter never needs a database.

use anonmigrate_testkit::{Workspace, repo_root, run_cli};

use crate::support::{Outcome, bin, fixture};

fn lint(ws: &Workspace, args: &[&str]) -> Outcome {
    let mut full = vec!["lint"];
    full.extend(args);
    let output = run_cli(bin(), ws.path(), &full, &[]);
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn render(outcome: &Outcome) -> String {
    format!("exit: {}\n--- stdout\n{}--- stderr\n{}", outcome.code, outcome.stdout, outcome.stderr)
}

fn with_config(toml: &str) -> Workspace {
    let ws = Workspace::with_migrations(&fixture("lint_risky"));
    ws.write("Cargo.toml", format!("[workspace]\nmembers = []\n\n[workspace.metadata.anonmigrate]\n{toml}"));
    ws
}

#[test]
fn text_output_names_file_line_rule_and_the_safe_alternative() {
    let ws = Workspace::with_migrations(&fixture("lint_risky"));
    let outcome = lint(&ws, &[]);
    outcome.assert_code(1);
    insta::assert_snapshot!("lint_text", render(&outcome));
}

#[test]
fn json_output_has_every_finding() {
    let ws = Workspace::with_migrations(&fixture("lint_risky"));
    let outcome = lint(&ws, &["--format", "json"]);
    outcome.assert_code(1);
    assert_eq!(outcome.stderr, "", "JSON mode keeps stderr quiet");
    let report: serde_json::Value = serde_json::from_str(&outcome.stdout).expect("stdout is one JSON document");
    assert_eq!(report["linted"], 4);
    assert_eq!(report["errors"], 2);
    assert_eq!(report["warnings"], 5);
    let rules: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        [
            "prefer-bigint-over-int",
            "prefer-identity",
            "prefer-text-field",
            "prefer-timestamptz",
            "adding-required-field",
            "require-concurrent-index-creation",
            "missing-down-migration"
        ]
    );
    let first = &report["findings"][4];
    assert_eq!(first["file"], "migrations/2025-02-02-000000_add_room_topic/up.sql");
    assert_eq!(first["line"], 1);
    assert_eq!(first["level"], "error");
    assert!(first["help"].as_str().unwrap().contains("constant DEFAULT"));
    insta::assert_snapshot!("lint_json", outcome.stdout);
}

#[test]
fn warnings_alone_exit_zero_and_migrations_can_be_named() {
    let ws = Workspace::with_migrations(&fixture("lint_risky"));
    let outcome = lint(&ws, &["2025-02-01-000000_create_rooms", "20250203000000"]);
    outcome.assert_code(0);
    assert_eq!(outcome.stdout.matches(": warning [").count(), 4, "{}", outcome.stdout);
    assert_eq!(outcome.stderr, "linted 2 migrations: 0 errors, 4 warnings\n");
    let unknown = lint(&ws, &["20990101000000"]);
    unknown.assert_code(4);
    assert!(unknown.stderr.contains("no migration `20990101000000` in "), "{}", unknown.stderr);
}

#[test]
fn workspace_configuration_sets_levels_and_the_baseline() {
    let baseline = with_config("[workspace.metadata.anonmigrate.lint]\nbaseline = \"20250202000000\"\n");
    let outcome = lint(&baseline, &[]);
    outcome.assert_code(0);
    assert!(outcome.stdout.starts_with("migrations/2025-02-04-000000_drop_room_legacy/up.sql:2: warning [missing-down-migration]"), "{}", outcome.stdout);
    assert_eq!(outcome.stderr, "linted 2 migrations (baseline 20250202000000: 2 older not linted): 0 errors, 1 warning\n");

    let levels = with_config(
        "[workspace.metadata.anonmigrate.lint]\nadding-required-field = \"warn\"\nrequire-concurrent-index-creation = \"allow\"\nprefer-identity = \"allow\"\n",
    );
    let outcome = lint(&levels, &[]);
    outcome.assert_code(0);
    assert_eq!(outcome.stderr, "linted 4 migrations: 0 errors, 5 warnings\n");
    assert!(outcome.stdout.contains(": warning [adding-required-field]"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("[prefer-identity]"), "{}", outcome.stdout);

    let no_timeout = with_config("ddl-lock-timeout = \"0\"\n");
    let outcome = lint(&no_timeout, &["20250202000000"]);
    outcome.assert_code(1);
    // Once per file: up.sql's ALTER and down.sql's (a revert waits for the same lock).
    assert_eq!(outcome.stdout.matches("[require-lock-timeout]").count(), 2, "reported once per file:\n{}", outcome.stdout);
    assert!(outcome.stdout.contains("add_room_topic/down.sql:1: error [require-lock-timeout]"), "{}", outcome.stdout);

    let typo = with_config("[workspace.metadata.anonmigrate.lint]\nban-drop-colum = \"warn\"\n");
    let outcome = lint(&typo, &[]);
    outcome.assert_code(4);
    assert!(outcome.stderr.contains("unknown rule `ban-drop-colum`"), "{}", outcome.stderr);
}

#[test]
fn the_anonymous_chat_chain_lints_clean() {
    let ws = Workspace::with_migrations(&repo_root().join("migrations"));
    let outcome = lint(&ws, &[]);
    outcome.assert_code(0);
    assert_eq!(outcome.stdout, "", "findings in the Anonymous Chat chain");
    assert_eq!(outcome.stderr, "linted 5 migrations: no findings\n");
}

#[test]
fn fix_applies_squawk_fixes_to_undeployed_migrations_only() {
    let up = "migrations/2025-02-01-000000_create_rooms/up.sql";
    let deployed = with_config("[workspace.metadata.anonmigrate.lint]\nbaseline = \"20250201000000\"\n");
    let before = std::fs::read_to_string(deployed.path().join(up)).unwrap();
    let outcome = lint(&deployed, &["--fix"]);
    assert_eq!(std::fs::read_to_string(deployed.path().join(up)).unwrap(), before, "a migration the baseline covers is never edited");
    assert!(!outcome.stderr.contains("fixed "), "{}", outcome.stderr);

    let ws = Workspace::with_migrations(&fixture("lint_risky"));
    let outcome = lint(&ws, &["--fix"]);
    let after = std::fs::read_to_string(ws.path().join(up)).unwrap();
    assert!(outcome.stderr.starts_with(&format!("fixed {up}: ")), "{}", outcome.stderr);
    assert!(after.contains("created_at timestamptz NOT NULL") && after.contains("name text NOT NULL"), "{after}");
    // The report printed afterwards is what is left: no fixable finding of create_rooms remains but the one whose
    // fix overlapped another (serial -> bigserial vs. identity), and the transactional index stays for the author.
    assert!(!outcome.stdout.contains("[prefer-timestamptz]") && !outcome.stdout.contains("[prefer-text-field]"), "{}", outcome.stdout);
    assert!(outcome.stdout.contains("[require-concurrent-index-creation]"), "{}", outcome.stdout);
    outcome.assert_code(1);
    insta::assert_snapshot!("lint_fix_result", after);
}

/// down.sql is linted too, with the rules that make sense for a revert: locks and unsafe DDL on live tables and
/// parse failures are reported against down.sql and its line; dropping what up.sql created is not; allow comments,
/// the baseline and `--fix` work there as in up.sql.
#[test]
fn down_sql_is_linted_with_the_rules_for_a_revert() {
    let ws = Workspace::with_migrations(&fixture("lint_down"));
    let outcome = lint(&ws, &[]);
    outcome.assert_code(1);
    assert!(!outcome.stdout.contains("/up.sql:"), "every up.sql of the fixture is clean:\n{}", outcome.stdout);
    assert!(!outcome.stdout.contains("[ban-drop-table]") && !outcome.stdout.contains("[ban-drop-column]"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("[require-concurrent-index-creation]"), "the allow comment in down.sql holds:\n{}", outcome.stdout);
    insta::assert_snapshot!("lint_down_text", render(&outcome));

    let json = lint(&ws, &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("stdout is one JSON document");
    let places: Vec<String> =
        report["findings"].as_array().unwrap().iter().map(|f| format!("{}:{} {}", f["file"].as_str().unwrap(), f["line"], f["rule"].as_str().unwrap())).collect();
    assert_eq!(
        places,
        [
            "migrations/2025-03-02-000000_index_accounts_email/down.sql:2 require-concurrent-index-deletion",
            "migrations/2025-03-03-000000_drop_accounts_legacy_name/down.sql:2 adding-required-field",
            "migrations/2025-03-04-000000_add_accounts_note/down.sql:4 unparsable-statement",
        ]
    );

    let ws = Workspace::with_migrations(&fixture("lint_down"));
    ws.write("Cargo.toml", "[workspace]\nmembers = []\n\n[workspace.metadata.anonmigrate.lint]\nbaseline = \"20250303000000\"\n");
    let outcome = lint(&ws, &[]);
    outcome.assert_code(1);
    assert_eq!(outcome.stdout.matches(": error [").count(), 1, "the baseline covers down.sql too:\n{}", outcome.stdout);
    assert!(outcome.stdout.starts_with("migrations/2025-03-04-000000_add_accounts_note/down.sql:4: error [unparsable-statement]"), "{}", outcome.stdout);

    let ws = Workspace::with_migrations(&fixture("lint_down"));
    let down = "migrations/2025-03-02-000000_index_accounts_email/down.sql";
    let outcome = lint(&ws, &["--fix"]);
    assert!(outcome.stderr.starts_with(&format!("fixed {down}: ")), "{}", outcome.stderr);
    let after = std::fs::read_to_string(ws.path().join(down)).unwrap();
    assert!(after.to_lowercase().contains("drop index concurrently accounts_email_idx"), "{after}");
    assert!(!outcome.stdout.contains("[require-concurrent-index-deletion]"), "{}", outcome.stdout);
}
