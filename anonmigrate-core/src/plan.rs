//! A migration prepared for execution: its metadata, its statements, and the checks that must pass before any
//! of it reaches the server (transaction control the runner cannot honour, for instance), and the file's own
//! transaction layout: a whole-file `BEGIN … COMMIT` wrapper left out, or a non-transactional file's blocks.

use anonmigrate_chain::transactions::{TxLayout, TxStatement, layout};
use anonmigrate_chain::{Migration, sha256_hex};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::split::{requires_no_transaction, split_statements, transaction_control, tx_statement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// diesel's `metadata.toml`, read as diesel_migrations reads it: without the file a migration is
/// transactional; a file without `run_in_transaction` (an empty one included) means `false`, serde's default for
/// a bool; other keys are ignored. (diesel also treats an unparsable file as absent; that stays an error here.)
#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default)]
    run_in_transaction: bool,
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
    /// Lines of the `BEGIN` and `COMMIT` that wrapped a transactional file whole; they are not sent.
    pub wrapper: Option<(usize, usize)>,
    /// Non-transactional only: the author's `BEGIN … COMMIT` blocks, as inclusive statement indexes; each runs as
    /// one unit, its progress recorded inside it.
    pub blocks: Vec<(usize, usize)>,
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
            Direction::Down => match irreversible(migration) {
                Some(why) => return Err(refused_irreversible(migration, why)),
                None => (migration.down_path(), migration.down_sql.as_deref().unwrap_or_default()),
            },
        };
        let mut statements: Vec<PlannedStatement> = split_statements(text)
            .into_iter()
            .map(|s| PlannedStatement {
                sql: s.text.to_owned(),
                line: s.line,
            })
            .collect();
        let kinds: Vec<TxStatement> = statements.iter().map(|s| tx_statement(&s.sql)).collect();
        let mut wrapper = None;
        let mut blocks = Vec::new();
        match layout(&kinds, transactional) {
            Ok(TxLayout::None) => {}
            Ok(TxLayout::Wrapper { begin, commit }) => {
                // Written for psql: the runner's own transaction (with the bookkeeping) takes the wrapper's place.
                wrapper = Some((statements[begin].line, statements[commit].line));
                statements.remove(commit);
                statements.remove(begin);
            }
            Ok(TxLayout::Blocks(found)) => {
                if let Some(statement) = found
                    .iter()
                    .flat_map(|&(begin, commit)| &statements[begin..=commit])
                    .find(|s| requires_no_transaction(&s.sql))
                {
                    return Err(Error::Refused(format!(
                        "`{}` line {}: this statement cannot run inside a transaction block, and it is inside a BEGIN … COMMIT block; move it out of the block",
                        file.display(),
                        statement.line
                    )));
                }
                blocks = found;
            }
            Err(problem) => return Err(refused_control(&file, &statements[problem.index], problem.reason, transactional)),
        }
        Ok(Script {
            dir_name: migration.dir_name.clone(),
            version: migration.version.clone(),
            name: migration.name.clone(),
            checksum: migration.checksum.clone(),
            file,
            transactional,
            statements,
            wrapper,
            blocks,
        })
    }

    /// The author block (begin, commit statement indexes) that `index` is in, for a non-transactional script.
    pub fn block_of(&self, index: usize) -> Option<(usize, usize)> {
        self.blocks.iter().copied().find(|&(begin, commit)| (begin..=commit).contains(&index))
    }

    /// Whether statement `index` is the COMMIT that closes an author block.
    pub fn closes_block(&self, index: usize) -> bool {
        self.blocks.iter().any(|&(_, commit)| commit == index)
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

    /// [`Script::prefix_hash`] of every prefix at once (element `k`: the first `k` statements), in one pass: for
    /// loops that record progress after each statement.
    pub fn prefix_hashes(&self) -> Vec<String> {
        anonmigrate_chain::prefix_hashes(self.statements.iter().map(|s| s.sql.as_str()))
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

/// The second line of the down.sql stub `generate` writes (after diesel's own first line), so a reader knows
/// why `revert` refuses the migration until the file holds SQL.
pub const DOWN_STUB: &str = "-- This file should undo anything in `up.sql`\n-- Until it holds SQL, the migration is irreversible: `revert` and `redo` refuse it.\n";

/// Why a migration cannot be reverted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Irreversible {
    NoDownSql,
    /// down.sql is empty or holds only comments: running it would forget the migration and keep its changes.
    NothingToRun,
    /// down.sql is still the stub `generate` (ours or diesel's) wrote.
    Stub,
}

impl Irreversible {
    pub fn describe(self) -> &'static str {
        match self {
            Irreversible::NoDownSql => "it has no down.sql",
            Irreversible::NothingToRun => "its down.sql is empty or only comments",
            Irreversible::Stub => "its down.sql is still the stub `generate` wrote (only comments)",
        }
    }
}

/// `None` when the migration's down.sql has at least one statement to run, or when its up.sql has none either
/// (an imported Alembic merge revision, a placeholder): there is nothing to undo, so forgetting it loses nothing.
pub fn irreversible(migration: &Migration) -> Option<Irreversible> {
    let Some(text) = &migration.down_sql else {
        return Some(Irreversible::NoDownSql);
    };
    if !split_statements(text).is_empty() || split_statements(&migration.up_sql).is_empty() {
        return None;
    }
    let stub = text.contains(DOWN_STUB.lines().nth(1).unwrap_or_default()) || text.trim() == "-- This file should undo anything in `up.sql`";
    Some(if stub { Irreversible::Stub } else { Irreversible::NothingToRun })
}

/// Refuses to revert an irreversible migration, before anything runs.
pub fn refused_irreversible(migration: &Migration, why: Irreversible) -> Error {
    Error::Refused(format!(
        "migration `{}` is irreversible: {}, so reverting it would only forget it while its changes stay in the database; nothing was changed; write the SQL that undoes up.sql in `{}`, or forget the migration without undoing it with `cargo anonmigrate stamp --delete {}`",
        migration.dir_name,
        why.describe(),
        migration.down_path().display(),
        migration.version
    ))
}

/// Transaction control the runner cannot honour, refused before anything runs.
fn refused_control(file: &std::path::Path, statement: &PlannedStatement, reason: &str, transactional: bool) -> Error {
    let keyword = transaction_control(&statement.sql).unwrap_or("transaction control");
    let rule = if transactional {
        "the runner runs each migration in one transaction together with its bookkeeping, so a file may only be wrapped whole in `BEGIN; … COMMIT;` (the wrapper is then left out); remove the transaction control, or set `run_in_transaction = false` in metadata.toml and put the statements that belong together in `BEGIN; … COMMIT;` blocks"
    } else {
        "with `run_in_transaction = false` each `BEGIN; … COMMIT;` block runs as one unit and every other statement on its own; end each block with COMMIT (savepoints only inside a block)"
    };
    Error::Refused(format!("`{}` line {}: {reason} (`{keyword}`): {rule}", file.display(), statement.line))
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
