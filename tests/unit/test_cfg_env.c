/* common/cfg_env: override variable names, empty = unset, and ${VAR}
 * expansion on its own (the loader's tests cover it in context). */
#include <stdlib.h>
#include <string.h>

#include "common/cfg_env.h"
#include "tests/support/testutil.h"

static void expands(const char *in, const char *want)
{
    char err[256] = "";
    char *out = cfg_env_expand(in, err, sizeof(err));
    ck_assert_msg(out != NULL, "%s: %s", in, err);
    ck_assert_str_eq(out, want);
    free(out);
}

static void refuses(const char *in, const char *want)
{
    char err[256] = "";
    ck_assert_ptr_null(cfg_env_expand(in, err, sizeof(err)));
    ck_assert_str_eq(err, want);
}

START_TEST(names)
{
    char *n = cfg_env_name("kafka.topic");
    ck_assert_str_eq(n, "AUDITRAIL_KAFKA_TOPIC");
    free(n);
    n = cfg_env_name("batch.max-lag.x_y");
    ck_assert_str_eq(n, "AUDITRAIL_BATCH_MAX_LAG_X_Y");
    free(n);
    ck_assert(cfg_env_overridable(CFG_STR));
    ck_assert(cfg_env_overridable(CFG_INT));
    ck_assert(cfg_env_overridable(CFG_BOOL));
    ck_assert(cfg_env_overridable(CFG_DOUBLE));
    ck_assert(cfg_env_overridable(CFG_STRLIST));
    ck_assert(!cfg_env_overridable(CFG_MAP));
    ck_assert(!cfg_env_overridable(CFG_SECTION));
    ck_assert(!cfg_env_overridable(CFG_LIST));
}
END_TEST

START_TEST(override_empty_is_unset)
{
    char *var = NULL;
    unsetenv("AUDITRAIL_CFGENV_X");
    ck_assert_ptr_null(cfg_env_override("cfgenv.x", &var));
    ck_assert_str_eq(var, "AUDITRAIL_CFGENV_X");
    free(var);
    setenv("AUDITRAIL_CFGENV_X", "", 1);
    ck_assert_ptr_null(cfg_env_override("cfgenv.x", &var));
    free(var);
    setenv("AUDITRAIL_CFGENV_X", "v", 1);
    ck_assert_str_eq(cfg_env_override("cfgenv.x", &var), "v");
    free(var);
    unsetenv("AUDITRAIL_CFGENV_X");
}
END_TEST

START_TEST(expansion)
{
    setenv("CFGENV_A", "alpha", 1);
    setenv("CFGENV_EMPTY", "", 1);
    unsetenv("CFGENV_UNSET");
    expands("", "");
    expands("plain", "plain");
    expands("${CFGENV_A}/x", "alpha/x");
    expands("$$ $x $", "$ $x $");
    expands("${CFGENV_UNSET:-d}", "d");
    expands("${CFGENV_EMPTY:-d}", "d");
    expands("${CFGENV_EMPTY}", "");
    expands("${CFGENV_UNSET:-${CFGENV_A:-no}-${CFGENV_UNSET:-z}}", "alpha-z");
    /* A value is not expanded again. */
    setenv("CFGENV_REF", "${CFGENV_A}", 1);
    expands("${CFGENV_REF}", "${CFGENV_A}");
    /* The reason never holds a variable's value. */
    setenv("CFGENV_SECRET", "hunter2", 1);
    refuses("${CFGENV_SECRET", "unterminated \"${\" (write \"$$\" for a literal \"$\")");
    refuses("x${CFGENV_UNSET}",
            "environment variable CFGENV_UNSET is not set (use ${CFGENV_UNSET:-default})");
    refuses("${1A}", "bad variable reference \"${1A}\"");
    refuses("${}", "bad variable reference \"${}\"");
    refuses("${CFGENV_UNSET:-${CFGENV_UNSET2}}",
            "environment variable CFGENV_UNSET2 is not set (use ${CFGENV_UNSET2:-default})");
    unsetenv("CFGENV_A");
    unsetenv("CFGENV_EMPTY");
    unsetenv("CFGENV_REF");
    unsetenv("CFGENV_SECRET");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cfg_env");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, names);
    tcase_add_test(tc, override_empty_is_unset);
    tcase_add_test(tc, expansion);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
