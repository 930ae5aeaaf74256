/* Fuzz format_parse for the k8s-audit format, with its default field names, a
 * custom field map and an odd one, and its fast path against jansson (see
 * format_common.h for the invariants). */
#define FUZZ_KIND         FORMAT_K8S_AUDIT
#define FUZZ_MAP_TIME     "meta.when"
#define FUZZ_MAP_TENANT   "org.0.id"
#define FUZZ_MAP_ACTOR    "user.name"
#define FUZZ_MAP_ACTION   "request.verb"
#define FUZZ_MAP_RESOURCE "objectRef.resource"
#define FUZZ_MAP_OUTCOME  "responseStatus.code"
#include "fuzz/format_common.h"
