/* Agent key table and post-load validation. Defaults fill the source
 * identity from the Kubernetes Downward API environment (POD_NAMESPACE,
 * POD_NAME, NODE_NAME, CONTAINER_NAME). */
#include "agent/agent_config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xmalloc.h"

#define A(f) offsetof(struct agent_section, f)

static const struct cfg_key multiline_keys[] = {
    {.name = "start_pattern",
     .type = CFG_STR,
     .offset = offsetof(struct agent_multiline_conf, start_pattern),
     .help = "POSIX extended regex; a line matching it starts a new record, other lines "
             "join the current one"},
    {.name = "flush_ms",
     .type = CFG_INT,
     .offset = offsetof(struct agent_multiline_conf, flush_ms),
     .def = "1000",
     .min = 1,
     .max = 3600000,
     .help = "emit a joined record after this much quiet at the end of the file"},
    CFG_END,
};

static const struct cfg_key input_keys[] = {
    {.name = "path",
     .type = CFG_STR,
     .offset = offsetof(struct agent_input_conf, path),
     .required = true,
     .help = "glob of the files to tail (wildcards in the file name part)"},
    {.name = "format",
     .type = CFG_STR,
     .offset = offsetof(struct agent_input_conf, format),
     .def = "raw",
     .help = "json, kv, k8s-audit, auditd, fhir or raw"},
    {.name = "multiline",
     .type = CFG_SECTION,
     .offset = offsetof(struct agent_input_conf, multiline),
     .sub = multiline_keys,
     .help = "join lines into records"},
    {.name = "fields",
     .type = CFG_MAP,
     .offset = offsetof(struct agent_input_conf, fields),
     .help = "where time, tenant, actor, action, resource, outcome come from (format "
             "specific paths)"},
    CFG_END,
};

static const struct cfg_key source_keys[] = {
    {.name = "host",
     .type = CFG_STR,
     .offset = offsetof(struct agent_source_conf, host),
     .def = "${NODE_NAME:-${HOSTNAME:-}}",
     .help = "source.host of every event (Downward API: spec.nodeName)"},
    {.name = "namespace",
     .type = CFG_STR,
     .offset = offsetof(struct agent_source_conf, namespace_),
     .def = "${POD_NAMESPACE:-}",
     .help = "source.namespace (Downward API: metadata.namespace)"},
    {.name = "pod",
     .type = CFG_STR,
     .offset = offsetof(struct agent_source_conf, pod),
     .def = "${POD_NAME:-${HOSTNAME:-}}",
     .help = "source.pod (Downward API: metadata.name)"},
    {.name = "container",
     .type = CFG_STR,
     .offset = offsetof(struct agent_source_conf, container),
     .def = "${CONTAINER_NAME:-}",
     .help = "source.container (set CONTAINER_NAME in the pod spec)"},
    CFG_END,
};

