/* Helpers for the agent's integration and e2e suites: run the agent binary,
 * consume a topic back with a separate librdkafka consumer, and verify the
 * hash chain of DESIGN.md §2 independently of the agent's code (OpenSSL
 * SHA-256 and jansson here; common/hashchain is not used). */
#ifndef AUDITRAIL_TESTS_AGENT_HARNESS_H
#define AUDITRAIL_TESTS_AGENT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Write <dir>/agent.yaml: checkpoint in <dir>/ckpt, http on 127.0.0.1:port,
 * `agent_extra` (YAML lines indented by two spaces, or "") in the agent
 * section and `inputs` (a YAML list indented by four spaces). Heap path. */
char *ah_write_config(const char *dir, const char *brokers, const char *topic, int http_port,
                      const char *agent_extra, const char *inputs, const char *kafka_extra);

/* A free TCP port on 127.0.0.1 (bound then released). */
int ah_free_port(void);

/* fork+exec test_bin("auditrail-agent") --config config, stdout+stderr
 * appended to log. ck_abort on failure. */
pid_t ah_agent_start(const char *config, const char *log);
/* Send sig (0: none, just wait), wait up to timeout_ms; returns the exit status (0..255), 128+N
 * when killed by signal N, or -1 on timeout (then SIGKILLed). */
int ah_agent_stop(pid_t pid, int sig, unsigned timeout_ms);

/* GET http://127.0.0.1:port/path; returns the HTTP status or -1. If body is
 * not NULL it receives the (heap) body. */
int ah_http_get(int port, const char *path, char **body);
/* Value of an unlabelled metric in /metrics, or -1 when absent. */
double ah_metric(int port, const char *name);

struct ah_msg {
    char *key;
    char *stream;
    uint64_t seq, offset, truncated;
    char id[37];
    uint8_t hash[32], prev[32];
    uint8_t *line;
    size_t line_len;
    char *path, *format, *time_source;
};

struct ah_msgs {
    struct ah_msg *v;
    size_t n, cap;
};

/* Consume the whole topic (all partitions from the beginning) until `want`
 * messages were received or `idle_ms` passed without a new one after at
 * least `want` ... or timeout_ms in total. Appends to out; returns count. */
size_t ah_consume(const char *brokers, const char *topic, size_t want, unsigned timeout_ms,
                  struct ah_msgs *out);
void ah_msgs_free(struct ah_msgs *m);

/* Verify every message (key == stream, hash = SHA-256(prev||seq BE||line),
 * id = uuid(hash[0..16)), seq 0's prev = SHA-256("auditrail:v1:"||stream));
 * duplicates must be identical (same id, hash, bytes); per stream seq must
 * be 0..N-1 without gaps and each prev the previous hash. Then sorts by
 * (stream, seq) and removes the duplicates. Returns 0 or -1 with a reason.
 * *dups receives the number of duplicates dropped. */
int ah_verify_chains(struct ah_msgs *m, size_t *dups, char *err, size_t errlen);

/* Records of a file's content per DESIGN.md §2 (non-empty lines without
 * '\n'; a last line without '\n' included when `final`). Heap array of
 * heap copies; *n set. */
uint8_t **ah_split_lines(const uint8_t *data, size_t len, bool final, size_t **lens, size_t *n);
void ah_lines_free(uint8_t **lines, size_t *lens, size_t n);

/* Read a whole file (heap, *len). NULL if it cannot be read. */
uint8_t *ah_read_file(const char *path, size_t *len);

#endif
