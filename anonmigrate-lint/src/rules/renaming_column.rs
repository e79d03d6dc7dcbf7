//! `renaming-column`: running code keeps using the old column name.

use pg_query::protobuf::ObjectType;

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql;

pub static RULE: Rule = Rule {
    id: "renaming-column",
    default_level: Level::Deny,
    summary: "`RENAME COLUMN` on a table that existed before this migration.",
    why: "A rename is instant in the database but not in the fleet: during a deploy the previous release keeps running, \
          and every query it sends with the old name (diesel's schema.rs spells out each column) fails until it is \
          replaced.",
    help: "Expand and contract: add the new column, write to both, backfill, move the readers, and drop the old column \
           in a later release; or allow the rename with a reason when no running code uses the column.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, nick text);"], "ALTER TABLE users RENAME COLUMN nick TO nickname;"),
    good: Example::new(&["CREATE TABLE users (id bigint PRIMARY KEY, nick text);"], "ALTER TABLE users ADD COLUMN nickname text;"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let Some((rename, table)) = cx.rename_in_existing_table(ObjectType::ObjectColumn) else {
        return Vec::new();
    };
    if sql::object_type(rename.relation_type) != ObjectType::ObjectTable {
        return Vec::new();
    }
    vec![Hit::new(format!(
        "renaming column `{}` of existing table {} to `{}` breaks running code that still uses the old name",
        rename.subname,
        cx.describe(table),
        rename.newname
    ))]
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn a_column_of_a_new_table_may_be_renamed() {
        assert_eq!(check(&[], "CREATE TABLE t (a int8);\nALTER TABLE t RENAME COLUMN a TO b;"), "");
    }
}
