//! A fingerprint of a whole database's schema, finer than [`Catalog`]: every schema, extension, table, view,
//! sequence, column (with its default and identity), the column order, indexes, constraints, enum/domain/composite/
//! range types, functions, triggers, policies and rules, each with a definition text that changes when the object
//! does. Read in one query (`sql/fingerprint.sql`); compared by the pure [`diff`].
//!
//! `check` uses it to prove that a migration's down.sql undoes its up.sql, that reverting everything leaves nothing
//! behind, and that a live database has not drifted from the chain. The bookkeeping tables and objects owned by
//! extensions are left out (the extension itself is listed with its version).

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde::Serialize;

use super::introspect;
use super::model::Catalog;
use crate::database_url::DatabaseUrl;
use crate::db;
use crate::error::Result;

const FINGERPRINT_SQL: &str = include_str!("sql/fingerprint.sql");

/// One database object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, QueryableByName)]
pub struct Object {
    /// `table`, `column`, `column order`, `index`, `constraint`, `type`, `function`, `trigger`, `extension`, ...
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text, column_name = schema_name)]
    pub schema: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    /// The table (or domain) it belongs to; empty for a free-standing object.
    #[diesel(sql_type = Text)]
    pub parent: String,
    /// What it is: a column's type, default and identity; an index's `CREATE INDEX`; an enum's labels; ...
    #[diesel(sql_type = Text)]
    pub definition: String,
}

impl Object {
    /// What makes it the same object in two states: kind, schema, parent and name (not its definition).
    pub fn key(&self) -> (&str, &str, &str, &str) {
        (&self.kind, &self.schema, &self.parent, &self.name)
    }

    fn qualified(&self, name: &str) -> String {
        if self.schema == "public" { name.to_owned() } else { format!("{}.{name}", self.schema) }
    }

    /// How messages name it: `column users.email`, `index users_email_idx on users`, `type mood`.
    pub fn label(&self) -> String {
        match self.kind.as_str() {
            "column" => format!("column {}.{}", self.qualified(&self.parent), self.name),
            "column order" => format!("column order of {}", self.qualified(&self.parent)),
            "schema" | "extension" => format!("{} {}", self.kind, self.name),
            _ if !self.parent.is_empty() => format!("{} {} on {}", self.kind, self.qualified(&self.name), self.qualified(&self.parent)),
            _ => format!("{} {}", self.kind, self.qualified(&self.name)),
        }
    }

    /// The definition on one line (view bodies span several), or a word for kinds whose text says nothing.
    pub fn shown_definition(&self) -> String {
        if self.definition.starts_with("body md5 ") {
            return "a different body".into();
        }
        self.definition.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// A table, view or sequence: the objects whose children (`parent`) go with them.
    fn is_relation(&self) -> bool {
        matches!(self.kind.as_str(), "table" | "view" | "materialized view" | "foreign table" | "sequence")
    }
}

/// Every object of a database, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    pub objects: Vec<Object>,
}

impl Fingerprint {
    pub fn new(mut objects: Vec<Object>) -> Fingerprint {
        // By key in byte order (whatever collation the server sorted with), as `diff` walks them.
        objects.sort_by(|a, b| a.key().cmp(&b.key()).then_with(|| a.definition.cmp(&b.definition)));
        objects.dedup_by(|a, b| a.key() == b.key());
        Fingerprint { objects }
    }
}

/// How `after` differs from `before`, for one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Only in `after`.
    Added { object: Object },
    /// Only in `before`.
    Removed { object: Object },
    Changed { before: Object, after: Object },
}

impl Change {
    pub fn object(&self) -> &Object {
        match self {
            Change::Added { object } | Change::Removed { object } => object,
            Change::Changed { after, .. } => after,
        }
    }
}

