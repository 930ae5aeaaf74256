/* The environment's part in configuration (DESIGN.md §8): ${VAR} and
 * ${VAR:-default} expansion in values, and AUDITRAIL_<PATH> overrides.
 * Used by the loader (common/config.c) and the reference printer. */
#ifndef AUDITRAIL_CFG_ENV_H
#define AUDITRAIL_CFG_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

/* The override variable of a key path: "AUDITRAIL_" + the path upper-cased,
 * '.' and '-' turned into '_' (kafka.topic -> AUDITRAIL_KAFKA_TOPIC). Heap. */
char *cfg_env_name(const char *path);

/* Whether keys of type t can be overridden (scalars and string lists). */
bool cfg_env_overridable(enum cfg_type t);

/* The value overriding `path`, or NULL when its variable is unset or empty
 * (container specs often carry VAR= placeholders not meant to blank a
 * setting). *var receives the variable's name (heap, caller frees) either
 * way. */
const char *cfg_env_override(const char *path, char **var);

/* Expand `in`: ${VAR}, ${VAR:-default} (the default when VAR is unset or
 * empty; it may itself hold ${...}), $$ for a literal $. Returns a heap
 * string, or NULL with a one-line reason in err (unterminated "${", a bad
 * variable name, an unset VAR without default); the reason never contains a
 * variable's value. */
char *cfg_env_expand(const char *in, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
