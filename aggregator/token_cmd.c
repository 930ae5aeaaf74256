/* The token subcommands (aggregator/token_cmd.h). Secrets are printed once
 * by create and never stored; list shows 8 hex characters of each hash. */
#include "aggregator/token_cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/migrate.h"
#include "aggregator/pg_conn.h"
#include "aggregator/query_sql.h"
#include "aggregator/tokens.h"
#include "common/hashchain.h"

#define TOKEN_USAGE                                                                                \
    "usage: auditrail-aggregator --config FILE token create [--tenant T] --role "                  \
    "reader|auditor|admin [--name N] [--expires-days D]\n"                                         \
    "       auditrail-aggregator --config FILE token revoke NAME\n"                                \
    "       auditrail-aggregator --config FILE token list\n"

static int usage(const char *msg)
{
    fprintf(stderr, "auditrail-aggregator: token: %s\n%s", msg, TOKEN_USAGE);
    return 2;
}

static const char *const quiet_session[] = {"SET client_min_messages = warning", NULL};
static const struct pg_conn_opts token_opts = {
    .application_name = "auditrail-token",
    .session = quiet_session,
};

/* Migrated and connected; NULL with a message on stderr. */
static struct pg_connection *connect_primary(const struct aggr_config *cfg)
{
    char err[1024];
    struct migrate_report rep;
    if (migrate_run(cfg->postgres.primary, &rep, err, sizeof(err)) != 0) {
        fprintf(stderr, "auditrail-aggregator: token: %s\n", err);
        return NULL;
    }
    struct pg_connection *c = pg_conn_new(cfg->postgres.primary, &token_opts);
    if (pg_conn_open(c, NULL, err, sizeof(err)) != PG_OK) {
        fprintf(stderr, "auditrail-aggregator: token: %s\n", err);
        pg_conn_free(c);
        return NULL;
    }
    return c;
}

static int create(const struct aggr_config *cfg, int argc, char **argv)
{
    const char *tenant = NULL, *role_s = NULL, *name = NULL, *days_s = NULL;
    static const struct option opts[] = {{"tenant", required_argument, NULL, 't'},
                                         {"role", required_argument, NULL, 'r'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"expires-days", required_argument, NULL, 'e'},
                                         {NULL, 0, NULL, 0}};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (ch) {
        case 't':
            tenant = optarg;
            break;
        case 'r':
            role_s = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'e':
            days_s = optarg;
            break;
        default:
            return usage("unknown option or missing value");
        }
    }
    if (optind != argc)
        return usage("unexpected argument");
    enum token_role role;
    if (!role_s || token_role_parse(role_s, &role) != 0)
        return usage("--role must be reader, auditor or admin");
    if (tenant && strcmp(tenant, "*") == 0)
        tenant = NULL;
    if (role == ROLE_ADMIN && tenant)
        return usage("an admin token covers every tenant: --tenant '*' or no --tenant");
    if (role != ROLE_ADMIN && (!tenant || !*tenant))
        return usage("a reader or auditor token needs --tenant");
    if ((tenant && strlen(tenant) >= TOKEN_TENANT_MAX) || (name && strlen(name) >= TOKEN_NAME_MAX))
        return usage("--tenant or --name too long");
    char days[16] = "";
    if (days_s) {
        char *end;
        long d = strtol(days_s, &end, 10);
        if (!*days_s || *end || d < 1 || d > 36500)
            return usage("--expires-days must be a number of days from 1 to 36500");
        snprintf(days, sizeof(days), "%ld", d);
    }
    char secret[TOKEN_SECRET_LEN + 1], hash[TOKEN_HASH_HEX], defname[64];
    token_generate(secret);
    token_hash_hex(secret, hash);
    if (!name || !*name) {
        snprintf(defname, sizeof(defname), "%s-%.8s", token_role_name(role), hash);
        name = defname;
    }
    struct pg_connection *c = connect_primary(cfg);
    if (!c)
        return 1;
    const char *params[] = {hash, tenant, token_role_name(role), name, days_s ? days : NULL};
    char err[1024];
    int rc = 0;
    if (pg_conn_exec(c, SQL_T_CREATE, 5, params, NULL, err, sizeof(err)) != PG_OK) {
        if (strcmp(pg_conn_sqlstate(c), "23505") == 0)
            fprintf(stderr, "auditrail-aggregator: token: a token named \"%s\" exists\n", name);
        else
            fprintf(stderr, "auditrail-aggregator: token: %s\n", err);
        rc = 1;
    } else {
        printf("created token \"%s\": role %s, tenant %s%s%s%s\n", name, token_role_name(role),
               tenant ? tenant : "* (every tenant)", days_s ? ", expires in " : "",
               days_s ? days : "", days_s ? " days" : "");
        printf("the secret is shown once; keep it in a secret store:\n%s\n", secret);
    }
    pg_conn_free(c);
    return rc;
}

static int revoke(const struct aggr_config *cfg, int argc, char **argv)
{
    if (argc != 2 || !*argv[1])
        return usage("revoke takes the token's NAME");
    struct pg_connection *c = connect_primary(cfg);
    if (!c)
        return 1;
    const char *params[] = {argv[1]};
    char err[1024];
    PGresult *res = NULL;
    int rc = 1;
    if (pg_conn_exec(c, SQL_T_REVOKE, 1, params, &res, err, sizeof(err)) != PG_OK) {
        fprintf(stderr, "auditrail-aggregator: token: %s\n", err);
    } else if (strcmp(PQcmdTuples(res), "1") != 0) {
        fprintf(stderr, "auditrail-aggregator: token: no active token named \"%s\"\n", argv[1]);
    } else {
        printf("revoked token \"%s\" (query processes stop accepting it within "
               "query.token_cache_s)\n",
               argv[1]);
        rc = 0;
    }
    PQclear(res);
    pg_conn_free(c);
    return rc;
}

static int list(const struct aggr_config *cfg, int argc)
{
    if (argc != 1)
        return usage("list takes no argument");
    struct pg_connection *c = connect_primary(cfg);
    if (!c)
        return 1;
    char err[1024];
    PGresult *res = NULL;
    int rc = 1;
    if (pg_conn_exec(c, SQL_T_LIST, 0, NULL, &res, err, sizeof(err)) != PG_OK) {
        fprintf(stderr, "auditrail-aggregator: token: %s\n", err);
    } else {
        printf("%-24s %-16s %-8s %-20s %-20s %-8s %s\n", "NAME", "TENANT", "ROLE", "CREATED",
               "EXPIRES", "STATE", "SHA256");
        for (int i = 0; i < PQntuples(res); i++)
            printf("%-24s %-16s %-8s %-20s %-20s %-8s %s…\n", PQgetvalue(res, i, 0),
                   PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                   PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), PQgetvalue(res, i, 6));
        rc = 0;
    }
    PQclear(res);
    pg_conn_free(c);
    return rc;
}

int token_cmd_run(const struct aggr_config *cfg, int argc, char **argv)
{
    if (argc < 2)
        return usage("create, revoke or list?");
    if (strcmp(argv[1], "create") == 0)
        return create(cfg, argc - 1, argv + 1);
    if (strcmp(argv[1], "revoke") == 0)
        return revoke(cfg, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return list(cfg, argc - 1);
    return usage("unknown token command");
}
