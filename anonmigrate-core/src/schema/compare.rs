//! The structural diff behind `check`: a committed schema.rs against the one the migrations give, both as
//! [`ParsedSchema`]. Pure; the caller renders the expected side from a replay of the chain (with
//! [`render`](super::render), so column types are named exactly as `schema` names them) and parses it.
//!
//! Types are compared as diesel SQL types: a spelling diesel defines as the same SQL type is equal
//! (`Integer` = `Int4`, `diesel::sql_types::Text` = `Text`, a `sql_types` struct = the PostgreSQL type it names),
//! while types diesel maps to the same Rust value but PostgreSQL keeps apart (`Varchar`/`Text`/`Bpchar`) are
//! reported, with a note saying so.

use std::fmt;

use serde::Serialize;

use super::parse::{DieselType, ParsedSchema, TableDef};

/// One way the committed schema.rs differs from the migrations. "migrations" always means the replayed chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// A table the migrations create is not in schema.rs.
    TableMissing { table: String },
    /// A table in schema.rs that no migration creates.
    TableExtra { table: String },
    ColumnMissing { table: String, column: String },
    ColumnExtra { table: String, column: String },
    ColumnType {
        table: String,
        column: String,
        schema_rs: String,
        migrations: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    MaxLength {
        table: String,
        column: String,
        schema_rs: Option<u32>,
        migrations: Option<u32>,
    },
    /// The columns both sides have are in a different order (diesel's `SELECT *` and `Queryable` follow it).
    ColumnOrder { table: String, schema_rs: Vec<String>, migrations: Vec<String> },
    PrimaryKey { table: String, schema_rs: Vec<String>, migrations: Vec<String> },
    JoinableMissing { child: String, parent: String, column: String },
    JoinableExtra { child: String, parent: String, column: String },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::TableMissing { table } => write!(f, "table {table}: in the migrations, missing from schema.rs"),
            Difference::TableExtra { table } => write!(f, "table {table}: in schema.rs, not created by any migration"),
            Difference::ColumnMissing { table, column } => {
                write!(f, "column {table}.{column}: in the migrations, missing from schema.rs")
            }
            Difference::ColumnExtra { table, column } => {
                write!(f, "column {table}.{column}: in schema.rs, not in the migrations")
            }
            Difference::ColumnType { table, column, schema_rs, migrations, note } => {
                write!(f, "column {table}.{column}: type {schema_rs} in schema.rs, {migrations} in the migrations")?;
                if let Some(note) = note {
                    write!(f, " ({note})")?;
                }
                Ok(())
            }
            Difference::MaxLength { table, column, schema_rs, migrations } => {
                let show = |n: &Option<u32>| n.map_or_else(|| "no #[max_length]".to_owned(), |n| format!("#[max_length = {n}]"));
                write!(f, "column {table}.{column}: {} in schema.rs, {} in the migrations", show(schema_rs), show(migrations))
            }
            Difference::ColumnOrder { table, schema_rs, migrations } => write!(
                f,
                "column order of {table} differs: schema.rs has ({}), the migrations give ({})",
                schema_rs.join(", "),
                migrations.join(", ")
            ),
            Difference::PrimaryKey { table, schema_rs, migrations } => write!(
                f,
                "primary key of {table}: ({}) in schema.rs, ({}) in the migrations",
                schema_rs.join(", "),
                migrations.join(", ")
            ),
            Difference::JoinableMissing { child, parent, column } => {
                write!(f, "joinable!({child} -> {parent} ({column})): in the migrations (a foreign key), missing from schema.rs")
            }
            Difference::JoinableExtra { child, parent, column } => {
                write!(f, "joinable!({child} -> {parent} ({column})): in schema.rs, no such foreign key in the migrations")
            }
        }
    }
}

/// How a table is named in messages: `users`, or `audit.entries` outside `public`.
pub(super) fn table_label(table: &TableDef) -> String {
    match table.pg_schema() {
        "public" => table.sql_name.clone(),
        schema => format!("{schema}.{}", table.sql_name),
    }
}

