/*
 * tp-load - initial load of a target: its tables, copied in one snapshot,
 * as load batches on stdout (a tar stream for tp-send -) or in the outbox.
 * The work is in lib/load.c; this file maps the command line onto it.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "load.h"
#include "log.h"
#include "tp.h"

static const char usage[] =
	"usage: tp-load [-c FILE] [-v|-q] [--outbox] [--fresh] [--batch-size SIZE]\n"
	"               [--no-schema] [--rebuild-indexes] TARGET [TABLE...]\n"
	"Copy the tables of TARGET (or the named schema.table ones) in one snapshot\n"
	"into load batches that hand over exactly to the change stream.\n"
	"  -c, --config FILE      config file (default $TP_CONFIG, /etc/teleport/tp.ini)\n"
	"  -o, --outbox           write the batches into the outbox, not to stdout\n"
	"  -f, --fresh            load tables loaded before, too\n"
	"  -b, --batch-size SIZE  rows per load batch, in bytes (default 256M)\n"
	"  -n, --no-schema        leave out the schema part (what creates the tables)\n"
	"  -r, --rebuild-indexes  the target drops indexes and foreign keys of the loaded\n"
	"                         tables and builds them again after the rows\n"
	"  -v, --verbose          more log; -q, --quiet: errors only\n"
	"  -h, --help             this text; -V, --version: the version\n"
	"Run tp-install first. Example:\n"
	"  tp-load -c src.ini replica | tp-send -c src.ini --target replica -\n";

/* -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, tp_cli *cli, load_opts *o)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONG,
		{ "outbox", no_argument, NULL, 'o' },
		{ "fresh", no_argument, NULL, 'f' },
		{ "no-schema", no_argument, NULL, 'n' },
		{ "rebuild-indexes", no_argument, NULL, 'r' },
		{ "batch-size", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 }
	};
	int opt, rc;
	long size;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "ofb:nr", longopts, NULL)) != -1) {
		if (opt == 'o') {
			o->outbox = true;
		} else if (opt == 'f') {
			o->fresh = true;
		} else if (opt == 'n') {
			o->no_schema = true;
		} else if (opt == 'r') {
			o->rebuild_indexes = true;
		} else if (opt == 'b') {
			if ((size = parse_size(optarg)) <= 0) {
				log_error("--batch-size %s: not a size (like 64M)", optarg);
				return TP_EUSAGE;
			}
			o->batch_size = (uint64_t)size;
		} else if ((rc = cli_common(cli, opt, usage)) >= 0) {
			return rc;
		}
	}
	if (optind >= argc) {
		log_error("which target? (tp-load TARGET)");
		fputs(usage, stderr);
		return TP_EUSAGE;
	}
	o->target = argv[optind++];
	o->tables = argv + optind;
	o->ntables = (size_t)(argc - optind);
	return -1;
}

int main(int argc, char **argv)
{
	tp_cli cli = { NULL, LOG_WARN };
	load_opts o = { .batch_size = LOAD_BATCH_SIZE_DEFAULT, .out_fd = STDOUT_FILENO };
	tp_config *cfg = NULL;
	int rc;

	log_init("tp-load");
	if ((rc = parse_args(argc, argv, &cli, &o)) >= 0)
		return rc;
	if ((rc = cli_load_config(&cli, &cfg)) != TP_OK)
		return rc;
	/* a reader that went away is an error of the write, not a signal */
	signal(SIGPIPE, SIG_IGN);
	return cli_done(cfg, load_run(cfg, &o), true);
}
