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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "batcher_int.h"
#include "copytext.h"
#include "db.h"
#include "ddl.h"
#include "filecopy.h"
#include "log.h"
#include "spool.h"
#include "tp.h"

/*
 * One shape of a table: the columns of a captured record and how they are
 * shipped. With schema changes tracked a table may have several (rows
 * captured before and after a column change in one delta), told apart by
 * their field count, and several names (renamed in the delta): one entry
 * per name and shape, entries of one shape sharing the TID.
 */
typedef struct table_def {
	char *schema, *name;       /* as captured (ev_schema, ev_table) */
	unsigned tid;
	size_t ncols;              /* columns in the captured record */
	bool *generated;           /* not shipped: generated, or dropped since */
	size_t *key_idx;           /* column index of key position 1..nkey (SIZE_MAX: none) */
	size_t nkey;
	bool ambiguous;            /* another shape has as many fields */
	bool is_new;               /* new in the delta: copied, its events not shipped */
	unsigned sid;              /* shape number; tid 0 until first used (def_ready) */
	strbuf defline;            /* while tid is 0: the definition after its TID */
} table_def;

typedef struct table_defs {
	table_def *v;
	size_t n;
	unsigned ntid, nsid;
	unsigned *sid_tid;         /* TID given to each shape number, 0: none yet */
	unsigned ntid_cap;         /* entries of sid_tid zeroed so far */
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
	free(d->sid_tid);
}

/* Forget every shape, but keep counting TIDs: the file knows the old ones. */
static void defs_reset(table_defs *d)
{
	unsigned ntid = d->ntid;

	defs_free(d);
	memset(d, 0, sizeof *d);
	d->ntid = ntid;
}

static bool def_is(const table_def *t, const char *schema, const char *name, bool is_new)
{
	return t->is_new == is_new && strcmp(t->name, name) == 0 && strcmp(t->schema, schema) == 0;
}

/*
 * The shape of table schema.name whose records have nfields fields; the
 * first shape of the table when nfields is 0. NULL when there is none.
 */
static table_def *defs_pick(table_defs *d, const char *schema, const char *name,
			    size_t nfields, bool is_new)
{
	size_t i;

	if (d->last && def_is(d->last, schema, name, is_new) &&
	    (!nfields || d->last->ncols == nfields))
		return d->last;
	for (i = 0; i < d->n; i++)
		if (def_is(&d->v[i], schema, name, is_new) && (!nfields || d->v[i].ncols == nfields))
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
	d->n++;
	t->tid = ++d->ntid;
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

/* ---- shapes from catalog descriptions (ddl.h) ---- */

/*
 * The key rows are found by: hi's primary key, plus lo's key columns that
 * hi still has when the key changed in the delta. A row captured before
 * the change is unique by lo's key, one captured after by hi's, and
 * either is matched exactly by the values of both.
 */
typedef struct shape_key {
	int att[2 * 32 + 1];    /* INDEX_MAX_KEYS is 32 */
	size_t n;
} shape_key;

static void key_of(shape_key *k, const ddl_rel *o, const ddl_rel *r)
{
	k->n = 0;
	for (size_t i = 0; i < r->npk && k->n < 32; i++)
		k->att[k->n++] = r->pk[i];
	for (size_t i = 0; o && i < o->npk && k->n < 64; i++) {
		bool have = false;
		for (size_t j = 0; j < k->n; j++)
			have = have || k->att[j] == o->pk[i];
		if (!have && ddl_col_find(r, o->pk[i]))
			k->att[k->n++] = o->pk[i];
	}
}

/* The position of attnum in the key, 1..k, or 0. */
static long pk_pos(const shape_key *k, int attnum)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->att[i] == attnum)
			return (long)i + 1;
	return 0;
}

/*
 * A shape of hi table r: records of the attributes att[0..n), shipped
 * under hi's names and types (an attribute hi no longer has, or a
 * generated one, is left out), keyed by hi's primary key. Registered
 * under the event name ev_schema.ev_name; tid 0 takes a new one.
 */
