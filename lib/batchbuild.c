/*
 * batchbuild.c - write one planned batch into the outbox.
 *
 * Captured rows are record text (NEW::text); each is split into its
 * columns here and written as COPY text fields, with the table's column
 * names, types and key positions in a definition line, so the target maps
 * values by name and replays UPDATE and DELETE by the old key.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "batcher_int.h"
#include "copytext.h"
#include "db.h"
#include "filecopy.h"
#include "log.h"
#include "spool.h"
#include "tp.h"

typedef struct table_def {
	char *schema, *name;       /* as captured (ev_schema, ev_table) */
	unsigned tid;
	size_t ncols;              /* columns in the captured record */
	bool *generated;           /* recomputed on the target: not shipped */
	size_t *key_idx;           /* column index of key position 1..nkey */
	size_t nkey;
	strbuf defline;
} table_def;

typedef struct table_defs {
	table_def *v;
	size_t n;
	table_def *last;           /* events come in runs: try the last hit first */
} table_defs;

static void defs_free(table_defs *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		free(d->v[i].schema);
		free(d->v[i].name);
		free(d->v[i].generated);
		free(d->v[i].key_idx);
		strbuf_free(&d->v[i].defline);
	}
	free(d->v);
}

static table_def *defs_find(table_defs *d, const char *schema, const char *name)
{
	size_t i;

	if (d->last && strcmp(d->last->name, name) == 0 && strcmp(d->last->schema, schema) == 0)
		return d->last;
	for (i = 0; i < d->n; i++)
		if (strcmp(d->v[i].name, name) == 0 && strcmp(d->v[i].schema, schema) == 0)
			return d->last = &d->v[i];
	return NULL;
}

/* Start a definition for the table of result row i. */
static table_def *def_start(table_defs *d, const batch_ctx *bc, PGresult *res, int i)
{
	table_def *t;
	const char *schema = bc->target->apply_schema ? bc->target->apply_schema
						      : PQgetvalue(res, i, 0);

	d->v = xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
	t = &d->v[d->n];
	memset(t, 0, sizeof(*t));
	t->schema = xstrdup(PQgetvalue(res, i, 0));
	t->name = xstrdup(PQgetvalue(res, i, 1));
	t->tid = (unsigned)++d->n;
	strbuf_addf(&t->defline, "=\t%u\t", t->tid);
	copytext_field(&t->defline, schema, strlen(schema));
	strbuf_addc(&t->defline, '\t');
	copytext_field(&t->defline, t->name, strlen(t->name));
	return t;
}

/* Add result row i's column to definition t. */
static void def_column(table_def *t, PGresult *res, int i)
{
	const char *col = PQgetvalue(res, i, 2), *type = PQgetvalue(res, i, 3);
	long keypos = strtol(PQgetvalue(res, i, 4), NULL, 10);
	bool gen = *PQgetvalue(res, i, 5) == 't';

	t->generated = xrealloc(t->generated, (t->ncols + 1) * sizeof(bool));
	t->generated[t->ncols] = gen;
	if (keypos > 0) {
		if ((size_t)keypos > t->nkey) {
			t->key_idx = xrealloc(t->key_idx, (size_t)keypos * sizeof(size_t));
			t->nkey = (size_t)keypos;
		}
		t->key_idx[keypos - 1] = t->ncols;
	}
	t->ncols++;
	if (gen)
		return;
	strbuf_addc(&t->defline, '\t');
	copytext_field(&t->defline, col, strlen(col));
	strbuf_addc(&t->defline, '\t');
	copytext_field(&t->defline, type, strlen(type));
	strbuf_addf(&t->defline, "\t%ld", keypos);
}

/* Columns, types and primary-key positions of the batch's tables. */
static int defs_load(batch_ctx *bc, const char *schemas, const char *names, table_defs *d)
{
	const char *params[2] = { schemas, names };
	PGresult *res;
	table_def *t = NULL;
	int i, rc;

	res = db_query(bc->conn, "reading table definitions",
		"SELECT m.s, m.t, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),"
		"       coalesce((SELECT k.n FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
		"                 WHERE k.attnum = a.attnum), 0),"
		"       a.attgenerated <> ''"
		" FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) WITH ORDINALITY AS m(s, t, o)"
		" JOIN pg_catalog.pg_namespace n ON n.nspname = m.s"
		" JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = m.t"
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
		" LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary"
		" ORDER BY m.o, a.attnum", 2, params, &rc);
	if (!res)
		return rc;
	for (i = 0; i < PQntuples(res); i++) {
		if (!t || strcmp(t->schema, PQgetvalue(res, i, 0)) != 0 ||
		    strcmp(t->name, PQgetvalue(res, i, 1)) != 0)
			t = def_start(d, bc, res, i);
		def_column(t, res, i);
	}
	PQclear(res);
	return TP_OK;
}

typedef struct encoder {
	strbuf line, store;
	record_field *f;
	size_t fcap;
	uint64_t seq;
	const char *target;
} encoder;

