/* verify's findings and summary as JSON objects (aggregator/verify.h), the
 * one rendering shared by `verify --json` and GET /v1/streams/{id}/verify. */
#include <jansson.h>

#include "aggregator/verify.h"
#include "common/timeutil.h"

json_t *verify_finding_json(const struct verify_finding *f)
{
    json_t *j =
        json_pack("{s:s, s:b, s:s, s:I, s:I, s:s}", "kind", verify_kind_name(f->kind), "problem",
                  verify_kind_is_problem(f->kind), "stream", f->stream, "seq", (json_int_t)f->seq,
                  "seq_end", (json_int_t)f->seq_end, "detail", f->detail);
    if (f->stored[0])
        json_object_set_new(j, "stored", json_string(f->stored));
    if (f->computed[0])
        json_object_set_new(j, "computed", json_string(f->computed));
    if (f->event_time_us != INT64_MIN) {
        char t[TIME_RFC3339_LEN];
        time_format_us(f->event_time_us, t);
        json_object_set_new(j, "event_time", json_string(t));
    }
    return j;
}

const char *verify_status_name(enum verify_status st)
{
    return st == VERIFY_INTACT ? "intact" : st == VERIFY_PROBLEMS ? "problems" : "unavailable";
}

json_t *verify_summary_json(const struct verify_report *r, enum verify_status st, const char *err)
{
    json_t *kinds = json_object();
    for (int k = 0; k < VERIFY_KIND_COUNT; k++)
        if (r->by_kind[k])
            json_object_set_new(kinds, verify_kind_name((enum verify_kind)k),
                                json_integer((json_int_t)r->by_kind[k]));
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:f}", "status", verify_status_name(st),
                  "streams", (json_int_t)r->streams, "records", (json_int_t)r->records, "bytes",
                  (json_int_t)r->bytes, "problems", (json_int_t)r->problems, "notes",
                  (json_int_t)r->notes, "by_kind", kinds, "seconds", (double)r->elapsed_us / 1e6);
    if (err && *err)
        json_object_set_new(j, "error", json_string(err));
    return j;
}
