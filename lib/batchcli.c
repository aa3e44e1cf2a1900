/*
 * batchcli.c - the command line shared by tp-batch and tp-ddlscan: both
 * plan the same targets' deltas under tp-batch's lock and differ only in
 * whether a delta without a schema change is cut.
 */
#include <stdio.h>

#include "batcher.h"
#include "cli.h"
#include "db.h"
#include "lock.h"
#include "log.h"
#include "tp.h"

int batcher_main(int argc, char **argv, const char *name, const char *usage, bool ddl_only)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "target", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	tp_cli cli = { NULL, LOG_WARN, 0 };
	tp_config *cfg = NULL;
	const char *target = NULL;
	PGconn *conn;
	int opt, rc;

	log_init(name);
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "t:", longopts, NULL)) != -1) {
		if (opt == 't')
			target = optarg;
		else if ((rc = cli_common(&cli, opt, usage)) >= 0)
			return rc;
	}
	if ((rc = cli_no_operands_config(&cli, argc, argv, usage, &cfg)) != TP_OK)
		return rc;
	if (ddl_only && cfg->ddl == TP_DDL_OFF) {
		log_info("%s: ddl = off: nothing to scan", cfg->path);
		config_free(cfg);
		return TP_OK;
	}
	if ((rc = lock_stage(cfg->spool, "tp-batch")) == TP_OK &&
	    (conn = db_connect(cfg->conninfo, &rc)) != NULL) {
		rc = batcher_run(conn, cfg, target, ddl_only);
		db_close(conn);
	}
	return cli_done(cfg, rc, true);
}