/// Every difference between `committed` (the schema.rs in the repository) and `expected` (what the migrations
/// give), tables in `expected`'s order, then tables only in `committed`, then `joinable!` rules.
pub fn compare(committed: &ParsedSchema, expected: &ParsedSchema) -> Vec<Difference> {
    let mut differences = Vec::new();
    for want in &expected.tables {
        match committed.table(want.pg_schema(), &want.sql_name) {
            None => differences.push(Difference::TableMissing { table: table_label(want) }),
            Some(have) => compare_table(committed, have, expected, want, &mut differences),
        }
    }
    for have in &committed.tables {
        if expected.table(have.pg_schema(), &have.sql_name).is_none() {
            differences.push(Difference::TableExtra { table: table_label(have) });
        }
    }
    let want_joins = joinables(expected);
    let have_joins = joinables(committed);
    for (child, parent, column) in &want_joins {
        // A joinable! on a table schema.rs lacks altogether is implied by that table's finding.
        let covered = |name: &str| committed.tables.iter().any(|t| label_matches(t, name));
        if covered(child) && covered(parent) && !have_joins.contains(&(child.clone(), parent.clone(), column.clone())) {
            differences.push(Difference::JoinableMissing { child: child.clone(), parent: parent.clone(), column: column.clone() });
        }
    }
    for (child, parent, column) in &have_joins {
        let known = |name: &str| expected.tables.iter().any(|t| label_matches(t, name));
        if known(child) && known(parent) && !want_joins.contains(&(child.clone(), parent.clone(), column.clone())) {
            differences.push(Difference::JoinableExtra { child: child.clone(), parent: parent.clone(), column: column.clone() });
        }
    }
    differences
}

fn label_matches(table: &TableDef, label: &str) -> bool {
    table_label(table) == label
}

/// `joinable!` rules as (child table, parent table, column), with SQL names where the file lets us resolve them.
pub(super) fn joinables(schema: &ParsedSchema) -> Vec<(String, String, String)> {
    schema
        .joinables
        .iter()
        .map(|j| {
            let child = schema.table_by_rust_name(&j.module, &j.child);
            let parent = schema.table_by_rust_name(&j.module, &j.parent);
            let column = child
                .and_then(|t| t.column_by_rust_name(&j.column))
                .map_or_else(|| j.column.clone(), |c| c.sql_name.clone());
            (
                child.map_or_else(|| j.child.clone(), table_label),
                parent.map_or_else(|| j.parent.clone(), table_label),
                column,
            )
        })
        .collect()
}

fn compare_table(committed: &ParsedSchema, have: &TableDef, expected: &ParsedSchema, want: &TableDef, out: &mut Vec<Difference>) {
    let table = table_label(want);
    for column in &want.columns {
        let Some(found) = have.column(&column.sql_name) else {
            out.push(Difference::ColumnMissing { table: table.clone(), column: column.sql_name.clone() });
            continue;
        };
        let (have_key, want_key) = (type_key(committed, &found.ty), type_key(expected, &column.ty));
        if have_key != want_key {
            out.push(Difference::ColumnType {
                table: table.clone(),
                column: column.sql_name.clone(),
                schema_rs: found.ty.short(),
                migrations: column.ty.short(),
                note: type_note(&have_key, &want_key),
            });
        } else if found.max_length != column.max_length {
            out.push(Difference::MaxLength {
                table: table.clone(),
                column: column.sql_name.clone(),
                schema_rs: found.max_length,
                migrations: column.max_length,
            });
        }
    }
    for column in &have.columns {
        if want.column(&column.sql_name).is_none() {
            out.push(Difference::ColumnExtra { table: table.clone(), column: column.sql_name.clone() });
        }
    }
    let common = |from: &TableDef, other: &TableDef| -> Vec<String> {
        from.columns
            .iter()
            .filter(|c| other.column(&c.sql_name).is_some())
            .map(|c| c.sql_name.clone())
            .collect()
    };
    let (have_order, want_order) = (common(have, want), common(want, have));
    if have_order != want_order {
        out.push(Difference::ColumnOrder { table: table.clone(), schema_rs: have_order, migrations: want_order });
    }
    let (have_key, want_key) = (have.primary_key_sql_names(), want.primary_key_sql_names());
    if have_key != want_key {
        out.push(Difference::PrimaryKey { table, schema_rs: have_key, migrations: want_key });
    }
}

/// A diesel SQL type reduced to what decides equality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TypeKey {
    Nullable(Box<TypeKey>),
    Array(Box<TypeKey>),
    /// A PostgreSQL type, by name (`int4`, `varchar`, `mood`, `audit.mood`).
    Pg(String),
    /// A type this module does not know, by its last path segment and arguments.
    Other(String, Vec<TypeKey>),
}

