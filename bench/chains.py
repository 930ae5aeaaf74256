#!/usr/bin/env python3
"""Valid hash chains (DESIGN.md §2) for the verify and proof benchmarks,
written as PostgreSQL COPY text: hashlib only, no product code.

  chains.py EVENTS_OUT STREAMS_OUT NSTREAMS RECORDS DAYS T0_SECONDS [FIRST_SEQ]

NSTREAMS streams of RECORDS records each (seq FIRST_SEQ.., default 0: a
later call continues the chains of an earlier one if given the same
arguments and FIRST_SEQ = the earlier RECORDS), spread evenly over DAYS UTC
days from T0_SECONDS; records ~200 bytes of JSON. EVENTS_OUT gets rows of
auditrail.events (the columns printed by `--columns`), STREAMS_OUT rows of
auditrail.streams (stream_id, last_seq, last_hash)."""
import datetime
import hashlib
import struct
import sys

COLUMNS = ("event_time, id, stream_id, seq, file_offset, hash, prev_hash, read_time, "
           "time_source, format, source, raw")

if len(sys.argv) == 2 and sys.argv[1] == "--columns":
    print(COLUMNS)
    sys.exit(0)

ev_out, st_out = sys.argv[1], sys.argv[2]
nstreams, nrec, days, t0 = (int(x) for x in sys.argv[3:7])
first = int(sys.argv[7]) if len(sys.argv) > 7 else 0


def stream_id(j):
    return hashlib.sha256(b"bench-stream-%d" % j).hexdigest()[:32]


def record(j, i):
    return ('{"ts":"%d","tenant":"hospital-%d","actor":"dr.user%04d","action":"read",'
            '"resource":"Patient/%08d","outcome":"success","session":"%016x",'
            '"ua":"Mozilla/5.0 (X11; Linux x86_64)"}' % (i, j % 7, j % 1000, i, j * 7919 + i)).encode()


def ts(us):
    return datetime.datetime.fromtimestamp(us / 1e6, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S.%f+00")


span_us = days * 86400 * 1000000
total = nstreams * (first + nrec)
# Rows in time order (streams interleaved, as an aggregator stores them).
with open(ev_out, "w") as ev, open(st_out, "w") as st:
    sids = [stream_id(j) for j in range(nstreams)]
    prev = [hashlib.sha256(("auditrail:v1:" + sid).encode()).digest() for sid in sids]
    for i in range(first + nrec):
        for j in range(nstreams):
            raw = record(j, i)
            h = hashlib.sha256(prev[j] + struct.pack(">Q", i) + raw).digest()
            if i >= first:
                t = t0 * 1000000 + (i * nstreams + j) * (span_us // max(total, 1))
                u = h[:16].hex()
                uid = "%s-%s-%s-%s-%s" % (u[:8], u[8:12], u[12:16], u[16:20], u[20:])
                ev.write("%s\t%s\t%s\t%d\t%d\t\\\\x%s\t\\\\x%s\t%s\tread\tjson\t"
                         '{"name": "bench"}\t\\\\x%s\n'
                         % (ts(t), uid, sids[j], i, i * 200, h.hex(), prev[j].hex(), ts(t),
                            raw.hex()))
            prev[j] = h
    for j in range(nstreams):
        st.write("%s\t%d\t\\\\x%s\n" % (sids[j], first + nrec - 1, prev[j].hex()))
