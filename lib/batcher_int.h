/*
 * batcher_int.h - shared between batcher.c (planning) and batchbuild.c
 * (writing batch files). Not for other modules.
 */
#ifndef TP_BATCHER_INT_H
#define TP_BATCHER_INT_H

#include <libpq-fe.h>
#include <stdint.h>
#include "config.h"
#include "strbuf.h"

typedef struct batch_ctx {
	PGconn *conn;
	const tp_config *cfg;
	const tp_target *target;
	char *schema;              /* quoted capture schema */
} batch_ctx;

/* A planned batch, as stored in <schema>.batch. */
typedef struct batch_plan {
	uint64_t seq;
	const char *lo, *hi;       /* pg_snapshot text */
	int64_t ev_lo, ev_hi;      /* last event id of its transactions in (ev_lo, ev_hi] */
	int64_t events;
	const char *created;       /* ISO 8601 UTC */
} batch_plan;

#define EV_HI_OPEN INT64_MAX

/*
 * The WHERE clause of a delta between snapshots $1 (lo) and $2 (hi), for
 * event rows aliased `e`. The range test lets the ev_txid index work.
 */
#define DELTA_SQL \
	"e.ev_txid >= pg_catalog.pg_snapshot_xmin($1::pg_catalog.pg_snapshot)" \
	" AND e.ev_txid < pg_catalog.pg_snapshot_xmax($2::pg_catalog.pg_snapshot)" \
	" AND pg_catalog.pg_visible_in_snapshot(e.ev_txid, $2::pg_catalog.pg_snapshot)" \
	" AND NOT pg_catalog.pg_visible_in_snapshot(e.ev_txid, $1::pg_catalog.pg_snapshot)"

/*
 * The delta's tables that the target matches, as two text[] literals
 * (schemas, names) for unnest($3, $4). Returns the count, or -1 on error
 * with *rc set.
 */
int delta_tables(batch_ctx *bc, const char *lo, const char *hi,
		 strbuf *schemas, strbuf *names, int *rc);

/*
 * Write planned batches g[0..n) into the outbox and mark them written.
 * They must come from one delta (same lo and hi) with adjoining ranges
 * (g[i].ev_hi == g[i+1].ev_lo). A batch whose file is already in place
 * (a killed run renamed it but did not mark it) is only marked. Exit code.
 */
int batch_build_group(batch_ctx *bc, const batch_plan *g, size_t n);

#endif
