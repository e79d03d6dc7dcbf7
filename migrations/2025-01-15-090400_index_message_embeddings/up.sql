-- Built CONCURRENTLY so writers are never blocked while the graph is built on a live table;
-- that cannot run inside a transaction, hence metadata.toml.
CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_embedding_hnsw_idx
    ON messages USING hnsw (embedding vector_cosine_ops);
