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

/* One event row (batch, op, schema, table, old, new) into e->line. */
static int enc_event(encoder *e, const table_def *t, PGresult *res)
{
	char op = *PQgetvalue(res, 0, 1);
	const char *old = PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4);
	const char *new = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);

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

/*
 * The events of a group of batches cut from one delta, streamed one row at
 * a time, ordered by batch (column 0: 1..n) and then by id. Transactions
 * are assigned to batches by their last event id: width_bucket against
 * the batches' lower bounds. One query for the whole group keeps a large
 * backlog at one pass over the delta instead of one pass per batch.
 */
static int events_query(batch_ctx *bc, const batch_plan *g, size_t n,
			const char *schemas, const char *names)
{
	const char *params[7] = { g[0].lo, g[0].hi, schemas, names };
	char evlo[24], evhi[24];
	strbuf sql = { 0 }, bounds = { 0 };
	int ok, nparams = 4;
	size_t i;

	if (n == 1 && g[0].ev_lo == 0 && g[0].ev_hi == EV_HI_OPEN) {
		/* the common case: the whole delta is one batch */
		strbuf_addf(&sql, "SELECT 1, e.ev_op, e.ev_schema, e.ev_table, e.ev_old, e.ev_new"
			    " FROM %s.event e WHERE " DELTA_SQL, bc->schema);
	} else {
		strbuf_adds(&bounds, "{");
		for (i = 0; i < n; i++)
			strbuf_addf(&bounds, "%s%" PRId64, i ? "," : "", g[i].ev_lo + 1);
		strbuf_adds(&bounds, "}");
		snprintf(evlo, sizeof(evlo), "%" PRId64, g[0].ev_lo);
		snprintf(evhi, sizeof(evhi), "%" PRId64, g[n - 1].ev_hi);
		params[4] = bounds.buf;
		params[5] = evlo;
		params[6] = evhi;
		nparams = 7;
		strbuf_addf(&sql, "SELECT b.k, e.ev_op, e.ev_schema, e.ev_table, e.ev_old, e.ev_new"
			    " FROM %s.event e JOIN"
			    " (SELECT e.ev_txid, pg_catalog.width_bucket(max(e.ev_id), $5::int8[]) AS k"
			    "  FROM %s.event e WHERE " DELTA_SQL " GROUP BY e.ev_txid"
			    "  HAVING max(e.ev_id) > $6 AND max(e.ev_id) <= $7) b ON b.ev_txid = e.ev_txid"
			    " WHERE " DELTA_SQL, bc->schema, bc->schema);
	}
	strbuf_adds(&sql, " AND (e.ev_schema, e.ev_table) IN"
		    " (SELECT * FROM ROWS FROM (pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[])))"
		    " ORDER BY 1, e.ev_id");
	ok = PQsendQueryParams(bc->conn, sql.buf, nparams, NULL, params, NULL, NULL, 0) &&
	     PQsetSingleRowMode(bc->conn);
	strbuf_free(&sql);
	strbuf_free(&bounds);
	return ok ? TP_OK : db_report(bc->conn, NULL, "reading events");
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

/* One batch file being written. */
typedef struct out_file {
	const batch_plan *p;
	char tmp[PATH_MAX], final[PATH_MAX + 64];
	int fd;
	batch_writer *w;
	bool skip;                 /* already in the outbox: consume, don't write */
} out_file;

typedef struct group_build {
	batch_ctx *bc;
	const batch_plan *g;
	size_t n;
	char dir[PATH_MAX];
	char *key;
	table_defs defs;
	encoder enc;
	out_file cur;
	size_t next;               /* index of the next batch to open */
	strbuf done;               /* seqs written, as an int8[] literal */
} group_build;

static int out_open(group_build *gb, const batch_plan *p)
{
	batch_header h = { "rows", gb->bc->cfg->node_name, gb->bc->target->name, p->seq,
			   (char *)p->lo, (char *)p->hi, (char *)p->created };
	out_file *o = &gb->cur;
	char name[64], err[512];

	memset(o, 0, sizeof(*o));
	o->p = p;
	o->fd = -1;
	spool_batch_name(name, sizeof(name), p->seq, spool_batch_ext(gb->bc->cfg->compression));
	snprintf(o->final, sizeof(o->final), "%s/%s", gb->dir, name);
	/* A killed run may have renamed it into place before marking it. */
	if (access(o->final, F_OK) == 0) {
		o->skip = true;
		return TP_OK;
	}
	if ((o->fd = fc_tmpfile(gb->dir, "tp-batch", o->tmp)) < 0) {
		log_error("outbox %s: %s", gb->dir, strerror(errno));
		return TP_EFAIL;
	}
	o->w = batch_writer_new(o->fd, gb->bc->cfg->compression, &h, (unsigned char *)gb->key,
				gb->key ? strlen(gb->key) : 0, BATCH_MEMBER_CAP_DEFAULT, err, sizeof(err));
	if (!o->w) {
		log_error("batch %s/%" PRIu64 ": %s", gb->bc->target->name, p->seq, err);
		return TP_EFAIL;
	}
	return TP_OK;
}

static int out_fail(out_file *o, int rc)
{
	batch_writer_free(o->w);
	o->w = NULL;
	if (o->fd >= 0) {
		close(o->fd);
		unlink(o->tmp);
	}
	o->fd = -1;
	o->p = NULL;
	return rc;
}

/* Finish the current file: manifest, count check, durable rename. */
static int out_close(group_build *gb)
{
	out_file *o = &gb->cur;
	const char *t = gb->bc->target->name;

	if (!o->p)
		return TP_OK;
	if (!o->skip) {
		if (batch_writer_finish(o->w) < 0) {
			log_error("batch %s/%" PRIu64 ": %s", t, o->p->seq, batch_writer_error(o->w));
			return out_fail(o, TP_EFAIL);
		}
		if (batch_writer_events(o->w) != (uint64_t)o->p->events) {
			log_error("batch %s/%" PRIu64 ": wrote %" PRIu64 " events, planned %" PRId64,
				  t, o->p->seq, batch_writer_events(o->w), o->p->events);
			log_hint("the target's tables or exclude globs changed since the batch was planned");
			return out_fail(o, TP_EFAIL);
		}
		batch_writer_free(o->w);
		o->w = NULL;
		if (spool_commit(o->fd, o->tmp, o->final) < 0) {
			log_error("batch %s/%" PRIu64 ": writing %s: %s", t, o->p->seq,
				  o->final, strerror(errno));
			o->fd = -1;
			o->p = NULL;
			return TP_EFAIL;
		}
		log_info("target %s: wrote %s (%" PRId64 " events)", t, o->final, o->p->events);
	}
	strbuf_addf(&gb->done, "%s%" PRIu64, gb->done.len ? "," : "{", o->p->seq);
	o->fd = -1;
	o->p = NULL;
	return TP_OK;
}

/* Move on to batch number k (1-based in the group), closing earlier ones. */
static int out_advance(group_build *gb, size_t k)
{
	int rc = TP_OK;

	while (rc == TP_OK && gb->next < k) {
		rc = out_close(gb);
		if (rc == TP_OK)
			rc = out_open(gb, &gb->g[gb->next++]);
	}
	return rc;
}

/* One streamed event row: route it to its batch's file. */
static int out_event(group_build *gb, PGresult *res)
{
	size_t k = strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	const char *s = PQgetvalue(res, 0, 2), *n = PQgetvalue(res, 0, 3);
	table_def *t;
	int rc;

	if (k < gb->next || k > gb->n) {
		log_error("target %s: event out of batch order (%zu after %zu)",
			  gb->bc->target->name, k, gb->next);
		return TP_EFAIL;
	}
	if ((rc = out_advance(gb, k)) != TP_OK || gb->cur.skip)
		return rc;
	t = defs_find(&gb->defs, s, n);
	gb->enc.seq = gb->cur.p->seq;
	if (!t) {
		log_error("batch %s/%" PRIu64 ": table %s.%s no longer exists",
			  gb->bc->target->name, gb->cur.p->seq, s, n);
		return TP_EFAIL;
	}
	if (enc_event(&gb->enc, t, res) < 0)
		return TP_EFAIL;
	if (batch_writer_table(gb->cur.w, t->tid, t->defline.buf, t->defline.len) < 0 ||
	    batch_writer_event(gb->cur.w, t->tid, gb->enc.line.buf, gb->enc.line.len) < 0) {
		log_error("batch %s/%" PRIu64 ": %s", gb->bc->target->name, gb->cur.p->seq,
			  batch_writer_error(gb->cur.w));
		return TP_EFAIL;
	}
	return TP_OK;
}

/* Stream the group's events into its files. Drains the connection. */
static int group_stream(group_build *gb)
{
	PGresult *res;
	int rc = TP_OK;

	while ((res = PQgetResult(gb->bc->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_SINGLE_TUPLE && rc == TP_OK)
			rc = out_event(gb, res);
		else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == TP_OK)
			rc = db_report(gb->bc->conn, res, "reading events");
		PQclear(res);
	}
	if (rc == TP_OK)
		rc = out_advance(gb, gb->n);
	if (rc == TP_OK)
		rc = out_close(gb);
	if (rc != TP_OK && gb->cur.p)
		out_fail(&gb->cur, rc);
	return rc;
}

static int mark_written(batch_ctx *bc, const char *seqs)
{
	const char *params[2] = { bc->target->name, seqs };
	strbuf sql = { 0 };
	int rc;

	strbuf_addf(&sql, "UPDATE %s.batch SET written = pg_catalog.now()"
		    " WHERE target = $1 AND seq = ANY ($2::int8[])", bc->schema);
	rc = db_execp(bc->conn, "marking batches written", sql.buf, 2, params);
	strbuf_free(&sql);
	return rc;
}

int batch_build_group(batch_ctx *bc, const batch_plan *g, size_t n)
{
	group_build gb = { .bc = bc, .g = g, .n = n };
	strbuf schemas = { 0 }, names = { 0 };
	int rc;

	gb.enc.target = bc->target->name;
	snprintf(gb.dir, sizeof(gb.dir), "%s/outbox/%s", bc->cfg->spool, bc->target->name);
	if (spool_mkdirs(gb.dir) < 0) {
		log_error("outbox %s: %s", gb.dir, strerror(errno));
		return TP_EFAIL;
	}
	fc_clean_tmp(gb.dir, "tp-batch");      /* what a killed run left; we hold the lock */
	rc = batch_key(bc->target, &gb.key);
	if (rc == TP_OK && delta_tables(bc, g[0].lo, g[0].hi, &schemas, &names, &rc) >= 0 &&
	    (rc = defs_load(bc, schemas.buf, names.buf, &gb.defs)) == TP_OK &&
	    (rc = events_query(bc, g, n, schemas.buf, names.buf)) == TP_OK)
		rc = group_stream(&gb);
	/* Mark what reached the outbox, even when a later batch failed. */
	if (gb.done.len) {
		strbuf_addc(&gb.done, '}');
		rc = tp_exit_worse(rc, mark_written(bc, gb.done.buf));
	}
	free(gb.key);
	strbuf_free(&gb.done);
	strbuf_free(&gb.enc.line);
	strbuf_free(&gb.enc.store);
	free(gb.enc.f);
	strbuf_free(&schemas);
	strbuf_free(&names);
	defs_free(&gb.defs);
	return rc;
}