/// The PostgreSQL type behind each of diesel's names (and pgvector's), aliases included.
const PG_TYPES: &[(&str, &str)] = &[
    ("Bool", "bool"),
    ("SmallInt", "int2"),
    ("Smallint", "int2"),
    ("Int2", "int2"),
    ("SmallSerial", "int2"),
    ("Integer", "int4"),
    ("Int4", "int4"),
    ("Serial", "int4"),
    ("BigInt", "int8"),
    ("Bigint", "int8"),
    ("Int8", "int8"),
    ("BigSerial", "int8"),
    ("Float", "float4"),
    ("Float4", "float4"),
    ("Double", "float8"),
    ("Float8", "float8"),
    ("Numeric", "numeric"),
    ("Decimal", "numeric"),
    ("Text", "text"),
    ("VarChar", "varchar"),
    ("Varchar", "varchar"),
    ("Char", "bpchar"),
    ("Bpchar", "bpchar"),
    ("Citext", "citext"),
    ("Binary", "bytea"),
    ("Bytea", "bytea"),
    ("Date", "date"),
    ("Time", "time"),
    ("Timestamp", "timestamp"),
    ("Timestamptz", "timestamptz"),
    ("Interval", "interval"),
    ("Json", "json"),
    ("Jsonb", "jsonb"),
    ("Uuid", "uuid"),
    ("Inet", "inet"),
    ("Cidr", "cidr"),
    ("MacAddr", "macaddr"),
    ("Macaddr", "macaddr"),
    ("MacAddr8", "macaddr8"),
    ("Macaddr8", "macaddr8"),
    ("Money", "money"),
    ("Oid", "oid"),
    ("PgLsn", "pg_lsn"),
    ("Record", "record"),
    ("Bit", "bit"),
    ("Int4range", "int4range"),
    ("Int8range", "int8range"),
    ("Numrange", "numrange"),
    ("Daterange", "daterange"),
    ("Tsrange", "tsrange"),
    ("Tstzrange", "tstzrange"),
    ("Int4multirange", "int4multirange"),
    ("Int8multirange", "int8multirange"),
    ("Nummultirange", "nummultirange"),
    ("Datemultirange", "datemultirange"),
    ("Tsmultirange", "tsmultirange"),
    ("Tstzmultirange", "tstzmultirange"),
    ("Vector", "vector"),
    ("HalfVector", "halfvec"),
    ("SparseVector", "sparsevec"),
];

/// diesel's generic `Range<T>` / `Multirange<T>` spellings of the built-in range types.
const RANGES: &[(&str, &str, &str)] = &[
    ("int4", "int4range", "int4multirange"),
    ("int8", "int8range", "int8multirange"),
    ("numeric", "numrange", "nummultirange"),
    ("date", "daterange", "datemultirange"),
    ("timestamp", "tsrange", "tsmultirange"),
    ("timestamptz", "tstzrange", "tstzmultirange"),
];

pub(super) fn type_key(schema: &ParsedSchema, ty: &DieselType) -> TypeKey {
    match ty {
        DieselType::Nullable(inner) => TypeKey::Nullable(Box::new(type_key(schema, inner))),
        DieselType::Array(inner) => TypeKey::Array(Box::new(type_key(schema, inner))),
        DieselType::Named { args, .. } => {
            let name = ty.name().unwrap_or_default();
            // A struct the file defines with `#[diesel(postgres_type(name = ..))]` stands for that type.
            if args.is_empty()
                && let Some(pg) = schema.sql_type(ty).and_then(|t| t.qualified_pg_name())
            {
                return TypeKey::Pg(pg);
            }
            if args.is_empty()
                && let Some((_, pg)) = PG_TYPES.iter().find(|(rust, _)| *rust == name)
            {
                return TypeKey::Pg((*pg).to_owned());
            }
            let args: Vec<TypeKey> = args.iter().map(|a| type_key(schema, a)).collect();
            if let [TypeKey::Pg(element)] = args.as_slice()
                && let Some((_, range, multirange)) = RANGES.iter().find(|(e, _, _)| e == element)
            {
                match name {
                    "Range" => return TypeKey::Pg((*range).to_owned()),
                    "Multirange" => return TypeKey::Pg((*multirange).to_owned()),
                    _ => {}
                }
            }
            TypeKey::Other(name.to_owned(), args)
        }
    }
}

fn strip_nullable(key: &TypeKey) -> (&TypeKey, bool) {
    match key {
        TypeKey::Nullable(inner) => (inner, true),
        other => (other, false),
    }
}

