//! A schema.rs file (generated or written by hand) → a small model of what diesel sees in it: tables with their
//! columns, SQL names, diesel types and primary keys, `joinable!` rules, `allow_tables_to_appear_in_same_query!`
//! groups and the custom SQL types (`#[diesel(postgres_type(...))]` structs). Pure: text in, values out.
//!
//! The file is parsed as Rust with `syn`, so layout, comments, `diesel::`-qualified or bare macro names, fully
//! qualified type paths and `pub mod` wrappers do not matter. `check` compares the result with the migrations;
//! `generate --autogenerate` reads the desired schema from it.
//!
//! What diesel's `table!` accepts and this understands: `use` lines, doc comments, `#[sql_name = ".."]` on the
//! table and on columns, `schema.table` names, an optional primary-key list (diesel's default is `id`),
//! `#[max_length = N]`, and column types such as `Nullable<Array<Nullable<Int4>>>` or
//! `crate::schema::sql_types::Mood`.

use std::fmt;

use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, Item, Lit, Meta, Token};

/// Everything diesel-relevant in one schema.rs, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedSchema {
    pub tables: Vec<TableDef>,
    pub joinables: Vec<Joinable>,
    /// One entry per `allow_tables_to_appear_in_same_query!`, the table names as written.
    pub allow_tables: Vec<Vec<String>>,
    /// Structs carrying `#[diesel(postgres_type(...))]`, wherever they are (normally `pub mod sql_types`).
    pub sql_types: Vec<SqlTypeDef>,
}

/// One table of a `table!` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    /// The `pub mod` blocks around the `table!` (empty at the top level), e.g. `["audit"]`.
    pub module: Vec<String>,
    /// The PostgreSQL schema when the table is written `schema.table`; `None` means the default (`public`).
    pub schema: Option<String>,
    /// The Rust name (what `joinable!` and queries use).
    pub rust_name: String,
    /// The table's name in PostgreSQL: `#[sql_name]` if present, else the Rust name.
    pub sql_name: String,
    /// Rust names of the primary-key columns; `["id"]` when the block names none (diesel's default).
    pub primary_key: Vec<String>,
    pub columns: Vec<ColumnDef>,
    pub doc: Option<String>,
    /// The `use` lines inside the block, as paths (`diesel::sql_types::*`).
    pub imports: Vec<String>,
    /// 1-based line of the table name.
    pub line: usize,
}

impl TableDef {
    /// The PostgreSQL schema, `public` when none is written.
    pub fn pg_schema(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }

    pub fn column(&self, sql_name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.sql_name == sql_name)
    }

    pub fn column_by_rust_name(&self, rust_name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.rust_name == rust_name)
    }

    /// The primary key as SQL column names (a name that matches no column is kept as written).
    pub fn primary_key_sql_names(&self) -> Vec<String> {
        self.primary_key
            .iter()
            .map(|k| self.column_by_rust_name(k).map_or_else(|| k.clone(), |c| c.sql_name.clone()))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub rust_name: String,
    /// `#[sql_name]` if present, else the Rust name.
    pub sql_name: String,
    pub ty: DieselType,
    /// `#[max_length = N]`.
    pub max_length: Option<u32>,
    pub doc: Option<String>,
    /// 1-based line of the column name.
    pub line: usize,
}

/// A column's diesel SQL type as written: `Nullable<...>` and `Array<...>` are taken apart, anything else is a
/// path (kept as written, e.g. `diesel::sql_types::Text`) with its generic arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DieselType {
    Nullable(Box<DieselType>),
    Array(Box<DieselType>),
    Named { path: Vec<String>, args: Vec<DieselType> },
}

impl DieselType {
    /// A named type without arguments, for building values by hand.
    pub fn named(name: &str) -> DieselType {
        DieselType::Named {
            path: name.split("::").map(str::to_owned).collect(),
            args: Vec::new(),
        }
    }

    pub fn is_nullable(&self) -> bool {
        matches!(self, DieselType::Nullable(_))
    }

    /// The type without an outer `Nullable<...>`.
    pub fn without_nullable(&self) -> &DieselType {
        match self {
            DieselType::Nullable(inner) => inner,
            other => other,
        }
    }

    /// The last path segment of a named type (`Text` for `diesel::sql_types::Text`).
    pub fn name(&self) -> Option<&str> {
        match self {
            DieselType::Named { path, .. } => path.last().map(String::as_str),
            _ => None,
        }
    }

