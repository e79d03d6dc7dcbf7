//! A migration prepared for execution: its metadata, its statements, and the checks that must pass before any
//! of it reaches the server (transaction control inside a transactional file, for instance).

use anonmigrate_chain::{Migration, sha256_hex};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::split::{split_statements, transaction_control};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// diesel's `metadata.toml`.
#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default = "yes")]
    run_in_transaction: bool,
}

fn yes() -> bool {
    true
}

/// The statements of one direction of one migration, ready to send.
#[derive(Debug, Clone)]
pub struct Script {
    pub dir_name: String,
    pub version: String,
    pub name: String,
    pub checksum: String,
    pub file: std::path::PathBuf,
    pub transactional: bool,
    pub statements: Vec<PlannedStatement>,
}

#[derive(Debug, Clone)]
pub struct PlannedStatement {
    pub sql: String,
    /// 1-based line in the file where the statement starts.
    pub line: usize,
}

impl Script {
    pub fn prepare(migration: &Migration, direction: Direction) -> Result<Script> {
        let transactional = run_in_transaction(migration)?;
        let (file, text) = match direction {
            Direction::Up => (migration.up_path(), migration.up_sql.as_str()),
            Direction::Down => match &migration.down_sql {
                Some(text) => (migration.down_path(), text.as_str()),
                None => {
                    return Err(Error::Refused(format!(
                        "migration `{}` has no down.sql, so it cannot be reverted; write `{}` (it may be empty to only forget the migration)",
                        migration.dir_name,
                        migration.down_path().display()
                    )));
                }
            },
        };
        let statements: Vec<PlannedStatement> = split_statements(text)
            .into_iter()
            .map(|s| PlannedStatement {
                sql: s.text.to_owned(),
                line: s.line,
            })
            .collect();
        if let Some(found) = statements.iter().find_map(|s| transaction_control(&s.sql).map(|kw| (kw, s.line))) {
            let (keyword, line) = found;
            return Err(Error::Refused(format!(
                "`{}` line {line} contains `{keyword}`: the runner already wraps each migration in a transaction together with its bookkeeping, and a {keyword} inside it would commit DDL without the bookkeeping; remove the transaction control, or set `run_in_transaction = false` in metadata.toml and let each statement run on its own",
                file.display()
            )));
        }
        Ok(Script {
            dir_name: migration.dir_name.clone(),
            version: migration.version.clone(),
            name: migration.name.clone(),
            checksum: migration.checksum.clone(),
            file,
            transactional,
            statements,
        })
    }

    /// Hash of the first `count` statements, so a resumed non-transactional migration can prove the statements
    /// that already ran are unchanged even when a later one was fixed.
    pub fn prefix_hash(&self, count: usize) -> String {
        let mut joined = String::new();
        for statement in self.statements.iter().take(count) {
            joined.push_str(&statement.sql);
            joined.push('\u{0}');
        }
        sha256_hex(joined.as_bytes())
    }

    /// `line N` (or `statement i of n, line N`) for an error position inside statement `index`.
    pub fn location(&self, index: usize, position: Option<i32>) -> String {
        let statement = &self.statements[index];
        let extra_lines = position
            .and_then(|p| usize::try_from(p).ok())
            .map(|p| statement.sql.chars().take(p.saturating_sub(1)).filter(|c| *c == '\n').count())
            .unwrap_or(0);
        format!(
            "statement {} of {}, line {}",
            index + 1,
            self.statements.len(),
            statement.line + extra_lines
        )
    }
}

pub fn run_in_transaction(migration: &Migration) -> Result<bool> {
    let Some(text) = &migration.metadata else {
        return Ok(true);
    };
    let metadata: Metadata = toml::from_str(text).map_err(|e| {
        Error::Config(format!(
            "cannot parse `{}`: {}; diesel's format is `run_in_transaction = false`",
            migration.dir.join("metadata.toml").display(),
            e.message()
        ))
    })?;
    Ok(metadata.run_in_transaction)
}
