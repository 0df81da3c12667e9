-- PostgresStore, schema version 2. `{schema}` is the store's namespace, checked to be an SQL identifier
-- ([a-z_][a-z0-9_]{0,62}, not pg_*) before it is put here. Every statement is idempotent, so the same SQL creates a
-- new namespace and brings one of an older version up to date; PostgresStore::migrate runs them all in one
-- transaction, under an advisory lock per namespace.
CREATE SCHEMA IF NOT EXISTS "{schema}";

CREATE TABLE IF NOT EXISTS "{schema}".api_keys (
    -- Public id: 12 base62 characters. COLLATE "C" makes ORDER BY id byte order, which listing cursors need
    -- (a locale collation sorts 'a' before 'B' and a cursor then skips or repeats keys).
    id             text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z]{12}$'),
    -- SHA-256 of the secret (keys of the crate's format) or of the whole key (opaque keys). Never the key.
    digest         bytea       NOT NULL CHECK (octet_length(digest) = 32),
    -- The key's prefix (crate format, looked up by id); NULL for an opaque key (looked up by digest).
    prefix         text,
    kind           text        NOT NULL CHECK (kind IN ('user', 'system')),
    owner          text        NOT NULL,
    name           text        NOT NULL DEFAULT '',
    scopes         text[]      NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz,
    revoked_at     timestamptz,
    last_used_at   timestamptz,
    -- Saturates at 2^63 - 1.
    usage_count    bigint      NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    enabled        boolean     NOT NULL DEFAULT true,
    -- Rate limit: requests per period; both NULL for none. The period in nanoseconds, as Rust's Duration keeps it.
    rate_requests  bigint      CHECK (rate_requests BETWEEN 1 AND 4294967295),
    rate_period_ns bigint      CHECK (rate_period_ns > 0),
    -- String keys to string values.
    metadata       jsonb       NOT NULL DEFAULT '{}',
    -- Set when the key was rotated: its successor's id.
    rotated_to     text COLLATE "C",
    CHECK ((rate_requests IS NULL) = (rate_period_ns IS NULL))
);

-- Opaque keys are looked up by digest; this index also makes a second copy of an opaque key a conflict.
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_opaque_digest ON "{schema}".api_keys (digest) WHERE prefix IS NULL;

-- Listings filtered by owner read only that owner's keys, in id order.
CREATE INDEX IF NOT EXISTS api_keys_owner ON "{schema}".api_keys (owner, id);

-- Version 2: requests per key and UTC hour. record_usage adds to a key's row above and to its hour here in one
-- statement, and deletes the hours older than 168 (USAGE_HOURS_KEPT) before the earlier of the newest hour it
-- wrote and now().
CREATE TABLE IF NOT EXISTS "{schema}".api_key_usage (
    id    text COLLATE "C" NOT NULL REFERENCES "{schema}".api_keys (id) ON DELETE CASCADE,
    -- The start of the hour: a whole multiple of 3600 s since the Unix epoch.
    hour  timestamptz NOT NULL CHECK (mod(extract(epoch FROM hour)::numeric, 3600) = 0),
    -- Saturates at 2^63 - 1.
    count bigint      NOT NULL CHECK (count >= 0),
    PRIMARY KEY (id, hour)
);

-- Pruning finds the old hours of every key by index.
CREATE INDEX IF NOT EXISTS api_key_usage_hour ON "{schema}".api_key_usage (hour);

CREATE TABLE IF NOT EXISTS "{schema}".schema_version (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO "{schema}".schema_version (version) VALUES (1), (2) ON CONFLICT (version) DO NOTHING;
