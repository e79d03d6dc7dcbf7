//! What the chain has created so far: tables and indexes with the migration that created them, replayed statement
//! by statement through the whole chain. It answers the question most rules ask: "did this very migration create
//! the table (so nobody can be using it yet), or does it already exist?"

use std::collections::{HashMap, HashSet};

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};

use crate::sql::{self, relation_key};

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Table (or materialized view) key -> directory name of the migration that created it.
    tables: HashMap<String, String>,
    /// Index key -> (table key, directory name of the migration that created it).
    indexes: HashMap<String, (String, String)>,
    /// Constraints added `NOT VALID` by the current migration: (table key, constraint name).
    not_valid_here: HashSet<(String, String)>,
    /// `CHECK (column IS NOT NULL)` constraints: (table key, constraint name) -> (column, validated).
    not_null_checks: HashMap<(String, String), (String, bool)>,
}

/// How a relation relates to the migration being linted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin<'a> {
    /// Created earlier in the same migration: nobody can be using it yet.
    ThisMigration,
    /// Created by an earlier migration of the chain.
    Earlier(&'a str),
    /// Not created by any migration the linter has seen (made before the chain, or outside it).
    Unknown,
}

impl Catalog {
    /// Starts a new migration: per-migration facts are forgotten.
    pub fn begin_migration(&mut self) {
        self.not_valid_here.clear();
    }

