/*
 * vacuum_spool.c - tp-vacuum's files: sent, applied and quarantined
 * batches and temporary leftovers older than retention (see vacuum.h).
 * Unsent outbox files and unapplied inbox files are never touched.
 */
#include <limits.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "spoolstat.h"
#include "tp.h"
#include "vacuum.h"

typedef struct prune_ctx {
	const char *root;       /* outbox or inbox folder */
	const char *keep;       /* "sent" or "applied" */
	time_t cutoff;
	uint64_t *deleted;
	int rc;
} prune_ctx;

static void prune(prune_ctx *c, const char *dir, enum spool_prune_kind kind)
{
	if (spool_prune(dir, kind, c->cutoff, c->deleted) < 0) {
		log_error("cannot prune %s: %m", dir);
		c->rc = TP_EFAIL;
	}
}

/* outbox/<t>/ or inbox/<s>/: its done files, and temporary leftovers. */
static void prune_sub(const char *name, void *arg)
{
	prune_ctx *c = arg;
	char dir[PATH_MAX];

	if (snprintf(dir, sizeof dir, "%s/%s/%s", c->root, name, c->keep) >= (int)sizeof dir)
		return;
	prune(c, dir, PRUNE_BATCHES);
	snprintf(dir, sizeof dir, "%s/%s", c->root, name);
	prune(c, dir, PRUNE_TEMP);
}

int vacuum_spool(const tp_config *cfg, uint64_t *deleted)
{
	char outbox[PATH_MAX], inbox[PATH_MAX], quarantine[PATH_MAX];
	prune_ctx c = { outbox, "sent", time(NULL) - cfg->retention, deleted, TP_OK };

	snprintf(outbox, sizeof outbox, "%s/outbox", cfg->spool);
	snprintf(inbox, sizeof inbox, "%s/inbox", cfg->spool);
	snprintf(quarantine, sizeof quarantine, "%s/quarantine", cfg->spool);
	if (spool_each_subdir(outbox, prune_sub, &c) < 0) {
		log_error("cannot read %s: %m", outbox);
		c.rc = TP_EFAIL;
	}
	c.root = inbox;
	c.keep = "applied";
	if (spool_each_subdir(inbox, prune_sub, &c) < 0) {
		log_error("cannot read %s: %m", inbox);
		c.rc = TP_EFAIL;
	}
	prune(&c, inbox, PRUNE_TEMP);   /* tp-recv receives into inbox/ itself */
	prune(&c, quarantine, PRUNE_ALL);
	prune(&c, quarantine, PRUNE_TEMP);
	return c.rc;
}
