//! One SQL file as the linter sees it: squawk's error-tolerant parse, the statements with their positions (and
//! whether the parser had to recover inside them), and the `-- anonmigrate:` comments with the statement each
//! belongs to.

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{Parse, SyntaxKind, SyntaxNode, SyntaxToken};

/// A statement of the file.
#[derive(Debug)]
pub struct Statement {
    pub stmt: ast::Stmt,
    /// Byte offset of its first token (leading comments excluded).
    pub start: usize,
    /// Byte offset just past its last token (the `;` excluded).
    pub end: usize,
    /// The parser's complaint, when it had to recover inside this statement: nothing in it is checked by our own
    /// rules, and the server would reject it too.
    pub error: Option<String>,
}

/// An `-- anonmigrate:...` (or `/* anonmigrate:... */`) comment.
#[derive(Debug, Clone)]
pub struct Directive {
    pub offset: usize,
    /// The comment text after `anonmigrate:`.
    pub text: String,
    /// Index of the statement it applies to: the one it is inside or ends the line of, else the next one.
    pub statement: Option<usize>,
}

#[derive(Debug)]
pub struct SourceFile {
    pub parse: Parse<squawk_syntax::SourceFile>,
    line_starts: Vec<usize>,
    pub statements: Vec<Statement>,
    pub directives: Vec<Directive>,
}

const MARKER: &str = "anonmigrate:";

impl SourceFile {
    /// One file (the tests'; a lint run parses through [`SourceFile::parse_all`]).
    #[cfg(test)]
    pub fn parse(text: &str) -> SourceFile {
        SourceFile::from_parse(text, squawk_syntax::SourceFile::parse(text))
    }

    /// Parses many files on every core (parsing is most of a lint run; the trees are `Send`, the nodes over them
    /// are not, so the files are put together on the calling thread).
    pub fn parse_all<'a>(texts: impl ExactSizeIterator<Item = &'a str>) -> Vec<SourceFile> {
        let texts: Vec<&str> = texts.collect();
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(texts.len().div_ceil(64)).max(1);
        let chunk = texts.len().div_ceil(workers).max(1);
        let parses: Vec<Parse<squawk_syntax::SourceFile>> = std::thread::scope(|scope| {
            let handles: Vec<_> = texts
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(|t| squawk_syntax::SourceFile::parse(t)).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        });
        texts.into_iter().zip(parses).map(|(text, parse)| SourceFile::from_parse(text, parse)).collect()
    }

    fn from_parse(text: &str, parse: Parse<squawk_syntax::SourceFile>) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut statements: Vec<Statement> = parse
            .tree()
            .stmts()
            .filter_map(|stmt| {
                let (start, end) = significant_token_range(stmt.syntax())?;
                Some(Statement { stmt, start, end, error: None })
            })
            .collect();
        let mut orphan_errors = Vec::new();
        for error in parse.errors() {
            let at = usize::from(error.range().start());
            // An error at a statement's end (a missing `)` or `;`) belongs to that statement, not the next one.
            let index = statements.iter().position(|s| at >= s.start && at <= s.end);
            match index {
                Some(i) => {
                    statements[i].error.get_or_insert_with(|| error.message().to_owned());
                }
                None => orphan_errors.push((at, error.message().to_owned())),
            }
        }
        // Errors outside every statement (text the parser could not turn into one) still name their line.
        for (at, message) in orphan_errors {
            let index = statements.partition_point(|s| s.start <= at).saturating_sub(1);
            match statements.get_mut(index) {
                Some(s) => {
                    s.error.get_or_insert(message);
                }
                None => {}
            }
        }
        // Walking every token of a file costs as much as a rule, and most files have no directive at all.
        let comments: Vec<(usize, String)> = if text.contains(MARKER) {
            parse
                .syntax_node()
                .descendants_with_tokens()
                .filter_map(|e| e.into_token())
                .filter(|t| t.kind() == SyntaxKind::COMMENT)
                .filter_map(|t| directive_text(t.text()).map(|d| (usize::from(t.text_range().start()), d)))
                .collect()
        } else {
            Vec::new()
        };
        let mut file = SourceFile { parse, line_starts, statements, directives: Vec::new() };
        file.directives = comments
            .into_iter()
            .map(|(offset, text)| Directive { offset, text, statement: file.statement_for_comment(offset) })
            .collect();
        file
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// The statement a byte offset falls in (or the nearest one before it).
    pub fn statement_at(&self, offset: usize) -> Option<usize> {
        self.statements.partition_point(|s| s.start <= offset).checked_sub(1)
    }

    fn statement_for_comment(&self, offset: usize) -> Option<usize> {
        let following = self.statements.partition_point(|s| s.start <= offset);
        if let Some(index) = following.checked_sub(1) {
            let previous = &self.statements[index];
            // Inside the statement, or a trailing comment on the line where it ends.
            if offset < previous.end || self.line_of(previous.end.saturating_sub(1)) == self.line_of(offset) {
                return Some(index);
            }
        }
        (following < self.statements.len()).then_some(following)
    }
}

