//! Small readers over libpg_query's parse tree, shared by the rules: names, types, columns, constraints.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableStmt, AlterTableType, ColumnDef, ConstrType, Constraint, Node, ObjectType, RangeVar,
    TypeName,
};

/// PostgreSQL's identifier limit (NAMEDATALEN - 1); longer names are silently truncated.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

pub fn string(node: &Node) -> Option<&str> {
    match node.node.as_ref()? {
        NodeEnum::String(s) => Some(&s.sval),
        _ => None,
    }
}

/// `schema.name` as written, with `public.` dropped so `public.users` and `users` are the same table.
pub fn qualified(schema: &str, name: &str) -> String {
    if schema.is_empty() || schema == "public" { name.to_owned() } else { format!("{schema}.{name}") }
}

pub fn relation_key(relation: &RangeVar) -> String {
    qualified(&relation.schemaname, &relation.relname)
}

/// The key of a `List` of names, as in `DROP TABLE a.b` or `DROP INDEX b`.
pub fn name_list_key(node: &Node) -> Option<String> {
    let NodeEnum::List(list) = node.node.as_ref()? else {
        return None;
    };
    let parts: Vec<&str> = list.items.iter().filter_map(string).collect();
    match parts.as_slice() {
        [name] => Some(qualified("", name)),
        [schema, name] => Some(qualified(schema, name)),
        [_, schema, name] => Some(qualified(schema, name)),
        _ => None,
    }
}

pub fn location(offset: i32) -> Option<i32> {
    (offset >= 0).then_some(offset)
}

/// A column type reduced to what the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct SqlType<'a> {
    /// Last component of the name, as the parser resolved it: `int4`, `varchar`, `timestamp`, `serial`, `vector`.
    pub name: &'a str,
    pub has_modifiers: bool,
    pub location: Option<i32>,
}

impl SqlType<'_> {
    pub fn of(type_name: &TypeName) -> SqlType<'_> {
        SqlType {
            name: type_name.names.last().and_then(string).unwrap_or(""),
            has_modifiers: !type_name.typmods.is_empty(),
            location: location(type_name.location),
        }
    }

    pub fn is_serial(&self) -> bool {
        matches!(self.name, "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2")
    }

    /// 16- and 32-bit integers, including their serial spellings.
    pub fn is_small_integer(&self) -> bool {
        matches!(self.name, "int2" | "int4" | "int" | "integer" | "smallint" | "serial" | "serial4" | "smallserial" | "serial2")
    }
}

/// Where a column definition appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnSite {
    CreateTable,
    AddColumn,
    /// `ALTER COLUMN ... TYPE`: only the type is meaningful.
    AlterType,
}

/// A column definition with its table.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub table: &'a RangeVar,
    /// The column name (for `ALTER COLUMN ... TYPE` taken from the command).
    pub name: &'a str,
    pub def: &'a ColumnDef,
    pub site: ColumnSite,
}

impl<'a> Column<'a> {
    pub fn sql_type(&self) -> Option<SqlType<'a>> {
        self.def.type_name.as_ref().map(SqlType::of)
    }

    pub fn constraints(&self) -> impl Iterator<Item = &'a Constraint> + use<'a> {
        self.def.constraints.iter().filter_map(constraint)
    }

    pub fn has_constraint(&self, kind: ConstrType) -> bool {
        self.constraints().any(|c| constraint_type(c) == kind)
    }

    /// `NOT NULL`, `PRIMARY KEY` or an identity column: the column cannot hold NULL.
    pub fn not_null(&self) -> bool {
        self.def.is_not_null
            || self.constraints().any(|c| {
                matches!(constraint_type(c), ConstrType::ConstrNotnull | ConstrType::ConstrPrimary | ConstrType::ConstrIdentity)
            })
    }

    pub fn location(&self) -> Option<i32> {
        location(self.def.location)
    }
}

pub fn constraint(node: &Node) -> Option<&Constraint> {
    match node.node.as_ref()? {
        NodeEnum::Constraint(c) => Some(c),
        _ => None,
    }
}

pub fn constraint_type(c: &Constraint) -> ConstrType {
    ConstrType::try_from(c.contype).unwrap_or(ConstrType::Undefined)
}

pub fn object_type(value: i32) -> ObjectType {
    ObjectType::try_from(value).unwrap_or(ObjectType::Undefined)
}

/// The commands of an `ALTER TABLE` (not `ALTER INDEX`, `ALTER VIEW` ...), with their kinds.
pub fn alter_table_cmds(stmt: &AlterTableStmt) -> impl Iterator<Item = (&AlterTableCmd, AlterTableType)> {
    let is_table = object_type(stmt.objtype) == ObjectType::ObjectTable;
    stmt.cmds.iter().filter(move |_| is_table).filter_map(|node| match node.node.as_ref()? {
        NodeEnum::AlterTableCmd(cmd) => {
            Some((&**cmd, AlterTableType::try_from(cmd.subtype).unwrap_or(AlterTableType::Undefined)))
        }
        _ => None,
    })
}

