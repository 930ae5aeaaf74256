-- Retention never drops a partition written within the last maintenance
-- period (issue 9 item 4): the writer notes, once a minute at most, when it
-- wrote a partition of a past day (today's are never due), in the transaction
-- of the rows; retention checks the note after DETACH, holding the lock that
-- waited for those writers, and keeps a partition written recently.
CREATE TABLE auditrail.partition_writes (
    partition  text        PRIMARY KEY, -- events_pYYYYMMDD (partitions.c part_day_name)
    last_write timestamptz NOT NULL
);
