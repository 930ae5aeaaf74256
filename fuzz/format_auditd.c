/* Fuzz format_parse for the auditd format, with its default field names and
 * with a custom field map (see format_common.h for the invariants). */
#define FUZZ_KIND         FORMAT_AUDITD
#define FUZZ_MAP_TIME     "when"
#define FUZZ_MAP_TENANT   "ses"
#define FUZZ_MAP_ACTOR    "auid"
#define FUZZ_MAP_ACTION   "type"
#define FUZZ_MAP_RESOURCE "name"
#define FUZZ_MAP_OUTCOME  "success"
#include "fuzz/format_common.h"
