-- Registrar bindings (issue 4), written behind from the in-memory table and loaded at
-- start-up. Portable SQL (SQLite and PostgreSQL). Times are Unix seconds.

CREATE TABLE bindings (
    aor            TEXT NOT NULL,
    id             BIGINT NOT NULL,
    uri            TEXT NOT NULL,
    instance       TEXT,
    reg_id         BIGINT,
    q              BIGINT,
    expires_at     BIGINT NOT NULL,
    call_id        TEXT NOT NULL,
    cseq           BIGINT NOT NULL,
    path           TEXT NOT NULL,
    transport      TEXT NOT NULL,
    source         TEXT NOT NULL,
    user_agent     TEXT,
    registered_at  BIGINT NOT NULL,
    PRIMARY KEY (aor, id)
);
CREATE INDEX bindings_expires ON bindings(expires_at);
