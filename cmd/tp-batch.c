/*
 * tp-batch - cut each target's committed events into batch files.
 */
#include <stdio.h>

#include "batcher.h"
#include "cli.h"
#include "db.h"
#include "lock.h"
#include "log.h"
#include "outcome.h"
#include "tp.h"

static const char usage[] =
	"usage: tp-batch [-c FILE] [-v|-q] [--target NAME]\n"
	"Cut the committed, not yet batched events of each target into batch\n"
	"files in the outbox, in commit order.\n"
	"  -c, --config FILE  config file (default $TP_CONFIG, /etc/teleport/tp.ini)\n"
	"  -t, --target NAME  only this target\n"
	"  -v, --verbose      more log; -q, --quiet: errors only\n"
	"  -h, --help         this text; -V, --version: the version\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "target", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	tp_cli cli = { NULL, LOG_WARN };
	tp_config *cfg = NULL;
	const char *target = NULL;
	PGconn *conn;
	int opt, rc;

	log_init("tp-batch");
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "t:", longopts, NULL)) != -1) {
		if (opt == 't')
			target = optarg;
		else if ((rc = cli_common(&cli, opt, usage)) >= 0)
			return rc;
	}
	if (cli_extra_operands(argc, argv, usage))
		return TP_EUSAGE;
	if ((rc = cli_load_config(&cli, &cfg)) != TP_OK)
		return rc;
	if ((rc = lock_stage(cfg->spool, "tp-batch")) == TP_OK &&
	    (conn = db_connect(cfg->conninfo, &rc)) != NULL) {
		rc = batcher_run(conn, cfg, target);
		db_close(conn);
	}
	outcome_record(cfg, rc);
	config_free(cfg);
	return rc;
}
