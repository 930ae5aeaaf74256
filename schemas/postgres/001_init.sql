-- auditrail schema v1 (DESIGN.md §5). Applied by aggregator/migrate.c in one
-- transaction; schema_migrations is created by the migrator itself.
CREATE SCHEMA IF NOT EXISTS auditrail;

-- Audit events, one row per record, daily range partitions events_pYYYYMMDD
-- (UTC) created by aggregator/partitions.c. No default partition: it would
-- forbid DETACH CONCURRENTLY and hide missing partitions.
CREATE TABLE auditrail.events (
    event_time      timestamptz NOT NULL,
    id              uuid        NOT NULL,
    stream_id       text        NOT NULL,
    seq             bigint      NOT NULL,
    file_offset     bigint      NOT NULL,
    hash            bytea       NOT NULL,
    prev_hash       bytea       NOT NULL,
    read_time       timestamptz NOT NULL,
    time_source     text        NOT NULL,
    tenant          text,
    actor           text,
    action          text,
    resource        text,
    outcome         text,
    format          text        NOT NULL,
    source          jsonb       NOT NULL,
    raw             bytea       NOT NULL,
    truncated_bytes bigint      NOT NULL DEFAULT 0,
    attrs           jsonb,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_time, id)
) PARTITION BY RANGE (event_time);

CREATE INDEX events_stream_seq_idx ON auditrail.events (stream_id, seq);
CREATE INDEX events_tenant_time_idx ON auditrail.events (tenant, event_time);
CREATE INDEX events_actor_time_idx ON auditrail.events (actor, event_time);
CREATE INDEX events_action_time_idx ON auditrail.events (action, event_time);
CREATE INDEX events_resource_time_idx ON auditrail.events (resource, event_time);
CREATE INDEX events_outcome_time_idx ON auditrail.events (outcome, event_time);

-- Per stream: where its chain stands, and what went wrong with it.
CREATE TABLE auditrail.streams (
    stream_id    text        PRIMARY KEY,
    last_seq     bigint      NOT NULL,
    last_hash    bytea       NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    source       jsonb,
    gaps         bigint      NOT NULL DEFAULT 0,
    chain_breaks bigint      NOT NULL DEFAULT 0,
    forks        bigint      NOT NULL DEFAULT 0
);

-- Exactly-once: the next Kafka offset per partition, committed with the rows
-- and advanced by compare-and-set.
CREATE TABLE auditrail.kafka_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Gaps, chain breaks and forks as detected, with their evidence. Rows are
-- stored regardless; a re-send is not an incident.
CREATE TABLE auditrail.integrity_incidents (
    id          bigserial   PRIMARY KEY,
    detected_at timestamptz NOT NULL DEFAULT now(),
    kind        text        NOT NULL CHECK (kind IN ('gap', 'chain_break', 'fork')),
    stream_id   text        NOT NULL,
    seq         bigint      NOT NULL,
    expected    text,
    actual      text,
    evidence    jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX integrity_incidents_stream_idx ON auditrail.integrity_incidents (stream_id, seq);
CREATE INDEX integrity_incidents_time_idx ON auditrail.integrity_incidents (detected_at);

-- Maintenance lease fencing: the highest token seen; a transaction of a
-- holder with a lower token does nothing.
CREATE TABLE auditrail.maintenance_lease (
    name       text        PRIMARY KEY,
    token      bigint      NOT NULL,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);
