//! `generate NAME --autogenerate`: the edited schema.rs (desired) against the chain's replay (current) →
//! [`Change`]s → up.sql and a down.sql that undoes it, statement by statement in reverse.
//!
//! [`plan`] and [`Plan::sql`] are pure. The current side is used twice: as the [`Catalog`] (exact declared types
//! such as `vector(3)`, constraint names, enum types) and as the schema.rs it renders to, parsed, so both sides
//! are compared the way `check` compares them ([`compare::type_key`]): an enum column named by its real
//! PostgreSQL type is unchanged whatever the Rust struct is called, and is never dropped and re-added.
//!
//! Decisions, documented for users in the README:
//! - Renames are never guessed: a column missing on one side and new on the other is a DROP and an ADD unless
//!   `--rename table.old=new` says otherwise. Every drop is returned as a warning.
//! - schema.rs carries no enum labels: a `sql_types` enum the chain does not define needs `--enum-values
//!   type=a,b,c` (else an error says so); a pgvector column that does not exist yet needs `--vector-dim
//!   table.column=N`; an existing vector column keeps its dimension.
//! - A type the module cannot spell for PostgreSQL is an error, never a guess.
//! - PostgreSQL appends new columns; a new column written before existing ones in schema.rs is a warning.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::compare::{TypeKey, joinables, table_label, type_key};
use super::model::{Catalog, ForeignKey, Table};
use super::parse::{ColumnDef, DieselType, ParsedSchema, TableDef};
use super::sql_identifier as ident;
use crate::error::{Error, Result};

/// What the user told us that schema.rs cannot say.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--rename table.old=new`: (table label, old column, new column).
    pub renames: Vec<(String, String, String)>,
    /// `--vector-dim table.column=N`.
    pub vector_dims: BTreeMap<(String, String), u32>,
    /// `--enum-values type=a,b,c`, by the PostgreSQL type name as `postgres_type(name = ..)` gives it.
    pub enum_values: BTreeMap<String, Vec<String>>,
}

impl Options {
    /// Parses the CLI spellings (`users.old=new`, `items.embedding=3`, `mood=happy,sad`).
    pub fn from_args(renames: &[String], vector_dims: &[String], enum_values: &[String]) -> Result<Options> {
        let mut options = Options::default();
        let split = |arg: &str, flag: &str, form: &str| -> Result<(String, String, String)> {
            let bad = || Error::Config(format!("`{flag} {arg}`: expected `{flag} {form}`"));
            let (left, right) = arg.split_once('=').ok_or_else(bad)?;
            let (table, column) = left.rsplit_once('.').ok_or_else(bad)?;
            if table.is_empty() || column.is_empty() || right.is_empty() {
                return Err(bad());
            }
            Ok((table.to_owned(), column.to_owned(), right.to_owned()))
        };
        for arg in renames {
            options.renames.push(split(arg, "--rename", "table.old_column=new_column")?);
        }
        for arg in vector_dims {
            let (table, column, n) = split(arg, "--vector-dim", "table.column=N")?;
            let n: u32 = n
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::Config(format!("`--vector-dim {arg}`: the dimension must be a positive whole number")))?;
            options.vector_dims.insert((table, column), n);
        }
        for arg in enum_values {
            let (name, labels) = arg
                .split_once('=')
                .filter(|(n, l)| !n.is_empty() && !l.is_empty())
                .ok_or_else(|| Error::Config(format!("`--enum-values {arg}`: expected `--enum-values type=label1,label2`")))?;
            options.enum_values.insert(name.to_owned(), labels.split(',').map(str::to_owned).collect());
        }
        Ok(options)
    }
}

/// A column as SQL declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSql {
    pub name: String,
    pub sql_type: String,
    pub nullable: bool,
    /// `REFERENCES parent (column)`, already spelled.
    pub references: Option<String>,
}

impl ColumnSql {
    fn definition(&self) -> String {
        let mut out = format!("{} {}", ident(&self.name), self.sql_type);
        if !self.nullable {
            out.push_str(" NOT NULL");
        }
        if let Some(references) = &self.references {
            let _ = write!(out, " REFERENCES {references}");
        }
        out
    }
}

