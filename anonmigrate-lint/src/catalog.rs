//! What the chain has created so far: tables and indexes with the migration that created them, replayed statement
//! by statement through the whole chain. It answers the question our own rules ask: "did this very migration create
//! the table (so nobody can be using it yet), or does it already exist?"

use std::collections::HashMap;

use squawk_syntax::ast::{self, AstNode};

use crate::sql::{self, relation_key};

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Table (or materialized view) key -> directory name of the migration that created it.
    tables: HashMap<String, String>,
    /// Index key -> (table key, directory name of the migration that created it).
    indexes: HashMap<String, (String, String)>,
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
    pub fn table_origin<'a>(&'a self, key: &str, current: &str) -> Origin<'a> {
        match self.tables.get(key) {
            Some(dir) if dir == current => Origin::ThisMigration,
            Some(dir) => Origin::Earlier(dir),
            None => Origin::Unknown,
        }
    }

    /// The table an index belongs to and where the index came from, when the chain created the index.
    pub fn index_table<'a>(&'a self, key: &str, current: &str) -> Option<(&'a str, Origin<'a>)> {
        let (table, dir) = self.indexes.get(key)?;
        let origin = if dir == current { Origin::ThisMigration } else { self.table_origin(table, current) };
        Some((table, origin))
    }

    /// Replays one statement of migration `dir_name`.
    pub fn apply(&mut self, stmt: &ast::Stmt, dir_name: &str) {
        match stmt {
            ast::Stmt::CreateTable(_) | ast::Stmt::CreateTableAs(_) => {
                if let Some(key) = sql::statement_table(stmt) {
                    self.tables.insert(key, dir_name.to_owned());
                }
            }
            ast::Stmt::CreateMaterializedView(view) => {
                if let Some(path) = view.view().and_then(|v| v.syntax().descendants().find_map(ast::Path::cast)) {
                    self.tables.insert(relation_key(path.syntax()), dir_name.to_owned());
                }
            }
            ast::Stmt::CreateIndex(index) => {
                let name = index.index().and_then(|i| i.path()).map(|p| relation_key(p.syntax()));
                if let (Some(name), Some(table)) = (name, sql::statement_table(stmt)) {
                    self.indexes.insert(name, (table, dir_name.to_owned()));
                }
            }
            ast::Stmt::DropTable(_) => {
                for key in sql::listed_tables(stmt) {
                    self.tables.remove(&key);
                    self.indexes.retain(|_, (table, _)| *table != key);
                }
            }
            ast::Stmt::DropIndex(drop) => {
                for index in drop.index_refs().filter_map(|i| i.path_ref()) {
                    self.indexes.remove(&relation_key(index.syntax()));
                }
            }
            ast::Stmt::AlterTable(alter) => {
                let Some(old) = sql::statement_table(stmt) else { return };
                for action in alter.actions() {
                    let ast::AlterTableAction::TableRenameTo(rename) = action else { continue };
                    let Some(new_name) = rename.table_name().and_then(|t| t.path()) else { continue };
                    let mut new_key = relation_key(new_name.syntax());
                    // RENAME TO keeps the schema.
                    if let Some((schema, _)) = old.rsplit_once('.') {
                        new_key = format!("{schema}.{new_key}");
                    }
                    if let Some(dir) = self.tables.remove(&old) {
                        self.tables.insert(new_key.clone(), dir);
                    } else {
                        // A table from before the chain keeps counting as existing under its new name.
                        self.tables.insert(new_key.clone(), String::from("(before the chain)"));
                    }
                    for (table, _) in self.indexes.values_mut() {
                        if *table == old {
                            table.clone_from(&new_key);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn replay(catalog: &mut Catalog, dir: &str, sql: &str) {
        for statement in SourceFile::parse(sql).statements {
            catalog.apply(&statement.stmt, dir);
        }
    }

    #[test]
    fn tracks_creation_renames_and_drops_through_the_chain() {
        let mut catalog = Catalog::default();
        replay(&mut catalog, "a", "CREATE TABLE public.Users (id int);\nCREATE INDEX users_id ON users (id);\nCREATE TABLE \"Rooms\" (id int);");
        replay(&mut catalog, "b", "ALTER TABLE users RENAME TO members;\nDROP TABLE \"Rooms\";");
        assert_eq!(catalog.table_origin("members", "c"), Origin::Earlier("a"));
        assert_eq!(catalog.table_origin("users", "c"), Origin::Unknown);
        assert_eq!(catalog.table_origin("Rooms", "c"), Origin::Unknown);
        assert_eq!(catalog.index_table("users_id", "c"), Some(("members", Origin::Earlier("a"))));
        replay(&mut catalog, "c", "CREATE TABLE rooms (id int);");
        assert_eq!(catalog.table_origin("rooms", "c"), Origin::ThisMigration);
    }
}
