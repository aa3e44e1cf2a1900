/*
 * tp-recv - receive batches into the inbox: --from DIR takes the batch
 * files senders dropped in a shared folder; --listen, --inetd and --cgi
 * take them over HTTP. The work is in lib/recv.c and lib/recv_*.c; this
 * file maps the command line onto it.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "lock.h"
#include "log.h"
#include "recv.h"
#include "recv_http.h"
#include "tp.h"

static const char usage[] =
	"usage: tp-recv [-c FILE] [-v | -q] --from DIR\n"
	"       tp-recv [-c FILE] [-v | -q] --listen HOST:PORT [--idle-timeout SECONDS]\n"
	"               [--max-requests N] [--timeout SECONDS]\n"
	"       tp-recv [-c FILE] [-v | -q] --inetd | --cgi [--timeout SECONDS]\n"
	"Store received batches, verified, in the inbox.\n"
	"\n"
	"  -c, --config FILE       config file (default $TP_CONFIG, else /etc/teleport/tp.ini)\n"
	"  -f, --from DIR          take the batch files senders dropped in DIR\n"
	"      --listen HOST:PORT  serve HTTP on HOST:PORT (or a socket from systemd)\n"
	"      --idle-timeout S    --listen: stop after S seconds without requests\n"
	"      --max-requests N    --listen: stop after N requests\n"
	"      --inetd             serve the one HTTP connection on stdin\n"
	"      --cgi               answer one request as a CGI program\n"
	"      --timeout S         cut a connection that stalls for S seconds (default 30)\n"
	"  -v, --verbose           more log (-vv: debug)\n"
	"  -q, --quiet             errors only\n"
	"  -h, --help              this help\n"
	"  -V, --version           print the version\n";

enum { OPT_LISTEN = 256, OPT_INETD, OPT_CGI, OPT_IDLE, OPT_MAXREQ, OPT_TIMEOUT };
enum mode { M_NONE, M_FROM, M_LISTEN, M_INETD, M_CGI };

typedef struct recv_args {
	tp_cli cli;
	enum mode mode;
	const char *from;
	recv_http_opts http;
	int listen_only;        /* --idle-timeout or --max-requests given */
} recv_args;

/* A count of seconds ("90", "2m"); zero allowed when zero_ok. */
static int seconds(const char *opt, const char *v, int zero_ok, unsigned *out)
{
	long n = parse_duration(v);

	if (n < 0 || (n == 0 && !zero_ok) || n > 86400L * 365) {
		log_error("--%s %s: not a %sduration (like 30, 90s, 5m)", opt, v,
			  zero_ok ? "" : "positive ");
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

static int set_mode(recv_args *a, enum mode m)
{
	if (a->mode != M_NONE && a->mode != m) {
		log_error("say one way in: --from, --listen, --inetd or --cgi");
		return -1;
	}
	a->mode = m;
	return 0;
}

/* One option of tp-recv's own; -1 on a bad value. */
static int own_option(recv_args *a, int opt)
{
	unsigned v;

	switch (opt) {
	case 'f':
		a->from = optarg;
		return set_mode(a, M_FROM);
	case OPT_LISTEN:
		a->http.listen = optarg;
		return set_mode(a, M_LISTEN);
	case OPT_INETD:
		return set_mode(a, M_INETD);
	case OPT_CGI:
		return set_mode(a, M_CGI);
	case OPT_IDLE:
		a->listen_only = 1;
		return seconds("idle-timeout", optarg, 1, &a->http.idle_timeout);
	case OPT_MAXREQ:
		a->listen_only = 1;
		if (seconds("max-requests", optarg, 0, &v) < 0)
			return -1;
		a->http.max_requests = v;
		return 0;
	default:                /* OPT_TIMEOUT */
		return seconds("timeout", optarg, 0, &a->http.timeout);
	}
}

/* -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, recv_args *a)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "from", required_argument, NULL, 'f' },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "inetd", no_argument, NULL, OPT_INETD },
		{ "cgi", no_argument, NULL, OPT_CGI },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE },
		{ "max-requests", required_argument, NULL, OPT_MAXREQ },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ NULL, 0, NULL, 0 }
	};
	int opt, rc;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "f:", longopts,
				  NULL)) != -1) {
		if (opt == 'f' || opt >= OPT_LISTEN) {
			if (own_option(a, opt) < 0)
				return TP_EUSAGE;
		} else if ((rc = cli_common(&a->cli, opt, usage)) >= 0) {
			return rc;
		}
	}
	if (cli_extra_operands(argc, argv, usage))
		return TP_EUSAGE;
	if (a->mode == M_NONE) {
		log_error("say where batches come from: --from DIR, --listen "
			  "HOST:PORT, --inetd or --cgi");
		fputs(usage, stderr);
		return TP_EUSAGE;
	}
	if (a->listen_only && a->mode != M_LISTEN) {
		log_error("--idle-timeout and --max-requests go with --listen");
		return TP_EUSAGE;
	}
	return -1;
}

/* SIGTERM/SIGINT: a server finishes the request in hand, then stops. */
static void on_signal(int sig)
{
	(void)sig;
	recv_http_stop = 1;
}

static void setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;      /* no SA_RESTART: wake the poll */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * One tp-recv per node at a time. A request served by inetd or a web
 * server queues behind a sibling for up to --timeout rather than fail.
 */
static int take_lock(const tp_config *cfg, const recv_args *a)
{
	if (a->mode != M_INETD && a->mode != M_CGI)
		return lock_stage(cfg->spool, "tp-recv");
	int rc = lock_stage_wait(cfg->spool, "tp-recv", a->http.timeout);
	if (rc == TP_ETEMP && a->mode == M_CGI)
		recv_http_cgi_busy(a->http.timeout);
	return rc;
}

static int run(recv_ctx *r, const recv_args *a)
{
	switch (a->mode) {
	case M_LISTEN:
		return recv_http_listen(r, &a->http);
	case M_INETD:
		return recv_http_inetd(r, &a->http);
	case M_CGI:
		return recv_http_cgi(r, &a->http);
	default:
		return recv_from_dir(r, a->from);
	}
}

int main(int argc, char **argv)
{
	recv_args a = { .cli = { .verbosity = LOG_WARN },
			.http = { .timeout = 30 } };
	tp_config *cfg = NULL;

	log_init(argv[0]);
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	rc = cli_load_config(&a.cli, &cfg);
	if (rc != TP_OK)
		return rc;
	setup_signals();
	rc = take_lock(cfg, &a);
	if (rc == TP_OK) {
		recv_ctx *r = recv_new(cfg);
		rc = run(r, &a);
		recv_free(r);
	}
	return cli_done(cfg, rc, true);
}
