CREATE TYPE request_method AS ENUM ('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS');

CREATE TABLE request_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    method request_method NOT NULL,
    path TEXT NOT NULL,
    status_code SMALLINT NOT NULL CHECK (status_code BETWEEN 100 AND 599),
    duration_ms DOUBLE PRECISION NOT NULL CHECK (duration_ms >= 0),
    -- Anonymous requests have no user; keep the log when a user is deleted.
    user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX request_log_created_at_idx ON request_log (created_at);
CREATE INDEX request_log_user_id_idx ON request_log (user_id);
