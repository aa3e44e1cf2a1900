/*
 * tp-ddlscan - put schema changes into the stream between tp-batch runs.
 */
#include "batcher.h"

static const char usage[] =
	"usage: tp-ddlscan [-c FILE] [-v|-q] [--target NAME]\n"
	"Give newly matched tables their capture trigger, diff the catalog against\n"
	"the last stored description and, where it changed, cut the target's\n"
	"events up to now into batches that carry the change in order.\n"
	"  -c, --config FILE  config file (default $TP_CONFIG, /etc/teleport/tp.ini)\n"
	"  -t, --target NAME  only this target\n"
	"  -v, --verbose      more log; -q, --quiet: errors only\n"
	"  -h, --help         this text; -V, --version: the version\n";

int main(int argc, char **argv)
{
	return batcher_main(argc, argv, "tp-ddlscan", usage, true);
}
