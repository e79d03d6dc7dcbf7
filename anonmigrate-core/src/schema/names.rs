//! How SQL names become Rust names and string literals in schema.rs, following diesel_cli 2.3's rules so the
//! output matches `diesel print-schema` byte for byte.

/// Words `syn` refuses as identifiers (Rust keywords, strict and reserved, and `_`), plus the names diesel's
/// `table!` macro uses itself.
const KEYWORDS: &[&str] = &[
    "_", "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move",
    "mut", "override", "priv", "pub", "ref", "return", "Self", "self", "static", "struct", "super", "trait", "true",
    "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];
const TABLE_MACRO_NAMES: &[&str] = &["table", "columns", "is_nullable"];

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Names that cannot be used as they are and get a trailing `_`: keywords, the `table!` macro's own names, names
/// that are not identifiers at all (empty), and names starting with `__` (unless they already end in `_`).
pub fn is_reserved(name: &str) -> bool {
    name.is_empty()
        || KEYWORDS.contains(&name)
        || TABLE_MACRO_NAMES.contains(&name)
        || (name.starts_with("__") && !name.ends_with('_'))
}

/// Replaces characters outside `[A-Za-z0-9_]` with `_` (a run of them with one `_`), and puts `_` before a leading
/// digit.
fn identifier_chars(name: &str) -> String {
    let starts_with_digit = name.starts_with(|c: char| c.is_ascii_digit());
    if starts_with_digit {
        return collapse_unmappable(String::from("_"), name, true);
    }
    match name.find(|c: char| !is_identifier_char(c)) {
        None => name.to_owned(),
        Some(at) => collapse_unmappable(name[..at].to_owned(), &name[at..], false),
    }
}

fn collapse_unmappable(mut out: String, rest: &str, mut after_underscore: bool) -> String {
    for c in rest.chars() {
        if is_identifier_char(c) {
            out.push(c);
            after_underscore = false;
        } else {
            if !after_underscore {
                out.push('_');
            }
            after_underscore = true;
        }
    }
    out
}

/// The Rust name diesel gives a table, schema or column: identifier characters only, and a trailing `_` when the
/// result is reserved or (for a column) equal to its table's Rust name.
pub fn rust_name(sql_name: &str, table_rust_name: Option<&str>) -> String {
    let name = identifier_chars(sql_name);
    if is_reserved(&name) || Some(name.as_str()) == table_rust_name {
        format!("{name}_")
    } else {
        name
    }
}

/// The Rust type name of a SQL type: UpperCamelCase of its name, the way diesel_cli spells it (via `heck`).
pub fn type_name(sql_name: &str) -> String {
    heck::ToUpperCamelCase::to_upper_camel_case(sql_name)
}

/// A Rust string literal for `text`: plain, or raw (`r#"..."#`, with enough `#`) when it contains a quote.
pub fn string_literal(text: &str) -> String {
    if !text.contains('"') {
        return format!("\"{text}\"");
    }
    let hashes = "#".repeat(text.matches('#').count() + 1);
    format!("r{hashes}\"{text}\"{hashes}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names() {
        let cases = [
            ("users", None, "users"),
            ("type", None, "type_"),
            ("Self", None, "Self_"),
            ("union", None, "union"),
            ("_", None, "__"),
            ("Order Items", None, "Order_Items"),
            ("a--b", None, "a_b"),
            ("café", None, "caf_"),
            ("1st place", None, "_1st_place"),
            ("2fa codes", None, "_2fa_codes"),
            ("__hidden", None, "__hidden_"),
            ("__trailing_", None, "__trailing_"),
            ("columns", None, "columns_"),
            ("posts", Some("posts"), "posts_"),
            ("", None, "_"),
        ];
        for (sql, table, expected) in cases {
            assert_eq!(rust_name(sql, table), expected, "{sql:?}");
        }
    }

    #[test]
    fn type_names() {
        assert_eq!(type_name("request_method"), "RequestMethod");
        assert_eq!(type_name("Order Status"), "OrderStatus");
        assert_eq!(type_name("int4range"), "Int4range");
        assert_eq!(type_name("pg_lsn"), "PgLsn");
        assert_eq!(type_name("HTTPMethod"), "HttpMethod");
    }

    #[test]
    fn literals() {
        assert_eq!(string_literal("plain"), "\"plain\"");
        assert_eq!(string_literal("with\"quote"), "r#\"with\"quote\"#");
        assert_eq!(string_literal("a\"#b"), "r##\"a\"#b\"##");
    }
}
