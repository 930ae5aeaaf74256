/* The programs' shared skeleton (common/prog.h): getopt_long over the common
 * options and the program's own, config loading, signals. */
#include "common/prog.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"

/* The Makefile defines it from the VERSION file; other builds (fuzzing)
 * have no use for it. */
#ifndef AUDITRAIL_VERSION
#define AUDITRAIL_VERSION "unknown"
#endif

enum { OPT_CHECK = 256, OPT_CONFIG_REF, OPT_METRICS_REF, OPT_VERSION, OPT_OWN };

#define PROG_MAX_OPTIONS 8

static volatile sig_atomic_t stop_flag;

const char *prog_version(void)
{
    return AUDITRAIL_VERSION;
}

void prog_usage(const struct prog *p, FILE *f)
{
    fprintf(f, "usage: %s\n", p->usage);
}

int prog_usage_error(const struct prog *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", p->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    prog_usage(p, stderr);
    return PROG_EXIT_USAGE;
}

/* The long options: the common ones, then the program's (val OPT_OWN + i);
 * the short option string: c: h and the program's short names. */
static void build_options(const struct prog *p, struct option *opts, char *shorts)
{
    static const struct option common[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"config-reference", no_argument, NULL, OPT_CONFIG_REF},
        {"metrics-reference", no_argument, NULL, OPT_METRICS_REF},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
    };
    size_t n = sizeof(common) / sizeof(common[0]);
    memcpy(opts, common, sizeof(common));
    strcpy(shorts, "c:h");
    for (size_t i = 0; p->options && p->options[i].name; i++) {
        if (i >= PROG_MAX_OPTIONS)
            abort(); /* a program bug: raise PROG_MAX_OPTIONS */
        opts[n++] = (struct option){p->options[i].name, required_argument, NULL, OPT_OWN + (int)i};
        if (p->options[i].short_name) {
            size_t l = strlen(shorts);
            shorts[l] = p->options[i].short_name;
            shorts[l + 1] = ':';
            shorts[l + 2] = '\0';
        }
    }
    opts[n] = (struct option){NULL, 0, NULL, 0};
}

/* The program option a short name stands for (its OPT_OWN value), or -1. */
static int own_short(const struct prog *p, int ch)
{
    for (size_t i = 0; p->options && p->options[i].name; i++)
        if (p->options[i].short_name == ch)
            return OPT_OWN + (int)i;
    return -1;
}

/* The index of the first argument naming one of p's own-option
 * subcommands (not an option's value), or argc. */
static int own_command_at(const struct prog *p, int argc, char **argv, const struct option *opts)
{
    for (int i = 1; p->own_option_commands && i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return argc;
        const char *prev = argv[i - 1];
        bool is_value = false; /* argv[i] is the value of "--opt" or "-c" before it */
        if (prev[0] == '-' && prev[1] == '-' && !strchr(prev, '=')) {
            for (const struct option *o = opts; o->name; o++)
                is_value |= o->has_arg == required_argument && strcmp(prev + 2, o->name) == 0;
        } else if (prev[0] == '-' && prev[1] && prev[2] == '\0' && prev[1] != '-') {
            is_value = prev[1] == 'c' || own_short(p, prev[1]) >= 0;
        }
        if (is_value || argv[i][0] == '-')
            continue;
        for (const char *const *c = p->own_option_commands; *c; c++)
            if (strcmp(argv[i], *c) == 0)
                return i;
    }
    return argc;
}

/* The usage error for what getopt refused, naming the option but never
 * quoting a value: `auditrail --tokn=SECRET` must not print the secret.
 * last is the argument getopt took last (a long option's, when optopt is 0). */
static int bad_option(const struct prog *p, const struct option *opts, const char *last)
{
    int val = optopt && own_short(p, optopt) >= 0 ? own_short(p, optopt) : optopt;
    for (const struct option *o = opts; val && o->name; o++)
        if (o->val == val)
            return prog_usage_error(p, "--%s needs a value", o->name);
    if (optopt > 0x20 && optopt < 0x7f)
        return prog_usage_error(p, "unknown option -%c", optopt);
    size_t n = last && last[0] == '-' && last[1] == '-' ? strcspn(last, "=") : 0;
    if (n > 2 && n <= 40 && strspn(last, "-abcdefghijklmnopqrstuvwxyz0123456789") == n)
        return prog_usage_error(p, "unknown option %.*s", (int)n, last);
    return prog_usage_error(p, "unknown option");
}

int prog_parse(const struct prog *p, int argc, char **argv, struct prog_args *a)
{
    struct option opts[8 + PROG_MAX_OPTIONS];
    char shorts[8 + 3 * PROG_MAX_OPTIONS];
    build_options(p, opts, shorts);
    int own_at = own_command_at(p, argc, argv, opts);
    int full_argc = argc;
    argc = own_at;
    memset(a, 0, sizeof(*a));
    bool config_ref = false, metrics_ref = false;
    optind = 1;
    opterr = 0; /* bad_option says what is wrong, without the values getopt would echo */
    int ch;
    while ((ch = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        if (own_short(p, ch) >= 0)
            ch = own_short(p, ch);
        if (ch >= OPT_OWN) {
            *p->options[ch - OPT_OWN].value = optarg;
            continue;
        }
        switch (ch) {
        case 'c':
            a->config = optarg;
            break;
        case OPT_CHECK:
            a->check_config = true;
            break;
        case OPT_CONFIG_REF:
            config_ref = true;
            break;
        case OPT_METRICS_REF:
            metrics_ref = true;
            break;
        case OPT_VERSION:
            printf("%s %s\n", p->name, prog_version());
            return 0;
        case 'h':
            prog_usage(p, stdout);
            return 0;
        default:
            return bad_option(p, opts, argv[optind - 1]);
        }
    }
    if ((config_ref || a->check_config) && !p->config_keys)
        return prog_usage_error(p, "has no configuration file of its own");
    if (metrics_ref && !p->register_metrics)
        return prog_usage_error(p, "has no metrics");
    if (config_ref) {
        cfg_print_reference(p->config_keys, stdout);
        return 0;
    }
    if (metrics_ref) {
        struct metrics *m = metrics_new();
        p->register_metrics(m);
        char *text = metrics_render(m);
        fputs(text, stdout);
        free(text);
        metrics_free(m);
        return 0;
    }
    if (own_at < full_argc) { /* getopt permuted argv[0, own_at) only */
        a->argc = full_argc - optind;
        a->argv = argv + optind;
        return -1;
    }
    a->argc = argc - optind;
    a->argv = argv + optind;
    return -1;
}

int prog_load_config(const struct prog *p, const struct prog_args *a, void *cfg)
{
    char err[1024];
    if (!a->config)
        return prog_usage_error(p, "--config FILE is required");
    if (p->load(cfg, a->config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", p->name, err);
        return PROG_EXIT_USAGE;
    }
    if (a->check_config) {
        printf("%s: configuration ok\n", a->config);
        return 0;
    }
    return -1;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

volatile sig_atomic_t *prog_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: poll(2) and sleeps return EINTR at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return &stop_flag;
}