static const struct cfg_key section_keys[] = {
    {.name = "source_name",
     .type = CFG_STR,
     .offset = A(source_name),
     .def = "${POD_NAMESPACE:-local}/${POD_NAME:-${HOSTNAME:-localhost}}/"
            "${CONTAINER_NAME:-app}",
     .help = "name of this source; part of every stream id, so keep it stable"},
    {.name = "source",
     .type = CFG_SECTION,
     .offset = A(source),
     .sub = source_keys,
     .help = "identity fields copied into every envelope's source object"},
    {.name = "checkpoint_dir",
     .type = CFG_STR,
     .offset = A(checkpoint_dir),
     .def = "/var/lib/auditrail",
     .help = "directory of checkpoint.json (must persist across restarts)"},
    {.name = "checkpoint_interval_ms",
     .type = CFG_INT,
     .offset = A(checkpoint_interval_ms),
     .def = "1000",
     .min = 10,
     .max = 600000,
     .help = "how often the acknowledged positions are written (when they changed)"},
    {.name = "read_from",
     .type = CFG_STR,
     .offset = A(read_from),
     .def = "beginning",
     .help = "at the very first start (no checkpoint): read existing files from the "
             "beginning or the end; files appearing later are always read from the start"},
    {.name = "max_record_bytes",
     .type = CFG_INT,
     .offset = A(max_record_bytes),
     .def = "512KiB",
     .min = 16,
     .max = 64 * 1024 * 1024,
     .help = "records are cut to this length (truncated_bytes marks the rest)"},
    {.name = "max_open_files",
     .type = CFG_INT,
     .offset = A(max_open_files),
     .def = "64",
     .min = 1,
     .max = 65536,
     .help = "files open at once; more wait (metric files_waiting)"},
    {.name = "max_inflight_bytes",
     .type = CFG_INT,
     .offset = A(max_inflight_bytes),
     .def = "8MiB",
     .min = 64 * 1024,
     .max = 1024LL * 1024 * 1024,
     .help = "produced but unacknowledged message bytes; reading pauses at this limit"},
    {.name = "max_inflight_records",
     .type = CFG_INT,
     .offset = A(max_inflight_records),
     .def = "100000",
     .min = 16,
     .max = 1000000,
     .help = "produced but unacknowledged records; reading pauses at this limit"},
    {.name = "rescan_interval_ms",
     .type = CFG_INT,
     .offset = A(rescan_interval_ms),
     .def = "1000",
     .min = 10,
     .max = 600000,
     .help = "glob rescan and stat of open files (fallback to inotify)"},
    {.name = "rotate_wait_ms",
     .type = CFG_INT,
     .offset = A(rotate_wait_ms),
     .def = "5000",
     .min = 0,
     .max = 3600000,
     .help = "a rotated-away or deleted file is closed after this long at its end "
             "without growing (and once all its records are acknowledged)"},
    {.name = "read_buffer_bytes",
     .type = CFG_INT,
     .offset = A(read_buffer_bytes),
     .def = "256KiB",
     .min = 4096,
     .max = 64 * 1024 * 1024,
     .help = "size of the one read buffer shared by all files"},
    {.name = "max_past_s",
     .type = CFG_INT,
     .offset = A(max_past_s),
     .def = "31622400",
     .min = 0,
     .max = 100LL * 366 * 86400,
     .help = "a payload time older than now minus this (366 days) is not used as time"},
    {.name = "max_future_s",
     .type = CFG_INT,
     .offset = A(max_future_s),
     .def = "3600",
     .min = 0,
     .max = 366LL * 86400,
     .help = "a payload time later than now plus this (1 hour) is not used as time"},
    {.name = "shutdown_timeout_ms",
     .type = CFG_INT,
     .offset = A(shutdown_timeout_ms),
     .def = "10000",
     .min = 0,
     .max = 600000,
     .help = "on SIGTERM/SIGINT, after the drain (drain_timeout_s), wait this long for "
             "outstanding deliveries"},
    {.name = "drain_timeout_s",
     .type = CFG_INT,
     .offset = A(drain_timeout_s),
     .def = "15",
     .min = 0,
     .max = 3600,
     .help = "on SIGTERM/SIGINT, keep reading every file to its end and shipping it for at "
             "most this long (then shutdown_timeout_ms for the last acknowledgements, then "
             "the checkpoint); with Kubernetes keep drain_timeout_s + shutdown_timeout_ms "
             "below the pod's terminationGracePeriodSeconds (30 s by default)"},
    {.name = "follow_symlinks",
     .type = CFG_BOOL,
     .offset = A(follow_symlinks),
     .def = "false",
     .help = "tail files reached through a symbolic link, only when the link's target lies "
             "beneath the link's own directory; other links, and anything that is not a "
             "regular file or lies on /proc, /sys and the like, are refused with a warning"},
    {.name = "kafka_unready_ms",
     .type = CFG_INT,
     .offset = A(kafka_unready_ms),
     .def = "15000",
     .min = 100,
     .max = 3600000,
     .help = "the AuditrailKafkaUnavailable alert fires when no broker has been up, or a "
             "record has waited for its acknowledgement, for longer than this (/readyz does "
             "not follow Kafka)"},
    {.name = "inputs",
     .type = CFG_LIST,
     .offset = A(inputs),
     .sub = input_keys,
     .elem_size = sizeof(struct agent_input_conf),
     .required = true,
     .help = "files to tail: a list of {path, format, multiline, fields}"},
    CFG_END,
};

static const struct cfg_key http_keys[] = HTTP_CONF_KEYS("127.0.0.1:9100");

const struct cfg_key agent_conf_keys[] = {
    {.name = "agent",
     .type = CFG_SECTION,
     .offset = offsetof(struct agent_conf_file, agent),
     .sub = section_keys,
     .required = true,
     .help = "the agent"},
    {.name = "kafka",
     .type = CFG_SECTION,
     .offset = offsetof(struct agent_conf_file, kafka),
     .sub = kafka_conf_keys,
     .required = true,
     .help = "Kafka producer"},
    {.name = "http",
     .type = CFG_SECTION,
     .offset = offsetof(struct agent_conf_file, http),
     .sub = http_keys,
     .help = "health and metrics endpoint"},
    {.name = "log",
     .type = CFG_SECTION,
     .offset = offsetof(struct agent_conf_file, log),
     .sub = log_conf_keys,
     .help = "logging"},
    {.name = "alerts",
     .type = CFG_SECTION,
     .offset = offsetof(struct agent_conf_file, alerts),
     .sub = alerts_conf_keys,
     .help = "Alertmanager-compatible webhook (optional)"},
    CFG_END,
};

