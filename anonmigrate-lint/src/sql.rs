//! Small readers over squawk's syntax tree, shared by the rules and the catalog: relation names and column types.

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SyntaxKind, SyntaxNode};

/// One identifier as PostgreSQL folds it: quoted ones keep their case, the rest are lowercased.
fn fold(part: &str) -> String {
    match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => part.to_ascii_lowercase(),
    }
}

/// `schema.name` of a dotted name as written (whitespace and comments ignored), with `public.` dropped so
/// `public.users` and `users` are the same table.
pub fn relation_key(node: &SyntaxNode) -> String {
    let text: String = node
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
        .map(|t| t.text().to_owned())
        .collect();
    let parts: Vec<String> = split_dotted(&text).iter().map(|p| fold(p)).collect();
    match parts.as_slice() {
        [.., schema, name] if schema != "public" => format!("{schema}.{name}"),
        [.., name] => name.clone(),
        [] => String::new(),
    }
}

/// Splits `a."b.c".d` at the dots outside quotes.
fn split_dotted(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The table a statement creates, alters, indexes, truncates or triggers on (the first, for lists).
pub fn statement_table(stmt: &ast::Stmt) -> Option<String> {
    let node = match stmt {
        ast::Stmt::CreateTable(s) => s.table_name()?.path()?.syntax().clone(),
        ast::Stmt::CreateTableAs(s) => s.table_name()?.path()?.syntax().clone(),
        ast::Stmt::AlterTable(s) => s.table_relation_name()?.table_name_ref()?.path_ref()?.syntax().clone(),
        ast::Stmt::CreateIndex(s) => s.table_relation_name()?.table_name_ref()?.path_ref()?.syntax().clone(),
        ast::Stmt::CreateTrigger(s) => s.on_relation()?.relation_name_ref()?.syntax().clone(),
        _ => return None,
    };
    Some(relation_key(&node))
}

/// Every table a `TRUNCATE` or `DROP TABLE` names.
pub fn listed_tables(stmt: &ast::Stmt) -> Vec<String> {
    match stmt {
        ast::Stmt::Truncate(s) => s
            .table_list()
            .into_iter()
            .flat_map(|list| list.table_relation_names())
            .filter_map(|t| t.table_name_ref()?.path_ref())
            .map(|p| relation_key(p.syntax()))
            .collect(),
        ast::Stmt::DropTable(s) => s.table_name_refs().filter_map(|t| t.path_ref()).map(|p| relation_key(p.syntax())).collect(),
        _ => Vec::new(),
    }
}

/// Tables a statement references through foreign keys (`REFERENCES t`, `FOREIGN KEY ... REFERENCES t`).
pub fn referenced_tables(stmt: &ast::Stmt) -> Vec<String> {
    stmt.syntax()
        .descendants()
        .filter(|n| matches!(n.kind(), SyntaxKind::REFERENCES_CONSTRAINT | SyntaxKind::FOREIGN_KEY_CONSTRAINT))
        .filter_map(|n| match ast::ForeignKeyConstraint::cast(n.clone()) {
            Some(foreign_key) => foreign_key.table_name_ref()?.path_ref(),
            None => n.descendants().find_map(ast::PathRef::cast),
        })
        .map(|p| relation_key(p.syntax()))
        .collect()
}

/// A column type reduced to what the rules look at.
#[derive(Debug, Clone)]
pub struct ColumnType {
    /// The column it belongs to, when the type is a column's.
    pub column: Option<String>,
    /// Last component of the type name, lowercased: `int4`, `varchar`, `vector`.
    pub name: String,
    pub has_modifiers: bool,
    pub offset: usize,
}

/// Every column type written in a statement (CREATE TABLE columns, ADD COLUMN, ALTER COLUMN ... TYPE).
pub fn column_types(stmt: &ast::Stmt) -> Vec<ColumnType> {
    stmt.syntax()
        .descendants()
        .filter_map(ast::PathType::cast)
        .filter_map(|ty| {
            let path = ty.path_ref()?;
            let name = relation_key(path.syntax()).rsplit('.').next()?.to_owned();
            let column = ty.syntax().ancestors().find_map(|a| {
                if let Some(c) = ast::Column::cast(a.clone()) {
                    return c.name().map(|n| fold(&n.syntax().text().to_string()));
                }
                if let Some(c) = ast::AddColumn::cast(a.clone()) {
                    return c.column_name().map(|n| fold(&n.syntax().text().to_string()));
                }
                ast::AlterColumn::cast(a).and_then(|c| c.column_name_ref()).map(|n| fold(&n.syntax().text().to_string()))
            });
            Some(ColumnType {
                column,
                name,
                has_modifiers: ty.arg_list().is_some(),
                offset: usize::from(ty.syntax().text_range().start()),
            })
        })
        .collect()
}
