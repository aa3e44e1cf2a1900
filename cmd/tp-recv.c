/*
 * tp-recv - receive batches into the inbox. --from DIR takes the batch
 * files senders dropped in a shared folder; the HTTP ways in (--listen,
 * --inetd, --cgi) come next and reuse recv_store_file(). The work is in
 * lib/recv.c; this file maps the command line onto it.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "lock.h"
#include "log.h"
#include "recv.h"
#include "tp.h"

static const char usage[] =
	"usage: tp-recv [-c FILE] [-v | -q] --from DIR\n"
	"Store the batches dropped in DIR, verified, in the inbox.\n"
	"\n"
	"  -c, --config FILE   config file (default $TP_CONFIG, else /etc/teleport/tp.ini)\n"
	"  -f, --from DIR      take the batch files senders dropped in DIR\n"
	"  -v, --verbose       more log (-vv: debug)\n"
	"  -q, --quiet         errors only\n"
	"  -h, --help          this help\n"
	"  -V, --version       print the version\n";

/* The HTTP ways in, accepted so that they get a clear message for now. */
enum { OPT_LISTEN = 256, OPT_INETD, OPT_CGI, OPT_IDLE, OPT_MAXREQ };
static const char *const http_opts[] = {
	"listen", "inetd", "cgi", "idle-timeout", "max-requests"
};

/* -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, tp_cli *cli, const char **from)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "from", required_argument, NULL, 'f' },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "inetd", no_argument, NULL, OPT_INETD },
		{ "cgi", no_argument, NULL, OPT_CGI },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE },
		{ "max-requests", required_argument, NULL, OPT_MAXREQ },
		{ NULL, 0, NULL, 0 }
	};
	int opt, rc;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "f:", longopts,
				  NULL)) != -1) {
		if (opt == 'f') {
			*from = optarg;
		} else if (opt >= OPT_LISTEN) {
			log_error("--%s is not supported yet; use --from DIR",
				  http_opts[opt - OPT_LISTEN]);
			return TP_EUSAGE;
		} else if ((rc = cli_common(cli, opt, usage)) >= 0) {
			return rc;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument \"%s\"", argv[optind]);
		fputs(usage, stderr);
		return TP_EUSAGE;
	}
	if (!*from) {
		log_error("say where batches come from: --from DIR");
		fputs(usage, stderr);
		return TP_EUSAGE;
	}
	return -1;
}

int main(int argc, char **argv)
{
	tp_cli cli = { .verbosity = LOG_WARN };
	tp_config *cfg = NULL;
	const char *from = NULL;

	log_init(argv[0]);
	int rc = parse_args(argc, argv, &cli, &from);
	if (rc >= 0)
		return rc;
	rc = cli_load_config(&cli, &cfg);
	if (rc != TP_OK)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	rc = lock_stage(cfg->spool, "tp-recv");
	if (rc == TP_OK) {
		recv_ctx *r = recv_new(cfg);
		rc = recv_from_dir(r, from);
		recv_free(r);
	}
	config_free(cfg);
	return rc;
}
