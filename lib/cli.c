/*
 * cli.c - the options every command shares (see cli.h).
 */
#include <stdio.h>

#include "cli.h"
#include "log.h"
#include "outcome.h"
#include "tp.h"

int cli_common(tp_cli *cli, int opt, const char *usage)
{
	switch (opt) {
	case 'c':
		cli->config_flag = optarg;
		return -1;
	case 'v':
		cli->verbosity++;
		return -1;
	case 'q':
		cli->verbosity = LOG_ERROR;
		return -1;
	case 'h':
		fputs(usage, stdout);
		return TP_OK;
	case CLI_OPT_SYSLOG:
		cli->syslog = 1;
		return -1;
	case 'V':
		printf("%s %s\n", log_progname(), TP_VERSION);
		return TP_OK;
	default:
		/* getopt has already said what was wrong with the option */
		fputs(usage, stderr);
		return TP_EUSAGE;
	}
}

int cli_load_config(const tp_cli *cli, tp_config **cfg)
{
	char err[1024];

	log_set_level(cli->verbosity);
	if (cli->syslog)
		log_syslog();
	*cfg = config_load(config_path(cli->config_flag), err, sizeof err);
	if (!*cfg) {
		log_error("%s", err);
		return TP_ECONFIG;
	}
	if ((*cfg)->log_syslog)
		log_syslog();
	return TP_OK;
}

bool cli_extra_operands(int argc, char **argv, const char *usage)
{
	if (optind >= argc)
		return false;
	log_error("unexpected argument \"%s\"", argv[optind]);
	fputs(usage, stderr);
	return true;
}

int cli_no_operands_config(const tp_cli *cli, int argc, char **argv, const char *usage,
			   tp_config **cfg)
{
	if (cli_extra_operands(argc, argv, usage))
		return TP_EUSAGE;
	return cli_load_config(cli, cfg);
}

int cli_done(tp_config *cfg, int rc, bool record)
{
	if (record)
		outcome_record(cfg, rc);
	config_free(cfg);
	return rc;
}