static table_def *shape_add(table_defs *d, const batch_ctx *bc, const ddl_rel *r,
			    const shape_key *key, const char *ev_schema, const char *ev_name,
			    const int *att, size_t n, unsigned tid)
{
	const char *schema = bc->target->apply_schema ? bc->target->apply_schema : r->schema;
	table_def *t;

	d->v = xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
	t = &d->v[d->n++];
	memset(t, 0, sizeof(*t));
	t->schema = xstrdup(ev_schema);
	t->name = xstrdup(ev_name);
	t->sid = tid ? tid : ++d->nsid;
	t->ncols = n;
	t->generated = xcalloc(n ? n : 1, sizeof(bool));
	t->nkey = key->n;
	t->key_idx = xcalloc(key->n ? key->n : 1, sizeof(size_t));
	for (size_t k = 0; k < key->n; k++)
		t->key_idx[k] = SIZE_MAX;
	copytext_field(&t->defline, schema, strlen(schema));
	strbuf_addc(&t->defline, '\t');
	copytext_field(&t->defline, r->name, strlen(r->name));
	for (size_t i = 0; i < n; i++) {
		const ddl_col *c = ddl_col_find(r, att[i]);
		long kp = pk_pos(key, att[i]);

		t->generated[i] = !c || c->generated;
		if (kp > 0)
			t->key_idx[kp - 1] = i;
		if (t->generated[i])
			continue;
		strbuf_addc(&t->defline, '\t');
		copytext_field(&t->defline, c->name, strlen(c->name));
		strbuf_addc(&t->defline, '\t');
		copytext_field(&t->defline, c->type, strlen(c->type));
		strbuf_addf(&t->defline, "\t%ld", kp);
	}
	return t;
}

/* Register a shape under hi's name and, if the table was renamed, lo's too. */
static void shape_both(table_defs *d, const batch_ctx *bc, const ddl_rel *o, const ddl_rel *r,
		       const int *att, size_t n, bool ambiguous)
{
	shape_key key;
	table_def *t;
	unsigned tid;

	key_of(&key, o, r);
	t = shape_add(d, bc, r, &key, r->schema, r->name, att, n, 0);
	tid = t->sid;
	t->ambiguous = ambiguous;
	if (strcmp(o->schema, r->schema) != 0 || strcmp(o->name, r->name) != 0)
		shape_add(d, bc, r, &key, o->schema, o->name, att, n, tid)->ambiguous = ambiguous;
}

static size_t rel_atts(const ddl_rel *r, int *att)
{
	for (size_t i = 0; i < r->ncols; i++)
		att[i] = r->cols[i].attnum;
	return r->ncols;
}

/*
 * The shapes a row of a table kept through the delta can have: hi's,
 * lo's, and, when the delta only added columns, lo's plus each prefix of
 * the added ones (columns are added in attnum order). Two shapes with as
 * many fields cannot be told apart: such rows fail loudly at build time.
 */
static void shapes_kept(table_defs *d, const batch_ctx *bc, const ddl_rel *o, const ddl_rel *r)
{
	size_t cap = (size_t)(r->natts > o->natts ? r->natts : o->natts) + 1;
	int *hi = xcalloc(cap, sizeof(int)), *lo = xcalloc(cap, sizeof(int));
	size_t nh = rel_atts(r, hi), nl = rel_atts(o, lo), kept = 0;
	bool same = nh == nl && memcmp(hi, lo, nh * sizeof(int)) == 0;

	shape_both(d, bc, o, r, hi, nh, !same && nh == nl);
	if (!same && nh != nl)
		shape_both(d, bc, o, r, lo, nl, false);
	while (kept < nh && kept < nl && hi[kept] == lo[kept])
		kept++;
	/* only adds: lo is a prefix of hi and no added column was dropped again */
	if (!same && kept == nl && (size_t)(r->natts - o->natts) == nh - nl)
		for (size_t k = nl + 1; k < nh; k++)
			shape_both(d, bc, o, r, hi, k, false);
	free(hi);
	free(lo);
}

static void defs_from_cat(table_defs *d, const batch_ctx *bc, const ddl_cat *lo,
			  const ddl_cat *hi)
{
	for (size_t i = 0; i < hi->nrels; i++) {
		const ddl_rel *r = &hi->rels[i], *o = ddl_rel_find(lo, r->oid);
		int *att;

		if (o) {
			shapes_kept(d, bc, o, r);
			continue;
		}
		shape_key key;

		key_of(&key, NULL, r);
		att = xcalloc(r->ncols + 1, sizeof(int));
		shape_add(d, bc, r, &key, r->schema, r->name, att, rel_atts(r, att), 0)->is_new = true;
		free(att);
	}
}

