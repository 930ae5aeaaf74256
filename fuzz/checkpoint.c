/* Fuzz the agent's checkpoint codec (agent/checkpoint.h). A checkpoint file
 * can be damaged on disk; loading it must fail cleanly or give entries that
 * save and load back unchanged. And whatever file name the agent tails (any
 * bytes but NUL and '/': Linux does not require UTF-8) must survive a
 * save/load round trip, or a restart would lose its position.
 *
 * The input is used twice: as checkpoint JSON text, and as a file name. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/checkpoint.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_entry(const struct checkpoint_entry *a, const struct checkpoint_entry *b, size_t i)
{
    const char *la = a->live_path ? a->live_path : a->path;
    const char *lb = b->live_path ? b->live_path : b->path;
    FUZZ_CHECK(fuzz_streq(a->path, b->path), "entry %zu: path differs after a round trip", i);
    FUZZ_CHECK(fuzz_streq(la, lb), "entry %zu: live_path differs after a round trip", i);
    FUZZ_CHECK(a->dev == b->dev && a->ino == b->ino && a->btime == b->btime &&
                   a->fp_len == b->fp_len && a->generation == b->generation &&
                   a->offset == b->offset && a->seq == b->seq && a->done == b->done,
               "entry %zu: numbers differ after a round trip", i);
    FUZZ_CHECK(memcmp(a->fp, b->fp, sizeof a->fp) == 0, "entry %zu: fp differs", i);
    FUZZ_CHECK(memcmp(a->prev, b->prev, sizeof a->prev) == 0, "entry %zu: prev differs", i);
    FUZZ_CHECK(strcmp(a->stream, b->stream) == 0, "entry %zu: stream differs", i);
}

/* to_json, from_json, compare, to_json again: same text. */
static void round_trip(const struct checkpoint *c)
{
    struct checkpoint d = {0};
    char err[256] = "";
    char *t1 = checkpoint_to_json(c);
    FUZZ_CHECK(t1 != NULL, "checkpoint_to_json returned NULL");
    int rc = checkpoint_from_json(&d, t1, err, sizeof err);
    if (rc != 1)
        fuzz_fail("a saved checkpoint does not load: %s\n%s", err, t1);
    FUZZ_CHECK(d.n == c->n, "%zu entries saved, %zu loaded", c->n, d.n);
    for (size_t i = 0; i < c->n; i++)
        same_entry(&c->v[i], &d.v[i], i);
    char *t2 = checkpoint_to_json(&d);
    FUZZ_CHECK(t2 && strcmp(t1, t2) == 0, "checkpoint text not stable:\n%s\n%s", t1, t2);
    free(t1);
    free(t2);
    checkpoint_release(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct checkpoint c = {0};
    char err[256];
    char *text = fuzz_strndup(data, size);

    memset(err, 0x55, sizeof err);
    int rc = checkpoint_from_json(&c, text, err, sizeof err);
    FUZZ_CHECK(rc == 1 || rc == -1, "checkpoint_from_json returned %d", rc);
    if (rc == -1) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) && err[0], "failed without a message");
    } else {
        round_trip(&c);
    }
    checkpoint_release(&c);

    /* The input as the name of a tailed file (cut at NUL, at most PATH_MAX). */
    size_t n = strnlen(text, 4096);
    text[n] = '\0';
    struct checkpoint_entry e;
    memset(&e, 0, sizeof e);
    e.path = text;
    e.live_path = n > 1 ? text + 1 : NULL;
    e.dev = 64769;
    e.ino = 393231;
    e.fp_len = n % 1025;
    memset(e.fp, 0xab, sizeof e.fp);
    if (e.fp_len)
        memset(e.stream, 'c', 2 * STREAM_ID_LEN);
    e.offset = size;
    e.seq = n;
    checkpoint_add(&c, &e);
    round_trip(&c);
    checkpoint_release(&c);
out:
    free(text);
    return 0;
}