/* Split record text into the table's columns; -1 when the shape differs. */
static int enc_record(encoder *e, const table_def *t, const char *rec)
{
	int n = record_parse(rec, strlen(rec), &e->store, &e->f, &e->fcap);

	if (n < 0 || (size_t)n != t->ncols) {
		log_error("batch %s/%" PRIu64 ": table %s.%s: captured row has %d columns, the table has %zu",
			  e->target, e->seq, t->schema, t->name, n, t->ncols);
		log_hint("the table changed shape after the row was captured; schema changes need tp-ddlscan");
		return -1;
	}
	return 0;
}

static void enc_field(encoder *e, size_t idx)
{
	const record_field *f = &e->f[idx];

	strbuf_addc(&e->line, '\t');
	copytext_field(&e->line, f->null ? NULL : e->store.buf + f->off, f->len);
}

static void enc_key(encoder *e, const table_def *t)
{
	size_t k;

	for (k = 0; k < t->nkey; k++)
		enc_field(e, t->key_idx[k]);
}

static void enc_row(encoder *e, const table_def *t)
{
	size_t c;

	for (c = 0; c < t->ncols; c++)
		if (!t->generated[c])
			enc_field(e, c);
}

/* One event row (op, schema, table, old, new) into e->line. */
static int enc_event(encoder *e, const table_def *t, PGresult *res)
{
	char op = *PQgetvalue(res, 0, 0);
	const char *old = PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3);
	const char *new = PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4);

	strbuf_reset(&e->line);
	strbuf_addf(&e->line, "%c\t%u", op, t->tid);
	if ((op == 'U' || op == 'D') && (!old || enc_record(e, t, old) < 0))
		return -1;
	if (op == 'U' || op == 'D')
		enc_key(e, t);
	if ((op == 'I' || op == 'U') && (!new || enc_record(e, t, new) < 0))
		return -1;
	if (op == 'I' || op == 'U')
		enc_row(e, t);
	return 0;
}

/* The events of batch p, in id order, streamed one row at a time. */
static int events_query(batch_ctx *bc, const batch_plan *p, const char *schemas,
			const char *names)
{
	char evlo[24], evhi[24];
	const char *params[6] = { p->lo, p->hi, schemas, names, evlo, evhi };
	strbuf sql = { 0 };
	int ok, nparams = 4;

	strbuf_addf(&sql, "SELECT e.ev_op, e.ev_schema, e.ev_table, e.ev_old, e.ev_new"
		    " FROM %s.event e WHERE " DELTA_SQL
		    " AND (e.ev_schema, e.ev_table) IN"
		    "     (SELECT * FROM ROWS FROM (pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[])))", bc->schema);
	/* A delta cut into several batches: only transactions ending in range. */
	if (p->ev_lo != 0 || p->ev_hi != EV_HI_OPEN) {
		strbuf_addf(&sql, " AND e.ev_txid IN (SELECT e.ev_txid FROM %s.event e WHERE " DELTA_SQL
			    " GROUP BY e.ev_txid HAVING max(e.ev_id) > $5 AND max(e.ev_id) <= $6)",
			    bc->schema);
		snprintf(evlo, sizeof(evlo), "%" PRId64, p->ev_lo);
		snprintf(evhi, sizeof(evhi), "%" PRId64, p->ev_hi);
		nparams = 6;
	}
	strbuf_adds(&sql, " ORDER BY e.ev_id");
	ok = PQsendQueryParams(bc->conn, sql.buf, nparams, NULL, params, NULL, NULL, 0) &&
	     PQsetSingleRowMode(bc->conn);
	strbuf_free(&sql);
	return ok ? TP_OK : db_report(bc->conn, NULL, "reading events");
}

/* Stream the events into the writer. Drains the connection in every case. */
static int events_write(batch_ctx *bc, const batch_plan *p, table_defs *defs,
			batch_writer *w)
{
	encoder e = { .seq = p->seq, .target = bc->target->name };
	PGresult *res;
	int rc = TP_OK;

	while ((res = PQgetResult(bc->conn)) != NULL) {
		if (PQresultStatus(res) == PGRES_SINGLE_TUPLE && rc == TP_OK) {
			const char *s = PQgetvalue(res, 0, 1), *n = PQgetvalue(res, 0, 2);
			table_def *t = defs_find(defs, s, n);

			if (!t) {
				log_error("batch %s/%" PRIu64 ": table %s.%s no longer exists",
					  bc->target->name, p->seq, s, n);
				rc = TP_EFAIL;
			} else if (enc_event(&e, t, res) < 0) {
				rc = TP_EFAIL;
			} else if (batch_writer_table(w, t->tid, t->defline.buf, t->defline.len) < 0 ||
				   batch_writer_event(w, t->tid, e.line.buf, e.line.len) < 0) {
				log_error("batch %s/%" PRIu64 ": %s", bc->target->name, p->seq,
					  batch_writer_error(w));
				rc = TP_EFAIL;
			}
		} else if (PQresultStatus(res) != PGRES_SINGLE_TUPLE &&
			   PQresultStatus(res) != PGRES_TUPLES_OK && rc == TP_OK) {
			rc = db_report(bc->conn, res, "reading events");
		}
		PQclear(res);
	}
	strbuf_free(&e.line);
	strbuf_free(&e.store);
	free(e.f);
	return rc;
}