/// Says why two different types are worth a second look: only nullability differs, or both are strings to diesel.
fn type_note(have: &TypeKey, want: &TypeKey) -> Option<String> {
    let (have_inner, have_null) = strip_nullable(have);
    let (want_inner, want_null) = strip_nullable(want);
    if have_inner == want_inner && have_null != want_null {
        return Some(if want_null {
            "the column allows NULL in the migrations".into()
        } else {
            "the column is NOT NULL in the migrations".into()
        });
    }
    const STRINGS: &[&str] = &["text", "varchar", "bpchar"];
    if let (TypeKey::Pg(a), TypeKey::Pg(b)) = (have_inner, want_inner)
        && STRINGS.contains(&a.as_str())
        && STRINGS.contains(&b.as_str())
    {
        return Some(format!(
            "diesel reads both as String, but they are different PostgreSQL types: {a} in schema.rs, {b} in the migrations"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse::parse_schema_rs;

    /// Compares two schema.rs texts and returns the messages.
    fn check(committed: &str, expected: &str) -> Vec<String> {
        let committed = parse_schema_rs(committed).unwrap();
        let expected = parse_schema_rs(expected).unwrap();
        compare(&committed, &expected).iter().map(ToString::to_string).collect()
    }

    const USERS: &str = "diesel::table! {\n    users (id) {\n        id -> Int8,\n        #[max_length = 64]\n        name -> Varchar,\n        email -> Text,\n        bio -> Nullable<Text>,\n    }\n}\n";

    #[test]
    fn identical_files_have_no_differences() {
        assert_eq!(check(USERS, USERS), Vec::<String>::new());
    }

    #[test]
    fn missing_and_extra_columns_and_tables() {
        let committed = "diesel::table! {\n    users (id) {\n        id -> Int8,\n        #[max_length = 64]\n        name -> Varchar,\n        bio -> Nullable<Text>,\n        age -> Int4,\n    }\n}\ndiesel::table! {\n    rooms (id) {\n        id -> Int4,\n    }\n}\n";
        let expected = format!("{USERS}diesel::table! {{\n    messages (id) {{\n        id -> Int8,\n    }}\n}}\n");
        assert_eq!(
            check(committed, &expected),
            [
                "column users.email: in the migrations, missing from schema.rs",
                "column users.age: in schema.rs, not in the migrations",
                "table messages: in the migrations, missing from schema.rs",
                "table rooms: in schema.rs, not created by any migration",
            ]
        );
    }

    #[test]
    fn types_are_compared_as_diesel_types() {
        // Aliases and paths diesel treats as the same SQL type are equal.
        let aliases = "pub mod sql_types {\n    #[derive(diesel::sql_types::SqlType)]\n    #[diesel(postgres_type(name = \"mood\"))]\n    pub struct Feeling;\n}\ndiesel::table! {\n    t (id) {\n        id -> diesel::sql_types::BigInt,\n        n -> Nullable<Integer>,\n        r -> Range<Int4>,\n        m -> crate::schema::sql_types::Feeling,\n        v -> Nullable<pgvector::sql_types::Vector>,\n        a -> Array<Nullable<Float8>>,\n    }\n}\n";
        let generated = "pub mod sql_types {\n    #[derive(diesel::sql_types::SqlType)]\n    #[diesel(postgres_type(name = \"mood\"))]\n    pub struct Mood;\n}\ndiesel::table! {\n    use diesel::sql_types::*;\n    use super::sql_types::Mood;\n\n    t (id) {\n        id -> Int8,\n        n -> Nullable<Int4>,\n        r -> Int4range,\n        m -> Mood,\n        v -> Nullable<Vector>,\n        a -> Array<Nullable<Double>>,\n    }\n}\n";
        assert_eq!(check(aliases, generated), Vec::<String>::new());

        let wrong = USERS.replace("name -> Varchar", "name -> Text").replace("email -> Text", "email -> Varchar").replace("bio -> Nullable<Text>", "bio -> Text");
        assert_eq!(
            check(&wrong, USERS),
            [
                "column users.name: type Text in schema.rs, Varchar in the migrations (diesel reads both as String, but they are different PostgreSQL types: text in schema.rs, varchar in the migrations)",
                "column users.email: type Varchar in schema.rs, Text in the migrations (diesel reads both as String, but they are different PostgreSQL types: varchar in schema.rs, text in the migrations)",
                "column users.bio: type Text in schema.rs, Nullable<Text> in the migrations (the column allows NULL in the migrations)",
            ]
        );
        let enum_renamed = aliases.replace("name = \"mood\"", "name = \"feeling\"");
        assert_eq!(check(&enum_renamed, generated), ["column t.m: type Feeling in schema.rs, Mood in the migrations"]);
    }

    #[test]
    fn pgvector_types_by_path_or_import_and_against_each_other() {
        // What `schema` writes with the pgvector defaults, and a hand-written file naming the same types by path.
        let generated = "diesel::table! {\n    use diesel::sql_types::*;\n    use pgvector::sql_types::HalfVector;\n    use pgvector::sql_types::SparseVector;\n    use pgvector::sql_types::Bit;\n\n    t (id) {\n        id -> Int8,\n        h -> HalfVector,\n        s -> Nullable<SparseVector>,\n        #[max_length = 4]\n        b -> Nullable<Bit>,\n    }\n}\n";
        let by_path = "diesel::table! {\n    t (id) {\n        id -> Int8,\n        h -> pgvector::sql_types::HalfVector,\n        s -> Nullable<pgvector::sql_types::SparseVector>,\n        #[max_length = 4]\n        b -> Nullable<pgvector::sql_types::Bit>,\n    }\n}\n";
        assert_eq!(check(by_path, generated), Vec::<String>::new());
        let swapped = by_path.replace("h -> pgvector::sql_types::HalfVector", "h -> pgvector::sql_types::Vector");
        assert_eq!(check(&swapped, generated), ["column t.h: type Vector in schema.rs, HalfVector in the migrations"]);
        let sparse_as_half = by_path.replace("Nullable<pgvector::sql_types::SparseVector>", "Nullable<pgvector::sql_types::HalfVector>");
        assert_eq!(check(&sparse_as_half, generated), ["column t.s: type Nullable<HalfVector> in schema.rs, Nullable<SparseVector> in the migrations"]);
    }

    #[test]
    fn max_length_order_and_primary_key() {
        let committed = "diesel::table! {\n    users (id, name) {\n        id -> Int8,\n        email -> Text,\n        name -> Varchar,\n        bio -> Nullable<Text>,\n    }\n}\n";
        assert_eq!(
            check(committed, USERS),
            [
                "column users.name: no #[max_length] in schema.rs, #[max_length = 64] in the migrations",
                "column order of users differs: schema.rs has (id, email, name, bio), the migrations give (id, name, email, bio)",
                "primary key of users: (id, name) in schema.rs, (id) in the migrations",
            ]
        );
    }

    #[test]
    fn joinables() {
        let tables = "diesel::table! {\n    users (id) {\n        id -> Int8,\n    }\n}\ndiesel::table! {\n    posts (id) {\n        id -> Int8,\n        author -> Int8,\n        editor -> Int8,\n    }\n}\n";
        let expected = format!("{tables}diesel::joinable!(posts -> users (author));\n");
        let committed = format!("{tables}joinable!(posts -> users (editor));\n");
        assert_eq!(
            check(&committed, &expected),
            [
                "joinable!(posts -> users (author)): in the migrations (a foreign key), missing from schema.rs",
                "joinable!(posts -> users (editor)): in schema.rs, no such foreign key in the migrations",
            ]
        );
        // No joinable! finding for a table that is missing altogether: the table finding says it.
        let only_users = "diesel::table! {\n    users (id) {\n        id -> Int8,\n    }\n}\n";
        assert_eq!(check(only_users, &expected), ["table posts: in the migrations, missing from schema.rs"]);
    }

    #[test]
    fn tables_match_by_sql_name_and_schema() {
        let committed = "pub mod audit {\n    diesel::table! {\n        audit.entries (id) {\n            id -> Int4,\n        }\n    }\n}\ndiesel::table! {\n    #[sql_name = \"user accounts\"]\n    accounts (id) {\n        id -> Int4,\n    }\n}\n";
        let expected = "diesel::table! {\n    audit.entries (id) {\n        id -> Int4,\n    }\n}\ndiesel::table! {\n    #[sql_name = \"user accounts\"]\n    user_accounts (id) {\n        id -> Int4,\n    }\n}\n";
        assert_eq!(check(committed, expected), Vec::<String>::new());
        let public_entries = "diesel::table! {\n    entries (id) {\n        id -> Int4,\n    }\n}\n";
        assert_eq!(
            check(public_entries, "diesel::table! {\n    audit.entries (id) {\n        id -> Int4,\n    }\n}\n"),
            ["table audit.entries: in the migrations, missing from schema.rs", "table entries: in schema.rs, not created by any migration"]
        );
    }
}