/// One schema change; each knows its inverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    CreateEnum { name: String, labels: Vec<String> },
    CreateTable { table: String, columns: Vec<ColumnSql>, primary_key: Vec<String> },
    /// `columns`, `primary_key` and `foreign_keys` from the catalog, to re-create it in down.sql.
    DropTable { table: String, columns: Vec<ColumnSql>, primary_key: Vec<String>, foreign_keys: Vec<String> },
    RenameColumn { table: String, from: String, to: String },
    AddColumn { table: String, column: ColumnSql },
    DropColumn { table: String, column: ColumnSql },
    AlterType { table: String, column: String, from: String, to: String },
    SetNullable { table: String, column: String, nullable: bool },
    /// `definition` is `FOREIGN KEY (..) REFERENCES ..`.
    AddForeignKey { table: String, constraint: String, definition: String },
    DropForeignKey { table: String, constraint: String, definition: String },
}

impl Change {
    /// Whether applying it loses data (flagged on stderr).
    pub fn is_destructive(&self) -> bool {
        matches!(self, Change::DropTable { .. } | Change::DropColumn { .. })
    }

    fn up(&self) -> String {
        match self {
            Change::CreateEnum { name, labels } => {
                let labels: Vec<String> = labels.iter().map(|l| crate::db::quote_literal(l)).collect();
                format!("CREATE TYPE {name} AS ENUM ({});", labels.join(", "))
            }
            Change::CreateTable { table, columns, primary_key } => create_table(table, columns, primary_key, &[]),
            Change::DropTable { table, .. } => format!("DROP TABLE {table};"),
            Change::RenameColumn { table, from, to } => {
                format!("ALTER TABLE {table} RENAME COLUMN {} TO {};", ident(from), ident(to))
            }
            Change::AddColumn { table, column } => format!("ALTER TABLE {table} ADD COLUMN {};", column.definition()),
            Change::DropColumn { table, column } => format!("ALTER TABLE {table} DROP COLUMN {};", ident(&column.name)),
            Change::AlterType { table, column, to, .. } => alter_type(table, column, to),
            Change::SetNullable { table, column, nullable } => set_nullable(table, column, *nullable),
            Change::AddForeignKey { table, constraint, definition } => {
                format!("ALTER TABLE {table} ADD CONSTRAINT {} {definition};", ident(constraint))
            }
            Change::DropForeignKey { table, constraint, .. } => {
                format!("ALTER TABLE {table} DROP CONSTRAINT {};", ident(constraint))
            }
        }
    }

    fn down(&self) -> String {
        match self {
            Change::CreateEnum { name, .. } => format!("DROP TYPE {name};"),
            Change::CreateTable { table, .. } => format!("DROP TABLE {table};"),
            Change::DropTable { table, columns, primary_key, foreign_keys } => create_table(table, columns, primary_key, foreign_keys),
            Change::RenameColumn { table, from, to } => Change::RenameColumn { table: table.clone(), from: to.clone(), to: from.clone() }.up(),
            Change::AddColumn { table, column } => format!("ALTER TABLE {table} DROP COLUMN {};", ident(&column.name)),
            Change::DropColumn { table, column } => format!("ALTER TABLE {table} ADD COLUMN {};", column.definition()),
            Change::AlterType { table, column, from, .. } => alter_type(table, column, from),
            Change::SetNullable { table, column, nullable } => set_nullable(table, column, !nullable),
            Change::AddForeignKey { table, constraint, .. } => format!("ALTER TABLE {table} DROP CONSTRAINT {};", ident(constraint)),
            Change::DropForeignKey { table, constraint, definition } => {
                format!("ALTER TABLE {table} ADD CONSTRAINT {} {definition};", ident(constraint))
            }
        }
    }

    /// One line for stderr.
    pub fn describe(&self) -> String {
        match self {
            Change::DropTable { table, .. } => {
                format!("DROP TABLE {table}: its data is lost; if the table was renamed, write the migration by hand")
            }
            Change::DropColumn { table, column } => format!(
                "DROP COLUMN {table}.{}: its data is lost; if the column was renamed, pass `--rename {table}.{}=NEW_NAME`",
                column.name, column.name
            ),
            other => other.up(),
        }
    }
}

