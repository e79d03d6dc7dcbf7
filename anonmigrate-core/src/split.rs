//! Splits PostgreSQL migration scripts into statements and classifies them for transaction handling.
//!
//! A migration runner has to send statements one at a time. Some of them
//! must not be wrapped in a transaction, and some of them open or close one.
//! This module follows PostgreSQL's lexical rules closely enough that a `;`
//! inside a string, a quoted identifier, a dollar-quoted body, a comment or a
//! SQL-standard function body (`BEGIN ATOMIC ... END`) does not end the
//! statement.
//!
//! It assumes `standard_conforming_strings = on` (the default since 9.1), so
//! a backslash escapes characters only in `E'...'` strings.
//!
//! Like psql, a `;` inside parentheses does not end a statement. This keeps
//! multi-action rules such as `CREATE RULE ... DO (INSERT ...; UPDATE ...)`
//! whole. An unbalanced `(` therefore joins the rest of the script into one
//! statement, which the server then rejects, as it would reject the
//! statement anyway.
//!
//! Input that does not lex (an unterminated quote or comment) never panics.
//! The rest of the input becomes part of the current statement, so the
//! server reports the error at the right place.

use anonmigrate_chain::transactions::TxStatement;

/// One SQL statement found in a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement exactly as written in the source, without the
    /// terminating `;`. Only whitespace is trimmed from the ends. Comments,
    /// including leading ones, are kept, so the text can be shown to users
    /// exactly as they wrote it.
    pub text: &'a str,
    /// Byte offset of `text` within the original script.
    pub byte_offset: usize,
    /// 1-based line number on which `text` starts.
    pub line: usize,
}

// PostgreSQL's whitespace set. Unicode spaces such as U+00A0 are not
// whitespace to the server, so trimming them would alter the statement.
const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

// Bytes >= 0x80 count as identifier characters, as in the server's lexer.
// Because of this, a multi-byte UTF-8 character is never split, and every
// token boundary falls on a char boundary.
const fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

// `$` may continue an identifier. This is why `foo$bar$` is a single name
// and does not open a dollar quote.
const fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

// Dollar-quote tags may not contain `$`, or the closing delimiter could not
// be recognised.
const fn is_tag_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Word,
    Semicolon,
    Open,
    Close,
    Comment,
    /// Literals, quoted identifiers, operators, parameters.
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// A minimal tokenizer. It knows only what is needed to find statement
/// boundaries and leading keywords. It does not validate anything.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }
}

fn scan_while(b: &[u8], mut i: usize, pred: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && pred(b[i]) {
        i += 1;
    }
    i
}

/// Returns the index just past the closing quote, or the end of input if
/// the quote is never closed.
fn skip_quoted(b: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' if backslash_escapes => i += 2,
            c if c == quote => {
                if b.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// `i` points just past the opening `/*`. PostgreSQL nests block comments,
/// unlike the SQL standard and most other databases, so depth is counted.
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// If a dollar-quote delimiter (`$$` or `$tag$`) starts at `i`, returns the
/// index just past it. A tag that starts with a digit is not a delimiter,
/// so `$1` stays a positional parameter.
fn dollar_delimiter_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if j < b.len() && is_ident_start(b[j]) {
        j = scan_while(b, j + 1, is_tag_cont);
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1)
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let b = self.src.as_bytes();
        let start = scan_while(b, self.pos, is_space);
        if start >= b.len() {
            self.pos = b.len();
            return None;
        }
        let next = b.get(start + 1).copied();
        let (kind, end) = match b[start] {
            // The server also ends `--` comments at a bare CR.
            b'-' if next == Some(b'-') => (
                Kind::Comment,
                scan_while(b, start + 2, |c| c != b'\n' && c != b'\r'),
            ),
            b'/' if next == Some(b'*') => (Kind::Comment, skip_block_comment(b, start + 2)),
            b'\'' => (Kind::Other, skip_quoted(b, start + 1, b'\'', false)),
            b'"' => (Kind::Other, skip_quoted(b, start + 1, b'"', false)),
            b'$' => match dollar_delimiter_end(b, start) {
                Some(body) => {
                    let delim = &self.src[start..body];
                    let end = self.src[body..]
                        .find(delim)
                        .map_or(b.len(), |p| body + p + delim.len());
                    (Kind::Other, end)
                }
                None => (
                    Kind::Other,
                    scan_while(b, start + 1, |c| c.is_ascii_digit()),
                ),
            },
            b';' => (Kind::Semicolon, start + 1),
            b'(' => (Kind::Open, start + 1),
            b')' => (Kind::Close, start + 1),
            c if is_ident_start(c) => {
                let end = scan_while(b, start + 1, is_ident_cont);
                // The `E` prefix counts only as a whole token. In `name'x'`
                // the quote begins an ordinary string.
                if end == start + 1 && (c == b'e' || c == b'E') && b.get(end) == Some(&b'\'') {
                    (Kind::Other, skip_quoted(b, end + 1, b'\'', true))
                } else {
                    (Kind::Word, end)
                }
            }
            // Numbers are consumed whole, so the `e5` in `1e5` is not read
            // as a word.
            c if c.is_ascii_digit() => (
                Kind::Other,
                scan_while(b, start + 1, |c| {
                    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
                }),
            ),
            // Everything else is a single ASCII byte, because bytes >= 0x80
            // go to the identifier branch above.
            _ => (Kind::Other, start + 1),
        };
        // A backslash escape at the very end can step past the input.
        let end = end.min(b.len());
        self.pos = end;
        Some(Token { kind, start, end })
    }
}

