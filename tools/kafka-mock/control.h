/* kafka-mock's control channel: a line protocol on a unix socket that lets
 * tests break and heal the mock cluster (brokers down/up, injected errors). */
#ifndef AUDITRAIL_KAFKA_MOCK_CONTROL_H
#define AUDITRAIL_KAFKA_MOCK_CONTROL_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* What a command acts on. Not owned by the control module. */
struct control_target {
    rd_kafka_mock_cluster_t *cluster;
    int broker_cnt;         /* broker ids are 1..broker_cnt */
    const char *bootstraps; /* reported by the "bootstrap" command */
};

/* Execute one command line (without its newline) and write a one-line reply
 * (no newline) into reply: "ok[ ...]" or "error: ...". Returns 0 when the
 * reply is ok, -1 otherwise. Commands:
 *   ping | bootstrap | topic create NAME PARTITIONS [REPLICATION]
 *   broker down|up ID | brokers down|up | broker rtt ID MS
 *   errors push API_KEY ERR_CODE [COUNT] | errors clear API_KEY
 *   leader NAME PARTITION BROKER_ID | topic error NAME ERR_CODE
 *   coordinator group NAME BROKER_ID */
int control_exec(const struct control_target *t, const char *line, char *reply, size_t len);

struct control_server;

/* Listen on a unix socket at path (a stale socket file is replaced). Returns
 * NULL and logs on failure. */
struct control_server *control_server_new(const char *path, const struct control_target *t);

/* Serve clients (each line answered in order) until stop_fd becomes
 * readable. Returns 0 then, -1 on a fatal poll error. */
int control_server_run(struct control_server *srv, int stop_fd);

/* Client side: connect to the socket at path, send one command line, read
 * one reply line into reply (newline stripped). Returns 0 when the reply
 * starts with "ok", 1 for an "error: ..." reply, -1 (reply holds the
 * reason) when the socket could not be used within timeout_ms. */
int control_send(const char *path, const char *command, char *reply, size_t len, int timeout_ms);

/* Close every connection, remove the socket file, free. NULL-safe. */
void control_server_free(struct control_server *srv);

#endif
