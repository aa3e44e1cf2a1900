/*
 * ddlmark.c - ddl = event-triggers: the schema changes of a delta, from
 * the descriptions its transactions recorded (sql/ddlevent.sql).
 *
 * Each marker is an event (ev_op 'S') holding describe()'s text as it
 * stood right after one schema change, inside the changing transaction.
 * Markers are totally ordered (ddl_clock serializes the transactions that
 * write them) and each sees every change before it, so the descriptions
 * in ev_id order are the catalog's history: between two markers, the
 * captured rows have exactly the shape of the first. tp-batch writes the
 * diff of two consecutive descriptions where the second marker stands in
 * the stream (batchbuild.c), which is exact where ddl = diff has to guess.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher_int.h"
#include "db.h"
#include "ddl.h"
#include "log.h"
#include "tp.h"

void ddl_names_add(const ddl_cat *c, strbuf *schemas, strbuf *names)
{
	for (size_t i = 0; i < c->nrels; i++) {
		db_array_add(schemas, c->rels[i].schema);
		db_array_add(names, c->rels[i].name);
	}
}

/* Parse text and add its tables' names. */
static int names_of(const tp_target *t, const char *text, strbuf *schemas, strbuf *names)
{
	ddl_cat *c = ddl_cat_parse(text);

	if (!c) {
		log_error("target %s: a recorded catalog description is malformed", t->name);
		return TP_EFAIL;
	}
	ddl_names_add(c, schemas, names);
	ddl_cat_free(c);
	return TP_OK;
}

/* Send the query for the markers, streamed one row at a time. */
static int markers_query(PGconn *conn, const char *schema_q, const char *lo_snap,
			 const char *hi_snap, int64_t ev_lo, int64_t ev_hi)
{
	char evlo[24], evhi[24];
	const char *params[4] = { lo_snap, hi_snap, evlo, evhi };
	strbuf sql = { 0 };
	bool all = ev_lo == 0 && ev_hi == EV_HI_OPEN;
	int ok;

	snprintf(evlo, sizeof evlo, "%" PRId64, ev_lo);
	snprintf(evhi, sizeof evhi, "%" PRId64, ev_hi);
	strbuf_addf(&sql, "SELECT e.ev_new FROM %s.event e WHERE " DELTA_SQL
		    " AND e.ev_op = 'S'", schema_q);
	if (!all)
		strbuf_addf(&sql, " AND e.ev_txid IN (SELECT e.ev_txid FROM %s.event e WHERE "
			    DELTA_SQL " GROUP BY e.ev_txid HAVING max(e.ev_id) > $3::int8"
			    " AND max(e.ev_id) <= $4::int8)", schema_q);
	strbuf_adds(&sql, " ORDER BY e.ev_id");
	ok = PQsendQueryParams(conn, sql.buf, all ? 2 : 4, NULL, params, NULL, NULL, 0) &&
	     PQsetSingleRowMode(conn);
	strbuf_free(&sql);
	return ok ? TP_OK : db_report(conn, NULL, "reading schema change markers");
}

int ddl_walk_markers(PGconn *conn, const tp_target *t, const char *schema_q,
		     const char *lo_snap, const char *hi_snap, int64_t ev_lo, int64_t ev_hi,
		     char **text, bool *changed, strbuf *schemas, strbuf *names)
{
	PGresult *res;
	int rc = markers_query(conn, schema_q, lo_snap, hi_snap, ev_lo, ev_hi);

	if (rc == TP_OK && schemas)
		rc = names_of(t, *text, schemas, names);
	while ((res = PQgetResult(conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);
		char *next = NULL;

		if (st == PGRES_SINGLE_TUPLE && rc == TP_OK)
			rc = ddl_filter(PQgetvalue(res, 0, 0), t, &next);
		else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == TP_OK)
			rc = db_report(conn, res, "reading schema change markers");
		PQclear(res);
		if (!next)
			continue;
		if (rc == TP_OK && strcmp(next, *text) != 0) {
			*changed = true;
			if (schemas)
				rc = names_of(t, next, schemas, names);
			free(*text);
			*text = next;
		} else {
			free(next);
		}
	}
	return rc;
}

int ddl_load_text(PGconn *conn, const char *schema_q, const char *id, char **out)
{
	const char *params[1] = { id };
	strbuf sql = { 0 };
	PGresult *res;
	int rc;

	strbuf_addf(&sql, "SELECT descr FROM %s.catalog WHERE id = $1", schema_q);
	res = db_query(conn, "reading a catalog description", sql.buf, 1, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	if (PQntuples(res) != 1) {
		log_error("catalog description %s is missing", id);
		rc = TP_EFAIL;
	} else {
		*out = xstrdup(PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return rc;
}

/*
 * Are both event triggers there and enabled? Without them schema changes
 * only show at the cut (d->post), and rows written in a new shape then
 * fail the build loudly: say why ahead.
 */
static int check_triggers(PGconn *conn, const tp_target *t, const char *schema_q)
{
	strbuf sql = { 0 };
	PGresult *res;
	int rc;

	strbuf_addf(&sql, "SELECT count(*) FROM pg_catalog.pg_event_trigger e"
		    " WHERE e.evtenabled <> 'D' AND e.evtfoid IN"
		    " ('%s.ddl_end()'::pg_catalog.regprocedure, '%s.ddl_drop()'::pg_catalog.regprocedure)",
		    schema_q, schema_q);
	res = db_query(conn, "looking for the event triggers", sql.buf, 0, NULL, &rc);
	strbuf_free(&sql);
	if (!res) {
		log_hint("ddl = event-triggers: run tp-install as a superuser first");
		return rc;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "2") != 0)
		log_warn("target %s: ddl = event-triggers, but the event triggers are missing or"
			 " disabled: schema changes are only seen at the cut", t->name);
	PQclear(res);
	return TP_OK;
}

int ddl_plan_markers(PGconn *conn, const tp_target *t, const char *schema_q,
		     const char *lo_snap, const char *hi_snap, ddl_delta *d)
{
	char *text = NULL;
	ddl_cat *last = NULL;
	strbuf pre = { 0 };
	int rc = check_triggers(conn, t, schema_q);

	if (rc == TP_OK)
		rc = ddl_load_text(conn, schema_q, d->cat_lo, &text);

	if (rc == TP_OK)
		rc = ddl_walk_markers(conn, t, schema_q, lo_snap, hi_snap, 0, EV_HI_OPEN, &text,
				      &d->inline_ddl, &d->ev_schemas, &d->ev_names);
	if (rc == TP_OK && !(last = ddl_cat_parse(text))) {
		log_error("target %s: a recorded catalog description is malformed", t->name);
		rc = TP_EFAIL;
	}
	if (rc == TP_OK) {
		/* what the markers did not record goes at the end of the delta */
		strbuf post = { 0 };

		ddl_diff(last, d->hi, &pre, &post);
		if (post.len)
			strbuf_add(&pre, post.buf, post.len);
		strbuf_free(&post);
		strbuf_free(&d->post);
		d->post = pre;
		pre = (strbuf){ 0 };
		if (d->lo != d->hi)
			ddl_cat_free(d->lo);
		d->lo = last;
		last = NULL;
		if (d->inline_ddl || d->post.len)
			log_info("target %s: schema changed", t->name);
	}
	strbuf_adds(&d->ev_schemas, d->ev_schemas.len ? "}" : "{}");
	strbuf_adds(&d->ev_names, d->ev_names.len ? "}" : "{}");
	ddl_cat_free(last);
	strbuf_free(&pre);
	free(text);
	return rc;
}
