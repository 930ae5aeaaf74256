/* The agent's configuration: the YAML key table (agent, kafka, http, log
 * sections; DESIGN.md §8) and the values derived from it at start
 * (compiled multiline patterns, format kinds, field maps). */
#ifndef AUDITRAIL_AGENT_CONFIG_H
#define AUDITRAIL_AGENT_CONFIG_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/format.h"
#include "common/alert.h"
#include "common/conf_common.h"
#include "common/config.h"

struct agent_multiline_conf {
    char *start_pattern; /* POSIX ERE; NULL = one record per line */
    int64_t flush_ms;
};

struct agent_input_conf {
    char *path;   /* glob */
    char *format; /* json|kv|k8s-audit|auditd|fhir|raw */
    struct agent_multiline_conf multiline;
    struct cfg_map fields;
};

struct agent_source_conf {
    char *host, *namespace_, *pod, *container;
};

struct agent_section {
    char *source_name;
    struct agent_source_conf source;
    char *checkpoint_dir;
    int64_t checkpoint_interval_ms;
    char *read_from; /* beginning|end */
    int64_t max_record_bytes;
    int64_t max_open_files;
    int64_t max_inflight_bytes;
    int64_t max_inflight_records;
    int64_t rescan_interval_ms;
    int64_t rotate_wait_ms;
    int64_t read_buffer_bytes;
    int64_t max_past_s;
    int64_t max_future_s;
    int64_t shutdown_timeout_ms;
    int64_t drain_timeout_s;
    bool follow_symlinks;
    int64_t kafka_unready_ms;
    struct cfg_list inputs; /* struct agent_input_conf */
};

struct agent_conf_file {
    struct agent_section agent;
    struct kafka_conf kafka;
    struct http_conf http;
    struct log_conf log;
    struct alerter_conf alerts;
};

/* One input, ready to use. */
struct agent_input {
    const struct agent_input_conf *conf;
    enum format_kind kind;
    struct field_map map;
    bool has_start;
    regex_t start; /* valid when has_start */
};

struct agent_config {
    struct agent_conf_file file;
    struct agent_input *inputs;
    size_t n_inputs;
    bool read_from_end;
};

extern const struct cfg_key agent_conf_keys[];

/* Load and validate `path` (formats known, patterns compile, read_from
 * valid, limits consistent). Returns 0, or -1 with "FILE:LINE: ..." in err;
 * call agent_config_release either way. */
int agent_config_load(struct agent_config *c, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Same from a YAML string (tests). */
int agent_config_load_string(struct agent_config *c, const char *yaml, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void agent_config_release(struct agent_config *c);

#endif
