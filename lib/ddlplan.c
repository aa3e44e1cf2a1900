/*
 * ddlplan.c - the schema side of tp-batch's plan: describe the catalog in
 * the plan's snapshot, diff it against the target's stored description,
 * keep the versions batches refer to, and copy the tables that appeared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ddl.h"
#include "log.h"
#include "tp.h"

void ddl_delta_free(ddl_delta *d)
{
	free(d->cat_lo);
	free(d->cat_hi);
	if (d->hi != d->lo)
		ddl_cat_free(d->hi);
	ddl_cat_free(d->lo);
	strbuf_free(&d->pre);
	strbuf_free(&d->post);
	strbuf_free(&d->ev_schemas);
	strbuf_free(&d->ev_names);
	memset(d, 0, sizeof *d);
}

/* Store a description; its id into *id (malloc'd). */
static int store_descr(PGconn *conn, const tp_target *t, const char *schema_q,
		       const char *descr, char **id)
{
	const char *params[2] = { t->name, descr };
	strbuf sql = { 0 };
	PGresult *res;
	int rc;

	strbuf_addf(&sql, "WITH c AS (INSERT INTO %s.catalog (target, descr) VALUES ($1, $2)"
		    " RETURNING id) UPDATE %s.target t SET catalog = c.id FROM c"
		    " WHERE t.name = $1 RETURNING c.id", schema_q, schema_q);
	res = db_query(conn, "storing the catalog description", sql.buf, 2, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	*id = xstrdup(PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return TP_OK;
}

int ddl_baseline(PGconn *conn, const tp_config *cfg, const tp_target *t,
		 const char *schema_q)
{
	char *descr = NULL, *id = NULL;
	int rc = ddl_describe(conn, cfg, t, &descr);

	if (rc == TP_OK)
		rc = store_descr(conn, t, schema_q, descr, &id);
	free(descr);
	free(id);
	return rc;
}

/* Versions that neither the target nor any batch refers to. */
static int drop_unused(PGconn *conn, const tp_target *t, const char *schema_q,
		       const char *keep1, const char *keep2)
{
	const char *params[3] = { t->name, keep1, keep2 };
	strbuf sql = { 0 };
	int rc;

	strbuf_addf(&sql, "DELETE FROM %s.catalog c WHERE c.target = $1"
		    " AND c.id <> $2::bigint AND c.id <> $3::bigint"
		    " AND NOT EXISTS (SELECT 1 FROM %s.batch b WHERE b.target = c.target"
		    "   AND (b.cat_lo = c.id OR b.cat_hi = c.id))", schema_q, schema_q);
	rc = db_execp(conn, "dropping old catalog descriptions", sql.buf, 3, params);
	strbuf_free(&sql);
	return rc;
}

static int parse_into(const tp_target *t, const char *descr, ddl_cat **out)
{
	if ((*out = ddl_cat_parse(descr)))
		return TP_OK;
	log_error("target %s: its stored catalog description is malformed", t->name);
	return TP_EFAIL;
}

/* The target's stored version: id and text (NULLs when none yet). */
static int read_stored(PGconn *conn, const tp_target *t, const char *schema_q,
		       char **id, char **descr)
{
	const char *params[1] = { t->name };
	strbuf sql = { 0 };
	PGresult *res;
	int rc;

	strbuf_addf(&sql, "SELECT t.catalog, c.descr FROM %s.target t"
		    " LEFT JOIN %s.catalog c ON c.id = t.catalog WHERE t.name = $1",
		    schema_q, schema_q);
	res = db_query(conn, "reading the catalog description", sql.buf, 1, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	*id = *descr = NULL;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
		*id = xstrdup(PQgetvalue(res, 0, 0));
		*descr = xstrdup(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return TP_OK;
}

int ddl_plan(PGconn *conn, const tp_config *cfg, const tp_target *t,
	     const char *schema_q, ddl_delta *d)
{
	char *old = NULL, *now = NULL, what[300];
	int rc;

	memset(d, 0, sizeof *d);
	if (cfg->ddl == TP_DDL_OFF)
		return TP_OK;
	/* event-triggers: the markers say what happened (ddl_plan_markers) */
	d->events = cfg->ddl == TP_DDL_EVENT_TRIGGERS;
	rc = read_stored(conn, t, schema_q, &d->cat_lo, &old);
	if (rc == TP_OK)
		rc = ddl_describe(conn, cfg, t, &now);
	if (rc == TP_OK && old && strcmp(old, now) == 0) {
		d->cat_hi = xstrdup(d->cat_lo);
		rc = parse_into(t, now, &d->hi);
		d->lo = d->hi;
	} else if (rc == TP_OK) {
		/* changed, or nothing stored yet (then this is the baseline) */
		rc = store_descr(conn, t, schema_q, now, &d->cat_hi);
		if (rc == TP_OK)
			rc = parse_into(t, now, &d->hi);
		if (rc == TP_OK && old)
			rc = parse_into(t, old, &d->lo);
		if (rc == TP_OK && !old) {
			d->lo = d->hi;
			d->cat_lo = xstrdup(d->cat_hi);
		}
		if (rc == TP_OK && old && !d->events &&
		    ddl_names_ambiguous(d->lo, d->hi, what, sizeof what)) {
			log_error("target %s: table %s was renamed and another table took its name"
				  " between two cuts: their changes cannot be told apart", t->name, what);
			log_hint("nothing was batched; see tp-ddlscan(1), AMBIGUOUS CHANGES");
			rc = TP_EFAIL;
		}
		if (rc == TP_OK && old && !d->events) {
			ddl_diff(d->lo, d->hi, &d->pre, &d->post);
			log_info("target %s: schema changed", t->name);
		}
	}
	if (rc == TP_OK)
		rc = drop_unused(conn, t, schema_q, d->cat_lo, d->cat_hi);
	d->on = rc == TP_OK;
	free(old);
	free(now);
	return rc;
}

int ddl_copy_new(PGconn *conn, const tp_target *t, const char *schema_q,
		 const ddl_delta *d, int64_t seq)
{
	char seqs[24];
	int rc = TP_OK;

	snprintf(seqs, sizeof seqs, "%lld", (long long)seq);
	for (size_t i = 0; d->on && i < d->hi->nrels && rc == TP_OK; i++) {
		const ddl_rel *r = &d->hi->rels[i];
		const char *params[4] = { t->name, seqs, r->schema, r->name };
		char *rel;
		strbuf sql = { 0 };

		if (ddl_rel_find(d->lo, r->oid))
			continue;
		rel = db_qualified(conn, r->schema, r->name);
		/* as of hi: this runs in the plan's REPEATABLE READ snapshot */
		strbuf_addf(&sql, "INSERT INTO %s.copy (target, seq, rel_schema, rel_name, ord, rec)"
			    " SELECT $1, $2, $3, $4, pg_catalog.row_number() OVER (), x::text"
			    " FROM %s x", schema_q, rel);
		log_info("target %s: new table %s: copying its rows", t->name, rel);
		rc = db_execp(conn, "copying a new table", sql.buf, 4, params);
		strbuf_free(&sql);
		free(rel);
	}
	return rc;
}

int ddl_load(PGconn *conn, const char *schema_q, const char *id, ddl_cat **out)
{
	char *text = NULL;
	int rc = ddl_load_text(conn, schema_q, id, &text);

	*out = rc == TP_OK ? ddl_cat_parse(text) : NULL;
	free(text);
	if (rc == TP_OK && !*out) {
		log_error("catalog description %s is malformed", id);
		rc = TP_EFAIL;
	}
	return rc;
}
