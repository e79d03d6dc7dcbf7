CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- anonmigrate:allow prefer-text-field the 64-character cap is the product's username rule (schema.rs
    -- #[max_length = 64]); widening a varchar later needs no table rewrite
    username VARCHAR(64) NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
