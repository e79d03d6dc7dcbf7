-- pgvector powers the semantic search over messages (the `embedding` column and its HNSW index).
CREATE EXTENSION IF NOT EXISTS vector;
