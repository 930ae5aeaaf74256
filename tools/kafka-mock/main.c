/* kafka-mock: librdkafka's in-process mock cluster run as a standalone
 * process, so tests and the local stack get a Kafka protocol endpoint without
 * a JVM. Faults are injected through the control socket (control.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "tools/kafka-mock/control.h"

#define MOCK_MAX_TOPICS 64

struct mock_opts {
    int brokers;
    int ntopics;
    char *topics[MOCK_MAX_TOPICS];
    int topic_parts[MOCK_MAX_TOPICS];
    const char *bootstrap_file;
    const char *control_path;
    const char *log_level;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: kafka-mock ctl SOCKET COMMAND...   (send one control command)\n"
                 "       kafka-mock [--brokers N] [--topic NAME:PARTITIONS]... "
                 "[--bootstrap-file PATH] [--control SOCKET] [--log-level LEVEL]\n"
                 "Runs librdkafka's mock cluster (brokers 1..N on 127.0.0.1, ephemeral ports),\n"
                 "prints the bootstrap list on stdout and serves the control socket until\n"
                 "SIGTERM/SIGINT. Auto-created topics get librdkafka's default partition\n"
                 "count; create topics explicitly (--topic or 'topic create') to choose it.\n");
}

static int parse_opts(int argc, char **argv, struct mock_opts *o)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"bootstrap-file", required_argument, NULL, 'f'},
        {"control", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "b:t:f:c:l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->brokers = (int)strtol(optarg, &end, 10);
            if (*end || o->brokers < 1 || o->brokers > 64) {
                fprintf(stderr, "kafka-mock: --brokers must be 1..64\n");
                return -1;
            }
            break;
        case 't': {
            const char *colon = strrchr(optarg, ':');
            long parts = colon ? strtol(colon + 1, &end, 10) : 0;
            if (!colon || colon == optarg || *end || parts < 1 || parts > 100000) {
                fprintf(stderr, "kafka-mock: --topic wants NAME:PARTITIONS, got '%s'\n", optarg);
                return -1;
            }
            if (o->ntopics == MOCK_MAX_TOPICS) {
                fprintf(stderr, "kafka-mock: at most %d --topic options\n", MOCK_MAX_TOPICS);
                return -1;
            }
            o->topics[o->ntopics] = xstrndup(optarg, (size_t)(colon - optarg));
            o->topic_parts[o->ntopics++] = (int)parts;
            break;
        }
        case 'f':
            o->bootstrap_file = optarg;
            break;
        case 'c':
            o->control_path = optarg;
            break;
        case 'l':
            o->log_level = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Write content to path atomically (temp file + rename) so a reader polling
 * for the file never sees it half written. */
static int write_atomic(const char *path, const char *content)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("bootstrap file %s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(content);
    ssize_t w = write(fd, content, len);
    if (w != (ssize_t)len || fsync(fd) < 0) {
        log_error("bootstrap file %s: write failed: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        log_error("bootstrap file %s: rename: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    return rc;
}

/* Block until one of the signals in sigfd arrives (no control socket). */
static void wait_signal(int sigfd)
{
    struct signalfd_siginfo si;
    while (read(sigfd, &si, sizeof(si)) < 0 && errno == EINTR)
        ;
}

/* "kafka-mock ctl SOCKET WORDS...": a client for shell scripts, which cannot
 * talk to a unix socket without extra tools. Exit 0 on "ok", 1 otherwise. */
static int ctl_main(int argc, char **argv)
{
    if (argc < 4) {
        usage(stderr);
        return 2;
    }
    char line[1024] = "";
    size_t used = 0;
    for (int i = 3; i < argc && used < sizeof(line); i++)
        used +=
            (size_t)snprintf(line + used, sizeof(line) - used, "%s%s", i > 3 ? " " : "", argv[i]);
    char reply[1024];
    int rc = control_send(argv[2], line, reply, sizeof(reply), 10000);
    printf("%s\n", reply);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct mock_opts o = {.brokers = 3};
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    struct control_server *srv = NULL;
    int sigfd = -1;
    int rc = 1;
    bool wrote_bootstrap = false;
    char errstr[512];

    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return ctl_main(argc, argv);
    if (parse_opts(argc, argv, &o) < 0)
        return 2;
    enum log_level lvl = LOG_INFO;
    if (o.log_level && log_level_parse(o.log_level, &lvl) < 0) {
        fprintf(stderr, "kafka-mock: bad --log-level '%s'\n", o.log_level);
        return 2;
    }
    log_init("kafka-mock", lvl);

    /* Block the stop signals before librdkafka starts its threads (they
     * inherit the mask), so only the signalfd below ever sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0 || (sigfd = signalfd(-1, &stop, SFD_CLOEXEC)) < 0) {
        log_error("signalfd: %s", strerror(errno));
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The handle only hosts the cluster; keep its own chatter down. */
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        log_error("conf: %s", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        log_error("rd_kafka_new: %s", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    mc = rd_kafka_mock_cluster_new(rk, o.brokers);
    if (!mc) {
        log_error("mock cluster with %d brokers could not be created", o.brokers);
        goto out;
    }
    int repl = o.brokers < 3 ? o.brokers : 3;
    for (int i = 0; i < o.ntopics; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, o.topics[i], o.topic_parts[i], repl);
        if (err) {
            log_error("topic %s: %s", o.topics[i], rd_kafka_err2str(err));
            goto out;
        }
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    struct control_target target = {
        .cluster = mc, .broker_cnt = o.brokers, .bootstraps = bootstraps};
    if (o.control_path && !(srv = control_server_new(o.control_path, &target)))
        goto out;

    /* Everything is listening now: announce it. The bootstrap file comes
     * last because the stack script treats it as "ready". */
    printf("%s\n", bootstraps);
    fflush(stdout);
    if (o.bootstrap_file) {
        if (write_atomic(o.bootstrap_file, bootstraps) < 0)
            goto out;
        wrote_bootstrap = true;
    }
    log_info("mock cluster up: brokers=%d bootstrap=%s control=%s", o.brokers, bootstraps,
             o.control_path ? o.control_path : "-");

    if (srv) {
        if (control_server_run(srv, sigfd) < 0)
            goto out;
    } else {
        wait_signal(sigfd);
    }
    log_info("stopping");
    rc = 0;
out:
    /* Remove the bootstrap file first so nobody connects to a dying cluster. */
    if (wrote_bootstrap)
        unlink(o.bootstrap_file);
    control_server_free(srv);
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk)
        rd_kafka_destroy(rk);
    for (int i = 0; i < o.ntopics; i++)
        free(o.topics[i]);
    if (sigfd >= 0)
        close(sigfd);
    return rc;
}
