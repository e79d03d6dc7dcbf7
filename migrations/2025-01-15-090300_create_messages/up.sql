CREATE TABLE messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room TEXT NOT NULL,
    author_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    -- all-MiniLM-L6-v2 sentence embeddings; NULL until the embedding worker has processed the message.
    embedding vector(384),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX messages_room_created_at_idx ON messages (room, created_at);
CREATE INDEX messages_author_id_idx ON messages (author_id);
