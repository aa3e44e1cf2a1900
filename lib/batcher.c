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
#include "log.h"
#include "tp.h"

/* Append s to a PostgreSQL array literal being built in sb. */
static void array_add(strbuf *sb, const char *s)
{
	strbuf_addc(sb, sb->len == 0 ? '{' : ',');
	strbuf_addc(sb, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			strbuf_addc(sb, '\\');
		strbuf_addc(sb, *s);
	}
	strbuf_addc(sb, '"');
}

int delta_tables(batch_ctx *bc, const char *lo, const char *hi,
		 strbuf *schemas, strbuf *names, int *rc)
{
	const char *params[2] = { lo, hi };
	strbuf sql = { 0 };
	PGresult *res;
	int i, n = 0;

	strbuf_reset(schemas);
	strbuf_reset(names);
	strbuf_addf(&sql, "SELECT DISTINCT e.ev_schema, e.ev_table FROM %s.event e WHERE "
		    DELTA_SQL " ORDER BY 1, 2", bc->schema);
	res = db_query(bc->conn, "reading the tables of new events", sql.buf, 2, params, rc);
	strbuf_free(&sql);
	if (!res)
		return -1;
	for (i = 0; i < PQntuples(res); i++) {
		const char *s = PQgetvalue(res, i, 0), *t = PQgetvalue(res, i, 1);

		if (!target_matches(bc->target, s, t))
			continue;
		array_add(schemas, s);
		array_add(names, t);
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

/* Store the cuts as batch rows and move the target to hi. */
static int plan_store(batch_ctx *bc, const char *lo, const char *hi,
		      int64_t last_seq, const cuts *c)
{
	strbuf sql = { 0 };
	char seq[24], evlo[24], evhi[24], events[24], bytes[24];
	const char *params[8] = { bc->target->name, seq, lo, hi, evlo, evhi, events, bytes };
	size_t i;
	int rc = TP_OK;

	strbuf_addf(&sql, "INSERT INTO %s.batch (target, seq, lo, hi, ev_lo, ev_hi, events, bytes)"
		    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", bc->schema);
	for (i = 0; i < c->n && rc == TP_OK; i++) {
		snprintf(seq, sizeof(seq), "%" PRId64, last_seq + 1 + (int64_t)i);
		snprintf(evlo, sizeof(evlo), "%" PRId64, c->v[i].ev_lo);
		snprintf(evhi, sizeof(evhi), "%" PRId64, c->v[i].ev_hi);
		snprintf(events, sizeof(events), "%" PRId64, c->v[i].events);
		snprintf(bytes, sizeof(bytes), "%" PRId64, c->v[i].bytes);
		rc = db_execp(bc->conn, "recording a batch", sql.buf, 8, params);
		log_info("target %s: batch %s: %s events", bc->target->name, seq, events);
	}
	strbuf_reset(&sql);
	strbuf_addf(&sql, "UPDATE %s.target SET last_snap = $2::pg_catalog.pg_snapshot,"
		    " last_seq = last_seq + $3 WHERE name = $1", bc->schema);
	snprintf(seq, sizeof(seq), "%zu", c->n);
	if (rc == TP_OK) {
		const char *p2[3] = { bc->target->name, hi, seq };

		rc = db_execp(bc->conn, "moving the target on", sql.buf, 3, p2);
	}
	strbuf_free(&sql);
	return rc;
}

/* Lock the target's row; read its last snapshot and sequence. */
static int plan_begin(batch_ctx *bc, char **lo, int64_t *last_seq, char **hi)
{
	const char *params[1] = { bc->target->name };
	strbuf sql = { 0 };
	PGresult *res;
	int rc = db_exec(bc->conn, "starting a transaction", "BEGIN");

	if (rc != TP_OK)
		return rc;
	strbuf_addf(&sql, "SELECT last_snap::text, last_seq, pg_catalog.pg_current_snapshot()::text"
		    " FROM %s.target WHERE name = $1 FOR UPDATE", bc->schema);
	res = db_query(bc->conn, "reading the target's position", sql.buf, 1, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	if (PQntuples(res) != 1) {
		log_error("target %s is not installed in schema %s", bc->target->name, bc->schema);
		log_hint("run tp-install -c %s", bc->cfg->path);
		PQclear(res);
		return TP_ECONFIG;
	}
	*lo = xstrdup(PQgetvalue(res, 0, 0));
	*last_seq = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	*hi = xstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);
	return TP_OK;
}

static int plan_target(batch_ctx *bc)
{
	char *lo = NULL, *hi = NULL;
	int64_t last_seq = 0;
	strbuf schemas = { 0 }, names = { 0 };
	cuts c = { 0 };
	int rc = plan_begin(bc, &lo, &last_seq, &hi);

	if (rc == TP_OK && delta_tables(bc, lo, hi, &schemas, &names, &rc) > 0) {
		const char *params[4] = { lo, hi, schemas.buf, names.buf };

		rc = plan_cuts(bc, params, &c);
	}
	if (rc == TP_OK)
		rc = plan_store(bc, lo, hi, last_seq, &c);
	rc = tp_exit_worse(rc, db_exec(bc->conn, "ending the transaction",
				       rc == TP_OK ? "COMMIT" : "ROLLBACK"));
	free(c.v);
	free(lo);
	free(hi);
	strbuf_free(&schemas);
	strbuf_free(&names);
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

	strbuf_addf(&sql, "SELECT seq, lo::text, hi::text, ev_lo, ev_hi, events,"
		    " pg_catalog.to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
		    " FROM %s.batch WHERE target = $1 AND written IS NULL ORDER BY seq", bc->schema);
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
		    strcmp(plans[i].hi, plans[i - 1].hi) == 0)
			continue;
		rc = batch_build_group(bc, &plans[start], (size_t)(i - start));
		start = i;
	}
	free(plans);
	PQclear(res);
	return rc;
}

static int batch_target(PGconn *conn, const tp_config *cfg, const tp_target *t)
{
	batch_ctx bc = { conn, cfg, t, db_ident(conn, cfg->schema) };
	int rc = plan_target(&bc);

	/* Build even after a failed plan: earlier batches may be waiting. */
	rc = tp_exit_worse(rc, build_pending(&bc));
	free(bc.schema);
	return rc;
}

int batcher_run(PGconn *conn, const tp_config *cfg, const char *only)
{
	size_t i;
	int rc = TP_OK;

	if (only && !config_target(cfg, only)) {
		log_error("no [target %s] in %s", only, cfg->path);
		return TP_EUSAGE;
	}
	for (i = 0; i < cfg->ntargets; i++) {
		const tp_target *t = &cfg->targets[i];

		if (!only || strcmp(only, t->name) == 0)
			rc = tp_exit_worse(rc, batch_target(conn, cfg, t));
	}
	return rc;
}