/// The table an `ALTER TABLE` changes, when it is one.
pub fn altered_table(stmt: &AlterTableStmt) -> Option<&RangeVar> {
    (object_type(stmt.objtype) == ObjectType::ObjectTable).then_some(stmt.relation.as_ref()).flatten()
}

/// The `def` of an `ALTER TABLE` command as a constraint (`ADD CONSTRAINT ...`).
pub fn cmd_constraint(cmd: &AlterTableCmd) -> Option<&Constraint> {
    cmd.def.as_deref().and_then(constraint)
}

pub fn cmd_column(cmd: &AlterTableCmd) -> Option<&ColumnDef> {
    match cmd.def.as_deref()?.node.as_ref()? {
        NodeEnum::ColumnDef(def) => Some(def),
        _ => None,
    }
}

/// Every column definition a statement makes: `CREATE TABLE` columns, `ADD COLUMN`, `ALTER COLUMN ... TYPE`.
pub fn columns(node: &NodeEnum) -> Vec<Column<'_>> {
    let mut out = Vec::new();
    match node {
        NodeEnum::CreateStmt(stmt) => {
            let Some(table) = stmt.relation.as_ref() else {
                return out;
            };
            for element in &stmt.table_elts {
                if let Some(NodeEnum::ColumnDef(def)) = element.node.as_ref() {
                    out.push(Column { table, name: &def.colname, def, site: ColumnSite::CreateTable });
                }
            }
        }
        NodeEnum::AlterTableStmt(stmt) => {
            let Some(table) = altered_table(stmt) else {
                return out;
            };
            for (cmd, kind) in alter_table_cmds(stmt) {
                let site = match kind {
                    AlterTableType::AtAddColumn => ColumnSite::AddColumn,
                    AlterTableType::AtAlterColumnType => ColumnSite::AlterType,
                    _ => continue,
                };
                if let Some(def) = cmd_column(cmd) {
                    let name = if site == ColumnSite::AlterType { cmd.name.as_str() } else { def.colname.as_str() };
                    out.push(Column { table, name, def, site });
                }
            }
        }
        _ => {}
    }
    out
}

/// The inline constraints of the columns an `ALTER TABLE ... ADD COLUMN` adds.
pub fn added_column_constraints(node: &NodeEnum) -> Vec<(Column<'_>, &Constraint)> {
    columns(node)
        .into_iter()
        .filter(|column| column.site == ColumnSite::AddColumn)
        .flat_map(|column| column.constraints().map(move |c| (column, c)))
        .collect()
}

/// Table-level constraints of a `CREATE TABLE`.
pub fn table_constraints(node: &NodeEnum) -> Vec<&Constraint> {
    match node {
        NodeEnum::CreateStmt(stmt) => stmt.table_elts.iter().chain(&stmt.constraints).filter_map(constraint).collect(),
        _ => Vec::new(),
    }
}

/// The key columns of a constraint, as names.
pub fn constraint_keys(c: &Constraint) -> Vec<&str> {
    c.keys.iter().filter_map(string).collect()
}

/// Name of every function called anywhere in an expression, lowercased and without schema.
pub fn called_functions(node: &Node, out: &mut Vec<String>) {
    let Some(inner) = node.node.as_ref() else {
        return;
    };
    let walk = |nodes: &[Node], out: &mut Vec<String>| nodes.iter().for_each(|n| called_functions(n, out));
    match inner {
        NodeEnum::FuncCall(call) => {
            if let Some(name) = call.funcname.last().and_then(string) {
                out.push(name.to_ascii_lowercase());
            }
            walk(&call.args, out);
        }
        NodeEnum::TypeCast(cast) => {
            if let Some(arg) = cast.arg.as_deref() {
                called_functions(arg, out);
            }
        }
        NodeEnum::AExpr(expr) => {
            for side in [expr.lexpr.as_deref(), expr.rexpr.as_deref()].into_iter().flatten() {
                called_functions(side, out);
            }
        }
        NodeEnum::BoolExpr(expr) => walk(&expr.args, out),
        NodeEnum::CoalesceExpr(expr) => walk(&expr.args, out),
        NodeEnum::MinMaxExpr(expr) => walk(&expr.args, out),
        NodeEnum::AArrayExpr(expr) => walk(&expr.elements, out),
        NodeEnum::RowExpr(expr) => walk(&expr.args, out),
        NodeEnum::List(list) => walk(&list.items, out),
        NodeEnum::NullTest(test) => {
            if let Some(arg) = test.arg.as_deref() {
                called_functions(arg, out);
            }
        }
        NodeEnum::CaseExpr(expr) => {
            for part in [expr.arg.as_deref(), expr.defresult.as_deref()].into_iter().flatten() {
                called_functions(part, out);
            }
            for when in &expr.args {
                if let Some(NodeEnum::CaseWhen(w)) = when.node.as_ref() {
                    for part in [w.expr.as_deref(), w.result.as_deref()].into_iter().flatten() {
                        called_functions(part, out);
                    }
                }
            }
        }
        _ => {}
    }
}
