/* A test webhook receiver (libmicrohttpd): records every POST body so tests
 * can assert which alerts a program sent. */
#ifndef AUDITRAIL_TEST_WEBHOOK_H
#define AUDITRAIL_TEST_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

struct webhook;

/* Listen on 127.0.0.1 with an ephemeral port; ck_abort on failure. */
struct webhook *webhook_start(void);
unsigned webhook_port(const struct webhook *w);
/* Number of alerts received so far whose labels.alertname equals name
 * (bodies are Alertmanager arrays; each element counts). NULL = all. */
size_t webhook_count(struct webhook *w, const char *alertname);
/* Wait until webhook_count(w, alertname) > 0. */
bool webhook_wait(struct webhook *w, const char *alertname, unsigned timeout_ms);
/* Every body received so far, one per line (heap; caller frees). */
char *webhook_bodies(struct webhook *w);
/* Number of POST requests received. */
size_t webhook_posts(struct webhook *w);
/* Make the receiver answer 500 (true) or 200 (false). */
void webhook_fail(struct webhook *w, int fail);
void webhook_stop(struct webhook *w);

#endif
