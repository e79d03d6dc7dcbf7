//! Where a migration file may control transactions itself, decided once for the runner (which splits SQL text)
//! and the linter (which reads squawk's syntax tree): each classifies its statements, this module judges the
//! sequence. A transactional file may be wrapped whole in `BEGIN; … COMMIT;` (written for psql; the runner leaves
//! the wrapper out and runs the rest in its own transaction with the bookkeeping). A non-transactional file may
//! hold `BEGIN; … COMMIT;` blocks, each run as one unit. Anything else is refused before a statement runs.

/// What one statement does to the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatement {
    /// Not transaction control.
    None,
    /// `BEGIN` / `START TRANSACTION`; `plain`: without modes (isolation level, read only...).
    Begin { plain: bool },
    /// `COMMIT` / `END`; `plain`: without `AND CHAIN`.
    Commit { plain: bool },
    /// `SAVEPOINT`, `RELEASE`, `ROLLBACK TO SAVEPOINT`: meaningful only inside a block.
    Savepoint,
    /// `ROLLBACK`, `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`.
    Other,
}

impl TxStatement {
    pub fn is_control(self) -> bool {
        self != TxStatement::None
    }
}

/// How a file's transaction control is laid out (indexes into its statements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxLayout {
    /// No transaction control at all.
    None,
    /// Transactional file wrapped whole: the first statement opens, the last commits, nothing else in between.
    Wrapper { begin: usize, commit: usize },
    /// Non-transactional file with author blocks, each (begin, commit) inclusive.
    Blocks(Vec<(usize, usize)>),
}

/// Why a file's transaction control is refused: the statement at fault and a reason fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxProblem {
    pub index: usize,
    pub reason: &'static str,
}

/// Judges the sequence of statements of one file; `transactional` is the migration's `run_in_transaction`.
pub fn layout(statements: &[TxStatement], transactional: bool) -> Result<TxLayout, TxProblem> {
    let Some(first_control) = statements.iter().position(|s| s.is_control()) else {
        return Ok(TxLayout::None);
    };
    if transactional {
        return wrapper(statements, first_control);
    }
    let mut blocks = Vec::new();
    let mut open: Option<usize> = None;
    for (index, statement) in statements.iter().enumerate() {
        let problem = |reason| Err(TxProblem { index, reason });
        match (statement, open) {
            (TxStatement::None, _) => {}
            (TxStatement::Begin { .. }, None) => open = Some(index),
            (TxStatement::Begin { .. }, Some(_)) => return problem("a BEGIN inside a BEGIN … COMMIT block (blocks do not nest)"),
            (TxStatement::Commit { .. }, Some(begin)) => {
                blocks.push((begin, index));
                open = None;
            }
            (TxStatement::Commit { .. }, None) => return problem("a COMMIT without a BEGIN before it"),
            (TxStatement::Savepoint, Some(_)) => {}
            (TxStatement::Savepoint, None) => return problem("a savepoint statement outside a BEGIN … COMMIT block"),
            (TxStatement::Other, _) => {
                return problem("a ROLLBACK or two-phase-commit statement (blocks must end in COMMIT)");
            }
        }
    }
    match open {
        Some(begin) => Err(TxProblem {
            index: begin,
            reason: "a BEGIN whose block is never committed (no COMMIT after it)",
        }),
        None => Ok(TxLayout::Blocks(blocks)),
    }
}

