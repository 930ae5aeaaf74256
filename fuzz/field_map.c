/* Fuzz field_map_from_cfg and format_parse with operator-supplied field
 * paths. Input: "key=value" lines (the input's `fields:` map), an empty line,
 * then the record, which is parsed with the map in every format. Dotted JSON
 * paths ("agent.0.who.display") are parser input too, so they are fuzzed
 * together with the record. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format.h"
#include "common/config.h"
#include "fuzz/format_common.h"
#include "fuzz/fuzz_util.h"

#define MAX_KEYS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *keys[MAX_KEYS], *vals[MAX_KEYS];
    struct cfg_map m = {keys, vals, 0};
    struct field_map fm;
    char err[256];
    size_t pos = 0;

    /* The map: lines up to the first empty one. */
    while (pos < size && m.n < MAX_KEYS) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        if (end == pos) {
            pos++;
            break;
        }
        const uint8_t *line = data + pos;
        size_t llen = end - pos;
        const uint8_t *eq = memchr(line, '=', llen);
        size_t klen = eq ? (size_t)(eq - line) : llen;
        keys[m.n] = fuzz_strndup(line, klen);
        vals[m.n] = eq ? fuzz_strndup(eq + 1, llen - klen - 1) : fuzz_strndup(line, 0);
        m.n++;
        pos = nl ? end + 1 : size;
    }

    err[0] = '\0';
    if (field_map_from_cfg(&m, &fm, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0', "field_map_from_cfg failed without a reason");
        goto out;
    }
    /* "Strings point into m (no copies)". */
    const char *slots[6] = {fm.time, fm.tenant, fm.actor, fm.action, fm.resource, fm.outcome};
    for (int i = 0; i < 6; i++) {
        if (!slots[i])
            continue;
        bool found = false;
        for (size_t j = 0; j < m.n; j++)
            found |= slots[i] == vals[j];
        FUZZ_CHECK(found, "field_map slot %d does not point into the map", i);
    }
    for (int k = 0; k < FORMAT_COUNT; k++)
        fuzz_format_one((enum format_kind)k, &fm, data + pos, size - pos);
out:
    for (size_t i = 0; i < m.n; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    return 0;
}
