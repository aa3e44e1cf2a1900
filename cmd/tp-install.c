/*
 * tp-install - create, upgrade or remove this node's teleport objects.
 */
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "db.h"
#include "install.h"
#include "lock.h"
#include "log.h"
#include "tp.h"

static const char usage[] =
	"usage: tp-install [-c FILE] [-v|-q] [--dry-run] [--uninstall]\n"
	"Create or upgrade this node's capture schema, triggers and bookkeeping.\n"
	"  -c, --config FILE  config file (default $TP_CONFIG, /etc/teleport/tp.ini)\n"
	"  -n, --dry-run      print the SQL instead of running it\n"
	"      --uninstall    remove every trigger and the schema, nothing else\n"
	"  -v, --verbose      more log; -q, --quiet: errors only\n"
	"  -h, --help         this text; -V, --version: the version\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "dry-run", no_argument, NULL, 'n' },
		{ "uninstall", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 }
	};
	tp_cli cli = { NULL, LOG_WARN };
	tp_config *cfg = NULL;
	bool dry_run = false, uninstall = false;
	PGconn *conn;
	int opt, rc;

	log_init("tp-install");
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "n", longopts, NULL)) != -1) {
		if (opt == 'n')
			dry_run = true;
		else if (opt == 'U')
			uninstall = true;
		else if ((rc = cli_common(&cli, opt, usage)) >= 0)
			return rc;
	}
	if ((rc = cli_no_operands_config(&cli, argc, argv, usage, &cfg)) != TP_OK)
		return rc;
	if ((rc = install_check_schema(cfg)) != TP_OK ||
	    (!dry_run && (rc = lock_stage(cfg->spool, "tp-install")) != TP_OK)) {
		config_free(cfg);
		return rc;
	}
	conn = db_connect(cfg->conninfo, &rc);
	if (conn) {
		rc = uninstall ? install_remove(conn, cfg, dry_run)
			       : install_run(conn, cfg, dry_run);
		db_close(conn);
	}
	return cli_done(cfg, rc, !dry_run);
}
