//! `prefer-bigint-over-int`: 32-bit primary keys run out.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "prefer-bigint-over-int",
    default_level: Level::Warn,
    summary: "A new primary key column of type `int`/`integer`/`smallint` (or `serial`/`smallserial`).",
    why: "An int key tops out at 2,147,483,647 (smallint at 32,767), and sequences also burn values on rolled-back \
          inserts; when it runs out every insert fails, and widening the key later rewrites the table and every \
          referencing foreign key under an exclusive lock.",
    help: "Use `bigint` for new primary keys, e.g. `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`; four more \
           bytes a row are cheap insurance.",
    check: Check::Squawk(squawk_linter::Rule::PreferBigintOverInt),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE rooms (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);"),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_rule;

    crate::rules::examples_test!();

    #[test]
    fn table_level_keys_and_serials() {
        let example = Example::new(&[], "CREATE TABLE a (id serial, x int, PRIMARY KEY (id));\nCREATE TABLE b (id smallint PRIMARY KEY, n int4);");
        insta::assert_snapshot!(check_rule(&RULE, example));
    }
}
