/*
 * tp-apply - apply the inbox's batches to this node's database, each
 * exactly once and in order; or replay named batch files by hand.
 */
#include <stdbool.h>
#include <stdio.h>

#include "apply.h"
#include "cli.h"
#include "log.h"
#include "tp.h"

static const char usage[] =
	"usage: tp-apply [-c FILE] [-v|-q] [--source NAME] [--dry-run] [--force] [FILE...]\n"
	"Apply the inbox's batches of each source in order, each in one transaction\n"
	"with its ledger line; or apply the named batch files.\n"
	"  -c, --config FILE  config file (default $TP_CONFIG, /etc/teleport/tp.ini)\n"
	"  -s, --source NAME  only this source\n"
	"  -n, --dry-run      print the SQL instead of running it\n"
	"  -f, --force        FILE...: apply even if applied already or out of order\n"
	"  -v, --verbose      more log; -q, --quiet: errors only\n"
	"  -h, --help         this text; -V, --version: the version\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "source", required_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	tp_cli cli = { NULL, LOG_WARN };
	tp_config *cfg = NULL;
	apply_opts o = { .out = stdout };
	int opt, rc;

	log_init("tp-apply");
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "s:nf", longopts, NULL)) != -1) {
		if (opt == 's')
			o.source = optarg;
		else if (opt == 'n')
			o.dry_run = true;
		else if (opt == 'f')
			o.force = true;
		else if ((rc = cli_common(&cli, opt, usage)) >= 0)
			return rc;
	}
	o.files = argv + optind;
	o.nfiles = (size_t)(argc - optind);
	if (o.force && o.nfiles == 0) {
		log_error("--force applies only to named batch files");
		fputs(usage, stderr);
		return TP_EUSAGE;
	}
	if ((rc = cli_load_config(&cli, &cfg)) != TP_OK)
		return rc;
	apply_signals_init();
	return cli_done(cfg, apply_run(cfg, &o), !o.dry_run);
}
