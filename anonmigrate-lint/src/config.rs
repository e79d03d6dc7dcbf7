//! `[workspace.metadata.anonmigrate.lint]`: a level per rule and a baseline version.
//!
//! ```toml
//! [workspace.metadata.anonmigrate.lint]
//! baseline = "20250115090400"      # this migration and older ones are not linted
//! prefer-text-field = "allow"      # allow | warn | deny
//! ban-drop-column = "warn"
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rules::{self, Rule};
use crate::{Error, Result};

/// How much a rule matters: `allow` turns it off, `warn` reports it, `deny` reports it and fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Allow,
    Warn,
    Deny,
}

impl Level {
    fn parse(text: &str) -> Option<Level> {
        match text {
            "allow" => Some(Level::Allow),
            "warn" => Some(Level::Warn),
            "deny" => Some(Level::Deny),
            _ => None,
        }
    }

    /// The word findings are printed with: `error` (deny) or `warning` (warn).
    pub fn label(self) -> &'static str {
        match self {
            Level::Allow => "allow",
            Level::Warn => "warning",
            Level::Deny => "error",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Allow => "allow",
            Level::Warn => "warn",
            Level::Deny => "deny",
        }
    }
}

/// The linter's settings: rule levels, the baseline, and whether the runner bounds DDL lock waits itself.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) overrides: BTreeMap<&'static str, Level>,
    /// Migrations with a version up to and including this one are not linted (unless named explicitly).
    pub baseline: Option<String>,
    /// `ddl-lock-timeout` is in force (the default, 10s): the runner already sets `lock_timeout`.
    pub runner_lock_timeout: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            overrides: BTreeMap::new(),
            baseline: None,
            runner_lock_timeout: true,
        }
    }
}

const SECTION: &str = "[workspace.metadata.anonmigrate.lint]";

impl Config {
    /// Parses the lint section (a JSON object as `cargo metadata` reports it); `None` gives the defaults.
    pub fn parse(value: Option<&serde_json::Value>) -> Result<Config> {
        let mut config = Config::default();
        let Some(value) = value else {
            return Ok(config);
        };
        let table = value
            .as_object()
            .ok_or_else(|| Error::Config(format!("{SECTION} must be a table of `rule-id = \"allow|warn|deny\"` and `baseline`")))?;
        for (key, value) in table {
            if key == "baseline" {
                let text = value
                    .as_str()
                    .ok_or_else(|| Error::Config(format!("{SECTION} baseline must be a version string, e.g. \"20250115090400\"")))?;
                let version: String = text.chars().filter(|c| *c != '-').collect();
                if version.is_empty() || text.chars().any(|c| c == '_' || c.is_whitespace()) {
                    return Err(Error::Config(format!(
                        "{SECTION} baseline `{text}` is not a migration version; write the text before the `_` of a migration directory, e.g. \"20250115090400\""
                    )));
                }
                config.baseline = Some(version);
                continue;
            }
            let rule = rules::find(key).ok_or_else(|| {
                Error::Config(format!(
                    "{SECTION} names an unknown rule `{key}`; the rules are listed in docs/lint-rules.md (`baseline` is the only other key)"
                ))
            })?;
            let level = value.as_str().and_then(Level::parse).ok_or_else(|| {
                Error::Config(format!("{SECTION} `{key}` must be \"allow\", \"warn\" or \"deny\", not {value}"))
            })?;
            config.overrides.insert(rule.id, level);
        }
        Ok(config)
    }

    pub fn level(&self, rule: &Rule) -> Level {
        self.overrides.get(rule.id).copied().unwrap_or(rule.default_level)
    }

    /// Sets one rule's level (as the workspace table would).
    pub fn set_level(&mut self, rule: &Rule, level: Level) {
        self.overrides.insert(rule.id, level);
    }

    /// Whether `version` is at or before the baseline, so not linted by default.
    pub fn covered_by_baseline(&self, version: &str) -> bool {
        self.baseline.as_deref().is_some_and(|baseline| version <= baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_levels_and_baseline() {
        let config = Config::parse(Some(&json!({
            "baseline": "2025-01-15-090400",
            "ban-drop-column": "warn",
            "prefer-text-field": "allow",
        })))
        .unwrap();
        assert_eq!(config.baseline.as_deref(), Some("20250115090400"));
        assert_eq!(config.level(rules::find("ban-drop-column").unwrap()), Level::Warn);
        assert_eq!(config.level(rules::find("prefer-text-field").unwrap()), Level::Allow);
        assert_eq!(config.level(rules::find("ban-drop-table").unwrap()), Level::Deny);
        assert!(config.covered_by_baseline("20250115090400"));
        assert!(config.covered_by_baseline("20250101000000"));
        assert!(!config.covered_by_baseline("20250115090401"));
    }

    #[test]
    fn rejects_mistakes_with_the_fix() {
        let cases = [
            (json!({"ban-drop-colum": "warn"}), "unknown rule `ban-drop-colum`"),
            (json!({"ban-drop-column": "error"}), "must be \"allow\", \"warn\" or \"deny\""),
            (json!({"baseline": "last week"}), "is not a migration version"),
            (json!({"baseline": 20250115}), "must be a version string"),
            (json!(["ban-drop-column"]), "must be a table"),
        ];
        for (value, expected) in cases {
            let err = Config::parse(Some(&value)).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