/*
 * Give shape t its TID on first use, so TIDs count up in the order tables
 * appear in the batch, whatever the number of shapes known. Entries of
 * one shape (a renamed table's two names) share it.
 */
static void def_ready(table_defs *d, const table_def *ct)
{
	table_def *t = (table_def *)ct;
	strbuf line = { 0 };

	if (t->tid)
		return;
	d->sid_tid = xrealloc(d->sid_tid, (d->nsid + 1) * sizeof(*d->sid_tid));
	if (d->nsid + 1 > d->ntid_cap) {
		memset(d->sid_tid + d->ntid_cap, 0, (d->nsid + 1 - d->ntid_cap) * sizeof(*d->sid_tid));
		d->ntid_cap = d->nsid + 1;
	}
	if (!d->sid_tid[t->sid])
		d->sid_tid[t->sid] = ++d->ntid;
	t->tid = d->sid_tid[t->sid];
	strbuf_addf(&line, "=\t%u\t", t->tid);
	strbuf_add(&line, t->defline.buf, t->defline.len);
	strbuf_free(&t->defline);
	t->defline = line;
}

typedef struct encoder {
	strbuf line, keys, store;
	record_field *f;
	size_t fcap;
	uint64_t seq;
	const char *target;
} encoder;

/*
 * Split the record text of a row of schema.name and pick the table's shape
 * with as many fields. NULL (logged) when no shape, or more than one, fits.
 */
static const table_def *enc_record(encoder *e, table_defs *d, const char *schema,
				   const char *name, bool is_new, const char *rec)
{
	int n = record_parse(rec, strlen(rec), &e->store, &e->f, &e->fcap);
	const table_def *t = n > 0 ? defs_pick(d, schema, name, (size_t)n, is_new) : NULL;
	const table_def *any;

	if (t && !t->ambiguous)
		return t;
	if (t) {
		log_error("batch %s/%" PRIu64 ": table %s.%s: a captured row with %d columns fits"
			  " two shapes of the table (columns dropped and added in one delta)",
			  e->target, e->seq, schema, name, n);
		log_hint("run tp-batch (or tp-ddlscan) between such changes, or use ddl = event-triggers");
		return NULL;
	}
	if (!(any = defs_pick(d, schema, name, 0, is_new))) {
		log_error("batch %s/%" PRIu64 ": table %s.%s no longer exists", e->target, e->seq,
			  schema, name);
		return NULL;
	}
	log_error("batch %s/%" PRIu64 ": table %s.%s: captured row has %d columns, the table has %zu",
		  e->target, e->seq, schema, name, n, any->ncols);
	log_hint("the table changed shape in a way the catalog diff cannot follow;"
		 " with ddl = off, schema changes are not tracked");
	return NULL;
}

static void enc_field(encoder *e, strbuf *out, size_t idx)
{
	const record_field *f = &e->f[idx];

	strbuf_addc(out, '\t');
	copytext_field(out, f->null ? NULL : e->store.buf + f->off, f->len);
}

static int enc_key(encoder *e, const table_def *t)
{
	size_t k;

	strbuf_reset(&e->keys);
	for (k = 0; k < t->nkey; k++) {
		if (t->key_idx[k] == SIZE_MAX) {
			log_error("batch %s/%" PRIu64 ": table %s.%s: a captured row lacks its key column %zu",
				  e->target, e->seq, t->schema, t->name, k + 1);
			return -1;
		}
		enc_field(e, &e->keys, t->key_idx[k]);
	}
	return 0;
}

static void enc_row(encoder *e, const table_def *t)
{
	size_t c;

	for (c = 0; c < t->ncols; c++)
		if (!t->generated[c])
			enc_field(e, &e->line, c);
}

/*
 * One event row (batch, op, schema, table, old, new) into e->line; *tp
 * receives the shape whose TID the line names. UPDATE takes its key from
 * the old record and its row from the new one, each in its own shape.
 */
