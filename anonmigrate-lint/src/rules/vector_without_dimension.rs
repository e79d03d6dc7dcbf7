//! `vector-without-dimension`: a pgvector column without a dimension cannot be indexed.

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql;

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
    sql::columns(cx.node)
        .into_iter()
        .filter_map(|column| {
            let sql_type = column.sql_type()?;
            let is_vector = matches!(sql_type.name, "vector" | "halfvec" | "sparsevec");
            (is_vector && !sql_type.has_modifiers).then(|| {
                Hit::at(
                    column.location().or(sql_type.location),
                    format!(
                        "column `{}` of `{}` is a {} without a dimension, so it cannot get an HNSW or IVFFlat index",
                        column.name,
                        sql::relation_key(column.table),
                        sql_type.name
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn added_and_retyped_columns_count() {
        assert_eq!(
            check(&[], "CREATE TABLE d (id int8);\nALTER TABLE d ADD COLUMN e halfvec,\n  ALTER COLUMN id TYPE public.vector;"),
            "line 2: error [vector-without-dimension] column `e` of `d` is a halfvec without a dimension, so it cannot get an HNSW or IVFFlat index\n\
             line 3: error [vector-without-dimension] column `id` of `d` is a vector without a dimension, so it cannot get an HNSW or IVFFlat index\n"
        );
    }
}