/// Tracks line numbers in one forward pass. Statements come in order, so
/// the script is scanned only once rather than once per statement.
struct LineCounter<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl LineCounter<'_> {
    fn line_at(&mut self, offset: usize) -> usize {
        self.line += self.bytes[self.pos..offset]
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        self.pos = offset;
        self.line
    }
}

/// Splits a script into statements at top-level semicolons.
///
/// Empty statements and statements made only of comments are dropped. The
/// last statement does not need a terminating `;`.
pub fn split_statements(sql: &str) -> Vec<Statement<'_>> {
    let mut out = Vec::new();
    let mut lines = LineCounter {
        bytes: sql.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut emit = |seg_start: usize, content_end: usize, seg_end: usize| {
        let seg = &sql[seg_start..seg_end];
        let start = seg_start
            + (seg.len()
                - seg
                    .trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8))
                    .len());
        // Never trim back into the last real token. If that token is an
        // unterminated literal, its trailing spaces belong to the value.
        let end = (seg_start
            + seg
                .trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8))
                .len())
        .max(content_end);
        out.push(Statement {
            text: &sql[start..end],
            byte_offset: start,
            line: lines.line_at(start),
        });
    };

    let mut seg_start = 0;
    // End of the last token that is not a comment. `None` means the segment
    // so far is empty or only comments, and will be dropped.
    let mut content_end: Option<usize> = None;
    let mut paren_depth = 0usize;
    // While > 0 we are inside `BEGIN ATOMIC ... END`. CASE ... END is
    // counted too, because its END would otherwise close the body early.
    let mut atomic_depth = 0usize;
    let mut after_begin = false;

    for tok in Lexer::new(sql) {
        if tok.kind == Kind::Comment {
            continue;
        }
        let prev_was_begin = std::mem::replace(&mut after_begin, false);
        match tok.kind {
            Kind::Semicolon if paren_depth == 0 && atomic_depth == 0 => {
                if let Some(end) = content_end.take() {
                    emit(seg_start, end, tok.start);
                }
                seg_start = tok.end;
                continue;
            }
            Kind::Open => paren_depth += 1,
            // A stray `)` must not stop later `;` from splitting.
            Kind::Close => paren_depth = paren_depth.saturating_sub(1),
            Kind::Word => {
                let w = &sql[tok.start..tok.end];
                if prev_was_begin && w.eq_ignore_ascii_case("atomic") {
                    atomic_depth += 1;
                } else if w.eq_ignore_ascii_case("begin") {
                    after_begin = true;
                } else if atomic_depth > 0 && w.eq_ignore_ascii_case("case") {
                    atomic_depth += 1;
                } else if atomic_depth > 0 && w.eq_ignore_ascii_case("end") {
                    atomic_depth -= 1;
                }
            }
            _ => {}
        }
        content_end = Some(tok.end);
    }
    if let Some(end) = content_end {
        emit(seg_start, end, sql.len());
    }
    out
}

/// Significant tokens (comments skipped) as `(kind, text)`, at most `limit`.
fn tokens(stmt: &str, limit: usize) -> Vec<(Kind, &str)> {
    Lexer::new(stmt)
        .filter(|t| t.kind != Kind::Comment)
        .take(limit)
        .map(|t| (t.kind, &stmt[t.start..t.end]))
        .collect()
}

fn is_kw(toks: &[(Kind, &str)], i: usize, kw: &str) -> bool {
    matches!(toks.get(i), Some((Kind::Word, w)) if w.eq_ignore_ascii_case(kw))
}

fn first_keyword(toks: &[(Kind, &str)]) -> Option<String> {
    match toks.first() {
        Some((Kind::Word, w)) => Some(w.to_ascii_lowercase()),
        _ => None,
    }
}

