-- OAuth 2.0 clients (issue 14) and the client a refresh token was issued to.
-- Portable SQL, as the first migration: TEXT ids, BIGINT Unix seconds, JSON-text lists.

CREATE TABLE oauth_clients (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    secret_hash    TEXT,
    grants         TEXT NOT NULL,
    redirect_uris  TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

-- '' for tokens issued without a client (the admin API's /auth/login).
ALTER TABLE refresh_tokens ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
-- The scope granted with the family ('' for the user's scopes at each refresh, as before).
ALTER TABLE refresh_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '';