static int enc_event(encoder *e, table_defs *d, PGresult *res, const table_def **tp)
{
	char op = *PQgetvalue(res, 0, 1);
	const char *s = PQgetvalue(res, 0, 2), *n = PQgetvalue(res, 0, 3);
	const char *old = PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4);
	const char *new = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);
	const table_def *t = NULL;

	strbuf_reset(&e->keys);
	if ((op == 'U' || op == 'D') &&
	    (!old || !(t = enc_record(e, d, s, n, false, old)) || enc_key(e, t) < 0))
		return -1;
	if ((op == 'I' || op == 'U') && (!new || !(t = enc_record(e, d, s, n, false, new))))
		return -1;
	if (op == 'T' && !(t = defs_pick(d, s, n, 0, false))) {
		log_error("batch %s/%" PRIu64 ": table %s.%s no longer exists", e->target, e->seq, s, n);
		return -1;
	}
	if (!t)
		return -1;
	def_ready(d, t);
	strbuf_reset(&e->line);
	strbuf_addf(&e->line, "%c\t%u", op, t->tid);
	if (e->keys.len)
		strbuf_add(&e->line, e->keys.buf, e->keys.len);
	if (op == 'I' || op == 'U')
		enc_row(e, t);
	*tp = t;
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
	/* event-triggers: the markers come along, in their place */
	const char *marks = g[0].ddl_events ? " OR e.ev_op = 'S'" : "";
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
	strbuf_addf(&sql, " AND ((e.ev_schema, e.ev_table) IN"
		    " (SELECT * FROM ROWS FROM (pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[])))"
		    "%s) ORDER BY 1, e.ev_id", marks);
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
	uint64_t extra;            /* lines beyond the planned events: S lines, copies */
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
	/* event-triggers: the description in force, and the delta's hi */
	char *cat_text;
	ddl_cat *cat, *cat_hi;
	ddl_cat *file_cat;         /* the description where the current file starts */
} group_build;