/// Objects added, removed or changed from `before` to `after`, in kind/name order. The children of an added or
/// removed table (columns, indexes, constraints, ...) are not listed separately, and a table's column order is
/// reported only when it has the same columns on both sides (otherwise the column changes say it).
pub fn diff(before: &Fingerprint, after: &Fingerprint) -> Vec<Change> {
    let mut changes = Vec::new();
    let (mut i, mut j) = (0, 0);
    let (b, a) = (&before.objects, &after.objects);
    while i < b.len() || j < a.len() {
        let order = match (b.get(i), a.get(j)) {
            (Some(x), Some(y)) => x.key().cmp(&y.key()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                changes.push(Change::Removed { object: b[i].clone() });
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                changes.push(Change::Added { object: a[j].clone() });
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if b[i].definition != a[j].definition {
                    changes.push(Change::Changed { before: b[i].clone(), after: a[j].clone() });
                }
                i += 1;
                j += 1;
            }
        }
    }
    let whole: Vec<(bool, String, String)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Added { object } if object.is_relation() => Some((true, object.schema.clone(), object.name.clone())),
            Change::Removed { object } if object.is_relation() => Some((false, object.schema.clone(), object.name.clone())),
            _ => None,
        })
        .collect();
    let columns_differ: Vec<(String, String)> = changes
        .iter()
        .filter(|c| !matches!(c, Change::Changed { .. }) && c.object().kind == "column")
        .map(|c| (c.object().schema.clone(), c.object().parent.clone()))
        .collect();
    changes.retain(|change| {
        let object = change.object();
        let added = matches!(change, Change::Added { .. });
        let in_whole_table = !object.parent.is_empty()
            && !matches!(change, Change::Changed { .. })
            && whole.iter().any(|(a, schema, name)| *a == added && *schema == object.schema && *name == object.parent);
        let redundant_order = object.kind == "column order"
            && columns_differ.iter().any(|(schema, table)| *schema == object.schema && *table == object.parent);
        !in_whole_table && !redundant_order
    });
    changes
}

/// Reads the fingerprint of the database `conn` is connected to.
pub fn read(conn: &mut PgConnection) -> Result<Fingerprint> {
    load(conn, FINGERPRINT_SQL)
}

fn load(conn: &mut PgConnection, sql: &str) -> Result<Fingerprint> {
    let objects: Vec<Object> = diesel::sql_query(sql)
        .load(conn)
        .map_err(|e| db::context("reading the schema fingerprint from the catalogs")(db::pg_error(&e)))?;
    Ok(Fingerprint::new(objects))
}

/// Connects to `url` and reads its fingerprint.
pub fn read_url(url: &DatabaseUrl) -> Result<Fingerprint> {
    read(&mut db::connect(url)?)
}

/// Like [`read_url`], also leaving out `version_table` (with everything on it) the way `alembic_version` is: the
/// name env.py gave Alembic's version table, which a database adopted from Alembic keeps.
pub fn read_url_leaving_out(url: &DatabaseUrl, version_table: Option<&str>) -> Result<Fingerprint> {
    let Some(table) = version_table else { return read_url(url) };
    const DEFAULT: &str = "c.relname <> 'alembic_version'";
    debug_assert!(FINGERPRINT_SQL.contains(DEFAULT));
    let sql = FINGERPRINT_SQL.replace(DEFAULT, &format!("c.relname NOT IN ('alembic_version', {})", db::quote_literal(table)));
    load(&mut db::connect(url)?, &sql)
}

/// A connection kept open for reading one database's fingerprint again and again (once per migration step).
pub struct Reader {
    conn: PgConnection,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fingerprint::Reader")
    }
}

impl Reader {
    pub fn connect(url: &DatabaseUrl) -> Result<Reader> {
        Ok(Reader { conn: db::connect(url)? })
    }

    pub fn read(&mut self) -> Result<Fingerprint> {
        read(&mut self.conn)
    }
}

