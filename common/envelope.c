/* The envelope value (common/envelope.h): the member names both codecs
 * agree on, and freeing what a decoded or built envelope owns. */
#include "common/envelope.h"

#include <stdlib.h>
#include <string.h>

#include "common/envelope_int.h"

const char *const envelope_source_keys[ENVELOPE_SOURCE_KEYS] = {"name", "host",      "namespace",
                                                                "pod",  "container", "path"};
const char *const envelope_field_keys[ENVELOPE_FIELD_KEYS] = {"tenant", "actor", "action",
                                                              "resource", "outcome"};

void envelope_release(struct envelope *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < ENVELOPE_SOURCE_KEYS; i++)
        free(*envelope_source_slot(&e->source, i));
    for (size_t i = 0; i < ENVELOPE_FIELD_KEYS; i++)
        free(*envelope_field_slot(&e->fields, i));
    free(e->format);
    free(e->line);
    memset(e, 0, sizeof(*e));
}