fn wrapper(statements: &[TxStatement], first_control: usize) -> Result<TxLayout, TxProblem> {
    let last = statements.len() - 1;
    let opens = first_control == 0 && matches!(statements[0], TxStatement::Begin { .. });
    let closes = last > 0 && matches!(statements[last], TxStatement::Commit { .. });
    if opens && closes {
        if let Some(inner) = statements[1..last].iter().position(|s| s.is_control()) {
            return Err(TxProblem {
                index: inner + 1,
                reason: "transaction control inside the file's BEGIN … COMMIT wrapper",
            });
        }
        if statements[0] != (TxStatement::Begin { plain: true }) {
            return Err(TxProblem {
                index: 0,
                reason: "a BEGIN with transaction modes (the runner's own transaction cannot take them over)",
            });
        }
        if statements[last] != (TxStatement::Commit { plain: true }) {
            return Err(TxProblem {
                index: last,
                reason: "a COMMIT AND CHAIN",
            });
        }
        return Ok(TxLayout::Wrapper { begin: 0, commit: last });
    }
    // An opening BEGIN without the closing COMMIT: the statement at fault is the next control statement, if any.
    let at = if opens { statements[1..].iter().position(|s| s.is_control()).map_or(0, |i| i + 1) } else { first_control };
    let reason = match statements[at] {
        TxStatement::Begin { .. } if at == 0 => "a BEGIN without a COMMIT as the file's last statement",
        TxStatement::Begin { .. } => "a BEGIN after the first statement",
        TxStatement::Commit { .. } => "a COMMIT before the end of the file",
        TxStatement::Savepoint => "a savepoint statement",
        TxStatement::Other => "a ROLLBACK or two-phase-commit statement",
        TxStatement::None => unreachable!("a control statement"),
    };
    Err(TxProblem { index: at, reason })
}

#[cfg(test)]
mod tests {
    use super::TxStatement::{Begin, Commit, None as Sql, Other, Savepoint};
    use super::*;

    const BEGIN: TxStatement = Begin { plain: true };
    const COMMIT: TxStatement = Commit { plain: true };

    #[test]
    fn transactional_files_may_only_be_wrapped_whole() {
        assert_eq!(layout(&[Sql, Sql], true), Ok(TxLayout::None));
        assert_eq!(layout(&[BEGIN, Sql, Sql, COMMIT], true), Ok(TxLayout::Wrapper { begin: 0, commit: 3 }));
        assert_eq!(layout(&[BEGIN, COMMIT], true), Ok(TxLayout::Wrapper { begin: 0, commit: 1 }));
        assert_eq!(layout(&[BEGIN, Sql, COMMIT, Sql], true).unwrap_err(), TxProblem { index: 2, reason: "a COMMIT before the end of the file" });
        assert_eq!(layout(&[Sql, COMMIT, Sql], true).unwrap_err().reason, "a COMMIT before the end of the file");
        assert_eq!(layout(&[BEGIN, Sql, COMMIT, BEGIN, Sql, COMMIT], true).unwrap_err().index, 2);
        assert_eq!(layout(&[BEGIN, Sql, Savepoint, COMMIT], true).unwrap_err().index, 2);
        assert_eq!(layout(&[BEGIN, Sql, Other], true).unwrap_err().index, 2);
        assert_eq!(layout(&[BEGIN, Sql], true).unwrap_err().reason, "a BEGIN without a COMMIT as the file's last statement");
        assert_eq!(layout(&[Begin { plain: false }, Sql, COMMIT], true).unwrap_err().index, 0);
        assert_eq!(layout(&[BEGIN, Sql, Commit { plain: false }], true).unwrap_err().index, 2);
        assert_eq!(layout(&[BEGIN], true).unwrap_err().index, 0);
    }

    #[test]
    fn non_transactional_files_may_hold_blocks() {
        assert_eq!(layout(&[Sql], false), Ok(TxLayout::None));
        assert_eq!(
            layout(&[Sql, BEGIN, Sql, Savepoint, Sql, COMMIT, Sql, Begin { plain: false }, COMMIT], false),
            Ok(TxLayout::Blocks(vec![(1, 5), (7, 8)]))
        );
        assert_eq!(layout(&[Sql, BEGIN, Sql], false).unwrap_err().index, 1);
        assert_eq!(layout(&[BEGIN, BEGIN, COMMIT], false).unwrap_err().index, 1);
        assert_eq!(layout(&[Sql, COMMIT], false).unwrap_err().index, 1);
        assert_eq!(layout(&[Savepoint], false).unwrap_err().index, 0);
        assert_eq!(layout(&[BEGIN, Sql, Other], false).unwrap_err().index, 2);
    }
}
