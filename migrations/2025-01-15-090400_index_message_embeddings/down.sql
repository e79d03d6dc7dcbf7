DROP INDEX CONCURRENTLY IF EXISTS messages_embedding_hnsw_idx;
