/*
 * batcher.c - tp-batch's plan step and main loop; see batcher.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "batcher_int.h"
#include "db.h"
#include "ddl.h"
#include "install.h"
#include "log.h"
#include "tp.h"

int delta_tables(batch_ctx *bc, const char *lo, const char *hi,
		 strbuf *schemas, strbuf *names, int *rc)
{
	const char *params[4] = { lo, hi, bc->skip_schemas ? bc->skip_schemas : "{}",
				  bc->skip_names ? bc->skip_names : "{}" };
	strbuf sql = { 0 };
	PGresult *res;
	int i, n = 0;

	strbuf_reset(schemas);
	strbuf_reset(names);
	strbuf_addf(&sql, "SELECT DISTINCT e.ev_schema, e.ev_table FROM %s.event e WHERE "
		    DELTA_SQL " AND (e.ev_schema, e.ev_table) NOT IN (SELECT * FROM ROWS FROM"
		    " (pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]))) ORDER BY 1, 2",
		    bc->schema);
	res = db_query(bc->conn, "reading the tables of new events", sql.buf, 4, params, rc);
	strbuf_free(&sql);
	if (!res)
		return -1;
	for (i = 0; i < PQntuples(res); i++) {
		const char *s = PQgetvalue(res, i, 0), *t = PQgetvalue(res, i, 1);

		if (!target_matches(bc->target, s, t))
			continue;
		db_array_add(schemas, s);
		db_array_add(names, t);
		n++;
	}
	PQclear(res);
	strbuf_adds(schemas, n ? "}" : "{}");
	strbuf_adds(names, n ? "}" : "{}");
	return n;
}

typedef struct cut {
	int64_t ev_lo, ev_hi, events, bytes;
} cut;

typedef struct cuts {
	cut *v;
	size_t n, cap;
} cuts;

static void cuts_push(cuts *c, cut x)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = x;
}

/*
 * Walk the delta's transactions in order of their last event id and cut
 * them into batches within the target's limits. Streams the result (one
 * row per transaction) so a huge delta costs no memory here.
 */
