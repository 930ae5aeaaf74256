/* `auditrail-aggregator --config FILE token create|revoke|list`: API tokens
 * managed on the primary (migrating first, so a new database works). */
#ifndef AUDITRAIL_AGGREGATOR_TOKEN_CMD_H
#define AUDITRAIL_AGGREGATOR_TOKEN_CMD_H

#include "aggregator/aggr_config.h"

/* argv[0] is "token". Returns the exit status: 0 done, 1 failed (a message
 * on stderr), 2 bad usage. create prints the secret alone on the last line
 * of standard output, once. */
int token_cmd_run(const struct aggr_config *cfg, int argc, char **argv);

#endif
