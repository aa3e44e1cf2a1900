/*
 * tp-batch - cut each target's committed events into batch files.
 */
#include "batcher.h"

static const char usage[] =
	"usage: tp-batch [-c FILE] [-v|-q] [--target NAME]\n"
	"Cut the committed, not yet batched events of each target into batch\n"
	"files in the outbox, in commit order.\n"
	"  -c, --config FILE  config file (default $TP_CONFIG, /etc/teleport/tp.ini)\n"
	"  -t, --target NAME  only this target\n"
	"  -v, --verbose      more log; -q, --quiet: errors only\n"
	"  -h, --help         this text; -V, --version: the version\n";

int main(int argc, char **argv)
{
	return batcher_main(argc, argv, "tp-batch", usage, false);
}
