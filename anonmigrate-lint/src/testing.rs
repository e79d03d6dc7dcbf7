//! Test helpers: lint small in-memory chains and render findings compactly.

use std::path::PathBuf;

use anonmigrate_chain::{Chain, Migration};

use crate::rules::{Example, Rule};
use crate::{Config, Finding, lint};

pub const CURRENT: &str = "2025-01-02-000000_current";

fn migration(dir_name: &str, up: &str, example: &Example) -> Migration {
    let (version, name) = anonmigrate_chain::parse_dir_name(dir_name).unwrap();
    Migration {
        version,
        name,
        dir_name: dir_name.to_owned(),
        dir: PathBuf::from("migrations").join(dir_name),
        up_sql: up.to_owned(),
        down_sql: example.has_down.then(|| "SELECT 1;\n".to_owned()),
        metadata: (!example.run_in_transaction).then(|| "run_in_transaction = false\n".to_owned()),
        checksum: String::new(),
    }
}

/// Lints `example.up` as the last migration of a chain made of `example.earlier` and it.
pub fn findings(example: &Example) -> Vec<Finding> {
    let mut migrations: Vec<Migration> = example
        .earlier
        .iter()
        .enumerate()
        .map(|(i, up)| migration(&format!("2025-01-01-00000{i}_earlier_{i}"), up, &Example::new(&[], "")))
        .collect();
    migrations.push(migration(CURRENT, example.up, example));
    let chain = Chain { dir: PathBuf::from("migrations"), migrations };
    let config = Config { runner_lock_timeout: example.runner_lock_timeout, ..Config::default() };
    lint(&chain, &config, &[chain.migrations.len() - 1]).unwrap().findings
}

/// `line N: error [rule] message`, one per finding.
pub fn render(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("line {}: {} [{}] {}\n", f.line, f.level.label(), f.rule, f.message))
        .collect()
}

/// Lints `up` (after the `earlier` migrations) in a transactional migration and renders every finding.
pub fn check(earlier: &'static [&'static str], up: &'static str) -> String {
    render(&findings(&Example::new(earlier, up)))
}

/// Lints `up` and renders only the findings of `rule`.
pub fn check_rule(rule: &Rule, example: Example) -> String {
    let all = findings(&example);
    render(&all.into_iter().filter(|f| f.rule == rule.id).collect::<Vec<_>>())
}

/// The contract every rule file tests: its module is named after its id, its bad example fires it, and its good
/// example is clean (no finding of any rule).
pub fn assert_examples(rule: &Rule, module_path: &str) {
    let module = module_path.trim_end_matches("::tests").rsplit("::").next().unwrap();
    assert_eq!(module, rule.id.replace('-', "_"), "rule files are named after their id");
    let bad = findings(&rule.bad);
    assert!(bad.iter().any(|f| f.rule == rule.id), "{}: the bad example does not fire:\n{}", rule.id, render(&bad));
    let good = findings(&rule.good);
    assert!(good.is_empty(), "{}: the good example is not clean:\n{}", rule.id, render(&good));
}