/// Byte offsets of a statement's first token and the end of its last one, trivia and the closing `;` excluded.
/// Stops at the first significant token from each end instead of collecting every token of the statement.
fn significant_token_range(node: &SyntaxNode) -> Option<(usize, usize)> {
    let range = node.text_range();
    let significant = |t: &SyntaxToken| !t.kind().is_trivia() && t.kind() != SyntaxKind::SEMICOLON;
    let inside = |t: &SyntaxToken| range.contains_range(t.text_range());
    let first = node.descendants_with_tokens().filter_map(|e| e.into_token()).find(significant)?;
    // Backwards by offset: rowan's `last_token`/`prev_token` stop at the empty nodes squawk's parser leaves.
    let mut end = range.end();
    let last = loop {
        let token = node.token_at_offset(end).left_biased().filter(inside)?;
        if significant(&token) {
            break token;
        }
        // A zero-width token would not move `end`; none is significant, so there is nothing before it to find.
        if token.text_range().is_empty() {
            return None;
        }
        end = token.text_range().start();
    };
    Some((usize::from(first.text_range().start()), usize::from(last.text_range().end())))
}

/// The directive inside a comment, if it is one.
fn directive_text(comment: &str) -> Option<String> {
    let body = comment.strip_prefix("--").or_else(|| comment.strip_prefix("/*").map(|c| c.trim_end_matches("*/")))?;
    let body = body.trim_start_matches('-').trim();
    body.strip_prefix(MARKER).map(|rest| rest.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(text: &str) -> Vec<String> {
        let file = SourceFile::parse(text);
        let mut out: Vec<String> = file
            .statements
            .iter()
            .map(|s| {
                let kind = match &s.error {
                    None => "ok".to_owned(),
                    Some(message) => format!("unparsable: {message}"),
                };
                format!("line {}: {:?} {kind}", file.line_of(s.start), &text[s.start..s.end])
            })
            .collect();
        out.extend(file.directives.iter().map(|d| format!("directive line {} -> {:?}: {}", file.line_of(d.offset), d.statement, d.text)));
        out
    }

    #[test]
    fn statements_and_directives_with_positions() {
        let text = "-- anonmigrate:allow a first\nCREATE TABLE a (id int);\n\nALTER TABLE a\n  ADD COLUMN b text; -- anonmigrate:allow b second\n/* anonmigrate:allow c third */\nSELECT 1 -- anonmigrate:allow d fourth\n";
        assert_eq!(
            describe(text),
            [
                "line 2: \"CREATE TABLE a (id int)\" ok",
                "line 4: \"ALTER TABLE a\\n  ADD COLUMN b text\" ok",
                "line 7: \"SELECT 1\" ok",
                "directive line 1 -> Some(0): allow a first",
                "directive line 5 -> Some(1): allow b second",
                "directive line 6 -> Some(2): allow c third",
                "directive line 7 -> Some(2): allow d fourth",
            ]
        );
    }

    #[test]
    fn a_bad_statement_is_reported_and_the_others_still_parse() {
        let text = "CREATE TABLE a (id int);\n-- note\nCREATE TABLE b (id int;\nDROP TABLE a;\n-- anonmigrate:allow x at the end\n";
        let lines = describe(text);
        assert_eq!(lines[0], "line 1: \"CREATE TABLE a (id int)\" ok");
        assert!(lines[1].starts_with("line 3: ") && lines[1].contains("unparsable: "), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("line 4: \"DROP TABLE a\" ok")), "{lines:?}");
        assert_eq!(lines.last().unwrap(), "directive line 5 -> None: allow x at the end");
    }
}