fn create_table(table: &str, columns: &[ColumnSql], primary_key: &[String], extra: &[String]) -> String {
    let mut lines: Vec<String> = columns.iter().map(ColumnSql::definition).collect();
    if !primary_key.is_empty() {
        let key: Vec<String> = primary_key.iter().map(|k| ident(k)).collect();
        lines.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    lines.extend(extra.iter().cloned());
    format!("CREATE TABLE {table} (\n    {}\n);", lines.join(",\n    "))
}

fn alter_type(table: &str, column: &str, to: &str) -> String {
    let c = ident(column);
    format!("ALTER TABLE {table} ALTER COLUMN {c} TYPE {to} USING {c}::{to};")
}

fn set_nullable(table: &str, column: &str, nullable: bool) -> String {
    let action = if nullable { "DROP" } else { "SET" };
    format!("ALTER TABLE {table} ALTER COLUMN {} {action} NOT NULL;", ident(column))
}

/// The changes, in up order, and what the user must be told.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// up.sql and down.sql (the inverses in reverse order).
    pub fn sql(&self) -> (String, String) {
        let header = "-- Generated by `cargo anonmigrate generate --autogenerate` from schema.rs: review before running.\n";
        let mut up = String::from(header);
        for change in &self.changes {
            up.push_str(&change.up());
            up.push('\n');
        }
        let mut down = String::from(header);
        for change in self.changes.iter().rev() {
            down.push_str(&change.down());
            down.push('\n');
        }
        (up, down)
    }
}

/// `table` as SQL names it: `users`, `audit.entries`.
fn sql_table(schema: &str, name: &str) -> String {
    if schema == "public" { ident(name) } else { format!("{}.{}", ident(schema), ident(name)) }
}

struct Planner<'a> {
    catalog: &'a Catalog,
    current: &'a ParsedSchema,
    desired: &'a ParsedSchema,
    options: &'a Options,
    enums: Vec<Change>,
}

/// The changes that turn the chain's schema (`catalog`, and `current`: the schema.rs it renders to, parsed)
/// into `desired`.
pub fn plan(catalog: &Catalog, current: &ParsedSchema, desired: &ParsedSchema, options: &Options) -> Result<Plan> {
    let mut planner = Planner { catalog, current, desired, options, enums: Vec::new() };
    planner.run()
}

impl<'a> Planner<'a> {
    fn run(&mut self) -> Result<Plan> {
        let mut plan = Plan::default();
        let (current, desired) = (self.current, self.desired);
        for (table, old, new) in &self.options.renames {
            let found = current.tables.iter().find(|t| table_label(t) == *table);
            let ok = found.is_some_and(|t| t.column(old).is_some() && t.column(new).is_none())
                && desired.tables.iter().any(|t| table_label(t) == *table && t.column(new).is_some() && t.column(old).is_none());
            if !ok {
                return Err(Error::Config(format!(
                    "`--rename {table}.{old}={new}`: the migrations must have column {table}.{old} and schema.rs must have {table}.{new} instead"
                )));
            }
        }
        let renamed = |table: &str, column: &str| -> String {
            self.options
                .renames
                .iter()
                .find(|(t, old, _)| t == table && old == column)
                .map_or_else(|| column.to_owned(), |(_, _, new)| new.clone())
        };
        let want_joins = joinables(desired);
        let have_joins: Vec<(String, String, String)> =
            joinables(current).into_iter().map(|(c, p, col)| { let col = renamed(&c, &col); (c, p, col) }).collect();
        let kept = |label: &str| desired.tables.iter().any(|t| table_label(t) == label);
        let existed = |label: &str| current.tables.iter().any(|t| table_label(t) == label);

        // Foreign keys that go away, first: a dropped parent table would refuse otherwise.
        let mut drop_fks = Vec::new();
        for join in &have_joins {
            if kept(&join.0) && !want_joins.contains(join) {
                drop_fks.push(self.drop_foreign_key(join, &renamed)?);
            }
        }
        // Dropped tables, children first.
        let mut dropped: Vec<&TableDef> = current.tables.iter().filter(|t| !kept(&table_label(t))).collect();
        order_by_dependency(&mut dropped, &have_joins, true);
        let mut drop_tables = Vec::new();
        for table in dropped {
            drop_tables.push(self.drop_table(table)?);
        }
        // New tables, parents first.
        let mut created: Vec<&TableDef> = desired.tables.iter().filter(|t| !existed(&table_label(t))).collect();
        order_by_dependency(&mut created, &want_joins, false);
        let mut create_tables = Vec::new();
        for table in created {
            create_tables.push(self.create_table(table, &want_joins)?);
        }
        let mut columns = Vec::new();
        let mut add_fks = Vec::new();
        for want in &desired.tables {
            let label = table_label(want);
            let Some(have) = current.tables.iter().find(|t| table_label(t) == label) else { continue };
            self.table_changes(have, want, &label, &mut columns, &mut plan.warnings)?;
        }
        for join in &want_joins {
            if existed(&join.0) && !have_joins.contains(join) {
                add_fks.push(self.add_foreign_key(join)?);
            }
        }
        plan.changes = std::mem::take(&mut self.enums);
        plan.changes.extend(drop_fks);
        plan.changes.extend(drop_tables);
        plan.changes.extend(create_tables);
        plan.changes.extend(columns);
        plan.changes.extend(add_fks);
        for change in plan.changes.iter().filter(|c| c.is_destructive()) {
            plan.warnings.push(change.describe());
        }
        Ok(plan)
    }

