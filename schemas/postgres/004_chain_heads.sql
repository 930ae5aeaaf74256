-- Signed chain heads (DESIGN.md §5; README "Proving integrity"), written by
-- aggregator/proof_round.c. Every signing round signs the head of each
-- stream that changed since the last one (Ed25519) and appends the heads to
-- an append-only Merkle tree (RFC 6962) whose root the round signs. The
-- same heads and rounds go to a sink the database administrator does not
-- control (a Kafka topic, a file): these rows are a convenience, the sink is
-- the evidence.

-- One row per round: the root of the tree over every head signed so far.
CREATE TABLE auditrail.chain_rounds (
    round        bigint      PRIMARY KEY,
    signed_at    timestamptz NOT NULL,
    tree_size    bigint      NOT NULL,
    root_hash    bytea       NOT NULL,
    signature    bytea       NOT NULL,
    key_id       text        NOT NULL,
    heads        integer     NOT NULL,
    published_at timestamptz -- when every sink acknowledged it (NULL: to publish again)
);

-- One row per signed head; leaf is its position in the tree.
CREATE TABLE auditrail.chain_heads (
    leaf       bigint      PRIMARY KEY,
    round      bigint      NOT NULL REFERENCES auditrail.chain_rounds (round),
    stream_id  text        NOT NULL,
    seq        bigint      NOT NULL,
    hash       bytea       NOT NULL,
    event_time timestamptz NOT NULL,
    signed_at  timestamptz NOT NULL,
    signature  bytea       NOT NULL
);
CREATE INDEX chain_heads_stream_idx ON auditrail.chain_heads (stream_id, seq);
CREATE INDEX chain_heads_round_idx ON auditrail.chain_heads (round);

-- The latest signed head of each stream: a stream whose auditrail.streams
-- row differs from it changed since.
CREATE TABLE auditrail.chain_heads_latest (
    stream_id text   PRIMARY KEY,
    round     bigint NOT NULL,
    seq       bigint NOT NULL,
    hash      bytea  NOT NULL
);

-- The tree's perfect subtrees (2^level leaves from idx * 2^level; level 0:
-- the leaf hashes), so that a root or a proof reads O(log n) rows.
CREATE TABLE auditrail.chain_tree (
    level smallint NOT NULL,
    idx   bigint   NOT NULL,
    hash  bytea    NOT NULL,
    PRIMARY KEY (level, idx)
);
