/*
 * tp-status - where each target and source stands, what the commands
 * last did, and whether that is healthy (exit 0) or not (exit 1). The work
 * is in lib/status.c and lib/status_out.c.
 */
#include <stdio.h>

#include "cli.h"
#include "log.h"
#include "status.h"
#include "tp.h"

static const char usage[] =
	"usage: tp-status [-c FILE] [-v | -q] [--syslog] [--json] [--prometheus FILE]\n"
	"Show lag, backlog, schema waits and the last error per target and source.\n"
	"Exit 0 when healthy, 1 when a lag or a wait for a schema change exceeds\n"
	"max_lag or a command's last run failed, 69 when the database is unreachable.\n"
	"\n"
	"  -c, --config FILE      config file (default $TP_CONFIG, else /etc/teleport/tp.ini)\n"
	"  -j, --json             print JSON instead of the table\n"
	"  -p, --prometheus FILE  write node_exporter textfile metrics to FILE (atomically);\n"
	"                         the table is then not printed\n"
	"      --syslog           also log to syslog\n"
	"  -v, --verbose          more log (-vv: debug)\n"
	"  -q, --quiet            errors only\n"
	"  -h, --help             this help\n"
	"  -V, --version          print the version\n";

static int run(const tp_config *cfg, int json, const char *prom)
{
	status st = { 0 };
	int rc = status_collect(cfg, &st);

	if (prom)
		rc = tp_exit_worse(rc, status_write_prometheus(&st, prom));
	if (json)
		status_print_json(&st, stdout);
	else if (!prom)
		status_print_table(&st, stdout);
	for (size_t i = 0; i < st.nproblems; i++)
		log_info("unhealthy: %s", st.problems[i]);
	if (rc == TP_OK && st.nproblems)
		rc = TP_EFAIL;
	status_free(&st);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	tp_cli cli = { NULL, LOG_WARN, 0 };
	tp_config *cfg = NULL;
	const char *prom = NULL;
	int opt, rc, json = 0;

	log_init("tp-status");
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "jp:", longopts, NULL)) != -1) {
		if (opt == 'j')
			json = 1;
		else if (opt == 'p')
			prom = optarg;
		else if ((rc = cli_common(&cli, opt, usage)) >= 0)
			return rc;
	}
	if ((rc = cli_no_operands_config(&cli, argc, argv, usage, &cfg)) != TP_OK)
		return rc;
	return cli_done(cfg, run(cfg, json, prom), true);
}
