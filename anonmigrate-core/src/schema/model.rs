//! What PostgreSQL's catalogs say about a database's tables, as plain values: no I/O, no configuration. The
//! introspection fills it in; the renderer (and the structural `check`) read it.
//!
//! Facts are kept as the catalog states them (names unquoted, types as PostgreSQL names them); deciding what
//! diesel makes of them (Rust names, `Nullable<...>`, which tables are joinable) is the renderer's business.

/// A name inside a PostgreSQL schema (namespace).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> QualifiedName {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Everything read from one database, for the schemas that were asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Ordinary and partitioned tables, ordered by schema then name (byte order).
    pub tables: Vec<Table>,
    /// Foreign-key constraints whose two tables are both in one of the schemas read.
    pub foreign_keys: Vec<ForeignKey>,
    /// Enums and domains defined in the schemas read.
    pub types: Vec<UserType>,
}

impl Catalog {
    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name.schema == schema && t.name.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Ordinary,
    Partitioned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: QualifiedName,
    pub kind: TableKind,
    /// `COMMENT ON TABLE`.
    pub comment: Option<String>,
    /// In column-number order; dropped columns are not listed.
    pub columns: Vec<Column>,
    /// Primary-key column names in key order; empty when the table has none.
    pub primary_key: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `attnum`: 1-based position among all columns ever added (dropped ones leave gaps).
    pub position: i32,
    pub sql_type: ColumnType,
    /// NOT NULL on the column or on its domain.
    pub nullable: bool,
    /// Declared length of `varchar(n)`, `char(n)`, `bit(n)` and `varbit(n)` columns (through a domain too).
    pub max_length: Option<u32>,
    /// `COMMENT ON COLUMN`.
    pub comment: Option<String>,
    /// The type as `format_type` spells it, modifiers included (`character varying(64)`, `vector(3)`, `integer[]`,
    /// the domain's name for a domain column): valid SQL, for migrations that re-create the column.
    pub declared_type: String,
}

/// A column's type as PostgreSQL reports it in `information_schema.columns`: the underlying type (for a
/// domain, its base type), and the domain when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// `udt_name`: for arrays the array type's own name, conventionally `_` + element name (`_int4`).
    pub udt: QualifiedName,
    /// Whether `udt` really is an array type (from the catalog, not from its name).
    pub is_array: bool,
    pub domain: Option<QualifiedName>,
}

/// A foreign-key constraint; `columns[i]` references `parent_columns[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub constraint: String,
    pub table: QualifiedName,
    pub columns: Vec<String>,
    pub parent: QualifiedName,
    pub parent_columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserType {
    pub name: QualifiedName,
    pub kind: UserTypeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserTypeKind {
    /// Labels in sort order.
    Enum { labels: Vec<String> },
    /// The base type as `format_type` prints it (`character varying(20)`), and whether it is NOT NULL.
    Domain { base: String, not_null: bool },
}
