-- issue 9 (items 5 and 7). Applied by aggregator/migrate.c in one transaction.

-- Per stream, the range of event_time of its stored rows, kept by the writer
-- in the transaction that stores them. The writer's lookup of a re-send whose
-- time changed is bounded by it, so it reads (and locks) only the stream's
-- partitions, never all of them. NULL for a stream stored before this
-- migration (unknown: such a stream is looked up across all partitions).
ALTER TABLE auditrail.streams
    ADD COLUMN min_event_time timestamptz,
    ADD COLUMN max_event_time timestamptz;

-- The indexed text columns (tenant, actor, action, resource, outcome) hold at
-- most 512 bytes, cut on a UTF-8 boundary; fields_cut names the ones that
-- were cut (NULL: none). The full value stays in raw (and in attrs when the
-- record is JSON). A new stream's row is first inserted with last_seq -1 and
-- locked, so that two writers of one new stream serialize on it.
ALTER TABLE auditrail.events ADD COLUMN fields_cut text[];
