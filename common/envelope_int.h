/* What the envelope encoder and decoder share and callers do not need: the
 * member names of "source" and "fields" in wire order, and their slots. */
#ifndef AUDITRAIL_ENVELOPE_INT_H
#define AUDITRAIL_ENVELOPE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/envelope.h"

#define ENVELOPE_SOURCE_KEYS 6
#define ENVELOPE_FIELD_KEYS  5

extern const char *const envelope_source_keys[ENVELOPE_SOURCE_KEYS];
extern const char *const envelope_field_keys[ENVELOPE_FIELD_KEYS];

/* The member of s (or f) named envelope_source_keys[i] (envelope_field_keys[i]). */
static inline char **envelope_source_slot(struct envelope_source *s, size_t i)
{
    char **slots[ENVELOPE_SOURCE_KEYS] = {&s->name, &s->host,      &s->namespace_,
                                          &s->pod,  &s->container, &s->path};
    return slots[i];
}

static inline char **envelope_field_slot(struct envelope_fields *f, size_t i)
{
    char **slots[ENVELOPE_FIELD_KEYS] = {&f->tenant, &f->actor, &f->action, &f->resource,
                                         &f->outcome};
    return slots[i];
}

/* envelope_decode through jansson alone (the differential test compares it
 * with the single-pass reader envelope_decode uses first). */
enum envelope_err envelope_decode_jansson(const char *buf, size_t len, struct envelope *out,
                                          char *detail, size_t detaillen);
/* Whether envelope_decode reads buf[0, len) in its single pass (the rest
 * goes to jansson). */
bool envelope_scan_reads(const char *buf, size_t len);

#endif
