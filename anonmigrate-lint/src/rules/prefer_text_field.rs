//! `prefer-text-field`: `text` over `varchar(n)`.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "prefer-text-field",
    default_level: Level::Warn,
    summary: "A column of type `varchar(n)` or `char(n)`.",
    why: "In PostgreSQL `varchar(n)` is stored exactly like `text` and is no faster; the length is only a check, and \
          changing it later is an ALTER COLUMN TYPE under an ACCESS EXCLUSIVE lock (with a rewrite when narrowing). \
          `char(n)` also pads values with spaces.",
    help: "Use `text`, with `CHECK (char_length(col) <= n)` when the limit is a real rule (a check can be replaced \
           later with NOT VALID + VALIDATE without blocking); keep `varchar(n)` with an allow comment when the limit \
           is part of a contract.",
    check: Check::Squawk(squawk_linter::Rule::PreferTextField),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY, name varchar(100) NOT NULL);"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY, name text NOT NULL CHECK (char_length(name) <= 100));"),
};

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn bare_varchar_is_text_already() {
        let out = check(&[], "CREATE TABLE r (a varchar, b character varying(10), c char(2));");
        insta::assert_snapshot!(out);
    }
}
