//! PostgreSQL catalogs → [`Catalog`]. The only schema module that reads catalogs.
//!
//! A fixed number of queries (five) whatever the number of tables: each one reads every table of the requested
//! schemas at once from `pg_catalog`, and the rows are stitched together here. diesel_cli issues several queries
//! per table, which is what makes it slow on large schemas.

use std::collections::HashMap;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};

use super::model::{Catalog, Column, ColumnType, ForeignKey, QualifiedName, Table, TableKind, UserType, UserTypeKind};
use crate::db;
use crate::error::Result;

const TABLES_SQL: &str = include_str!("sql/tables.sql");
const COLUMNS_SQL: &str = include_str!("sql/columns.sql");
const PRIMARY_KEYS_SQL: &str = include_str!("sql/primary_keys.sql");
const FOREIGN_KEYS_SQL: &str = include_str!("sql/foreign_keys.sql");
const TYPES_SQL: &str = include_str!("sql/types.sql");

/// How many queries [`read`] sends, whatever the size of the schema (the benchmark and a test check this).
pub const QUERY_COUNT: usize = 5;

#[derive(QueryableByName)]
struct TableRow {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    schema_name: String,
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Bool)]
    partitioned: bool,
    #[diesel(sql_type = Nullable<Text>)]
    comment: Option<String>,
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = BigInt)]
    table_oid: i64,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Integer)]
    position: i32,
    #[diesel(sql_type = Text)]
    udt_name: String,
    #[diesel(sql_type = Text)]
    udt_schema: String,
    #[diesel(sql_type = Bool)]
    is_array: bool,
    #[diesel(sql_type = Nullable<Text>)]
    domain_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    domain_schema: Option<String>,
    #[diesel(sql_type = Bool)]
    nullable: bool,
    #[diesel(sql_type = Nullable<Integer>)]
    max_length: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    comment: Option<String>,
    #[diesel(sql_type = Text)]
    declared_type: String,
}

#[derive(QueryableByName)]
struct PrimaryKeyRow {
    #[diesel(sql_type = BigInt)]
    table_oid: i64,
    #[diesel(sql_type = Array<Text>)]
    columns: Vec<String>,
}

#[derive(QueryableByName)]
struct ForeignKeyRow {
    #[diesel(sql_type = Text)]
    constraint_name: String,
    #[diesel(sql_type = Text)]
    schema_name: String,
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Array<Text>)]
    columns: Vec<String>,
    #[diesel(sql_type = Text)]
    parent_table: String,
    #[diesel(sql_type = Array<Text>)]
    parent_columns: Vec<String>,
}

#[derive(QueryableByName)]
struct TypeRow {
    #[diesel(sql_type = Text)]
    schema_name: String,
    #[diesel(sql_type = Text)]
    type_name: String,
    #[diesel(sql_type = Bool)]
    is_enum: bool,
    #[diesel(sql_type = Array<Text>)]
    labels: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    base: Option<String>,
    #[diesel(sql_type = Bool)]
    not_null: bool,
}

fn load<R: QueryableByName<diesel::pg::Pg> + 'static>(conn: &mut PgConnection, sql: &str, schemas: &[String], what: &str) -> Result<Vec<R>> {
    diesel::sql_query(sql)
        .bind::<Array<Text>, _>(schemas)
        .load(conn)
        .map_err(|e| db::context(&format!("reading {what} from the catalogs"))(db::pg_error(&e)))
}

/// Reads the tables, columns, keys and user types of `schemas` (e.g. `["public"]`).
pub fn read(conn: &mut PgConnection, schemas: &[String]) -> Result<Catalog> {
    let table_rows: Vec<TableRow> = load(conn, TABLES_SQL, schemas, "tables")?;
    let column_rows: Vec<ColumnRow> = load(conn, COLUMNS_SQL, schemas, "columns")?;
    let key_rows: Vec<PrimaryKeyRow> = load(conn, PRIMARY_KEYS_SQL, schemas, "primary keys")?;
    let fk_rows: Vec<ForeignKeyRow> = load(conn, FOREIGN_KEYS_SQL, schemas, "foreign keys")?;
    let type_rows: Vec<TypeRow> = load(conn, TYPES_SQL, schemas, "types")?;
    Ok(assemble(table_rows, column_rows, key_rows, fk_rows, type_rows))
}

fn assemble(
    table_rows: Vec<TableRow>,
    column_rows: Vec<ColumnRow>,
    key_rows: Vec<PrimaryKeyRow>,
    fk_rows: Vec<ForeignKeyRow>,
    type_rows: Vec<TypeRow>,
) -> Catalog {
    let mut index: HashMap<i64, usize> = HashMap::with_capacity(table_rows.len());
    let mut tables: Vec<Table> = Vec::with_capacity(table_rows.len());
    for row in table_rows {
        index.insert(row.oid, tables.len());
        tables.push(Table {
            name: QualifiedName::new(row.schema_name, row.table_name),
            kind: if row.partitioned { TableKind::Partitioned } else { TableKind::Ordinary },
            comment: row.comment,
            columns: Vec::new(),
            primary_key: Vec::new(),
        });
    }
    // Rows come ordered by table and column number, so pushing keeps column order.
    for row in column_rows {
        let Some(&i) = index.get(&row.table_oid) else { continue };
        let domain = match (row.domain_schema, row.domain_name) {
            (Some(schema), Some(name)) => Some(QualifiedName::new(schema, name)),
            _ => None,
        };
        tables[i].columns.push(Column {
            name: row.column_name,
            position: row.position,
            sql_type: ColumnType {
                udt: QualifiedName::new(row.udt_schema, row.udt_name),
                is_array: row.is_array,
                domain,
            },
            nullable: row.nullable,
            max_length: row.max_length.and_then(|n| u32::try_from(n).ok()),
            comment: row.comment,
            declared_type: row.declared_type,
        });
    }
    for row in key_rows {
        if let Some(&i) = index.get(&row.table_oid) {
            tables[i].primary_key = row.columns;
        }
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));

    let foreign_keys = fk_rows
        .into_iter()
        .map(|row| ForeignKey {
            constraint: row.constraint_name,
            table: QualifiedName::new(row.schema_name.clone(), row.table_name),
            columns: row.columns,
            parent: QualifiedName::new(row.schema_name, row.parent_table),
            parent_columns: row.parent_columns,
        })
        .collect();
    let types = type_rows
        .into_iter()
        .map(|row| UserType {
            name: QualifiedName::new(row.schema_name, row.type_name),
            kind: if row.is_enum {
                UserTypeKind::Enum { labels: row.labels }
            } else {
                UserTypeKind::Domain {
                    base: row.base.unwrap_or_default(),
                    not_null: row.not_null,
                }
            },
        })
        .collect();
    Catalog {
        tables,
        foreign_keys,
        types,
    }
}
