//! `docs/lint-rules.md`, generated from the rules themselves so the page cannot drift from the code. A test
//! compares the committed page with [`render`]; `UPDATE_LINT_DOCS=1 cargo test -p anonmigrate-lint docs` rewrites it.

use std::fmt::Write as _;

use crate::config::Level;
use crate::rules::{Check, Example, NOT_IN_DOWN, RULES, Rule, applies_to_down};

const INTRO: &str = "\
# Lint rules

`cargo anonmigrate lint [MIGRATION...]` parses every up.sql and down.sql with squawk's PostgreSQL parser and
reports statements that would lock or break a live application. Rules marked *squawk* are squawk's own (the `squawk-linter` crate),
run under the ids below; squawk's names for them work too in configuration and allow comments, and where squawk has a
mechanical fix it is shown as a `fix:` line, which `cargo anonmigrate lint --fix` applies to migrations newer than
the baseline (never to a deployed one). It replays the whole chain, so it knows which tables an
earlier migration created (live, possibly busy) and which this migration creates (new and empty: most rules do not
apply to them). With no arguments it lints every migration after the baseline; name migrations by version or
directory name to lint only those (named migrations are linted even when the baseline covers them).

Output: one `<file>:<line>: <error|warning> [<rule-id>] <message>` line per finding and a `help:` line with the
safe alternative; `--format json` prints the same as a JSON object. The exit code is 1 when a `deny` rule fired, 0
when there were only warnings or nothing.

## Configuration

In the workspace `Cargo.toml`:

```toml
[workspace.metadata.anonmigrate.lint]
baseline = \"20250115090400\"   # this migration and every older one are not linted (already deployed)
prefer-text-field = \"allow\"   # per rule: allow (off), warn, deny
ban-drop-column = \"warn\"
```

Per statement, a comment directly above it (or at the end of its line) silences one or more rules for it. The
reason is required: an allow comment without one is ignored and reported (`invalid-allow-comment`).

```sql
-- anonmigrate:allow ban-drop-column the app stopped reading `nickname` in release 2025.03
ALTER TABLE users DROP COLUMN nickname;
```

Findings about the migration as a whole (`missing-down-migration`) are silenced by an allow comment above its
first statement. `require-lock-timeout` is reported once per migration.

## down.sql

A revert runs on the same live database as a deploy, so each linted migration's down.sql is linted too, against the
schema its up.sql left, with findings naming down.sql and its line (allow comments work the same way there). The
rules about locks, unsafe DDL on existing tables, transactions, parse failures and allow comments apply; these do
not, because a down.sql is expected to do what they report:

";

pub fn render() -> String {
    let mut out = String::from(INTRO);
    for (id, why) in NOT_IN_DOWN {
        let _ = writeln!(out, "- `{id}`: {why}.");
    }
    out.push_str("\n## Rules\n\n| rule | default | from | down.sql | catches |\n| --- | --- | --- | --- | --- |\n");
    for rule in RULES {
        let down = if applies_to_down(rule) { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} | {down} | {} |",
            rule.id,
            rule.id,
            rule.default_level.as_str(),
            origin(rule),
            rule.summary
        );
    }
    out.push('\n');
    for rule in RULES {
        render_rule(&mut out, rule);
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn render_rule(out: &mut String, rule: &Rule) {
    let _ = writeln!(out, "### {}\n", rule.id);
    let down = if applies_to_down(rule) { "up.sql and down.sql" } else { "up.sql only" };
    let _ = writeln!(out, "Default: `{}`. From: {}. Checks {down}. {}\n", rule.default_level.as_str(), origin(rule), rule.summary);
    let _ = writeln!(out, "**Why it is dangerous.** {}\n", rule.why);
    let _ = writeln!(out, "**Instead.** {}\n", rule.help);
    if !rule.bad.up.is_empty() {
        out.push_str("Reported:\n\n");
        render_example(out, &rule.bad);
    }
    if !rule.good.up.is_empty() {
        out.push_str("Not reported:\n\n");
        render_example(out, &rule.good);
    }
    debug_assert_ne!(rule.default_level, Level::Allow);
}

/// Whose code checks the rule: squawk's (with its name when it differs from ours) or this project's.
fn origin(rule: &Rule) -> String {
    match rule.check {
        Check::Squawk(squawk) if squawk.to_string() == rule.id => "squawk".to_owned(),
        Check::Squawk(squawk) => format!("squawk (`{squawk}`)"),
        _ => "anonmigrate".to_owned(),
    }
}

fn render_example(out: &mut String, example: &Example) {
    out.push_str("```sql\n");
    for earlier in example.earlier {
        let _ = writeln!(out, "-- in an earlier migration:\n{}", earlier.trim_end());
    }
    if !example.earlier.is_empty() {
        out.push_str("-- in the migration being linted:\n");
    }
    if !example.run_in_transaction {
        out.push_str("-- (metadata.toml: run_in_transaction = false)\n");
    }
    if !example.has_down {
        out.push_str("-- (the migration has no down.sql)\n");
    }
    if !example.runner_lock_timeout {
        out.push_str("-- (Cargo.toml: ddl-lock-timeout = \"0\")\n");
    }
    let _ = writeln!(out, "{}\n```\n", example.up.trim_end());
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_page_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/lint-rules.md");
        let expected = super::render();
        if std::env::var_os("UPDATE_LINT_DOCS").is_some() {
            std::fs::write(path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/lint-rules.md is out of date: run `UPDATE_LINT_DOCS=1 cargo test -p anonmigrate-lint docs` and commit it"
        );
        for rule in crate::RULES {
            assert!(actual.contains(&format!("### {}\n", rule.id)), "{} is not documented", rule.id);
        }
    }
}
