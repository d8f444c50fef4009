-- Users store and token service (issue 3).
-- Portable SQL: the same file runs on SQLite and PostgreSQL. Ids are UUID strings,
-- times are Unix seconds (BIGINT), flags are BIGINT 0/1, lists are JSON text.

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    email          TEXT,
    display_name   TEXT,
    password_hash  TEXT,
    roles          TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    active         BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    last_login_at  BIGINT
);

CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked      BIGINT NOT NULL,
    replaced_by  TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);

CREATE TABLE revoked_jtis (
    jti         TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL UNIQUE,
    key_hash      TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    key_path      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    retire_after  BIGINT,
    retired_at    BIGINT
);

CREATE TABLE digest_credentials (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    realm      TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    ha1        TEXT NOT NULL,
    PRIMARY KEY (user_id, realm, algorithm)
);
