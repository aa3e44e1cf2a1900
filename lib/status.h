/*
 * status.h - tp-status: where each target of a source and each source of
 * a target stands, what the commands last did, and whether that is
 * healthy.
 *
 * Collected once (status_collect), then rendered: a table for people, JSON
 * for scripts, node_exporter textfile metrics for Prometheus. Nothing is
 * written to the database; no lock is taken, so it runs beside any stage.
 */
#ifndef TP_STATUS_H
#define TP_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "config.h"
#include "outcome.h"

/* A target of this source node. Sequence numbers are 0 for "none yet". */
typedef struct st_target {
	char *name;
	bool configured;          /* has a [target] section */
	bool installed;           /* has a row in <schema>.target */
	int64_t last_seq;         /* the last batch cut */
	time_t last_cut;          /* when (0: unknown, e.g. none yet) */
	int64_t written;          /* highest batch whose file was written */
	int64_t sent;             /* highest batch confirmed sent */
	uint64_t unsent, unsent_bytes;   /* batch files waiting in the outbox */
	time_t oldest_unsent;     /* mtime of the oldest of them, 0: none */
	int64_t backlog_events, backlog_bytes;  /* committed, not yet batched */
	time_t oldest_backlog;    /* time of the oldest such event, 0: none */
	double lag;               /* seconds the oldest undelivered change waits */
} st_target;

/* A source of this target node. */
typedef struct st_source {
	char *name;
	int64_t received;         /* highest batch in the inbox, applied/ included */
	int64_t applied;          /* the ledger's batch */
	time_t applied_at;        /* 0: none applied yet */
	uint64_t waiting;         /* batch files in the inbox, not applied yet */
	bool lag_known;
	double lag;               /* seconds from batch cut to apply (or to now) */
	/*
	 * The batch held for a schema change (hold.h), 0: none; when tp-apply
	 * first found it held (0: unknown) and how long ago that was; the error
	 * it logged. All 0, empty or NULL when none is held.
	 */
	int64_t ddl_waiting;
	time_t ddl_since;
	double ddl_seconds;
	char ddl_sqlstate[6];
	char *ddl_reason;
} st_source;

typedef struct status {
	const tp_config *cfg;
	time_t now;
	bool db_up;
	st_target *targets;
	size_t ntargets;
	st_source *sources;
	size_t nsources;
	outcome *cmds;            /* <spool>/state/NAME.json, sorted */
	size_t ncmds;
	char **problems;          /* why it is not healthy, one line each */
	size_t nproblems;
} status;

/*
 * Gather everything. Returns TP_OK, TP_EUNAVAIL when the database cannot
 * be reached (st->db_up false; spool facts are still filled), or another
 * exit code for a failed query (logged). st is filled as far as it got.
 */
int status_collect(const tp_config *cfg, status *st);
void status_free(status *st);

/* Renderers. */
void status_print_table(const status *st, FILE *out);
void status_print_json(const status *st, FILE *out);
/* Write the metrics to path atomically (temp, fsync, rename). TP_OK or TP_EFAIL (logged). */
int status_write_prometheus(const status *st, const char *path);

#endif
