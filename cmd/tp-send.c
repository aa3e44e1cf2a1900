/*
 * tp-send - ship every outbox batch, oldest first, to its target's
 * endpoint; or, with "-", first queue the batch stream read from stdin.
 * The work is in lib/send.c; this file maps the command line onto it.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "lock.h"
#include "log.h"
#include "send.h"
#include "tp.h"

static const char usage[] =
	"usage: tp-send [-c FILE] [-v | -q] [--target NAME]\n"
	"       tp-send [-c FILE] [-v | -q] --target NAME -\n"
	"Ship every outbox batch, oldest first, to its target's endpoint.\n"
	"\n"
	"  -c, --config FILE   config file (default $TP_CONFIG, else /etc/teleport/tp.ini)\n"
	"  -t, --target NAME   only this target\n"
	"  -                   first queue the batch files of the tar stream on stdin\n"
	"  -v, --verbose       more log (-vv: debug)\n"
	"  -q, --quiet         errors only\n"
	"  -h, --help          this help\n"
	"  -V, --version       print the version\n";

/* SIGINT/SIGTERM: finish the batch in hand, then stop (exit 75). */
static void on_signal(int sig)
{
	(void)sig;
	send_stop = 1;
}

static void setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

typedef struct send_args {
	tp_cli cli;
	const char *target;
	int from_stdin;
} send_args;

/* -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, send_args *a)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "target", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	int opt, rc;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "t:", longopts,
				  NULL)) != -1) {
		if (opt == 't')
			a->target = optarg;
		else if ((rc = cli_common(&a->cli, opt, usage)) >= 0)
			return rc;
	}
	if (optind < argc && strcmp(argv[optind], "-") == 0) {
		a->from_stdin = 1;
		optind++;
	}
	if (cli_extra_operands(argc, argv, usage))
		return TP_EUSAGE;
	if (a->from_stdin && !a->target) {
		log_error("reading a batch stream (-) needs --target NAME");
		return TP_EUSAGE;
	}
	if (a->from_stdin && isatty(STDIN_FILENO)) {
		log_error("stdin is a terminal, not a batch stream");
		log_hint("tp-load -c src.ini TARGET | tp-send -c src.ini "
			 "--target TARGET -");
		return TP_EUSAGE;
	}
	return -1;
}

static int run(const tp_config *cfg, const send_args *a)
{
	const tp_target *t = NULL;

	if (a->target && !(t = config_target(cfg, a->target))) {
		log_error("unknown target \"%s\": no [target %s] in %s",
			  a->target, a->target, cfg->path);
		return TP_EUSAGE;
	}
	int rc = lock_stage(cfg->spool, "tp-send");
	if (rc != TP_OK)
		return rc;
	if (!a->from_stdin)
		return send_run(cfg, a->target);
	/* Whatever was stored before a bad entry is still shipped. */
	rc = send_store_stream(cfg, t, STDIN_FILENO);
	return tp_exit_worse(rc, send_target(cfg, t));
}

int main(int argc, char **argv)
{
	send_args a = { .cli = { .verbosity = LOG_WARN } };
	tp_config *cfg = NULL;

	log_init(argv[0]);
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	rc = cli_load_config(&a.cli, &cfg);
	if (rc != TP_OK)
		return rc;
	setup_signals();
	return cli_done(cfg, run(cfg, &a), true);
}
