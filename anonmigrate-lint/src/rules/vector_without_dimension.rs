//! `vector-without-dimension`: a pgvector column without a dimension cannot be indexed.

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::sql;

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "vector-without-dimension",
    default_level: Level::Deny,
    summary: "A pgvector column (`vector`, `halfvec`, `sparsevec`) declared without its dimension.",
    why: "pgvector only indexes columns with a declared dimension: CREATE INDEX ... USING hnsw fails on a bare \
          `vector`, so similarity search falls back to scanning every row; embeddings of different lengths (after a \
          model change) also mix silently in one column.",
    help: "Declare the embedding model's dimension, e.g. `embedding vector(384)` for all-MiniLM-L6-v2.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE documents (id bigint PRIMARY KEY, embedding vector);"),
    good: Example::new(&[], "CREATE TABLE documents (id bigint PRIMARY KEY, embedding vector(384));"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let table = sql::statement_table(cx.stmt).unwrap_or_default();
    sql::column_types(cx.stmt)
        .into_iter()
        .filter(|ty| matches!(ty.name.as_str(), "vector" | "halfvec" | "sparsevec") && !ty.has_modifiers)
        .map(|ty| {
            Hit::at(
                ty.offset,
                format!(
                    "column `{}` of `{table}` is a {} without a dimension, so it cannot get an HNSW or IVFFlat index",
                    ty.column.as_deref().unwrap_or("?"),
                    ty.name
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn added_and_retyped_columns_count() {
        insta::assert_snapshot!(check(&[], "CREATE TABLE d (id int8);\nALTER TABLE d ADD COLUMN e halfvec,\n  ALTER COLUMN id TYPE public.vector;"));
    }
}