static int plan_cuts(batch_ctx *bc, const char *const params[4], cuts *out)
{
	strbuf sql = { 0 };
	PGresult *res;
	cut cur = { 0, 0, 0, 0 };
	int64_t prev_last = 0;
	int rc = TP_OK;

	strbuf_addf(&sql,
		"SELECT max(d.ev_id), count(*) FILTER (WHERE d.m),"
		"       coalesce(sum(d.bytes) FILTER (WHERE d.m), 0)"
		" FROM (SELECT e.ev_txid, e.ev_id,"
		"         (e.ev_schema, e.ev_table) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]))) AS m,"
		"         coalesce(pg_catalog.octet_length(e.ev_old), 0)"
		"           + coalesce(pg_catalog.octet_length(e.ev_new), 0) AS bytes"
		"       FROM %s.event e WHERE " DELTA_SQL ") d"
		" GROUP BY d.ev_txid ORDER BY 1", bc->schema);
	if (!PQsendQueryParams(bc->conn, sql.buf, 4, NULL, params, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(bc->conn)) {
		strbuf_free(&sql);
		return db_report(bc->conn, NULL, "planning batches");
	}
	strbuf_free(&sql);
	while ((res = PQgetResult(bc->conn)) != NULL) {
		if (PQresultStatus(res) == PGRES_SINGLE_TUPLE) {
			int64_t last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			int64_t cnt = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
			int64_t bytes = strtoll(PQgetvalue(res, 0, 2), NULL, 10);

			if (cur.events > 0 &&
			    (cur.events + cnt > bc->target->batch_max_events ||
			     cur.bytes + bytes > bc->target->batch_max_bytes)) {
				cur.ev_hi = prev_last;
				cuts_push(out, cur);
				cur = (cut){ prev_last, 0, 0, 0 };
			}
			cur.events += cnt;
			cur.bytes += bytes;
			prev_last = last;
		} else if (PQresultStatus(res) != PGRES_TUPLES_OK && rc == TP_OK) {
			rc = db_report(bc->conn, res, "planning batches");
		}
		PQclear(res);
	}
	/* The last batch is open-ended so the cuts cover every id. */
	if (rc == TP_OK && cur.events > 0) {
		cur.ev_hi = EV_HI_OPEN;
		cuts_push(out, cur);
	} else if (rc == TP_OK && out->n > 0) {
		out->v[out->n - 1].ev_hi = EV_HI_OPEN;
	}
	return rc;
}

/*
 * Store the cuts as batch rows and move the target to hi. The first batch
 * after numbers that a failed load reserved says so ("void_from").
 */
static int plan_store(batch_ctx *bc, const plan_pos *pos, const char *hi, const cuts *c)
{
	strbuf sql = { 0 };
	char seq[24], evlo[24], evhi[24], events[24], bytes[24], vfrom[24];
	const ddl_delta *d = bc->ddl;
	const char *params[16] = { bc->target->name, seq, pos->lo, hi, evlo, evhi, events, bytes,
				   NULL, bc->skip_schemas, bc->skip_names,
				   d && d->on ? d->cat_lo : NULL, d && d->on ? d->cat_hi : NULL,
				   NULL, NULL, d && d->on && d->events ? "true" : "false" };
	size_t i;
	int rc = TP_OK;

	snprintf(vfrom, sizeof(vfrom), "%" PRId64, pos->last_seq + 1);
	strbuf_addf(&sql, "INSERT INTO %s.batch (target, seq, lo, hi, ev_lo, ev_hi, events, bytes,"
		    " void_from, skip_schemas, skip_names, cat_lo, cat_hi, ddl_pre, ddl_post, ddl_events)"
		    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
		    bc->schema);
	for (i = 0; i < c->n && rc == TP_OK; i++) {
		params[8] = i == 0 && pos->base > pos->last_seq ? vfrom : NULL;
		snprintf(seq, sizeof(seq), "%" PRId64, pos->base + 1 + (int64_t)i);
		snprintf(evlo, sizeof(evlo), "%" PRId64, c->v[i].ev_lo);
		snprintf(evhi, sizeof(evhi), "%" PRId64, c->v[i].ev_hi);
		snprintf(events, sizeof(events), "%" PRId64, c->v[i].events);
		snprintf(bytes, sizeof(bytes), "%" PRId64, c->v[i].bytes);
		/* the delta's schema changes: before its first batch's rows, after its last's */
		params[13] = d && i == 0 && d->pre.len ? d->pre.buf : NULL;
		params[14] = d && i + 1 == c->n && d->post.len ? d->post.buf : NULL;
		rc = db_execp(bc->conn, "recording a batch", sql.buf, 16, params);
		log_info("target %s: batch %s: %s events", bc->target->name, seq, events);
	}
	strbuf_reset(&sql);
	strbuf_addf(&sql, "UPDATE %s.target SET last_snap = $2::pg_catalog.pg_snapshot,"
		    " last_seq = $3 WHERE name = $1", bc->schema);
	/* no batch: keep last_seq, so a reservation's void is not lost */
	snprintf(seq, sizeof(seq), "%" PRId64, c->n ? pos->base + (int64_t)c->n : pos->last_seq);
	if (rc == TP_OK) {
		const char *p2[3] = { bc->target->name, hi, seq };

		rc = db_execp(bc->conn, "moving the target on", sql.buf, 3, p2);
	}
	strbuf_free(&sql);
	return rc;
}

void plan_pos_free(plan_pos *pos)
{
	free(pos->lo);
	free(pos->now);
	memset(pos, 0, sizeof(*pos));
}

/*
 * The numbers a failed tp-load reserved (sql/source.sql, load_reserve).
 * Read FOR SHARE in its own statement after the target's lock: that sees
 * the newest committed value (or fails with 40001 under REPEATABLE READ),
 * never one older than the lock.
 */
static int plan_reserved(batch_ctx *bc, plan_pos *pos)
{
	const char *params[1] = { bc->target->name };
	strbuf sql = { 0 };
	PGresult *res;
	int rc;

	strbuf_addf(&sql, "SELECT seq FROM %s.load_reserve WHERE target = $1%s", bc->schema,
		    bc->loading ? "" : " FOR SHARE");
	res = db_query(bc->conn, "reading the target's reserved numbers", sql.buf, 1, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	pos->base = pos->last_seq;
	if (PQntuples(res) == 1 && strtoll(PQgetvalue(res, 0, 0), NULL, 10) > pos->base)
		pos->base = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return TP_OK;
}

int plan_lock(batch_ctx *bc, plan_pos *pos)
{
	const char *params[1] = { bc->target->name };
	strbuf sql = { 0 };
	PGresult *res;
	int rc = db_exec(bc->conn, "limiting the lock wait", "SET LOCAL lock_timeout = '3s'");

	if (rc != TP_OK)
		return rc;
	strbuf_addf(&sql, "SELECT last_snap::text, last_seq, pg_catalog.pg_current_snapshot()::text"
		    " FROM %s.target WHERE name = $1 FOR UPDATE", bc->schema);
	res = db_query(bc->conn, "reading the target's position", sql.buf, 1, params, &rc);
	strbuf_free(&sql);
	if (!res && rc == TP_ETEMP)
		log_error("target %s is busy: being loaded by tp-load?", bc->target->name);
	if (!res)
		return rc;
	if (PQntuples(res) != 1) {
		log_error("target %s is not installed in schema %s", bc->target->name, bc->schema);
		log_hint("run tp-install -c %s", bc->cfg->path);
		PQclear(res);
		return TP_ECONFIG;
	}
	pos->lo = xstrdup(PQgetvalue(res, 0, 0));
	pos->last_seq = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	pos->now = xstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);
	return plan_reserved(bc, pos);
}

/*
 * The event names of the delta: from the catalog descriptions when schema
 * changes are tracked (renamed tables under both names, new and dropped
 * ones not at all), else the tables of its events the target matches.
 * Returns how many, or -1.
 */
static int plan_names(batch_ctx *bc, const char *lo, const char *hi,
		      strbuf *schemas, strbuf *names, int *rc)
{
	if (!bc->ddl || !bc->ddl->on)
		return delta_tables(bc, lo, hi, schemas, names, rc);
	if (bc->ddl->events) {
		strbuf_reset(schemas);
		strbuf_reset(names);
		strbuf_adds(schemas, bc->ddl->ev_schemas.buf);
		strbuf_adds(names, bc->ddl->ev_names.buf);
	} else {
		ddl_event_names(bc->ddl->lo, bc->ddl->hi, schemas, names);
	}
	return strcmp(names->buf, "{}") != 0;
}

int plan_delta(batch_ctx *bc, const plan_pos *pos, const char *hi, int64_t *nbatches)
{
	strbuf schemas = { 0 }, names = { 0 };
	cuts c = { 0 };
	int rc = TP_OK;
	const ddl_delta *d = bc->ddl;

	if (plan_names(bc, pos->lo, hi, &schemas, &names, &rc) > 0) {
		const char *params[4] = { pos->lo, hi, schemas.buf, names.buf };

		rc = plan_cuts(bc, params, &c);
	}
	/* a schema change without rows still makes a batch */
	if (rc == TP_OK && c.n == 0 && d && (d->pre.len || d->post.len || d->inline_ddl))
		cuts_push(&c, (cut){ 0, EV_HI_OPEN, 0, 0 });
	if (rc == TP_OK)
		rc = plan_store(bc, pos, hi, &c);
	/* new tables' rows: with the first batch; event-triggers: with the last */
	if (rc == TP_OK && c.n > 0 && d && d->on)
		rc = ddl_copy_new(bc->conn, bc->target, bc->schema, d,
				  pos->base + (d->events ? (int64_t)c.n : 1));
	*nbatches = (int64_t)c.n;
	free(c.v);
	strbuf_free(&schemas);
	strbuf_free(&names);
	return rc;
}

/*
 * One REPEATABLE READ transaction: hi is its snapshot, so the catalog
 * description ddl_plan reads is exactly the schema as of hi.
 */
static int plan_target(batch_ctx *bc)
{
	plan_pos pos = { 0 };
	ddl_delta d = { 0 };
	int64_t n = 0;
	int rc = db_exec(bc->conn, "starting a transaction",
			 "BEGIN ISOLATION LEVEL REPEATABLE READ");

	if (rc == TP_OK)
		rc = plan_lock(bc, &pos);
	if (rc == TP_OK)
		rc = ddl_plan(bc->conn, bc->cfg, bc->target, bc->schema, &d);
	if (rc == TP_OK && d.on && d.events)
		rc = ddl_plan_markers(bc->conn, bc->target, bc->schema, pos.lo, pos.now, &d);
	bc->ddl = &d;
	if (rc == TP_OK && bc->ddl_only && !d.pre.len && !d.post.len && !d.inline_ddl)
		bc->ddl = NULL;         /* tp-ddlscan: no schema change, no batch */
	else if (rc == TP_OK)
		rc = plan_delta(bc, &pos, pos.now, &n);
	bc->ddl = NULL;
	rc = tp_exit_worse(rc, db_exec(bc->conn, "ending the transaction",
				       rc == TP_OK ? "COMMIT" : "ROLLBACK"));
	ddl_delta_free(&d);
	plan_pos_free(&pos);
	return rc;
}

static void plan_from_row(batch_plan *p, PGresult *res, int i)
{
	p->seq = strtoull(PQgetvalue(res, i, 0), NULL, 10);
	p->lo = PQgetvalue(res, i, 1);
	p->hi = PQgetvalue(res, i, 2);
	p->ev_lo = strtoll(PQgetvalue(res, i, 3), NULL, 10);
	p->ev_hi = strtoll(PQgetvalue(res, i, 4), NULL, 10);
	p->events = strtoll(PQgetvalue(res, i, 5), NULL, 10);
	p->created = PQgetvalue(res, i, 6);
	p->void_from = strtoll(PQgetvalue(res, i, 9), NULL, 10);
	p->cat_lo = PQgetisnull(res, i, 10) ? NULL : PQgetvalue(res, i, 10);
	p->cat_hi = PQgetisnull(res, i, 11) ? NULL : PQgetvalue(res, i, 11);
	p->ddl_pre = PQgetisnull(res, i, 12) ? NULL : PQgetvalue(res, i, 12);
	p->ddl_post = PQgetisnull(res, i, 13) ? NULL : PQgetvalue(res, i, 13);
	p->ddl_events = *PQgetvalue(res, i, 14) == 't';
}

/*
 * Write every recorded batch whose file is not in the outbox yet, in
 * groups of batches cut from one delta, each group in one pass.
 */
static int build_pending(batch_ctx *bc)
{
	const char *params[1] = { bc->target->name };
	strbuf sql = { 0 };
	PGresult *res;
	batch_plan *plans;
	int i, start, n, rc;

	/* kind 'load': tp-load writes those itself */
	strbuf_addf(&sql, "SELECT seq, lo::text, hi::text, ev_lo, ev_hi, events,"
		    " pg_catalog.to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
		    " coalesce(skip_schemas, '{}')::text, coalesce(skip_names, '{}')::text,"
		    " coalesce(void_from, 0), cat_lo, cat_hi, ddl_pre, ddl_post, ddl_events"
		    " FROM %s.batch WHERE target = $1 AND written IS NULL AND kind <> 'load'"
		    " ORDER BY seq", bc->schema);
	res = db_query(bc->conn, "reading planned batches", sql.buf, 1, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	n = PQntuples(res);
	plans = xcalloc((size_t)n + 1, sizeof(*plans));
	for (i = 0; i < n; i++)
		plan_from_row(&plans[i], res, i);
	for (start = 0, i = 1; i <= n && rc == TP_OK; i++) {
		if (i < n && plans[i].seq == plans[i - 1].seq + 1 &&
		    plans[i].ev_lo == plans[i - 1].ev_hi &&
		    strcmp(plans[i].lo, plans[i - 1].lo) == 0 &&
		    strcmp(plans[i].hi, plans[i - 1].hi) == 0 &&
		    strcmp(PQgetvalue(res, i, 7), PQgetvalue(res, i - 1, 7)) == 0 &&
		    strcmp(PQgetvalue(res, i, 8), PQgetvalue(res, i - 1, 8)) == 0)
			continue;
		/* the skip lists the batches were planned with */
		bc->skip_schemas = PQgetvalue(res, start, 7);
		bc->skip_names = PQgetvalue(res, start, 8);
		rc = batch_build_group(bc, &plans[start], (size_t)(i - start));
		start = i;
	}
	bc->skip_schemas = bc->skip_names = NULL;
	free(plans);
	PQclear(res);
	return rc;
}

static int batch_target(PGconn *conn, const tp_config *cfg, const tp_target *t,
			bool ddl_only)
{
	batch_ctx bc = { conn, cfg, t, db_ident(conn, cfg->schema) };
	int rc;

	bc.ddl_only = ddl_only;
	rc = plan_target(&bc);
	/* Build even after a failed plan: earlier batches may be waiting. */
	rc = tp_exit_worse(rc, build_pending(&bc));
	free(bc.schema);
	return rc;
}

int batcher_run(PGconn *conn, const tp_config *cfg, const char *only, bool ddl_only)
{
	size_t i;
	int rc = TP_OK;

	if (only && !config_target(cfg, only)) {
		log_error("no [target %s] in %s", only, cfg->path);
		return TP_EUSAGE;
	}
	/*
	 * Capture first, then plan: a table that gets its trigger now is in
	 * the plan's snapshot with it, so the plan copies its rows as of hi
	 * and no row written before the trigger is lost.
	 */
	if (cfg->ddl == TP_DDL_DIFF)
		rc = install_capture_new(conn, cfg);   /* event-triggers: ddl_end() does it */
	for (i = 0; i < cfg->ntargets; i++) {
		const tp_target *t = &cfg->targets[i];

		if (!only || strcmp(only, t->name) == 0)
			rc = tp_exit_worse(rc, batch_target(conn, cfg, t, ddl_only));
	}
	return rc;
}
