/*
 * cli.h - the options every command shares: -c/--config, -v, -q,
 * -h/--help, -V/--version. Each command adds its own and calls
 * cli_common() for the shared ones from its getopt_long loop.
 */
#ifndef TP_CLI_H
#define TP_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include "config.h"

typedef struct tp_cli {
	const char *config_flag;   /* -c value or NULL */
	int verbosity;             /* LOG_WARN by default */
	int syslog;                /* --syslog: also log to syslog(3) */
} tp_cli;

/* getopt value of --syslog: long only, clear of the commands' own values. */
#define CLI_OPT_SYSLOG 0x200

#define CLI_COMMON_SHORT "c:vqhV"
#define CLI_COMMON_LONG \
	{ "config", required_argument, NULL, 'c' }, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, 'V' }, \
	{ "syslog", no_argument, NULL, CLI_OPT_SYSLOG }

/*
 * Handle a shared option. Returns -1 when the option was handled and the
 * loop should go on, or an exit code (0 after --help/--version, 64 for an
 * unknown option) when the command should exit now. usage is printed to
 * stdout for -h and stderr for errors.
 */
int cli_common(tp_cli *cli, int opt, const char *usage);

/*
 * After option parsing: set log level, load the config (exit 78 on error),
 * and start logging to syslog too when --syslog or [node] log = syslog.
 */
int cli_load_config(const tp_cli *cli, tp_config **cfg);

/*
 * After getopt: true (logged, usage on stderr) when operands are left
 * over for a command that takes none; the caller exits TP_EUSAGE.
 */
bool cli_extra_operands(int argc, char **argv, const char *usage);

/*
 * For a command that takes no operands: cli_extra_operands (64), then
 * cli_load_config (78). TP_OK with *cfg loaded, or the exit code.
 */
int cli_no_operands_config(const tp_cli *cli, int argc, char **argv, const char *usage,
			   tp_config **cfg);

/*
 * The end of a command's run: record its outcome (tp-status reads it,
 * unless record is false: a dry run), free the config, return rc.
 */
int cli_done(tp_config *cfg, int rc, bool record);

#endif
