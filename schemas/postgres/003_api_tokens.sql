-- Bearer tokens of the query API (DESIGN.md §7): only their SHA-256 is
-- stored. Created, revoked and listed with `auditrail-aggregator token …`.
-- tenant NULL = every tenant (admin); readers and auditors have one.
CREATE TABLE IF NOT EXISTS auditrail.api_tokens (
    token_sha256 bytea       NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    tenant       text,
    role         text        NOT NULL CHECK (role IN ('reader', 'auditor', 'admin')),
    name         text        NOT NULL UNIQUE CHECK (name <> ''),
    created      timestamptz NOT NULL DEFAULT now(),
    expires      timestamptz,
    revoked      timestamptz,
    CHECK ((role = 'admin') = (tenant IS NULL)),
    CHECK (tenant IS NULL OR (tenant <> '' AND tenant <> '*'))
);