/// True when the statement only defines objects that `check`'s schema fingerprint covers (tables, indexes, views,
/// sequences, types, functions, triggers, schemas, extensions, policies, rules, aggregates), or sets privileges,
/// comments or session settings: it writes no rows and touches nothing global to the cluster (roles, tablespaces,
/// databases), which event triggers cannot see. `false` for anything else and anything not recognised (`DO`,
/// `SELECT`, which may call functions that write, `CREATE TEMP TABLE`, `CREATE STATISTICS`, ...); `true` for a
/// statement that is only a comment.
pub fn changes_schema_only(stmt: &str) -> bool {
    const KINDS: &[&str] = &[
        "table", "index", "view", "sequence", "type", "domain", "function", "procedure", "trigger", "schema", "extension",
        "policy", "rule", "aggregate",
    ];
    const MODIFIERS: &[&str] = &["unique", "constraint", "materialized", "unlogged", "recursive", "foreign"];
    let t = tokens(stmt, 8);
    let kw = |i, w| is_kw(&t, i, w);
    let Some(first) = first_keyword(&t) else {
        return t.is_empty();
    };
    // A psql-style `BEGIN` … `COMMIT` around the file changes nothing the second time either.
    if matches!(transaction_control(stmt), Some("BEGIN" | "START TRANSACTION" | "COMMIT")) {
        return true;
    }
    match first.as_str() {
        "create" | "alter" | "drop" => {
            let mut i = 1;
            if kw(i, "or") && kw(i + 1, "replace") {
                i += 2;
            }
            while MODIFIERS.iter().any(|m| kw(i, m)) {
                i += 1;
            }
            KINDS.iter().any(|k| kw(i, k))
        }
        "comment" => kw(1, "on"),
        "grant" | "revoke" | "set" | "reset" => true,
        _ => false,
    }
}

/// Classifies transaction-control statements.
///
/// The result is normalised by meaning, so callers need not know the
/// synonyms. `END` is reported as `"COMMIT"` and `ABORT` as `"ROLLBACK"`.
/// The other results are `"BEGIN"`, `"START TRANSACTION"`,
/// `"COMMIT PREPARED"`, `"ROLLBACK PREPARED"`, `"ROLLBACK TO SAVEPOINT"`
/// (which does not end the transaction), `"SAVEPOINT"`, `"RELEASE"` and
/// `"PREPARE TRANSACTION"`. `BEGIN ATOMIC` and `DO` blocks are not
/// transaction control.
pub fn transaction_control(stmt: &str) -> Option<&'static str> {
    let t = tokens(stmt, 4);
    let kw = |i, w| is_kw(&t, i, w);
    let result = match first_keyword(&t)?.as_str() {
        "begin" if kw(1, "atomic") => return None,
        "begin" => "BEGIN",
        "start" if kw(1, "transaction") => "START TRANSACTION",
        "commit" if kw(1, "prepared") => "COMMIT PREPARED",
        "commit" | "end" => "COMMIT",
        "rollback" if kw(1, "prepared") => "ROLLBACK PREPARED",
        "rollback" if kw(1, "to") || ((kw(1, "work") || kw(1, "transaction")) && kw(2, "to")) => {
            "ROLLBACK TO SAVEPOINT"
        }
        "rollback" | "abort" => "ROLLBACK",
        "savepoint" => "SAVEPOINT",
        "release" => "RELEASE",
        "prepare" if kw(1, "transaction") => "PREPARE TRANSACTION",
        _ => return None,
    };
    Some(result)
}

/// [`transaction_control`] as the kind [`anonmigrate_chain::transactions::layout`] judges. A `BEGIN` or `COMMIT`
/// is plain when it holds nothing but its keywords (`BEGIN WORK`, `END TRANSACTION`; no modes, no `AND CHAIN`).
pub fn tx_statement(stmt: &str) -> TxStatement {
    let Some(kind) = transaction_control(stmt) else {
        return TxStatement::None;
    };
    let plain = || {
        tokens(stmt, 8).iter().all(|(kind, word)| {
            *kind == Kind::Word && ["begin", "start", "commit", "end", "work", "transaction"].iter().any(|k| word.eq_ignore_ascii_case(k))
        })
    };
    match kind {
        "BEGIN" | "START TRANSACTION" => TxStatement::Begin { plain: plain() },
        "COMMIT" => TxStatement::Commit { plain: plain() },
        "SAVEPOINT" | "RELEASE" | "ROLLBACK TO SAVEPOINT" => TxStatement::Savepoint,
        _ => TxStatement::Other,
    }
}

fn is_false(text: &str) -> bool {
    let v = text.trim_matches('\'');
    ["false", "off", "0", "no"]
        .iter()
        .any(|f| v.eq_ignore_ascii_case(f))
}

/// Handles `name = false`, as written in `WITH (...)` option lists.
fn option_disabled(toks: &[(Kind, &str)], name: &str) -> bool {
    toks.windows(3).any(|w| {
        matches!(w[0], (Kind::Word, n) if n.eq_ignore_ascii_case(name))
            && w[1].1 == "="
            && is_false(w[2].1)
    })
}