/* An empty string from a ${VAR:-} default means "absent". */
static void empty_to_null(char **s)
{
    if (*s && !**s) {
        free(*s);
        *s = NULL;
    }
}

/* A field map error from field_map_from_cfg ("fields.KEY: what"), reported
 * at that key of input i. */
static int fields_fail(struct cfg_check *chk, size_t i, const char *ferr)
{
    const char *colon = strstr(ferr, ": ");
    if (!colon)
        return cfg_check_fail(chk, "", "agent.inputs[%zu].fields: %s", i, ferr);
    char path[160];
    snprintf(path, sizeof(path), "agent.inputs[%zu].%.*s", i, (int)(colon - ferr), ferr);
    return cfg_check_fail(chk, path, "%s", colon + 2);
}

/* What the table cannot say, and the derived values (format kinds, field
 * maps, compiled patterns). Values are never quoted: they may be secrets. */
static int agent_check(struct cfg_check *chk, void *ud)
{
    struct agent_config *c = ud;
    struct agent_section *a = &c->file.agent;
    empty_to_null(&a->source.host);
    empty_to_null(&a->source.namespace_);
    empty_to_null(&a->source.pod);
    empty_to_null(&a->source.container);
    if (log_conf_check(chk, &c->file.log) < 0 || alerter_conf_check(chk, &c->file.alerts) < 0)
        return -1;
    if (!strcmp(a->read_from, "end"))
        c->read_from_end = true;
    else if (strcmp(a->read_from, "beginning") != 0)
        return cfg_check_fail(chk, "agent.read_from", "expected beginning or end");
    c->inputs = xcalloc(a->inputs.n, sizeof(*c->inputs));
    c->n_inputs = a->inputs.n;
    const struct agent_input_conf *ic = a->inputs.items;
    for (size_t i = 0; i < a->inputs.n; i++) {
        struct agent_input *in = &c->inputs[i];
        char path[96];
        in->conf = &ic[i];
        if (format_kind_parse(ic[i].format, &in->kind) < 0) {
            snprintf(path, sizeof(path), "agent.inputs[%zu].format", i);
            return cfg_check_fail(chk, path,
                                  "unknown format (expected json, kv, k8s-audit, auditd, fhir "
                                  "or raw)");
        }
        char ferr[200];
        if (field_map_from_cfg(&ic[i].fields, &in->map, ferr, sizeof(ferr)) < 0)
            return fields_fail(chk, i, ferr);
        if (ic[i].multiline.start_pattern && *ic[i].multiline.start_pattern) {
            int rc = regcomp(&in->start, ic[i].multiline.start_pattern, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char rerr[160];
                regerror(rc, &in->start, rerr, sizeof(rerr));
                snprintf(path, sizeof(path), "agent.inputs[%zu].multiline.start_pattern", i);
                return cfg_check_fail(chk, path, "%s", rerr);
            }
            in->has_start = true;
        }
    }
    return 0;
}

/* HOSTNAME is a bash variable that is not always exported; the defaults above
 * use it as the pod name outside Kubernetes. */
static void ensure_hostname_env(void)
{
    const char *h = getenv("HOSTNAME");
    if (h && *h)
        return;
    char buf[256];
    if (gethostname(buf, sizeof(buf)) == 0) {
        buf[sizeof(buf) - 1] = '\0';
        setenv("HOSTNAME", buf, 0);
    }
}

int agent_config_load(struct agent_config *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    ensure_hostname_env();
    return cfg_load_file_checked(agent_conf_keys, &c->file, path, agent_check, c, err, errlen);
}

int agent_config_load_string(struct agent_config *c, const char *yaml, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    ensure_hostname_env();
    return cfg_load_string_checked(agent_conf_keys, &c->file, yaml, "<string>", agent_check, c, err,
                                   errlen);
}

void agent_config_release(struct agent_config *c)
{
    for (size_t i = 0; i < c->n_inputs; i++)
        if (c->inputs[i].has_start)
            regfree(&c->inputs[i].start);
    free(c->inputs);
    cfg_free(agent_conf_keys, &c->file);
    memset(c, 0, sizeof(*c));
}
