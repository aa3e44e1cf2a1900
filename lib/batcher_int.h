/*
 * batcher_int.h - shared between batcher.c (planning) and batchbuild.c
 * (writing batch files). Not for other modules.
 */
#ifndef TP_BATCHER_INT_H
#define TP_BATCHER_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "strbuf.h"

typedef struct batch_ctx {
	PGconn *conn;
	const tp_config *cfg;
	const tp_target *target;
	char *schema;              /* quoted capture schema */
	/*
	 * Tables left out of the delta, as text[] literals (schemas, names),
	 * or NULL: those a load copies (tp-load plans the events before its
	 * snapshot without them; the batch row keeps the lists for the build).
	 */
	const char *skip_schemas, *skip_names;
	/* the plan's schema changes (ddl.h), or NULL: none tracked */
	const struct ddl_delta *ddl;
	bool ddl_only;             /* tp-ddlscan: plan only when the schema changed */
	/*
	 * Set by tp-load, which updates the reservations on a connection of
	 * its own: it reads them without a row lock (that would deadlock).
	 */
	bool loading;
} batch_ctx;

/* A planned batch, as stored in <schema>.batch. */
typedef struct batch_plan {
	uint64_t seq;
	const char *lo, *hi;       /* pg_snapshot text */
	int64_t ev_lo, ev_hi;      /* last event id of its transactions in (ev_lo, ev_hi] */
	int64_t events;
	const char *created;       /* ISO 8601 UTC */
	int64_t void_from;         /* header "void_from" (void numbers before it), or 0 */
	/* catalog versions of lo and hi (NULL: planned without them), and the
	 * delta's S lines that go before / after this batch's rows, or NULL */
	const char *cat_lo, *cat_hi, *ddl_pre, *ddl_post;
	bool ddl_events;           /* ddl = event-triggers: markers in the stream */
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
 * The delta's tables that the target matches (less bc's skip lists), as
 * two text[] literals
 * (schemas, names) for unnest($3, $4). Returns the count, or -1 on error
 * with *rc set.
 */
int delta_tables(batch_ctx *bc, const char *lo, const char *hi,
		 strbuf *schemas, strbuf *names, int *rc);

/* A target's position, read under its row lock by plan_lock. */
typedef struct plan_pos {
	char *lo;                  /* last_snap */
	char *now;                 /* pg_current_snapshot() when locked */
	int64_t last_seq;          /* the last batch */
	int64_t base;              /* numbers up to here are used: last_seq, or
				      higher when a failed load reserved more */
} plan_pos;

/*
 * In an open transaction: lock the target's row (FOR UPDATE, waiting at
 * most a few seconds: 75 when a load holds it) and read its position.
 * 78 when the target is not installed. plan_pos_free releases.
 */
int plan_lock(batch_ctx *bc, plan_pos *pos);
void plan_pos_free(plan_pos *pos);

/*
 * Cut the delta (pos->lo, hi] into batches numbered from pos->base + 1,
 * record them and move the target to hi (inside the caller's
 * transaction). *nbatches receives how many.
 */
int plan_delta(batch_ctx *bc, const plan_pos *pos, const char *hi, int64_t *nbatches);

/*
 * Write planned batches g[0..n) into the outbox and mark them written.
 * They must come from one delta (same lo and hi) with adjoining ranges
 * (g[i].ev_hi == g[i+1].ev_lo). A batch whose file is already in place
 * (a killed run renamed it but did not mark it) is only marked. Exit code.
 */
int batch_build_group(batch_ctx *bc, const batch_plan *g, size_t n);

#endif
