-- Revocations and other changes validators must learn of (issue 15 item 2): every
-- process keeps the revocation state in memory and polls this table for rows newer
-- than the last it applied. Written in the same transaction as the change it records.
-- Portable SQL: ids are given by the writer (MAX(id) + 1 in its transaction), so both
-- SQLite and PostgreSQL run the same statements.
--
-- kind: jti (subject = the access token's jti, expires_at = its exp), family (a refresh
-- token family; its access tokens carry it as `sid`), user_created, client_created,
-- user_disabled, user_enabled,
-- user_changed (roles or scopes), user_deleted, client_deleted, api_key (revoked),
-- api_key_changed (rotated: expires sooner), signing_keys (a key added or retired).

CREATE TABLE revocation_log (
    id          BIGINT PRIMARY KEY,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    -- Unix second after which the entry no longer matters (0: the reader's horizon,
    -- access token lifetime plus leeway after created_at).
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX revocation_log_created ON revocation_log(created_at);
