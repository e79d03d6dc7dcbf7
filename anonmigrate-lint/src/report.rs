//! Findings and their two renderings: text lines for people, JSON for tools. The caller prints them.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Level;

/// One problem in one migration.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    /// `warn` or `deny`.
    pub level: Level,
    /// The migration's directory name.
    pub migration: String,
    /// The up.sql or down.sql file the finding is in.
    pub path: PathBuf,
    /// 1-based line in `path`.
    pub line: usize,
    pub message: String,
    /// The safe alternative.
    pub help: &'static str,
    /// squawk's mechanical fix, when it has one (`lint --fix` applies it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

/// A mechanical fix: what it does and the byte edits to up.sql that do it.
#[derive(Debug, Clone, Serialize)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<Edit>,
}

/// Replace `start..end` of up.sql with `text` (an insertion when `start == end`).
#[derive(Debug, Clone, Serialize)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// The outcome of a lint run.
#[derive(Debug, Clone)]
pub struct Report {
    /// In chain order, then by line.
    pub findings: Vec<Finding>,
    /// How many migrations were linted.
    pub linted: usize,
    /// How many migrations the baseline covers (not linted unless named).
    pub skipped_by_baseline: usize,
    pub baseline: Option<String>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.level == Level::Deny).count()
    }

    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|f| f.level == Level::Warn).count()
    }

    /// Whether a deny-level rule fired (the CLI then exits non-zero).
    pub fn failed(&self) -> bool {
        self.errors() > 0
    }

    /// `<file>:<line>: <level> [<rule>] <message>` and a `help:` line per finding, paths shown relative to `base`
    /// when they are below it.
    pub fn render_text(&self, base: &Path) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            out.push_str(&format!(
                "{}:{}: {} [{}] {}\n  help: {}\n",
                display_path(&finding.path, base),
                finding.line,
                finding.level.label(),
                finding.rule,
                finding.message,
                finding.help
            ));
            if let Some(fix) = &finding.fix {
                out.push_str(&format!("  fix: {} (`cargo anonmigrate lint --fix` applies it)\n", fix.title));
            }
        }
        out
    }

    /// One line: how many migrations were linted and what was found.
    pub fn summary(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let mut text = format!("linted {}", plural(self.linted, "migration"));
        if let Some(baseline) = &self.baseline {
            text.push_str(&format!(" (baseline {baseline}: {} older not linted)", self.skipped_by_baseline));
        }
        if self.findings.is_empty() {
            text.push_str(": no findings");
        } else {
            text.push_str(&format!(": {}, {}", plural(self.errors(), "error"), plural(self.warnings(), "warning")));
        }
        text
    }

    /// The `--format json` document, pretty-printed, fields in a stable order.
    pub fn to_json(&self, base: &Path) -> String {
        let findings = self
            .findings
            .iter()
            .map(|f| JsonFinding {
                rule: f.rule,
                level: f.level.label(),
                migration: &f.migration,
                file: display_path(&f.path, base),
                line: f.line,
                message: &f.message,
                help: f.help,
                fix: f.fix.as_ref().map(|fix| fix.title.as_str()),
            })
            .collect();
        let report = JsonReport {
            linted: self.linted,
            baseline: self.baseline.as_deref(),
            skipped_by_baseline: self.skipped_by_baseline,
            errors: self.errors(),
            warnings: self.warnings(),
            findings,
        };
        let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The `--format json` shape (fields in this order).
#[derive(Serialize)]
struct JsonReport<'a> {
    linted: usize,
    baseline: Option<&'a str>,
    skipped_by_baseline: usize,
    errors: usize,
    warnings: usize,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'a str,
    level: &'a str,
    migration: &'a str,
    file: String,
    line: usize,
    message: &'a str,
    help: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<&'a str>,
}

fn display_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}
