/* common/prog: the option parsing the three programs share, in process
 * (test_cli runs the programs themselves). */
#include <string.h>

#include "common/prog.h"
#include "tests/support/testutil.h"

static const char *role;
static const struct prog_option opts[] = {{"role", 'r', &role}, {NULL, 0, NULL}};
static const struct cfg_key keys[] = {CFG_END};
static const struct prog with_config = {
    .name = "t-prog", .usage = "t-prog ...", .options = opts, .config_keys = keys};
static const struct prog without_config = {.name = "t-cli", .usage = "t-cli ..."};
static const char *const own[] = {"token", NULL};
static const struct prog with_own = {.name = "t-prog",
                                     .usage = "t-prog ...",
                                     .options = opts,
                                     .config_keys = keys,
                                     .own_option_commands = own};

/* Parse a NULL-terminated argument list (argv[0] included). */
static int parse(const struct prog *p, struct prog_args *a, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    role = NULL;
    return prog_parse(p, argc, argv, a);
}

START_TEST(options_and_operands_in_any_order)
{
    struct prog_args a;
    char *v1[] = {"t", "replay", "--config", "c.yaml", "3", "--role", "consumer", "7", NULL};
    ck_assert_int_eq(parse(&with_config, &a, v1), -1);
    ck_assert_str_eq(a.config, "c.yaml");
    ck_assert_str_eq(role, "consumer");
    ck_assert(!a.check_config);
    ck_assert_int_eq(a.argc, 3);
    ck_assert_str_eq(a.argv[0], "replay");
    ck_assert_str_eq(a.argv[1], "3");
    ck_assert_str_eq(a.argv[2], "7");

    char *v2[] = {"t", "-c", "x.yaml", "-r", "query", "--check-config", NULL};
    ck_assert_int_eq(parse(&with_config, &a, v2), -1);
    ck_assert_str_eq(a.config, "x.yaml");
    ck_assert_str_eq(role, "query");
    ck_assert(a.check_config);
    ck_assert_int_eq(a.argc, 0);

    /* "--" ends the options: what follows is an operand even with a dash. */
    char *v3[] = {"t", "--", "--role", NULL};
    ck_assert_int_eq(parse(&with_config, &a, v3), -1);
    ck_assert_ptr_null(role);
    ck_assert_int_eq(a.argc, 1);
    ck_assert_str_eq(a.argv[0], "--role");
}
END_TEST

/* A subcommand with options of its own: parsing stops at it, its options
 * (even one named like the program's) are its operands. */
START_TEST(own_option_commands)
{
    struct prog_args a;
    char *v1[] = {"t",      "--config", "c.yaml", "-r",       "query", "token",
                  "create", "--role",   "reader", "--tenant", "A",     NULL};
    ck_assert_int_eq(parse(&with_own, &a, v1), -1);
    ck_assert_str_eq(a.config, "c.yaml");
    ck_assert_str_eq(role, "query");
    ck_assert_int_eq(a.argc, 6);
    ck_assert_str_eq(a.argv[0], "token");
    ck_assert_str_eq(a.argv[2], "--role");
    ck_assert_str_eq(a.argv[3], "reader");
    /* "token" as an option's value is not the subcommand */
    char *v2[] = {"t", "--config", "token", "migrate", NULL};
    ck_assert_int_eq(parse(&with_own, &a, v2), -1);
    ck_assert_str_eq(a.config, "token");
    ck_assert_int_eq(a.argc, 1);
    ck_assert_str_eq(a.argv[0], "migrate");
    /* other programs parse as before */
    char *v3[] = {"t", "token", "--role", "reader", NULL};
    ck_assert_int_eq(parse(&with_config, &a, v3), -1);
    ck_assert_str_eq(role, "reader");
    ck_assert_int_eq(a.argc, 1);
}
END_TEST

START_TEST(usage_errors)
{
    struct prog_args a;
    char *v1[] = {"t", "--bogus", NULL};
    ck_assert_int_eq(parse(&with_config, &a, v1), PROG_EXIT_USAGE);
    char *v2[] = {"t", "--role", NULL}; /* missing argument */
    ck_assert_int_eq(parse(&with_config, &a, v2), PROG_EXIT_USAGE);
    /* A program without a configuration of its own. */
    char *v3[] = {"t", "--check-config", NULL};
    ck_assert_int_eq(parse(&without_config, &a, v3), PROG_EXIT_USAGE);
    char *v4[] = {"t", "--config-reference", NULL};
    ck_assert_int_eq(parse(&without_config, &a, v4), PROG_EXIT_USAGE);
    char *v5[] = {"t", "--metrics-reference", NULL};
    ck_assert_int_eq(parse(&without_config, &a, v5), PROG_EXIT_USAGE);
    /* ...still takes --config, to pass it on. */
    char *v6[] = {"t", "migrate", "--config", "a.yaml", NULL};
    ck_assert_int_eq(parse(&without_config, &a, v6), -1);
    ck_assert_str_eq(a.config, "a.yaml");
    /* --role is the other program's option. */
    char *v7[] = {"t", "--role", "x", NULL};
    ck_assert_int_eq(parse(&without_config, &a, v7), PROG_EXIT_USAGE);
}
END_TEST

START_TEST(load_requires_config)
{
    struct prog_args a = {0};
    ck_assert_int_eq(prog_load_config(&with_config, &a, NULL), PROG_EXIT_USAGE);
    ck_assert_str_ne(prog_version(), "");
}
END_TEST

START_TEST(signals_set_the_flag)
{
    volatile sig_atomic_t *stop = prog_signals();
    ck_assert_int_eq(*stop, 0);
    raise(SIGPIPE); /* ignored: the test goes on */
    raise(SIGTERM);
    ck_assert_int_eq(*stop, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prog");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, options_and_operands_in_any_order);
    tcase_add_test(tc, own_option_commands);
    tcase_add_test(tc, usage_errors);
    tcase_add_test(tc, load_requires_config);
    tcase_add_test(tc, signals_set_the_flag);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