    fn catalog_table(&self, table: &TableDef) -> Result<&'a Table> {
        let catalog: &'a Catalog = self.catalog;
        catalog
            .table(table.pg_schema(), &table.sql_name)
            .ok_or_else(|| Error::Config(format!("table {} is not in the replayed catalog", table_label(table))))
    }

    fn catalog_fk(&self, join: &(String, String, String), renamed: &dyn Fn(&str, &str) -> String) -> Option<&ForeignKey> {
        self.catalog.foreign_keys.iter().find(|fk| {
            let child = label_of(&fk.table.schema, &fk.table.name);
            child == join.0
                && label_of(&fk.parent.schema, &fk.parent.name) == join.1
                && fk.columns.len() == 1
                && renamed(&child, &fk.columns[0]) == join.2
        })
    }

    fn drop_foreign_key(&self, join: &(String, String, String), renamed: &dyn Fn(&str, &str) -> String) -> Result<Change> {
        let fk = self
            .catalog_fk(join, renamed)
            .ok_or_else(|| Error::Config(format!("no foreign key {} ({}) → {} in the catalog", join.0, join.2, join.1)))?;
        Ok(Change::DropForeignKey {
            table: sql_table(&fk.table.schema, &fk.table.name),
            constraint: fk.constraint.clone(),
            definition: fk_definition(&[renamed(&join.0, &fk.columns[0])], &sql_table(&fk.parent.schema, &fk.parent.name), &fk.parent_columns),
        })
    }

    fn add_foreign_key(&self, join: &(String, String, String)) -> Result<Change> {
        let (child, parent) = (self.desired_table(&join.0)?, self.desired_table(&join.1)?);
        let parent_key = single_key(parent, join)?;
        Ok(Change::AddForeignKey {
            table: sql_table(child.pg_schema(), &child.sql_name),
            constraint: format!("{}_{}_fkey", child.sql_name, join.2),
            definition: fk_definition(std::slice::from_ref(&join.2), &sql_table(parent.pg_schema(), &parent.sql_name), &[parent_key]),
        })
    }

    fn desired_table(&self, label: &str) -> Result<&TableDef> {
        self.desired
            .tables
            .iter()
            .find(|t| table_label(t) == label)
            .ok_or_else(|| Error::Config(format!("joinable! names table {label}, which schema.rs does not define")))
    }

    fn drop_table(&self, table: &TableDef) -> Result<Change> {
        let found = self.catalog_table(table)?;
        let columns = found
            .columns
            .iter()
            .map(|c| ColumnSql { name: c.name.clone(), sql_type: c.declared_type.clone(), nullable: c.nullable, references: None })
            .collect();
        let foreign_keys = self
            .catalog
            .foreign_keys
            .iter()
            .filter(|fk| fk.table == found.name)
            .map(|fk| {
                let parent = sql_table(&fk.parent.schema, &fk.parent.name);
                format!("CONSTRAINT {} {}", ident(&fk.constraint), fk_definition(&fk.columns, &parent, &fk.parent_columns))
            })
            .collect();
        Ok(Change::DropTable {
            table: sql_table(&found.name.schema, &found.name.name),
            columns,
            primary_key: found.primary_key.clone(),
            foreign_keys,
        })
    }

    fn create_table(&mut self, table: &TableDef, want_joins: &[(String, String, String)]) -> Result<Change> {
        let label = table_label(table);
        let mut columns = Vec::new();
        for column in &table.columns {
            let mut sql = self.new_column(table, column, None)?;
            if let Some(join) = want_joins.iter().find(|j| j.0 == label && j.2 == column.sql_name) {
                let parent = self.desired_table(&join.1)?;
                let key = single_key(parent, join)?;
                sql.references = Some(format!("{} ({})", sql_table(parent.pg_schema(), &parent.sql_name), ident(&key)));
            }
            columns.push(sql);
        }
        Ok(Change::CreateTable {
            table: sql_table(table.pg_schema(), &table.sql_name),
            columns,
            primary_key: table.primary_key_sql_names(),
        })
    }

    fn new_column(&mut self, table: &TableDef, column: &ColumnDef, existing: Option<&super::model::Column>) -> Result<ColumnSql> {
        Ok(ColumnSql {
            name: column.sql_name.clone(),
            sql_type: self.sql_type(table, column, existing)?,
            nullable: column.ty.is_nullable(),
            references: None,
        })
    }

    fn table_changes(&mut self, have: &TableDef, want: &TableDef, label: &str, out: &mut Vec<Change>, warnings: &mut Vec<String>) -> Result<()> {
        let found = self.catalog_table(have)?;
        let table = sql_table(want.pg_schema(), &want.sql_name);
        let rename_of = |new: &str| self.options.renames.iter().find(|(t, _, n)| t == label && n == new).map(|(_, old, _)| old.clone());
        let renamed_away = |old: &str| self.options.renames.iter().any(|(t, o, _)| t == label && o == old);
        let (mut renames, mut drops, mut adds, mut alters) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for column in &have.columns {
            if want.column(&column.sql_name).is_none() && !renamed_away(&column.sql_name) {
                let c = found.columns.iter().find(|c| c.name == column.sql_name);
                drops.push(Change::DropColumn {
                    table: table.clone(),
                    column: ColumnSql {
                        name: column.sql_name.clone(),
                        sql_type: c.map_or_else(String::new, |c| c.declared_type.clone()),
                        nullable: c.is_none_or(|c| c.nullable),
                        references: None,
                    },
                });
            }
        }
        let mut seen_existing_after_new: Option<String> = None;
        for column in want.columns.iter().rev() {
            let exists = have.column(&column.sql_name).is_some() || rename_of(&column.sql_name).is_some();
            if exists {
                seen_existing_after_new.get_or_insert_with(|| column.sql_name.clone());
            } else if let Some(later) = &seen_existing_after_new {
                warnings.push(format!(
                    "column {label}.{} is added at the end of the table (PostgreSQL cannot insert it before {later}); `cargo anonmigrate schema` will list it last",
                    column.sql_name
                ));
            }
        }
        for column in &want.columns {
            let old_name = rename_of(&column.sql_name);
            let source = old_name.as_deref().unwrap_or(&column.sql_name);
            let Some(current) = have.column(source) else {
                adds.push(Change::AddColumn { table: table.clone(), column: self.new_column(want, column, None)? });
                continue;
            };
            if let Some(old) = &old_name {
                renames.push(Change::RenameColumn { table: table.clone(), from: old.clone(), to: column.sql_name.clone() });
            }
            let existing = found.columns.iter().find(|c| c.name == source);
            let same_type = strip(&type_key(self.current, &current.ty)) == strip(&type_key(self.desired, &column.ty))
                && current.max_length == column.max_length;
            let dim_override = self.options.vector_dims.contains_key(&(label.to_owned(), column.sql_name.clone()));
            if !same_type || dim_override {
                let to = self.sql_type(want, column, existing)?;
                let from = existing.map_or_else(String::new, |c| c.declared_type.clone());
                if !same_type || to != from {
                    alters.push(Change::AlterType { table: table.clone(), column: column.sql_name.clone(), from, to });
                }
            }
            if current.ty.is_nullable() != column.ty.is_nullable() {
                alters.push(Change::SetNullable { table: table.clone(), column: column.sql_name.clone(), nullable: column.ty.is_nullable() });
            }
        }
        out.extend(renames);
        out.extend(drops);
        out.extend(adds);
        out.extend(alters);
        Ok(())
    }

    /// The PostgreSQL spelling of a column's type in schema.rs; `existing` is the column as it is now, if any.
    fn sql_type(&mut self, table: &TableDef, column: &ColumnDef, existing: Option<&super::model::Column>) -> Result<String> {
        let label = table_label(table);
        let at = format!("{label}.{}", column.sql_name);
        let key = type_key(self.desired, &column.ty);
        let (element, array) = match strip(&key) {
            TypeKey::Array(inner) => (strip(inner).clone(), true),
            other => (other.clone(), false),
        };
        let TypeKey::Pg(pg) = &element else {
            return Err(Error::Config(format!(
                "column {at}: no PostgreSQL type is known for `{}`; write this migration by hand (plain `generate`)",
                column.ty.short()
            )));
        };
        let base = match pg.as_str() {
            "vector" | "halfvec" | "sparsevec" => {
                let dim = self
                    .options
                    .vector_dims
                    .get(&(label.clone(), column.sql_name.clone()))
                    .copied()
                    .or_else(|| existing.and_then(|c| vector_dimension(&c.declared_type, pg)));
                let dim = dim.ok_or_else(|| {
                    Error::Config(format!(
                        "column {at}: a new {pg} column needs its dimension: pass `--vector-dim {at}=N` (a {pg} without one cannot be indexed)"
                    ))
                })?;
                format!("{pg}({dim})")
            }
            _ => match builtin(pg, column.max_length) {
                Some(name) => name,
                None => self.user_type(pg, &at, &column.ty)?,
            },
        };
        Ok(if array { format!("{base}[]") } else { base })
    }

    /// A type from `sql_types`: known to the chain, or an enum created from `--enum-values`.
    fn user_type(&mut self, pg: &str, at: &str, ty: &DieselType) -> Result<String> {
        let (schema, name) = pg.split_once('.').unwrap_or(("public", pg));
        let spelled = sql_table(schema, name);
        let known = self.catalog.types.iter().any(|t| t.name.schema == schema && t.name.name == name)
            || self.catalog.tables.iter().flat_map(|t| &t.columns).any(|c| {
                let udt = &c.sql_type.udt;
                udt.name.strip_prefix('_').unwrap_or(&udt.name) == name && (udt.schema == schema || udt.schema == "pg_catalog")
            });
        if known || self.enums.iter().any(|c| matches!(c, Change::CreateEnum { name, .. } if *name == spelled)) {
            return Ok(spelled);
        }
        if self.desired.sql_type(ty).is_none() {
            return Err(Error::Config(format!(
                "column {at}: `{}` is not a type PostgreSQL knows under that name; write this migration by hand (plain `generate`)",
                ty.short()
            )));
        }
        let labels = self.options.enum_values.get(pg).ok_or_else(|| {
            Error::Config(format!(
                "column {at}: type {pg} does not exist in the migrations and schema.rs does not carry enum labels: pass `--enum-values {pg}=label1,label2,...` to create it as an enum, or create the type in a migration of its own first"
            ))
        })?;
        self.enums.push(Change::CreateEnum { name: spelled.clone(), labels: labels.clone() });
        Ok(spelled)
    }
}

