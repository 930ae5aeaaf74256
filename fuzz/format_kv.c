/* Fuzz format_parse for the kv format, with its default field names and
 * with a custom field map (see format_common.h for the invariants). */
#define FUZZ_KIND         FORMAT_KV
#define FUZZ_MAP_TIME     "when"
#define FUZZ_MAP_TENANT   "org"
#define FUZZ_MAP_ACTOR    "who"
#define FUZZ_MAP_ACTION   "op"
#define FUZZ_MAP_RESOURCE "obj"
#define FUZZ_MAP_OUTCOME  "rc"
#include "fuzz/format_common.h"
