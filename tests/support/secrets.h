/* Planted secrets (issue 9 item 13): passwords in every DSN, URL and SASL
 * property a test gives the programs, a marker in record data, and the
 * search of every log line, DLQ header and alert body for them. The values
 * are distinct and appear nowhere else, so any hit is a leak. */
#ifndef AUDITRAIL_TEST_SECRETS_H
#define AUDITRAIL_TEST_SECRETS_H

#include <stdbool.h>

#include "tests/support/webhook.h"

#define SECRET_PG          "PgPl4ntedPassw0rd"
#define SECRET_REDIS       "RedisPl4ntedPassw0rd"
#define SECRET_ALERTS      "AlertPl4ntedPassw0rd"
#define SECRET_ALERT_TOKEN "AlertPl4ntedT0ken"
#define SECRET_SASL        "SaslPl4ntedPassw0rd"
/* In record data: a record's content never belongs in a log, a DLQ header or
 * an alert (the DLQ value is the message itself and holds it by design). */
#define SECRET_MARKER "PHI-Pl4nted-MARKER"

/* conninfo with password=SECRET_PG added (the stack trusts 127.0.0.1, so
 * the connection works). Heap. */
char *secrets_conninfo(const char *conninfo);
/* The stack's Redis URL with a user that has SECRET_REDIS as password
 * (created with ACL SETUSER when missing). Heap. */
char *secrets_redis_url(void);
/* An alerts URL for a receiver on 127.0.0.1:port with basic auth and a
 * token parameter. Heap. */
char *secrets_alerts_url(unsigned port);
/* Lines under kafka.properties (indented 4) with SASL credentials (ignored
 * with PLAINTEXT, as librdkafka warns; their values must still never show). */
const char *secrets_kafka_properties(void);

/* Fail the test when the file (a program's log) contains a planted secret
 * or, with marker, SECRET_MARKER: the first hit's line is in the message. */
void secrets_assert_file_clean(const char *path, bool marker);
/* Fail when a header of any message of the DLQ topic holds a secret or the
 * marker. */
void secrets_assert_dlq_clean(const char *brokers, const char *topic);
/* Fail when an alert body received so far holds a secret or the marker. */
void secrets_assert_webhook_clean(struct webhook *w);

#endif