/// Connects to `url` once and reads both its fingerprint and the [`Catalog`] of `schemas` (what schema.rs is
/// rendered from).
pub fn read_with_catalog(url: &DatabaseUrl, schemas: &[String]) -> Result<(Catalog, Fingerprint)> {
    let mut conn = db::connect(url)?;
    let catalog = introspect::read(&mut conn, schemas)?;
    Ok((catalog, read(&mut conn)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, parent: &str, definition: &str) -> Object {
        Object {
            kind: kind.into(),
            schema: "public".into(),
            name: name.into(),
            parent: parent.into(),
            definition: definition.into(),
        }
    }

    fn labels(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Added { object } => format!("+ {}", object.label()),
                Change::Removed { object } => format!("- {}", object.label()),
                Change::Changed { before, after } => format!("~ {}: {} -> {}", after.label(), before.shown_definition(), after.shown_definition()),
            })
            .collect()
    }

    #[test]
    fn equal_fingerprints_have_no_changes() {
        let f = Fingerprint::new(vec![object("table", "users", "", ""), object("column", "id", "users", "bigint NOT NULL")]);
        assert!(diff(&f, &f.clone()).is_empty());
    }

    #[test]
    fn added_removed_and_changed_objects() {
        let before = Fingerprint::new(vec![
            object("table", "users", "", ""),
            object("column", "id", "users", "bigint NOT NULL"),
            object("column", "email", "users", "text"),
            object("column order", "users", "users", "id, email"),
            object("type", "mood", "", "enum ('a')"),
        ]);
        let after = Fingerprint::new(vec![
            object("table", "users", "", ""),
            object("column", "id", "users", "bigint NOT NULL"),
            object("column", "email", "users", "character varying(20)"),
            object("column order", "users", "users", "id, email"),
            object("index", "users_email_idx", "users", "CREATE INDEX users_email_idx ON public.users USING btree (email)"),
            object("function", "touch()", "", "body md5 00"),
        ]);
        assert_eq!(
            labels(&diff(&before, &after)),
            [
                "~ column users.email: text -> character varying(20)",
                "+ function touch()",
                "+ index users_email_idx on users",
                "- type mood",
            ]
        );
    }

    #[test]
    fn a_whole_table_is_one_change_and_column_order_only_when_the_columns_match() {
        let before = Fingerprint::new(vec![
            object("table", "users", "", ""),
            object("column", "id", "users", "int"),
            object("column", "a", "users", "int"),
            object("column order", "users", "users", "id, a"),
        ]);
        let after = Fingerprint::new(vec![
            object("table", "users", "", ""),
            object("column", "id", "users", "int"),
            object("column", "a", "users", "int"),
            object("column", "b", "users", "int"),
            object("column order", "users", "users", "id, a, b"),
            object("table", "rooms", "", ""),
            object("column", "id", "rooms", "int"),
            object("constraint", "rooms_pkey", "rooms", "PRIMARY KEY (id)"),
        ]);
        assert_eq!(labels(&diff(&before, &after)), ["+ column users.b", "+ table rooms"]);
        assert_eq!(labels(&diff(&after, &before)), ["- column users.b", "- table rooms"]);

        let reordered = Fingerprint::new(vec![
            object("table", "users", "", ""),
            object("column", "id", "users", "int"),
            object("column", "a", "users", "int"),
            object("column order", "users", "users", "a, id"),
        ]);
        assert_eq!(labels(&diff(&before, &reordered)), ["~ column order of users: id, a -> a, id"]);
    }

    #[test]
    fn labels_name_the_schema_outside_public() {
        let mut o = object("index", "entries_at_idx", "entries", "");
        o.schema = "audit".into();
        assert_eq!(o.label(), "index audit.entries_at_idx on audit.entries");
        assert_eq!(object("extension", "vector", "", "version 0.8").label(), "extension vector");
        assert_eq!(object("view", "v", "", " SELECT id\n   FROM users;").shown_definition(), "SELECT id FROM users;");
    }
}