/* The token that signs this target's batches, or none. */
static int batch_key(const tp_target *t, char **key)
{
	char err[512];

	*key = NULL;
	if (!t->token_file)
		return TP_OK;
	*key = token_read(t->token_file, err, sizeof(err));
	if (!*key) {
		log_error("target %s: %s", t->name, err);
		return TP_ECONFIG;
	}
	return TP_OK;
}

/* Write batch p's file into a temp file of dir; fd stays open for commit. */
static int batch_write(batch_ctx *bc, const batch_plan *p, int fd, table_defs *defs,
		       const char *schemas, const char *names)
{
	batch_header h = { "rows", bc->cfg->node_name, bc->target->name, p->seq,
			   (char *)p->lo, (char *)p->hi, (char *)p->created };
	char err[512], *key = NULL;
	batch_writer *w = NULL;
	int rc = batch_key(bc->target, &key);

	if (rc == TP_OK) {
		w = batch_writer_new(fd, bc->cfg->compression, &h, (unsigned char *)key,
				     key ? strlen(key) : 0, BATCH_MEMBER_CAP_DEFAULT, err, sizeof(err));
		if (!w) {
			log_error("batch %s/%" PRIu64 ": %s", bc->target->name, p->seq, err);
			rc = TP_EFAIL;
		}
	}
	if (rc == TP_OK)
		rc = events_query(bc, p, schemas, names);
	if (rc == TP_OK)
		rc = events_write(bc, p, defs, w);
	if (rc == TP_OK && batch_writer_finish(w) < 0) {
		log_error("batch %s/%" PRIu64 ": %s", bc->target->name, p->seq, batch_writer_error(w));
		rc = TP_EFAIL;
	}
	if (rc == TP_OK && batch_writer_events(w) != (uint64_t)p->events) {
		log_error("batch %s/%" PRIu64 ": wrote %" PRIu64 " events, planned %" PRId64,
			  bc->target->name, p->seq, batch_writer_events(w), p->events);
		log_hint("the target's tables or exclude globs changed since the batch was planned");
		rc = TP_EFAIL;
	}
	batch_writer_free(w);
	free(key);
	return rc;
}

static int mark_written(batch_ctx *bc, const batch_plan *p)
{
	char seq[24];
	const char *params[2] = { bc->target->name, seq };
	strbuf sql = { 0 };
	int rc;

	snprintf(seq, sizeof(seq), "%" PRIu64, p->seq);
	strbuf_addf(&sql, "UPDATE %s.batch SET written = pg_catalog.now()"
		    " WHERE target = $1 AND seq = $2", bc->schema);
	rc = db_execp(bc->conn, "marking a batch written", sql.buf, 2, params);
	strbuf_free(&sql);
	return rc;
}

int batch_build(batch_ctx *bc, const batch_plan *p)
{
	char dir[PATH_MAX], tmp[PATH_MAX], final[PATH_MAX + 64], name[64];
	strbuf schemas = { 0 }, names = { 0 };
	table_defs defs = { 0 };
	int fd = -1, rc = TP_OK;

	snprintf(dir, sizeof(dir), "%s/outbox/%s", bc->cfg->spool, bc->target->name);
	spool_batch_name(name, sizeof(name), p->seq, spool_batch_ext(bc->cfg->compression));
	snprintf(final, sizeof(final), "%s/%s", dir, name);
	if (spool_mkdirs(dir) == 0)
		fc_clean_tmp(dir, "tp-batch");  /* what a killed run left; we hold the lock */
	if ((fd = fc_tmpfile(dir, "tp-batch", tmp)) < 0) {
		log_error("outbox %s: %s", dir, strerror(errno));
		return TP_EFAIL;
	}
	if (delta_tables(bc, p->lo, p->hi, &schemas, &names, &rc) < 0 ||
	    (rc = defs_load(bc, schemas.buf, names.buf, &defs)) != TP_OK ||
	    (rc = batch_write(bc, p, fd, &defs, schemas.buf, names.buf)) != TP_OK) {
		close(fd);
		unlink(tmp);
	} else if (spool_commit(fd, tmp, final) < 0) {
		log_error("batch %s/%" PRIu64 ": writing %s: %s", bc->target->name, p->seq,
			  final, strerror(errno));
		rc = TP_EFAIL;
	} else {
		rc = mark_written(bc, p);
		log_info("target %s: wrote %s (%" PRId64 " events)", bc->target->name, final, p->events);
	}
	strbuf_free(&schemas);
	strbuf_free(&names);
	defs_free(&defs);
	return rc;
}
