//! `hnsw-index-without-concurrently`: a pgvector graph build on a live table blocks writes for a long time.

use squawk_syntax::ast::{self, AstNode};

use super::{Check, Example, Hit, Rule, StatementCx, is_vector_index_method};
use crate::sql;

use crate::config::Level;

pub static RULE: Rule = Rule {
    id: "hnsw-index-without-concurrently",
    default_level: Level::Deny,
    summary: "A pgvector `hnsw` or `ivfflat` index built without `CONCURRENTLY` on a table that existed before this migration.",
    why: "Building an HNSW (or IVFFlat) index reads and processes every vector in the table and takes from minutes to \
          hours; without CONCURRENTLY all writes to the table, new messages included, wait for the whole build.",
    help: "Build it with `CREATE INDEX CONCURRENTLY ... USING hnsw (...)` in a migration with \
           `run_in_transaction = false`, and give the session enough `maintenance_work_mem` for the graph to fit in \
           memory.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, embedding vector(384));"],
        "CREATE INDEX messages_embedding_idx ON messages USING hnsw (embedding vector_cosine_ops);",
    ),
    good: Example::new(
        &["CREATE TABLE messages (id bigint PRIMARY KEY, embedding vector(384));"],
        "CREATE INDEX CONCURRENTLY messages_embedding_idx ON messages USING hnsw (embedding vector_cosine_ops);",
    )
    .non_transactional(),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    let ast::Stmt::CreateIndex(index) = cx.stmt else {
        return Vec::new();
    };
    let Some(method) = index.using_method().and_then(|m| m.access_method_ref()).map(|m| m.syntax().text().to_string()) else {
        return Vec::new();
    };
    let Some(table) = sql::statement_table(cx.stmt) else {
        return Vec::new();
    };
    if index.concurrently_token().is_some() || !is_vector_index_method(&method) || !cx.is_existing(&table) {
        return Vec::new();
    }
    let name = index.index().map_or(String::new(), |i| format!(" `{}`", i.syntax().text()));
    vec![Hit::new(format!(
        "building {} index{name} without CONCURRENTLY on existing table {} blocks every write to it for the whole (slow) graph build",
        method.to_ascii_lowercase(),
        cx.describe(&table)
    ))]
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn ivfflat_counts_and_a_new_table_is_fine() {
        let sql = "CREATE TABLE docs (id bigint PRIMARY KEY, embedding vector(3));\nCREATE INDEX ON docs USING hnsw (embedding vector_l2_ops);\nCREATE INDEX ON messages USING ivfflat (embedding vector_l2_ops) WITH (lists = 100);";
        insta::assert_snapshot!(check(&[], sql));
    }
}
