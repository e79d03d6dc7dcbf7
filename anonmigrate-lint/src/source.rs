//! One SQL file as the linter sees it: statements parsed by libpg_query (PostgreSQL's own grammar) with their
//! positions, and the `-- anonmigrate:` comments with the statement each belongs to.
//!
//! The whole file is parsed at once. When PostgreSQL's parser rejects it, the file is split at the semicolons of
//! PostgreSQL's own lexer and each statement is parsed alone, so one bad statement is reported without hiding the
//! others.

use pg_query::NodeEnum;
use pg_query::protobuf::{ScanToken, Token};

/// A statement of the file.
#[derive(Debug)]
pub struct Statement {
    /// Byte offset of its first token (leading comments excluded).
    pub start: usize,
    /// Byte offset just past its last token (the `;` excluded).
    pub end: usize,
    /// Offset that parse-tree locations inside this statement are relative to.
    pub base: usize,
    pub parsed: Parsed,
}

#[derive(Debug)]
pub enum Parsed {
    Tree(Box<NodeEnum>),
    /// PostgreSQL's parser rejected it: its message.
    Unparsable(String),
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
    line_starts: Vec<usize>,
    pub statements: Vec<Statement>,
    pub directives: Vec<Directive>,
}

const MARKER: &str = "anonmigrate:";

impl SourceFile {
    pub fn parse(text: &str) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let scanned = pg_query::scan(text);
        let tokens = scanned.as_ref().ok().map(|scan| scan.tokens.clone());
        let statements = match pg_query::parse(text, 0) {
            Ok(result) => statements_of(result.protobuf.stmts, text, 0, tokens.as_deref()),
            Err(error) => {
                let message = match scanned {
                    Err(scan_error) => parse_message(scan_error),
                    Ok(_) => parse_message(error),
                };
                statement_by_statement(text, tokens.as_deref(), message)
            }
        };
        let mut file = SourceFile { line_starts, statements, directives: Vec::new() };
        file.directives = match &tokens {
            Some(tokens) => tokens
                .iter()
                .filter(|t| is_comment(t))
                .filter_map(|t| directive_text(&text[t.start as usize..t.end as usize]).map(|d| (t.start as usize, d)))
                .collect(),
            None => line_comments(text),
        }
        .into_iter()
        .map(|(offset, text)| Directive { offset, text, statement: file.statement_for_comment(offset) })
        .collect();
        file
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
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

fn statements_of(
    raws: Vec<pg_query::protobuf::RawStmt>,
    text: &str,
    base: usize,
    tokens: Option<&[ScanToken]>,
) -> Vec<Statement> {
    raws.into_iter()
        .filter_map(|raw| {
            let node = raw.stmt?.node?;
            let start = base + raw.stmt_location as usize;
            let end = if raw.stmt_len > 0 {
                start + raw.stmt_len as usize
            } else {
                // The last statement runs to the end of the text: stop at its last real token.
                tokens
                    .and_then(|tokens| tokens.iter().rev().find(|t| !is_comment(t)))
                    .map_or(base + text.trim_end().len(), |t| base + t.end as usize)
                    .max(start)
            };
            Some(Statement { start, end, base, parsed: Parsed::Tree(Box::new(node)) })
        })
        .collect()
}

/// The fallback when the file as a whole does not parse: statements split at the `;` tokens of PostgreSQL's own
/// lexer (not those inside a `BEGIN ATOMIC ... END` body), each parsed on its own. When even the lexer fails (an
/// unterminated string or comment), the statement boundaries cannot be known, and the file is one unparsable unit.
fn statement_by_statement(text: &str, tokens: Option<&[ScanToken]>, whole_file_error: String) -> Vec<Statement> {
    let Some(tokens) = tokens else {
        let start = text.len() - text.trim_start().len();
        return vec![Statement { start, end: text.trim_end().len().max(start), base: 0, parsed: Parsed::Unparsable(whole_file_error) }];
    };
    let mut out = Vec::new();
    for (start, end) in split_at_semicolons(tokens) {
        let piece = &text[start..end];
        match pg_query::parse(piece, 0) {
            Ok(result) => {
                let piece_tokens = pg_query::scan(piece).ok().map(|scan| scan.tokens);
                out.extend(statements_of(result.protobuf.stmts, piece, start, piece_tokens.as_deref()));
            }
            Err(error) => out.push(Statement { start, end, base: start, parsed: Parsed::Unparsable(parse_message(error)) }),
        }
    }
    out
}

/// (first token start, last token end) of each statement, comments excluded.
fn split_at_semicolons(tokens: &[ScanToken]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let (mut atomic_depth, mut case_depth) = (0u32, 0u32);
    let mut previous = Token::Nul as i32;
    for token in tokens.iter().filter(|t| !is_comment(t)) {
        let (start, end) = (token.start as usize, token.end as usize);
        if token.token == Token::Ascii59 as i32 && atomic_depth == 0 {
            out.extend(current.take());
        } else {
            current = Some((current.map_or(start, |(s, _)| s), end));
            if token.token == Token::Atomic as i32 && previous == Token::BeginP as i32 {
                atomic_depth += 1;
            } else if atomic_depth > 0 && token.token == Token::Case as i32 {
                case_depth += 1;
            } else if atomic_depth > 0 && token.token == Token::EndP as i32 {
                if case_depth > 0 { case_depth -= 1 } else { atomic_depth -= 1 }
            }
        }
        previous = token.token;
    }
    out.extend(current);
    out
}

fn is_comment(token: &ScanToken) -> bool {
    token.token == Token::SqlComment as i32 || token.token == Token::CComment as i32
}

fn parse_message(error: pg_query::Error) -> String {
    match error {
        pg_query::Error::Parse(message) | pg_query::Error::Scan(message) => message,
        other => other.to_string(),
    }
}

/// The directive inside a comment, if it is one.
fn directive_text(comment: &str) -> Option<String> {
    let body = comment.strip_prefix("--").or_else(|| comment.strip_prefix("/*").map(|c| c.trim_end_matches("*/")))?;
    let body = body.trim_start_matches('-').trim();
    body.strip_prefix(MARKER).map(|rest| rest.trim().to_owned())
}

/// Without a token stream (the scanner rejected the file): `--` comments found line by line.
fn line_comments(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        if let Some(at) = line.find("--")
            && let Some(directive) = directive_text(&line[at..])
        {
            out.push((line_start + at, directive));
        }
        line_start += line.len();
    }
    out
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
                let kind = match &s.parsed {
                    Parsed::Tree(_) => "ok".to_owned(),
                    Parsed::Unparsable(message) => format!("unparsable: {message}"),
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
        assert_eq!(
            describe(text),
            [
                "line 1: \"CREATE TABLE a (id int)\" ok",
                "line 3: \"CREATE TABLE b (id int\" unparsable: syntax error at end of input",
                "line 4: \"DROP TABLE a\" ok",
                "directive line 5 -> None: allow x at the end",
            ]
        );
    }

    #[test]
    fn an_unterminated_string_makes_the_whole_file_one_unparsable_unit() {
        let text = "SELECT 1;\n-- anonmigrate:allow y why\nSELECT 'oops;\n";
        let lines = describe(text);
        assert!(lines[0].starts_with("line 1: \"SELECT 1;\\n-- anonmigrate:allow y why\\nSELECT 'oops;\" unparsable: unterminated quoted string"), "{lines:?}");
        assert_eq!(lines[1], "directive line 2 -> Some(0): allow y why");
    }
}
