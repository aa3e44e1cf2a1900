/*
 * tp-vacuum - drop events, batch records and spool files that every
 * consumer has confirmed, keeping `retention` worth. The work is in
 * lib/vacuum.c; this file maps the command line onto it.
 */
#include <stdio.h>

#include "cli.h"
#include "log.h"
#include "tp.h"
#include "vacuum.h"

static const char usage[] =
	"usage: tp-vacuum [-c FILE] [-v | -q] [--syslog] [--rotate-now]\n"
	"Delete what every consumer has confirmed: drained event tables (by\n"
	"rotation), batch records, sent, applied and quarantined files older\n"
	"than retention.\n"
	"\n"
	"  -c, --config FILE   config file (default $TP_CONFIG, else /etc/teleport/tp.ini)\n"
	"      --rotate-now    rotate the event tables if drained, whatever rotate_interval says\n"
	"      --syslog        also log to syslog\n"
	"  -v, --verbose       more log (-vv: debug)\n"
	"  -q, --quiet         errors only\n"
	"  -h, --help          this help\n"
	"  -V, --version       print the version\n";

enum { OPT_ROTATE_NOW = 256 };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "rotate-now", no_argument, NULL, OPT_ROTATE_NOW },
		{ NULL, 0, NULL, 0 }
	};
	tp_cli cli = { NULL, LOG_WARN, 0 };
	vacuum_opts o = { false };
	tp_config *cfg = NULL;
	int opt, rc;

	log_init("tp-vacuum");
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, longopts, NULL)) != -1) {
		if (opt == OPT_ROTATE_NOW)
			o.rotate_now = true;
		else if ((rc = cli_common(&cli, opt, usage)) >= 0)
			return rc;
	}
	if ((rc = cli_no_operands_config(&cli, argc, argv, usage, &cfg)) != TP_OK)
		return rc;
	return cli_done(cfg, vacuum_run(cfg, &o), true);
}