fn label_of(schema: &str, name: &str) -> String {
    if schema == "public" { name.to_owned() } else { format!("{schema}.{name}") }
}

fn single_key(parent: &TableDef, join: &(String, String, String)) -> Result<String> {
    match parent.primary_key_sql_names().as_slice() {
        [key] => Ok(key.clone()),
        _ => Err(Error::Config(format!(
            "joinable!({} -> {} ({})): the parent needs a one-column primary key",
            join.0, join.1, join.2
        ))),
    }
}

fn fk_definition(columns: &[String], parent: &str, parent_columns: &[String]) -> String {
    let list = |names: &[String]| names.iter().map(|n| ident(n)).collect::<Vec<_>>().join(", ");
    format!("FOREIGN KEY ({}) REFERENCES {parent} ({})", list(columns), list(parent_columns))
}

fn strip(key: &TypeKey) -> &TypeKey {
    match key {
        TypeKey::Nullable(inner) => inner,
        other => other,
    }
}

/// `vector(3)` → 3 (for `vector`, `halfvec`, `sparsevec`).
fn vector_dimension(declared: &str, pg: &str) -> Option<u32> {
    declared.strip_prefix(pg)?.strip_prefix('(')?.strip_suffix(')')?.parse().ok()
}

/// PostgreSQL's own spelling of a built-in type, by the name `compare` reduces diesel's types to.
fn builtin(pg: &str, max_length: Option<u32>) -> Option<String> {
    let with_length = |name: &str| max_length.map_or_else(|| name.to_owned(), |n| format!("{name}({n})"));
    Some(match pg {
        "int2" => "smallint".into(),
        "int4" => "integer".into(),
        "int8" => "bigint".into(),
        "bool" => "boolean".into(),
        "float4" => "real".into(),
        "float8" => "double precision".into(),
        "varchar" => with_length("varchar"),
        "bpchar" => max_length.map_or_else(|| "bpchar".to_owned(), |n| format!("char({n})")),
        "bit" => with_length("bit"),
        "text" | "numeric" | "bytea" | "date" | "time" | "timestamp" | "timestamptz" | "interval" | "json" | "jsonb"
        | "uuid" | "inet" | "cidr" | "macaddr" | "macaddr8" | "money" | "oid" | "pg_lsn" | "int4range" | "int8range"
        | "numrange" | "daterange" | "tsrange" | "tstzrange" | "int4multirange" | "int8multirange" | "nummultirange"
        | "datemultirange" | "tsmultirange" | "tstzmultirange" => pg.to_owned(),
        _ => return None,
    })
}

