//! `prefer-identity`: identity columns over `serial`.

use super::{Check, Example, Rule};

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "prefer-identity",
    default_level: Level::Warn,
    summary: "A column declared `serial`, `bigserial` or `smallserial`.",
    why: "serial is shorthand for a separately owned sequence and a default: ownership, grants and copying tables \
          need extra care, and explicit inserts can collide with later sequence values. An identity column is tied to \
          its column, and `GENERATED ALWAYS` rejects stray explicit values.",
    help: "Use an identity column: `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`.",
    check: Check::Squawk(squawk_linter::Rule::PreferIdentity),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE rooms (id bigserial PRIMARY KEY, name text NOT NULL);"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);"),
};

#[cfg(test)]
mod tests {
    crate::rules::examples_test!();
}
