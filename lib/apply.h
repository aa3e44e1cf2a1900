/*
 * apply.h - tp-apply: the target side. Applies the batches of each
 * [source] in order, each in one transaction together with its line in the
 * ledger (<schema>.applied, <schema>.apply_log), so every batch is applied
 * exactly once, whatever crashes in between.
 *
 * Inbox mode (no files named): for every [source S], in config order, the
 * files <spool>/inbox/S/<seq>.tar* with seq = ledger + 1, + 2 ... are
 * applied and moved to inbox/S/applied/. A bad batch is quarantined (65);
 * a missing one while a later one waits gives 75.
 *
 * File mode: the named files, each of which must be the next batch of its
 * source unless force is set; with force, a file is applied whatever the
 * ledger says and the ledger only ever moves forward.
 */
#ifndef TP_APPLY_H
#define TP_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "config.h"

typedef struct apply_opts {
	const char *source;       /* --source: only this source, or NULL */
	bool dry_run;             /* print the SQL to out, change nothing */
	bool force;               /* file mode: ignore the ledger's order */
	char **files;             /* file mode when nfiles > 0 */
	size_t nfiles;
	FILE *out;                /* where --dry-run writes (stdout) */
} apply_opts;

/*
 * Take the tp-apply lock, connect, apply. Returns the exit code
 * (tp.h): 0 also when there was nothing to do.
 */
int apply_run(const tp_config *cfg, const apply_opts *o);

/*
 * SIGTERM and SIGINT set a flag; the batch in progress is rolled back
 * (or, past its last event, committed) and apply_run returns 75.
 */
void apply_signals_init(void);

#endif