    pub fn table_origin<'a>(&'a self, key: &str, current: &str) -> Origin<'a> {
        match self.tables.get(key) {
            Some(dir) if dir == current => Origin::ThisMigration,
            Some(dir) => Origin::Earlier(dir),
            None => Origin::Unknown,
        }
    }

    pub fn index_origin<'a>(&'a self, key: &str, current: &str) -> Origin<'a> {
        match self.indexes.get(key) {
            Some((_, dir)) if dir == current => Origin::ThisMigration,
            Some((table, _)) => match self.table_origin(table, current) {
                // An index made earlier on a table this migration re-created cannot exist any more.
                Origin::ThisMigration => Origin::ThisMigration,
                _ => Origin::Earlier(&self.indexes[key].1),
            },
            None => Origin::Unknown,
        }
    }

    /// The table an index belongs to, when the chain created the index.
    pub fn index_table(&self, key: &str) -> Option<&str> {
        self.indexes.get(key).map(|(table, _)| table.as_str())
    }

    pub fn added_not_valid_here(&self, table: &str, constraint: &str) -> bool {
        self.not_valid_here.contains(&(table.to_owned(), constraint.to_owned()))
    }

    /// A validated `CHECK (column IS NOT NULL)` exists, so `SET NOT NULL` needs no table scan (PostgreSQL 12+).
    pub fn has_validated_not_null_check(&self, table: &str, column: &str) -> bool {
        self.not_null_checks.iter().any(|((t, _), (c, validated))| t == table && c == column && *validated)
    }

    /// Replays one statement of migration `dir_name`.
    pub fn apply(&mut self, node: &NodeEnum, dir_name: &str) {
        match node {
            NodeEnum::CreateStmt(stmt) => {
                if let Some(relation) = &stmt.relation {
                    let key = relation_key(relation);
                    if !(stmt.if_not_exists && self.tables.contains_key(&key)) {
                        self.drop_table(&key);
                        self.tables.insert(key, dir_name.to_owned());
                    }
                }
            }
            NodeEnum::CreateTableAsStmt(stmt) => {
                if let Some(relation) = stmt.into.as_ref().and_then(|into| into.rel.as_ref()) {
                    let key = relation_key(relation);
                    if !(stmt.if_not_exists && self.tables.contains_key(&key)) {
                        self.drop_table(&key);
                        self.tables.insert(key, dir_name.to_owned());
                    }
                }
            }
            NodeEnum::IndexStmt(stmt) => {
                if let Some(relation) = &stmt.relation
                    && !stmt.idxname.is_empty()
                {
                    let key = sql::qualified(&relation.schemaname, &stmt.idxname);
                    if !(stmt.if_not_exists && self.indexes.contains_key(&key)) {
                        self.indexes.insert(key, (relation_key(relation), dir_name.to_owned()));
                    }
                }
            }
            NodeEnum::DropStmt(stmt) => {
                let kind = sql::object_type(stmt.remove_type);
                for key in stmt.objects.iter().filter_map(sql::name_list_key) {
                    match kind {
                        ObjectType::ObjectTable | ObjectType::ObjectMatview => self.drop_table(&key),
                        ObjectType::ObjectIndex => {
                            self.indexes.remove(&key);
                        }
                        _ => {}
                    }
                }
            }
            NodeEnum::RenameStmt(stmt) => {
                let Some(relation) = &stmt.relation else {
                    return;
                };
                let from = relation_key(relation);
                let to = sql::qualified(&relation.schemaname, &stmt.newname);
                match sql::object_type(stmt.rename_type) {
                    ObjectType::ObjectTable | ObjectType::ObjectMatview => {
                        if let Some(origin) = self.tables.remove(&from) {
                            self.tables.insert(to.clone(), origin);
                        }
                        for (table, _) in self.indexes.values_mut() {
                            if *table == from {
                                table.clone_from(&to);
                            }
                        }
                    }
                    ObjectType::ObjectIndex => {
                        if let Some(entry) = self.indexes.remove(&from) {
                            self.indexes.insert(to, entry);
                        }
                    }
                    _ => {}
                }
            }
            NodeEnum::AlterTableStmt(stmt) => {
                let Some(table) = sql::altered_table(stmt) else {
                    return;
                };
                let table = relation_key(table);
                for (cmd, kind) in sql::alter_table_cmds(stmt) {
                    match (kind, sql::cmd_constraint(cmd)) {
                        (AlterTableType::AtAddConstraint, Some(c)) => {
                            if c.skip_validation {
                                self.not_valid_here.insert((table.clone(), c.conname.clone()));
                            }
                            if let Some(column) = not_null_check_column(c) {
                                self.not_null_checks.insert((table.clone(), c.conname.clone()), (column, !c.skip_validation));
                            }
                        }
                        (AlterTableType::AtValidateConstraint, _) => {
                            if let Some((_, validated)) = self.not_null_checks.get_mut(&(table.clone(), cmd.name.clone())) {
                                *validated = true;
                            }
                        }
                        (AlterTableType::AtDropConstraint, _) => {
                            self.not_null_checks.remove(&(table.clone(), cmd.name.clone()));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn drop_table(&mut self, key: &str) {
        self.tables.remove(key);
        self.indexes.retain(|_, (table, _)| table != key);
        self.not_null_checks.retain(|(table, _), _| table != key);
    }
}

/// The column of a `CHECK (column IS NOT NULL)` constraint.
fn not_null_check_column(c: &pg_query::protobuf::Constraint) -> Option<String> {
    if sql::constraint_type(c) != ConstrType::ConstrCheck {
        return None;
    }
    let NodeEnum::NullTest(test) = c.raw_expr.as_deref()?.node.as_ref()? else {
        return None;
    };
    if test.nulltesttype != pg_query::protobuf::NullTestType::IsNotNull as i32 {
        return None;
    }
    let NodeEnum::ColumnRef(column) = test.arg.as_deref()?.node.as_ref()? else {
        return None;
    };
    match column.fields.as_slice() {
        [field] => sql::string(field).map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(catalog: &mut Catalog, dir: &str, sql: &str) {
        catalog.begin_migration();
        for raw in pg_query::parse(sql, 0).unwrap().protobuf.stmts {
            catalog.apply(raw.stmt.unwrap().node.as_ref().unwrap(), dir);
        }
    }

    #[test]
    fn tracks_creation_renames_and_drops_through_the_chain() {
        let mut catalog = Catalog::default();
        replay(&mut catalog, "1_a", "CREATE TABLE users (id bigint); CREATE INDEX users_id ON public.users (id);");
        replay(&mut catalog, "2_b", "ALTER TABLE users RENAME TO members; CREATE TABLE IF NOT EXISTS members (id int);");
        assert_eq!(catalog.table_origin("members", "3_c"), Origin::Earlier("1_a"));
        assert_eq!(catalog.table_origin("users", "3_c"), Origin::Unknown);
        assert_eq!(catalog.index_table("users_id"), Some("members"));
        replay(&mut catalog, "3_c", "DROP TABLE members; CREATE TABLE members (id bigint);");
        assert_eq!(catalog.table_origin("members", "3_c"), Origin::ThisMigration);
        assert_eq!(catalog.index_table("users_id"), None);
        replay(&mut catalog, "4_d", "CREATE MATERIALIZED VIEW stats AS SELECT 1 AS n; ALTER INDEX x RENAME TO y;");
        assert_eq!(catalog.table_origin("stats", "4_d"), Origin::ThisMigration);
        assert_eq!(catalog.table_origin("app.stats", "4_d"), Origin::Unknown);
    }

    #[test]
    fn not_null_checks_count_once_validated() {
        let mut catalog = Catalog::default();
        replay(&mut catalog, "1_a", "CREATE TABLE users (id bigint, nick text); ALTER TABLE users ADD CONSTRAINT nn CHECK (nick IS NOT NULL) NOT VALID;");
        assert!(catalog.added_not_valid_here("users", "nn"));
        assert!(!catalog.has_validated_not_null_check("users", "nick"));
        replay(&mut catalog, "2_b", "ALTER TABLE users VALIDATE CONSTRAINT nn;");
        assert!(!catalog.added_not_valid_here("users", "nn"));
        assert!(catalog.has_validated_not_null_check("users", "nick"));
        replay(&mut catalog, "3_c", "ALTER TABLE users DROP CONSTRAINT nn;");
        assert!(!catalog.has_validated_not_null_check("users", "nick"));
    }
}