/// Orders `tables` so that a table comes after the tables it references (`children_first`: before them), keeping
/// file order otherwise. `joins` are (child, parent, column) labels; a cycle keeps its remaining file order.
fn order_by_dependency(tables: &mut Vec<&TableDef>, joins: &[(String, String, String)], children_first: bool) {
    let mut rest: Vec<&TableDef> = std::mem::take(tables);
    while !rest.is_empty() {
        let labels: Vec<String> = rest.iter().map(|t| table_label(t)).collect();
        // Ready: (parents first) references no table still waiting; (children first) referenced by none.
        let ready = (0..rest.len()).find(|&i| {
            !joins.iter().any(|(child, parent, _)| {
                let (me, other) = if children_first { (parent, child) } else { (child, parent) };
                *me == labels[i] && other != me && labels.contains(other)
            })
        });
        tables.push(rest.remove(ready.unwrap_or(0)));
    }
}

/// The plan for the workspace's schema file against a replay of `chain` (the only step that needs a database:
/// [`super::replay`] on a scratch database, always dropped). Returns the schema file it read, too.
pub fn diff_with_chain(
    workspace: &crate::config::Workspace,
    chain: &anonmigrate_chain::Chain,
    config: &super::config::SchemaConfig,
    options: &Options,
    observer: &mut dyn crate::events::Observer,
) -> Result<(Plan, std::path::PathBuf)> {
    let sections: Vec<_> = config.files().collect();
    let section = match sections.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::Config(
                "--autogenerate reads the desired schema from schema.rs, and no schema file is configured: set `file` under [print_schema] in diesel.toml, or `schema-file` under [workspace.metadata.anonmigrate]".into(),
            ));
        }
        _ => return Err(Error::Config("--autogenerate supports one schema file; diesel.toml configures several".into())),
    };
    let path = section.file.clone().unwrap_or_default();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Config(format!("cannot read the schema file {}: {e}", path.display())))?;
    let desired = super::parse::parse_schema_rs(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let (catalog, _) = super::replay(workspace, chain, &config.pg_schemas(), observer)?;
    let rendered = super::render::render(&catalog, &section.settings)?;
    let current = super::parse::parse_schema_rs(&rendered.text)
        .map_err(|e| Error::Config(format!("the schema rendered from the migrations does not parse: {e}")))?;
    Ok((plan(&catalog, &current, &desired, options)?, path))
}