    /// Like [`Display`](fmt::Display), but every path shortened to its last segment: `Nullable<Text>`.
    pub fn short(&self) -> String {
        match self {
            DieselType::Nullable(inner) => format!("Nullable<{}>", inner.short()),
            DieselType::Array(inner) => format!("Array<{}>", inner.short()),
            DieselType::Named { path, args } => {
                let name = path.last().map_or("", String::as_str);
                if args.is_empty() {
                    name.to_owned()
                } else {
                    let args: Vec<String> = args.iter().map(DieselType::short).collect();
                    format!("{name}<{}>", args.join(", "))
                }
            }
        }
    }
}

impl fmt::Display for DieselType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DieselType::Nullable(inner) => write!(f, "Nullable<{inner}>"),
            DieselType::Array(inner) => write!(f, "Array<{inner}>"),
            DieselType::Named { path, args } => {
                f.write_str(&path.join("::"))?;
                if !args.is_empty() {
                    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
                    write!(f, "<{}>", args.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// `joinable!(child -> parent (column))`, names as written (Rust names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joinable {
    pub module: Vec<String>,
    pub child: String,
    pub parent: String,
    pub column: String,
    pub line: usize,
}

/// A struct with `#[diesel(postgres_type(...))]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlTypeDef {
    /// The modules it is in, e.g. `["sql_types"]`.
    pub module: Vec<String>,
    pub rust_name: String,
    /// `name = ".."`; `None` when the type is given by `oid`/`array_oid` only.
    pub pg_name: Option<String>,
    /// `schema = ".."`.
    pub pg_schema: Option<String>,
    /// The `#[derive(...)]` paths, as written.
    pub derives: Vec<String>,
    pub line: usize,
}

impl SqlTypeDef {
    /// The PostgreSQL type it names: `mood`, or `audit.mood` outside `public`.
    pub fn qualified_pg_name(&self) -> Option<String> {
        let name = self.pg_name.as_ref()?;
        Some(match self.pg_schema.as_deref() {
            Some(schema) if schema != "public" => format!("{schema}.{name}"),
            _ => name.clone(),
        })
    }
}

impl ParsedSchema {
    /// The table `sql_name` in PostgreSQL schema `schema` (`public` also matches tables written without one).
    pub fn table(&self, schema: &str, sql_name: &str) -> Option<&TableDef> {
        self.tables.iter().find(|t| t.pg_schema() == schema && t.sql_name == sql_name)
    }

    /// The table a `joinable!` or query refers to by Rust name, preferring one in the same module.
    pub fn table_by_rust_name(&self, module: &[String], rust_name: &str) -> Option<&TableDef> {
        let mut candidates = self.tables.iter().filter(|t| t.rust_name == rust_name);
        let first = candidates.clone().next();
        candidates.find(|t| t.module == module).or(first)
    }

    /// The custom SQL type struct a column type refers to (by its last path segment), if the file defines one.
    pub fn sql_type(&self, ty: &DieselType) -> Option<&SqlTypeDef> {
        let name = ty.name()?;
        self.sql_types.iter().find(|t| t.rust_name == name)
    }
}

/// Why a schema.rs could not be read: position (1-based) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

impl From<syn::Error> for ParseError {
    fn from(error: syn::Error) -> ParseError {
        let start = error.span().start();
        ParseError {
            line: start.line,
            column: start.column + 1,
            message: error.to_string(),
        }
    }
}

/// Parses a schema.rs. Items that are not diesel's (functions, other macros, `use` lines) are ignored; a
/// `table!`, `joinable!` or `allow_tables_to_appear_in_same_query!` that diesel would reject is an error.
pub fn parse_schema_rs(text: &str) -> Result<ParsedSchema, ParseError> {
    let file = syn::parse_file(text)?;
    let mut schema = ParsedSchema::default();
    walk(&file.items, &[], &mut schema)?;
    Ok(schema)
}

fn walk(items: &[Item], module: &[String], out: &mut ParsedSchema) -> syn::Result<()> {
    for item in items {
        match item {
            Item::Macro(item) => {
                let Some(name) = item.mac.path.segments.last().map(|s| s.ident.to_string()) else { continue };
                match name.as_str() {
                    "table" => {
                        let tables = item.mac.parse_body_with(|input: ParseStream| table_decls(input, module))?;
                        out.tables.extend(tables);
                    }
                    "joinable" => out.joinables.push(item.mac.parse_body_with(|input: ParseStream| joinable(input, module))?),
                    "allow_tables_to_appear_in_same_query" => {
                        let names = item.mac.parse_body_with(Punctuated::<syn::Path, Token![,]>::parse_terminated)?;
                        out.allow_tables.push(names.iter().map(path_text).collect());
                    }
                    _ => {}
                }
            }
            Item::Mod(item) => {
                if let Some((_, items)) = &item.content {
                    let mut inner = module.to_vec();
                    inner.push(item.ident.unraw().to_string());
                    walk(items, &inner, out)?;
                }
            }
            Item::Struct(item) => {
                if let Some(def) = sql_type_def(&item.attrs, &item.ident, module)? {
                    out.sql_types.push(def);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn path_text(path: &syn::Path) -> String {
    path.segments.iter().map(|s| s.ident.unraw().to_string()).collect::<Vec<_>>().join("::")
}

fn line_of(ident: &Ident) -> usize {
    ident.span().start().line
}

/// The text of `#[doc = ".."]` attributes (doc comments), one line each, without the space after `///`.
fn doc_text(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => string_value(&nv.value),
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').map(str::to_owned).unwrap_or(line))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn string_value(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

/// `#[name = "text"]`, with an error when the value is not a string literal.
fn string_attribute(attrs: &[Attribute], name: &str) -> syn::Result<Option<String>> {
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident(name)) else {
        return Ok(None);
    };
    let value = match &attr.meta {
        Meta::NameValue(nv) => string_value(&nv.value),
        _ => None,
    };
    value
        .map(Some)
        .ok_or_else(|| syn::Error::new(attr.pound_token.span, format!("expected `#[{name} = \"...\"]`")))
}

fn max_length_attribute(attrs: &[Attribute]) -> syn::Result<Option<u32>> {
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident("max_length")) else {
        return Ok(None);
    };
    if let Meta::NameValue(nv) = &attr.meta
        && let Expr::Lit(lit) = &nv.value
        && let Lit::Int(n) = &lit.lit
    {
        return n.base10_parse::<u32>().map(Some);
    }
    Err(syn::Error::new(attr.pound_token.span, "expected `#[max_length = N]` with a whole number"))
}

/// One or more table declarations (diesel 2 takes one per `table!`; older files list several).
fn table_decls(input: ParseStream, module: &[String]) -> syn::Result<Vec<TableDef>> {
    let mut tables = Vec::new();
    while !input.is_empty() {
        tables.push(table_decl(input, module)?);
    }
    Ok(tables)
}

fn table_decl(input: ParseStream, module: &[String]) -> syn::Result<TableDef> {
    let mut attrs = Vec::new();
    let mut imports = Vec::new();
    loop {
        if input.peek(Token![#]) {
            attrs.extend(input.call(Attribute::parse_outer)?);
        } else if input.peek(Token![use]) {
            input.parse::<Token![use]>()?;
            let tree: syn::UseTree = input.parse()?;
            input.parse::<Token![;]>()?;
            imports.push(use_tree_text(&tree));
        } else {
            break;
        }
    }
    let first = Ident::parse_any(input)?;
    let line = line_of(&first);
    let (schema, rust_name) = if input.peek(Token![.]) {
        input.parse::<Token![.]>()?;
        let name = Ident::parse_any(input)?;
        (Some(first.unraw().to_string()), name.unraw().to_string())
    } else {
        (None, first.unraw().to_string())
    };
    let primary_key = if input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in input);
        let keys = Punctuated::<Ident, Token![,]>::parse_terminated_with(&content, Ident::parse_any)?;
        if keys.is_empty() {
            return Err(syn::Error::new(first.span(), format!("table `{rust_name}` has an empty primary key list")));
        }
        keys.iter().map(|k| k.unraw().to_string()).collect()
    } else {
        vec!["id".to_owned()]
    };
    let body;
    syn::braced!(body in input);
    let mut columns = Vec::new();
    while !body.is_empty() {
        columns.push(column_def(&body)?);
        if body.is_empty() {
            break;
        }
        body.parse::<Token![,]>()?;
    }
    let mut sql_name = string_attribute(&attrs, "sql_name")?.unwrap_or_else(|| rust_name.clone());
    // diesel print-schema writes `#[sql_name = "schema.table"]` for a renamed table in a schema.
    if let Some(schema) = &schema
        && let Some(bare) = sql_name.strip_prefix(&format!("{schema}."))
    {
        sql_name = bare.to_owned();
    }
    Ok(TableDef {
        module: module.to_vec(),
        schema,
        rust_name,
        sql_name,
        primary_key,
        columns,
        doc: doc_text(&attrs),
        imports,
        line,
    })
}

fn use_tree_text(tree: &syn::UseTree) -> String {
    match tree {
        syn::UseTree::Path(p) => format!("{}::{}", p.ident.unraw(), use_tree_text(&p.tree)),
        syn::UseTree::Name(n) => n.ident.unraw().to_string(),
        syn::UseTree::Rename(r) => format!("{} as {}", r.ident.unraw(), r.rename.unraw()),
        syn::UseTree::Glob(_) => "*".to_owned(),
        syn::UseTree::Group(g) => {
            let items: Vec<String> = g.items.iter().map(use_tree_text).collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

fn column_def(input: ParseStream) -> syn::Result<ColumnDef> {
    let attrs = input.call(Attribute::parse_outer)?;
    let name = Ident::parse_any(input)?;
    input.parse::<Token![->]>()?;
    let ty: syn::Type = input.parse()?;
    let rust_name = name.unraw().to_string();
    Ok(ColumnDef {
        sql_name: string_attribute(&attrs, "sql_name")?.unwrap_or_else(|| rust_name.clone()),
        ty: diesel_type(&ty, &name)?,
        max_length: max_length_attribute(&attrs)?,
        doc: doc_text(&attrs),
        line: line_of(&name),
        rust_name,
    })
}

/// `syn::Type` → [`DieselType`]; `at` is where an unsupported type is reported.
fn diesel_type(ty: &syn::Type, at: &Ident) -> syn::Result<DieselType> {
    match ty {
        syn::Type::Paren(inner) => diesel_type(&inner.elem, at),
        syn::Type::Group(inner) => diesel_type(&inner.elem, at),
        syn::Type::Path(type_path) if type_path.qself.is_none() => {
            let path: Vec<String> = type_path.path.segments.iter().map(|s| s.ident.unraw().to_string()).collect();
            let mut args = Vec::new();
            if let Some(last) = type_path.path.segments.last()
                && let syn::PathArguments::AngleBracketed(generic) = &last.arguments
            {
                for arg in &generic.args {
                    match arg {
                        syn::GenericArgument::Type(arg) => args.push(diesel_type(arg, at)?),
                        _ => return Err(syn::Error::new(at.span(), format!("column `{}`: only types are supported as type arguments", at.unraw()))),
                    }
                }
            }
            let wrapper = path.last().map(String::as_str);
            Ok(match (wrapper, args.len()) {
                (Some("Nullable"), 1) => DieselType::Nullable(Box::new(args.remove(0))),
                (Some("Array"), 1) => DieselType::Array(Box::new(args.remove(0))),
                _ => DieselType::Named { path, args },
            })
        }
        _ => Err(syn::Error::new(
            at.span(),
            format!("column `{}`: expected a SQL type such as `Text` or `Nullable<Int4>`", at.unraw()),
        )),
    }
}

fn joinable(input: ParseStream, module: &[String]) -> syn::Result<Joinable> {
    let child = Ident::parse_any(input)?;
    input.parse::<Token![->]>()?;
    let parent = Ident::parse_any(input)?;
    let content;
    syn::parenthesized!(content in input);
    let column = Ident::parse_any(&content)?;
    Ok(Joinable {
        module: module.to_vec(),
        line: line_of(&child),
        child: child.unraw().to_string(),
        parent: parent.unraw().to_string(),
        column: column.unraw().to_string(),
    })
}

/// A struct's `#[diesel(postgres_type(name = "..", schema = ".."))]` and `#[derive(...)]`, if it has the former.
fn sql_type_def(attrs: &[Attribute], ident: &Ident, module: &[String]) -> syn::Result<Option<SqlTypeDef>> {
    let mut found = false;
    let mut pg_name = None;
    let mut pg_schema = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("diesel")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("postgres_type") {
                found = true;
                meta.parse_nested_meta(|inner| {
                    let value = inner.value()?;
                    if inner.path.is_ident("name") {
                        pg_name = Some(value.parse::<syn::LitStr>()?.value());
                    } else if inner.path.is_ident("schema") {
                        pg_schema = Some(value.parse::<syn::LitStr>()?.value());
                    } else {
                        value.parse::<Expr>()?;
                    }
                    Ok(())
                })
            } else {
                // Other diesel options (`sql_type = ..`, ...) do not matter here: skip the rest of the attribute.
                meta.input.parse::<proc_macro2::TokenStream>()?;
                Ok(())
            }
        })?;
    }
    if !found {
        return Ok(None);
    }
    let mut derives = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let paths = attr.parse_args_with(Punctuated::<syn::Path, Token![,]>::parse_terminated)?;
        derives.extend(paths.iter().map(path_text));
    }
    Ok(Some(SqlTypeDef {
        module: module.to_vec(),
        rust_name: ident.unraw().to_string(),
        pg_name,
        pg_schema,
        derives,
        line: line_of(ident),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ParsedSchema {
        parse_schema_rs(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn a_generated_file() {
        let schema = parse(
            r#"// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "request_method"))]
    pub struct RequestMethod;

    #[derive(diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "mood", schema = "audit"))]
    pub struct Mood;
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::RequestMethod;

    /// Every HTTP request.
    request_log (id) {
        id -> Int8,
        method -> RequestMethod,
        #[max_length = 64]
        path -> Varchar,
        /// Anonymous requests have none.
        user_id -> Nullable<Int8>,
        tags -> Nullable<Array<Nullable<Text>>>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
    }
}

diesel::joinable!(request_log -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(request_log, users,);
"#,
        );
        assert_eq!(schema.tables.len(), 2);
        let log = &schema.tables[0];
        assert_eq!((log.rust_name.as_str(), log.sql_name.as_str(), log.schema.as_deref()), ("request_log", "request_log", None));
        assert_eq!(log.primary_key, ["id"]);
        assert_eq!(log.doc.as_deref(), Some("Every HTTP request."));
        assert_eq!(log.imports, ["diesel::sql_types::*", "super::sql_types::RequestMethod"]);
        assert_eq!(log.line, 18);
        let names: Vec<&str> = log.columns.iter().map(|c| c.rust_name.as_str()).collect();
        assert_eq!(names, ["id", "method", "path", "user_id", "tags"]);
        assert_eq!(log.columns[2].max_length, Some(64));
        assert_eq!(log.columns[3].doc.as_deref(), Some("Anonymous requests have none."));
        assert_eq!(log.columns[3].ty, DieselType::Nullable(Box::new(DieselType::named("Int8"))));
        assert_eq!(
            log.columns[4].ty,
            DieselType::Nullable(Box::new(DieselType::Array(Box::new(DieselType::Nullable(Box::new(DieselType::named("Text")))))))
        );
        assert_eq!(log.columns[4].ty.to_string(), "Nullable<Array<Nullable<Text>>>");
        assert_eq!(
            schema.joinables,
            [Joinable { module: vec![], child: "request_log".into(), parent: "users".into(), column: "user_id".into(), line: 35 }]
        );
        assert_eq!(schema.allow_tables, [vec!["request_log".to_owned(), "users".to_owned()]]);
        assert_eq!(schema.sql_types.len(), 2);
        let method = &schema.sql_types[0];
        assert_eq!(method.module, ["sql_types"]);
        assert_eq!(method.pg_name.as_deref(), Some("request_method"));
        assert_eq!(method.derives, ["diesel::query_builder::QueryId", "Clone", "diesel::sql_types::SqlType"]);
        assert_eq!(schema.sql_types[1].qualified_pg_name().as_deref(), Some("audit.mood"));
        assert_eq!(schema.sql_type(&log.columns[1].ty).map(|t| t.rust_name.as_str()), Some("RequestMethod"));
    }

    #[test]
    fn hand_written_variations() {
        let schema = parse(
            r#"
use diesel::prelude::*;

table! {
    #[sql_name = "User Accounts"]
    accounts {
        id -> diesel::sql_types::Integer,
        #[sql_name = "type"]
        type_ -> Text,
        r#ref -> (Nullable<Timestamptz>),
    }
}

pub mod audit {
    diesel::table! {
        audit.entries (account_id, at) {
            account_id -> Int4,
            at -> Timestamp,
            during -> Range<Int4>,
        }
    }
}

fn unrelated() {}
"#,
        );
        let accounts = &schema.tables[0];
        assert_eq!(accounts.sql_name, "User Accounts");
        assert_eq!(accounts.primary_key, ["id"], "diesel's default primary key");
        assert_eq!(accounts.columns[0].ty.to_string(), "diesel::sql_types::Integer");
        assert_eq!(accounts.columns[0].ty.short(), "Integer");
        assert_eq!((accounts.columns[1].rust_name.as_str(), accounts.columns[1].sql_name.as_str()), ("type_", "type"));
        assert_eq!(accounts.columns[2].rust_name, "ref");
        assert!(accounts.columns[2].ty.is_nullable());
        let entries = &schema.tables[1];
        assert_eq!(entries.module, ["audit"]);
        assert_eq!((entries.pg_schema(), entries.sql_name.as_str()), ("audit", "entries"));
        assert_eq!(entries.primary_key_sql_names(), ["account_id", "at"]);
        assert_eq!(entries.columns[2].ty.short(), "Range<Int4>");
        assert!(schema.table("audit", "entries").is_some() && schema.table("public", "entries").is_none());
        assert!(schema.table("public", "User Accounts").is_some());
    }

    #[test]
    fn renamed_table_in_a_schema() {
        let schema = parse("diesel::table! {\n    #[sql_name = \"audit.Log Entries\"]\n    audit.Log_Entries (id) {\n        id -> Int4,\n    }\n}\n");
        assert_eq!(schema.tables[0].sql_name, "Log Entries");
        assert_eq!(schema.tables[0].pg_schema(), "audit");
    }

    #[test]
    fn errors_point_at_the_line() {
        let bad_column = "diesel::table! {\n    users (id) {\n        id -> Int4,\n        name Text,\n    }\n}\n";
        let e = parse_schema_rs(bad_column).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("->"), "{e}");

        let e = parse_schema_rs("diesel::table! {\n    users (id) {\n        #[max_length = \"x\"]\n        id -> Int4,\n    }\n}\n").unwrap_err();
        assert!(e.message.contains("max_length"), "{e}");
        assert_eq!(e.line, 3);

        let e = parse_schema_rs("fn broken( {").unwrap_err();
        assert_eq!(e.line, 1);

        let e = parse_schema_rs("diesel::joinable!(a -> b);\n").unwrap_err();
        assert!(e.to_string().starts_with("line 1, column"), "{e}");
    }

    /// Every file the real diesel_cli wrote for the print-schema fixtures parses, and each column's `#[sql_name]`
    /// round-trips through the model.
    #[test]
    fn every_print_schema_fixture_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/print_schema");
        let mut parsed = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let path = entry.unwrap().path().join("expected.rs");
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let schema = parse_schema_rs(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for table in &schema.tables {
                assert!(!table.columns.is_empty(), "{}: {}", path.display(), table.rust_name);
                for key in &table.primary_key {
                    assert!(table.column_by_rust_name(key).is_some(), "{}: {}.{key}", path.display(), table.rust_name);
                }
            }
            parsed += 1;
        }
        assert!(parsed >= 20, "only {parsed} fixtures found under {}", root.display());
        let keywords = parse_schema_rs(&std::fs::read_to_string(root.join("sql_name_keywords/expected.rs")).unwrap()).unwrap();
        let items = keywords.table("public", "Order Items").unwrap();
        assert_eq!(items.column("with\"quote").map(|c| c.rust_name.as_str()), Some("with_quote"));
        assert_eq!(items.primary_key_sql_names(), ["Item ID"]);
    }

    #[test]
    fn other_macros_and_diesel_options_are_ignored() {
        let schema = parse(
            "macro_rules! m { () => {} }\nm!();\npub mod sql_types {\n    #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId)]\n    #[diesel(postgres_type(oid = 1000, array_oid = 1001))]\n    pub struct ByOid;\n    pub struct Plain;\n}\n",
        );
        assert!(schema.tables.is_empty());
        assert_eq!(schema.sql_types.len(), 1);
        assert_eq!(schema.sql_types[0].pg_name, None);
        assert_eq!(schema.sql_types[0].qualified_pg_name(), None);
    }
}