/// True if CONCURRENTLY appears and is not followed by an explicit false,
/// as in `REINDEX (CONCURRENTLY false) ...`. CONCURRENTLY is a reserved
/// word, so it cannot be an unquoted object name.
fn concurrently_enabled(toks: &[(Kind, &str)]) -> bool {
    toks.iter().enumerate().any(|(i, (k, w))| {
        *k == Kind::Word
            && w.eq_ignore_ascii_case("concurrently")
            && !toks.get(i + 1).is_some_and(|(_, v)| is_false(v))
    })
}

fn contains_kw_pair(toks: &[(Kind, &str)], a: &str, b: &str) -> bool {
    (0..toks.len()).any(|i| is_kw(toks, i, a) && is_kw(toks, i + 1, b))
}

/// True when the server refuses to run the statement inside a transaction
/// block, so the runner must execute it on its own.
///
/// When the answer depends on state we cannot see, this errs towards `true`.
/// Examples are whether a subscription owns a replication slot, or whether
/// a REINDEX target is partitioned. Running a statement outside a
/// transaction only costs atomicity. Running it inside one fails the
/// migration. `ALTER TYPE ... ADD VALUE` is allowed in a transaction since
/// PostgreSQL 12, so it is `false`.
pub fn requires_no_transaction(stmt: &str) -> bool {
    let t = tokens(stmt, usize::MAX);
    let kw = |i, w| is_kw(&t, i, w);
    let Some(first) = first_keyword(&t) else {
        return false;
    };
    match first.as_str() {
        "create" => {
            let idx = if kw(1, "unique") { 2 } else { 1 };
            (kw(idx, "index") && kw(idx + 1, "concurrently"))
                || kw(1, "database")
                || kw(1, "tablespace")
                || (kw(1, "subscription")
                    && !option_disabled(&t, "create_slot")
                    && !option_disabled(&t, "connect"))
        }
        "drop" => {
            (kw(1, "index") && kw(2, "concurrently"))
                || kw(1, "database")
                || kw(1, "tablespace")
                || kw(1, "subscription")
        }
        "reindex" => {
            // These targets each commit once per table.
            let mut depth = 0usize;
            let target = t.iter().skip(1).find(|(k, w)| {
                match k {
                    Kind::Open => depth += 1,
                    Kind::Close => depth = depth.saturating_sub(1),
                    _ => {}
                }
                depth == 0 && *k == Kind::Word && !w.eq_ignore_ascii_case("concurrently")
            });
            let per_table = target.is_some_and(|(_, w)| {
                ["schema", "database", "system"]
                    .iter()
                    .any(|x| w.eq_ignore_ascii_case(x))
            });
            per_table || concurrently_enabled(&t)
        }
        "vacuum" => true,
        "alter" => {
            kw(1, "system")
                || (kw(1, "database") && contains_kw_pair(&t, "set", "tablespace"))
                || (kw(1, "table")
                    && contains_kw_pair(&t, "detach", "partition")
                    && concurrently_enabled(&t))
                || (kw(1, "subscription")
                    && t.iter().any(|(k, w)| {
                        *k == Kind::Word
                            && (w.eq_ignore_ascii_case("publication")
                                || w.eq_ignore_ascii_case("refresh"))
                    })
                    && !option_disabled(&t, "refresh"))
        }
        "discard" => kw(1, "all"),
        // Only the form without a table name, which clusters the whole
        // database, is refused.
        "cluster" => {
            let mut depth = 0usize;
            t.iter().skip(1).all(|(k, w)| {
                match k {
                    Kind::Open => depth += 1,
                    Kind::Close => depth = depth.saturating_sub(1),
                    _ => {}
                }
                depth > 0
                    || matches!(k, Kind::Close | Kind::Semicolon)
                    || w.eq_ignore_ascii_case("verbose")
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_only_statements_are_told_from_data_and_global_ones() {
        for stmt in [
            "CREATE TABLE t (id INT)",
            "-- why\nCREATE UNIQUE INDEX CONCURRENTLY i ON t (id)",
            "create or replace function f() returns int language sql as $$ select 1 $$",
            "CREATE MATERIALIZED VIEW v AS SELECT 1",
            "CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
            "ALTER TABLE t ADD COLUMN c TEXT",
            "DROP TYPE mood",
            "CREATE EXTENSION IF NOT EXISTS vector",
            "COMMENT ON TABLE t IS 'x'",
            "GRANT SELECT ON t TO reader",
            "SET lock_timeout = '1s'",
            "BEGIN",
            "COMMIT",
            "-- only a comment",
        ] {
            assert!(changes_schema_only(stmt), "{stmt}");
        }
        for stmt in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET c = 1",
            "DELETE FROM t",
            "SELECT setval('s', 10)",
            "DO $$ BEGIN INSERT INTO t VALUES (1); END $$",
            "CREATE ROLE reader",
            "CREATE TEMP TABLE x (id INT)",
            "CREATE STATISTICS s ON a, b FROM t",
            "CREATE PUBLICATION p FOR ALL TABLES",
            "COPY t FROM STDIN",
            "WITH x AS (DELETE FROM t RETURNING *) SELECT 1",
            "TRUNCATE t",
            "CALL p()",
            "ROLLBACK",
        ] {
            assert!(!changes_schema_only(stmt), "{stmt}");
        }
    }

    use super::*;
    use proptest::prelude::*;

    fn texts(sql: &str) -> Vec<&str> {
        split_statements(sql).into_iter().map(|s| s.text).collect()
    }

    fn check_cases(cases: &[(&str, &[&str])]) {
        for (input, expected) in cases {
            assert_eq!(texts(input), *expected, "input: {input:?}");
        }
    }

    #[test]
    fn basic_splitting() {
        check_cases(&[
            ("select 1; select 2;", &["select 1", "select 2"]),
            ("select 1; select 2", &["select 1", "select 2"]),
            ("  \n select 1  ;\t\n", &["select 1"]),
            ("select\n  1\n;", &["select\n  1"]),
            ("select 1;select 2", &["select 1", "select 2"]),
        ]);
    }

    #[test]
    fn empty_and_comment_only_statements_are_dropped() {
        check_cases(&[
            ("", &[]),
            ("   \n\t", &[]),
            (";;; ;\n;", &[]),
            ("select 1;;select 2", &["select 1", "select 2"]),
            ("-- only a comment\n;/* c */;", &[]),
            ("select 1; -- trailing comment", &["select 1"]),
            ("select 1; /* a */ -- b\n /* c /* d */ */", &["select 1"]),
        ]);
    }

    #[test]
    fn comments_are_kept_inside_text() {
        check_cases(&[
            ("/* lead */ select 1;", &["/* lead */ select 1"]),
            ("-- lead\nselect 1", &["-- lead\nselect 1"]),
            ("select 1 -- tail\n;x", &["select 1 -- tail", "x"]),
            ("select 1\n-- trailing\n", &["select 1\n-- trailing"]),
        ]);
    }

    #[test]
    fn single_quoted_strings() {
        check_cases(&[
            ("select ';'; x", &["select ';'", "x"]),
            ("select 'it''s;'; x", &["select 'it''s;'", "x"]),
            ("select '''';x", &["select ''''", "x"]),
            // standard_conforming_strings: the backslash is literal, so the
            // string ends at the second quote.
            ("select 'a\\'; x", &["select 'a\\'", "x"]),
            (
                "select x'ff', b'01', n'x;'; y",
                &["select x'ff', b'01', n'x;'", "y"],
            ),
            ("select U&'d\\0061t;'; y", &["select U&'d\\0061t;'", "y"]),
            // An identifier ending in `e` is not an E prefix.
            ("select name'a\\'; x", &["select name'a\\'", "x"]),
        ]);
    }

    #[test]
    fn escape_strings() {
        check_cases(&[
            ("select E'it\\'s;'; x", &["select E'it\\'s;'", "x"]),
            ("select e'it\\'s;'; x", &["select e'it\\'s;'", "x"]),
            ("select E'\\\\'; x", &["select E'\\\\'", "x"]),
            ("select E'a''b;'; x", &["select E'a''b;'", "x"]),
            ("select E'\\\\\\'; x'; y", &["select E'\\\\\\'; x'", "y"]),
        ]);
    }

    #[test]
    fn quoted_identifiers() {
        check_cases(&[
            ("select \"a;b\"; x", &["select \"a;b\"", "x"]),
            ("select \"a\"\";b\"; x", &["select \"a\"\";b\"", "x"]),
            ("select \"it's\"; x", &["select \"it's\"", "x"]),
            ("select \"--\", \"/*\"; x", &["select \"--\", \"/*\"", "x"]),
        ]);
    }

    #[test]
    fn dollar_quoting() {
        check_cases(&[
            ("select $$a;b$$; x", &["select $$a;b$$", "x"]),
            (
                "select $tag$ $$ ; ' $tag$; x",
                &["select $tag$ $$ ; ' $tag$", "x"],
            ),
            (
                "select $a$ $b$ ; $b$ $a$; x",
                &["select $a$ $b$ ; $b$ $a$", "x"],
            ),
            ("select $_1$;$_1$; x", &["select $_1$;$_1$", "x"]),
            ("select $é$;$é$; x", &["select $é$;$é$", "x"]),
            (
                "do $$ begin perform 1; end $$; select 1",
                &["do $$ begin perform 1; end $$", "select 1"],
            ),
            (
                "create function f() returns int as $body$\nbegin\n  return 1;\nend\n$body$ language plpgsql;\nselect f();",
                &[
                    "create function f() returns int as $body$\nbegin\n  return 1;\nend\n$body$ language plpgsql",
                    "select f()",
                ],
            ),
        ]);
    }

    #[test]
    fn positional_parameters_and_dollar_in_identifiers() {
        check_cases(&[
            ("select $1; select $2", &["select $1", "select $2"]),
            ("select $1$; x", &["select $1$", "x"]),
            ("select $12 + $3;x", &["select $12 + $3", "x"]),
            // `foo$x$` is one identifier, so the later `$x$` opens a quote
            // that is never closed.
            (
                "select foo$x$; select 1; select $x$ a; b",
                &["select foo$x$", "select 1", "select $x$ a; b"],
            ),
            ("select $ ; x", &["select $", "x"]),
        ]);
    }

    #[test]
    fn line_comments() {
        check_cases(&[
            ("select 1 -- c; d\n; x", &["select 1 -- c; d", "x"]),
            ("select 1 --\r; x", &["select 1 --", "x"]),
            (
                "select 1 -- comment at eof",
                &["select 1 -- comment at eof"],
            ),
            (
                "select 1 -- ' \" $$ /*\n; x",
                &["select 1 -- ' \" $$ /*", "x"],
            ),
            ("select 2--1;\n;x", &["select 2--1;", "x"]),
        ]);
    }

    #[test]
    fn block_comments_nest() {
        check_cases(&[
            ("select /* a; */ 1; x", &["select /* a; */ 1", "x"]),
            (
                "select /* a /* b; */ c; */ 1; x",
                &["select /* a /* b; */ c; */ 1", "x"],
            ),
            (
                "select /*/ still ; */ 1; x",
                &["select /*/ still ; */ 1", "x"],
            ),
            ("select 1 */ ; x", &["select 1 */", "x"]),
            (
                "select /* ' \" $$ -- */ 1; x",
                &["select /* ' \" $$ -- */ 1", "x"],
            ),
        ]);
    }

    #[test]
    fn unterminated_input_is_kept_in_last_statement() {
        check_cases(&[
            (
                "x; select 1 /* unterminated ; y",
                &["x", "select 1 /* unterminated ; y"],
            ),
            (
                "x; select /* a /* b */ ; y",
                &["x", "select /* a /* b */ ; y"],
            ),
            ("x; select 'open ; y  ", &["x", "select 'open ; y  "]),
            ("x; select E'open\\", &["x", "select E'open\\"]),
            ("x; select \"open ; y", &["x", "select \"open ; y"]),
            ("x; select $$open ; y\n", &["x", "select $$open ; y\n"]),
            ("x; select $t$open $$ ; y", &["x", "select $t$open $$ ; y"]),
            ("x; /* only unterminated comment ;", &["x"]),
        ]);
    }

    #[test]
    fn parentheses_keep_semicolons() {
        check_cases(&[
            (
                "create rule r as on insert to t do also (insert into a values (1); insert into b values (2)); select 1",
                &[
                    "create rule r as on insert to t do also (insert into a values (1); insert into b values (2))",
                    "select 1",
                ],
            ),
            ("select 1); select 2", &["select 1)", "select 2"]),
        ]);
    }

    #[test]
    fn begin_atomic_bodies() {
        let f = "create function f() returns int language sql\nbegin atomic\n  select 1;\n  select case when true then 2 else 3 end;\nend";
        let script = format!("{f};\nselect f();");
        assert_eq!(texts(&script), vec![f, "select f()"]);
        check_cases(&[
            (
                "CREATE PROCEDURE p() BEGIN /* c */ ATOMIC INSERT INTO t VALUES (1); END; CALL p()",
                &[
                    "CREATE PROCEDURE p() BEGIN /* c */ ATOMIC INSERT INTO t VALUES (1); END",
                    "CALL p()",
                ],
            ),
            (
                "create function f() returns int begin atomic end; x",
                &["create function f() returns int begin atomic end", "x"],
            ),
            (
                "create function f() begin atomic select case when a then case when b then 1 end end; select 2; end; x",
                &[
                    "create function f() begin atomic select case when a then case when b then 1 end end; select 2; end",
                    "x",
                ],
            ),
            // Transaction BEGIN/END and CASE outside a body do not nest.
            (
                "begin; select case when a then 1 end; end; x",
                &["begin", "select case when a then 1 end", "end", "x"],
            ),
            (
                "select \"begin\" atomic; x",
                &["select \"begin\" atomic", "x"],
            ),
        ]);
    }

    #[test]
    fn unicode_text() {
        check_cases(&[
            (
                "select 'é;ü'; select ñ; select \"日本;\"",
                &["select 'é;ü'", "select ñ", "select \"日本;\""],
            ),
            ("select 1\u{a0};x", &["select 1\u{a0}", "x"]),
        ]);
    }

    #[test]
    fn offsets_and_lines() {
        let sql = "\n\n  select 1;\n select\n2; /* c */\n\n-- x\nselect 3";
        let got = split_statements(sql);
        assert_eq!(
            got,
            vec![
                Statement {
                    text: "select 1",
                    byte_offset: 4,
                    line: 3
                },
                Statement {
                    text: "select\n2",
                    byte_offset: 15,
                    line: 4
                },
                Statement {
                    text: "/* c */\n\n-- x\nselect 3",
                    byte_offset: 25,
                    line: 5
                },
            ]
        );
    }

    #[test]
    fn transaction_control_kinds() {
        let cases: &[(&str, Option<&str>)] = &[
            ("BEGIN", Some("BEGIN")),
            ("begin;", Some("BEGIN")),
            ("  -- c\n /* x */ Begin Work", Some("BEGIN")),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", Some("BEGIN")),
            ("BEGIN ATOMIC", None),
            ("start transaction read only", Some("START TRANSACTION")),
            ("start", None),
            ("COMMIT", Some("COMMIT")),
            ("commit and chain", Some("COMMIT")),
            ("END", Some("COMMIT")),
            ("end transaction;", Some("COMMIT")),
            ("COMMIT PREPARED 'gid'", Some("COMMIT PREPARED")),
            ("ROLLBACK", Some("ROLLBACK")),
            ("ABORT", Some("ROLLBACK")),
            ("ROLLBACK PREPARED 'gid'", Some("ROLLBACK PREPARED")),
            ("rollback to savepoint s", Some("ROLLBACK TO SAVEPOINT")),
            ("rollback work to s", Some("ROLLBACK TO SAVEPOINT")),
            ("SAVEPOINT s", Some("SAVEPOINT")),
            ("release savepoint s", Some("RELEASE")),
            ("PREPARE TRANSACTION 'gid'", Some("PREPARE TRANSACTION")),
            ("PREPARE q AS SELECT 1", None),
            ("DO $$ BEGIN COMMIT; END $$", None),
            ("select 1", None),
            ("\"begin\"", None),
            ("", None),
            ("-- begin", None),
        ];
        for (input, expected) in cases {
            assert_eq!(transaction_control(input), *expected, "input: {input:?}");
        }
    }

    #[test]
    fn plain_wrappers_and_modes() {
        assert_eq!(tx_statement("BEGIN"), TxStatement::Begin { plain: true });
        assert_eq!(tx_statement("-- why\nbegin transaction"), TxStatement::Begin { plain: true });
        assert_eq!(tx_statement("START TRANSACTION"), TxStatement::Begin { plain: true });
        assert_eq!(tx_statement("BEGIN ISOLATION LEVEL SERIALIZABLE"), TxStatement::Begin { plain: false });
        assert_eq!(tx_statement("END"), TxStatement::Commit { plain: true });
        assert_eq!(tx_statement("COMMIT WORK"), TxStatement::Commit { plain: true });
        assert_eq!(tx_statement("COMMIT AND CHAIN"), TxStatement::Commit { plain: false });
        assert_eq!(tx_statement("SAVEPOINT a"), TxStatement::Savepoint);
        assert_eq!(tx_statement("ROLLBACK"), TxStatement::Other);
        assert_eq!(tx_statement("CREATE TABLE t (id int)"), TxStatement::None);
    }

    #[test]
    fn no_transaction_statements() {
        let cases: &[(&str, bool)] = &[
            ("CREATE INDEX CONCURRENTLY i ON t (a)", true),
            (
                "create unique index concurrently if not exists i on t (a)",
                true,
            ),
            ("/* c */ create index i on t (a)", false),
            ("DROP INDEX CONCURRENTLY i", true),
            ("drop index i", false),
            ("REINDEX INDEX CONCURRENTLY i", true),
            ("reindex (concurrently) table t", true),
            ("reindex (concurrently false) table t", false),
            ("reindex table t", false),
            ("reindex (verbose) database d", true),
            ("reindex system", true),
            ("CREATE DATABASE d", true),
            ("drop database if exists d", true),
            ("VACUUM", true),
            ("vacuum (analyze) t", true),
            ("ANALYZE t", false),
            ("ALTER SYSTEM SET work_mem = '64MB'", true),
            ("ALTER DATABASE d SET TABLESPACE x", true),
            ("ALTER DATABASE d SET work_mem = 1", false),
            ("CREATE TABLESPACE ts LOCATION '/x'", true),
            ("DROP TABLESPACE ts", true),
            ("ALTER TABLESPACE ts RENAME TO u", false),
            ("ALTER TYPE e ADD VALUE 'x'", false),
            ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", true),
            ("ALTER TABLE p DETACH PARTITION c", false),
            ("CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p", true),
            (
                "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot = false)",
                false,
            ),
            ("ALTER SUBSCRIPTION s REFRESH PUBLICATION", true),
            (
                "ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)",
                false,
            ),
            ("ALTER SUBSCRIPTION s DISABLE", false),
            ("DISCARD ALL", true),
            ("DISCARD PLANS", false),
            ("CLUSTER", true),
            ("cluster verbose;", true),
            ("CLUSTER t USING i", false),
            ("-- VACUUM\nselect 1", false),
            ("select 'vacuum'", false),
            ("", false),
        ];
        for (input, expected) in cases {
            assert_eq!(
                requires_no_transaction(input),
                *expected,
                "input: {input:?}"
            );
        }
    }

    fn check_positions(sql: &str) -> Result<(), TestCaseError> {
        let mut prev_end = 0;
        for s in split_statements(sql) {
            prop_assert!(!s.text.is_empty());
            prop_assert!(s.byte_offset >= prev_end);
            prop_assert_eq!(&sql[s.byte_offset..s.byte_offset + s.text.len()], s.text);
            prop_assert_eq!(s.line, 1 + sql[..s.byte_offset].matches('\n').count());
            prop_assert!(
                !s.text
                    .starts_with(|c: char| c.is_ascii() && is_space(c as u8))
            );
            prev_end = s.byte_offset + s.text.len();
        }
        Ok(())
    }

    /// Building blocks of generated statements. Each is one lexical unit
    /// that may contain characters that are special elsewhere (`;`, quotes,
    /// `$`, comment markers).
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            // The prefix keeps generated words away from BEGIN/ATOMIC/END.
            "c_[a-z0-9_$]{0,6}",
            "[0-9]{1,4}",
            "\\$[1-9][0-9]{0,2}",
            "[a-z ;$\"'\\\\/*-]{0,12}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
            (
                prop::sample::select(vec!["E", "e"]),
                "[a-z ;$\"'\\\\/*-]{0,12}"
            )
                .prop_map(|(p, s)| {
                    format!("{p}'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
                }),
            "[a-z ;$\"'\\\\/*-]{0,12}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
            (
                prop::sample::select(vec!["", "x", "tag", "_a1"]),
                "[a-z ;$\"'\\\\/*\n-]{0,16}",
            )
                .prop_filter_map("delimiter occurs inside body", |(tag, body)| {
                    let d = format!("${tag}$");
                    let closed = format!("{body}{d}");
                    (closed.find(&d) == Some(body.len())).then(|| format!("{d}{body}{d}"))
                }),
            ("[a-z ;$\"']{0,8}", "[a-z ;$\"']{0,8}", "[a-z ;$\"']{0,8}")
                .prop_map(|(a, b, c)| format!("/* {a} /* {b} */ {c} */")),
            "[a-z ;$\"'\\\\/*-]{0,12}".prop_map(|s| format!("-- {s}\n")),
            Just("(c_a; c_b)".to_string()),
            Just("begin atomic select 1; select case when c_a then 1 end; end".to_string()),
        ]
    }

    fn statement() -> impl Strategy<Value = String> {
        ("c_[a-z]{0,4}", prop::collection::vec(piece(), 0..6)).prop_map(|(head, rest)| {
            std::iter::once(head)
                .chain(rest)
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    fn script() -> impl Strategy<Value = (String, Vec<String>)> {
        (
            prop::collection::vec(statement(), 0..6),
            prop::sample::select(vec![";\n", ";", " ;\t", ";;\n ;"]),
            any::<bool>(),
        )
            .prop_map(|(stmts, sep, final_semi)| {
                let mut sql = stmts.join(sep);
                if final_semi && !stmts.is_empty() {
                    sql.push(';');
                }
                (sql, stmts)
            })
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_unicode(s in any::<String>()) {
            let _ = split_statements(&s);
            let _ = transaction_control(&s);
            let _ = requires_no_transaction(&s);
            check_positions(&s)?;
        }

        #[test]
        fn never_panics_on_sql_like_noise(s in "[-a-zE$;'\"\\\\/*()\n é]{0,80}") {
            let _ = transaction_control(&s);
            let _ = requires_no_transaction(&s);
            check_positions(&s)?;
        }

        #[test]
        fn generated_scripts_round_trip((sql, stmts) in script()) {
            let expected: Vec<&str> = stmts
                .iter()
                .map(|s| s.trim_matches(|c: char| c.is_ascii() && is_space(c as u8)))
                .collect();
            prop_assert_eq!(texts(&sql), expected, "script: {:?}", sql);
            check_positions(&sql)?;
        }
    }
}