static int out_open(group_build *gb, const batch_plan *p)
{
	batch_header h = { "rows", gb->bc->cfg->node_name, gb->bc->target->name, p->seq,
			   (char *)p->lo, (char *)p->hi, (char *)p->created };
	out_file *o = &gb->cur;
	char name[64], err[512];

	h.void_from = p->void_from > 0 ? (uint64_t)p->void_from : 0;   /* void numbers before */
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
	if (gb->cat_text) {
		ddl_cat_free(gb->file_cat);
		gb->file_cat = ddl_cat_parse(gb->cat_text);
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

/* Stored S lines (batcher.c plan_store) into the current file. */
static int out_lines(group_build *gb, const char *text)
{
	out_file *o = &gb->cur;
	strbuf line = { 0 };
	int rc = TP_OK;

	for (const char *p = text; p && *p && rc == TP_OK;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		bool keep = ddl_remap(p, len, gb->bc->target, &line);

		p += len + (nl != NULL);
		if (!keep)
			continue;
		if (batch_writer_line(o->w, line.buf, line.len) < 0) {
			log_error("batch %s/%" PRIu64 ": %s", gb->bc->target->name, o->p->seq,
				  batch_writer_error(o->w));
			rc = TP_EFAIL;
		}
		o->extra++;
	}
	strbuf_free(&line);
	return rc;
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

static int event_tail(group_build *gb);

/* Finish the current file: manifest, count check, durable rename. */
static int out_close(group_build *gb)
{
	out_file *o = &gb->cur;
	const char *t = gb->bc->target->name;

	if (!o->p)
		return TP_OK;
	if (!o->skip) {
		if (out_lines(gb, o->p->ddl_post) != TP_OK ||
		    (gb->cat_text && o->p == &gb->g[gb->n - 1] && event_tail(gb) != TP_OK))
			return out_fail(o, TP_EFAIL);
		if (batch_writer_finish(o->w) < 0) {
			log_error("batch %s/%" PRIu64 ": %s", t, o->p->seq, batch_writer_error(o->w));
			return out_fail(o, TP_EFAIL);
		}
		if (batch_writer_events(o->w) - o->extra != (uint64_t)o->p->events) {
			log_error("batch %s/%" PRIu64 ": wrote %" PRIu64 " events, planned %" PRId64,
				  t, o->p->seq, batch_writer_events(o->w) - o->extra, o->p->events);
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

/* The enum of c named schema.name, or NULL. */
static const ddl_obj *enum_named(const ddl_cat *c, const char *schema, const char *name)
{
	for (size_t i = 0; i < c->nobjs; i++)
		if (c->objs[i].kind == 'e' && strcmp(c->objs[i].schema, schema) == 0 &&
		    strcmp(c->objs[i].name, name) == 0)
			return &c->objs[i];
	return NULL;
}

/*
 * A new label of an enum that the current file did not create is added
 * ahead of the batch by tp-apply (applyddl.c), under the name the type
 * has where the file starts: when that differs from its name at the
 * marker, the line carries both (teleport-batch(5)).
 */
static void label_names(group_build *gb, strbuf *lines)
{
	static const char head[] = "S\tenum-label\t";
	strbuf out = { 0 };
	char *f[9];
	size_t lens[9];

	for (char *p = lines->buf; p && *p;) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		const ddl_obj *now, *then = NULL;
		char *copy = xstrndup(p, len);

		strbuf_add(&out, p, len);
		if (strncmp(p, head, sizeof head - 1) == 0 && gb->file_cat &&
		    copytext_split(copy, len, f, lens, 9) == 7 && f[2] && f[3] &&
		    (now = enum_named(gb->cat, f[2], f[3])) &&
		    (then = ddl_obj_find(gb->file_cat, 'e', now->oid)) &&
		    (strcmp(then->schema, now->schema) != 0 || strcmp(then->name, now->name) != 0)) {
			strbuf_addc(&out, '\t');
			copytext_field(&out, then->schema, strlen(then->schema));
			strbuf_addc(&out, '\t');
			copytext_field(&out, then->name, strlen(then->name));
		}
		strbuf_addc(&out, '\n');
		free(copy);
		p += len + (nl != NULL);
	}
	strbuf_free(lines);
	*lines = out;
}

/*
 * A marker (ddl = event-triggers, ddlmark.c): the catalog as it stood
 * right after a schema change. Its diff from the description in force
 * goes here, between the rows before and after it, and the rows after it
 * are read in its shapes only. A file already in the outbox still moves
 * the description on.
 */
static int on_marker(group_build *gb, const char *raw)
{
	strbuf pre = { 0 }, post = { 0 };
	char *next = NULL;
	ddl_cat *nc;
	int rc = ddl_filter(raw, gb->bc->target, &next);

	if (rc != TP_OK || strcmp(next, gb->cat_text) == 0) {
		free(next);
		return rc;
	}
	if (!(nc = ddl_cat_parse(next))) {
		log_error("target %s: a recorded catalog description is malformed",
			  gb->bc->target->name);
		free(next);
		return TP_EFAIL;
	}
	if (!gb->cur.skip) {            /* a file in the outbox already needs no lines */
		ddl_diff(gb->cat, nc, &pre, &post);
		gb->enc.seq = gb->cur.p->seq;
		label_names(gb, &pre);
		rc = out_lines(gb, pre.buf);
		if (rc == TP_OK)
			rc = out_lines(gb, post.buf);
	}
	ddl_cat_free(gb->cat);
	gb->cat = nc;
	free(gb->cat_text);
	gb->cat_text = next;
	defs_reset(&gb->defs);
	defs_from_cat(&gb->defs, gb->bc, nc, nc);
	strbuf_free(&pre);
	strbuf_free(&post);
	return rc;
}

/* One streamed event row: route it to its batch's file. */
static int out_event(group_build *gb, PGresult *res)
{
	size_t k = strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	const table_def *t;
	int rc;

	if (k < gb->next || k > gb->n) {
		log_error("target %s: event out of batch order (%zu after %zu)",
			  gb->bc->target->name, k, gb->next);
		return TP_EFAIL;
	}
	if ((rc = out_advance(gb, k)) != TP_OK)
		return rc;
	if (*PQgetvalue(res, 0, 1) == 'S' && gb->cat_text)
		return on_marker(gb, PQgetvalue(res, 0, 5));
	if (gb->cur.skip)
		return rc;
	gb->enc.seq = gb->cur.p->seq;
	if (enc_event(&gb->enc, &gb->defs, res, &t) < 0)
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

/* One copied row of a new table: an I line. */
static int copy_row(group_build *gb, const char *schema, const char *name, const char *rec)
{
	const table_def *t = enc_record(&gb->enc, &gb->defs, schema, name, true, rec);
	encoder *e = &gb->enc;

	if (!t)
		return TP_EFAIL;
	def_ready(&gb->defs, t);
	strbuf_reset(&e->line);
	strbuf_addf(&e->line, "I\t%u", t->tid);
	enc_row(e, t);
	if (batch_writer_table(gb->cur.w, t->tid, t->defline.buf, t->defline.len) < 0 ||
	    batch_writer_event(gb->cur.w, t->tid, e->line.buf, e->line.len) < 0) {
		log_error("batch %s/%" PRIu64 ": %s", gb->bc->target->name, gb->cur.p->seq,
			  batch_writer_error(gb->cur.w));
		return TP_EFAIL;
	}
	gb->cur.extra++;
	return TP_OK;
}

/* The rows of new table t as the plan copied them (ddlplan.c), streamed. */
static int copy_table(group_build *gb, const table_def *t)
{
	batch_ctx *bc = gb->bc;
	char seq[24];
	const char *params[4] = { bc->target->name, seq, t->schema, t->name };
	strbuf sql = { 0 };
	PGresult *res;
	int rc = TP_OK;

	/* the table may have been there on the target already: its content goes */
	def_ready(&gb->defs, t);
	strbuf_reset(&gb->enc.line);
	strbuf_addf(&gb->enc.line, "T\t%u", t->tid);
	if (batch_writer_table(gb->cur.w, t->tid, t->defline.buf, t->defline.len) < 0 ||
	    batch_writer_event(gb->cur.w, t->tid, gb->enc.line.buf, gb->enc.line.len) < 0) {
		log_error("batch %s/%" PRIu64 ": %s", bc->target->name, gb->cur.p->seq,
			  batch_writer_error(gb->cur.w));
		return TP_EFAIL;
	}
	gb->cur.extra++;
	snprintf(seq, sizeof(seq), "%" PRIu64, gb->cur.p->seq);
	strbuf_addf(&sql, "SELECT rec FROM %s.copy WHERE target = $1 AND seq = $2"
		    " AND rel_schema = $3 AND rel_name = $4 ORDER BY ord", bc->schema);
	if (!PQsendQueryParams(bc->conn, sql.buf, 4, NULL, params, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(bc->conn))
		rc = db_report(bc->conn, NULL, "reading a new table's rows");
	strbuf_free(&sql);
	while (rc == TP_OK && (res = PQgetResult(bc->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_SINGLE_TUPLE)
			rc = copy_row(gb, t->schema, t->name, PQgetvalue(res, 0, 0));
		else if (st != PGRES_TUPLES_OK)
			rc = db_report(bc->conn, res, "reading a new table's rows");
		PQclear(res);
	}
	while ((res = PQgetResult(bc->conn)) != NULL)     /* drain after a failure */
		PQclear(res);
	return rc;
}

/*
 * The first batch of a delta opens before its events: the delta's S lines
 * come first (tables created, columns added), then the rows of each new
 * table as of hi, which hold every event of that table in the delta.
 */
static int group_start(group_build *gb)
{
	int rc;

	if (!gb->g[0].ddl_pre)
		return TP_OK;
	if ((rc = out_advance(gb, 1)) != TP_OK || gb->cur.skip)
		return rc;
	gb->enc.seq = gb->cur.p->seq;
	rc = out_lines(gb, gb->g[0].ddl_pre);
	for (size_t i = 0; i < gb->defs.n && rc == TP_OK; i++)
		if (gb->defs.v[i].is_new)
			rc = copy_table(gb, &gb->defs.v[i]);
	return rc;
}

/*
 * The end of the delta's last batch (event-triggers): after what no
 * marker recorded (ddl_post), the rows of the tables that came with it,
 * copied by the plan as of hi, as ddl = diff does at the start.
 */
static int event_tail(group_build *gb)
{
	int rc = TP_OK;

	defs_reset(&gb->defs);
	defs_from_cat(&gb->defs, gb->bc, gb->cat, gb->cat_hi);
	for (size_t i = 0; i < gb->defs.n && rc == TP_OK; i++)
		if (gb->defs.v[i].is_new)
			rc = copy_table(gb, &gb->defs.v[i]);
	return rc;
}

/*
 * Event-triggers: the description in force where the group starts (the
 * markers of the delta's earlier batches replayed), its shapes, and the
 * names of every table the delta's markers know.
 */
static int marker_defs(group_build *gb, strbuf *schemas, strbuf *names)
{
	const batch_plan *p = &gb->g[0];
	batch_ctx *bc = gb->bc;
	char *all = NULL;
	bool changed = false;
	int rc = ddl_load_text(bc->conn, bc->schema, p->cat_lo, &gb->cat_text);

	if (rc == TP_OK)
		rc = ddl_load(bc->conn, bc->schema, p->cat_hi, &gb->cat_hi);
	if (rc == TP_OK) {
		all = xstrdup(gb->cat_text);
		rc = ddl_walk_markers(bc->conn, bc->target, bc->schema, p->lo, p->hi, 0, EV_HI_OPEN,
				      &all, &changed, schemas, names);
	}
	if (rc == TP_OK && p->ev_lo > 0)
		rc = ddl_walk_markers(bc->conn, bc->target, bc->schema, p->lo, p->hi, 0, p->ev_lo,
				      &gb->cat_text, &changed, NULL, NULL);
	strbuf_adds(schemas, schemas->len ? "}" : "{}");
	strbuf_adds(names, names->len ? "}" : "{}");
	free(all);
	if (rc == TP_OK && !(gb->cat = ddl_cat_parse(gb->cat_text))) {
		log_error("target %s: a recorded catalog description is malformed", bc->target->name);
		rc = TP_EFAIL;
	}
	if (rc == TP_OK)
		defs_from_cat(&gb->defs, bc, gb->cat, gb->cat);
	return rc;
}

/* Shapes and event names from the catalog versions of the group's delta. */
static int cat_defs(group_build *gb, strbuf *schemas, strbuf *names)
{
	ddl_cat *lo = NULL, *hi = NULL;
	int rc = ddl_load(gb->bc->conn, gb->bc->schema, gb->g[0].cat_lo, &lo);

	if (rc == TP_OK)
		rc = ddl_load(gb->bc->conn, gb->bc->schema, gb->g[0].cat_hi, &hi);
	if (rc == TP_OK) {
		defs_from_cat(&gb->defs, gb->bc, lo, hi);
		ddl_event_names(lo, hi, schemas, names);
	}
	ddl_cat_free(lo);
	ddl_cat_free(hi);
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
	if (rc == TP_OK && g[0].cat_lo && g[0].cat_hi && g[0].ddl_events)
		rc = marker_defs(&gb, &schemas, &names);
	else if (rc == TP_OK && g[0].cat_lo && g[0].cat_hi)
		rc = cat_defs(&gb, &schemas, &names);
	else if (rc == TP_OK && delta_tables(bc, g[0].lo, g[0].hi, &schemas, &names, &rc) >= 0)
		rc = defs_load(bc, schemas.buf, names.buf, &gb.defs);
	if (rc == TP_OK)
		rc = group_start(&gb);
	if (rc == TP_OK && (rc = events_query(bc, g, n, schemas.buf, names.buf)) == TP_OK)
		rc = group_stream(&gb);
	if (rc != TP_OK && gb.cur.p)
		out_fail(&gb.cur, rc);
	/* Mark what reached the outbox, even when a later batch failed. */
	if (gb.done.len) {
		strbuf_addc(&gb.done, '}');
		rc = tp_exit_worse(rc, mark_written(bc, gb.done.buf));
	}
	free(gb.key);
	strbuf_free(&gb.done);
	strbuf_free(&gb.enc.line);
	strbuf_free(&gb.enc.keys);
	strbuf_free(&gb.enc.store);
	free(gb.enc.f);
	strbuf_free(&schemas);
	strbuf_free(&names);
	defs_free(&gb.defs);
	free(gb.cat_text);
	ddl_cat_free(gb.cat);
	ddl_cat_free(gb.cat_hi);
	ddl_cat_free(gb.file_cat);
	return rc;
}
