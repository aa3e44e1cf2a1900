/*
 * ddlcat.c - describe the catalog (ddl.h) and read a description back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copytext.h"
#include "db.h"
#include "ddl.h"
#include "log.h"
#include "tp.h"

/*
 * The catalog is read by sql/ddl.sql's describe(), unfiltered: one record
 * text a line (a function's body may hold newlines, within quotes), then
 * "--", then the other objects. Here each target keeps what its globs
 * match, as description lines (ddl.h).
 *
 * A row of either part, as fields (NULL: SQL NULL). The first part's
 * rows are (kind 1..4, oid, sub, f1..f5); the second's (ord, letter, oid,
 * part, sub, c1..c13).
 */
#define RAW_MAXF 24
typedef struct raw_row {
	const char *v[RAW_MAXF];
	int n;
} raw_row;

/* Field i, NULL when SQL NULL or missing. */
static const char *rv(const raw_row *r, int i)
{
	return i < r->n ? r->v[i] : NULL;
}

/* Field i, "" when SQL NULL or missing. */
static const char *rs(const raw_row *r, int i)
{
	const char *v = rv(r, i);
	return v ? v : "";
}

static const char *const kind_letter = "nrap";

/* Append row r as a description line when the target wants it. */
static void describe_row(const raw_row *r, const tp_target *t, strbuf *out, strbuf *kept)
{
	int kind = atoi(rs(r, 0));
	const char *oid = rs(r, 1);
	int nf = kind == 1 ? 1 : kind == 2 ? 4 : kind == 3 ? 7 : 3;
	char key[24];

	if (kind < 1 || kind > 4)
		return;
	snprintf(key, sizeof key, ",%s,", oid);
	if (kind == 1 && !target_matches_schema(t, rs(r, 3)))
		return;
	if (kind == 2 && !target_matches(t, rs(r, 4), rs(r, 5))) {
		log_debug("target %s: table %s.%s is not matched: its schema changes are ignored",
			  t->name, rs(r, 4), rs(r, 5));
		return;
	}
	if (kind == 2)
		strbuf_addf(kept, "%s,", oid);
	if (kind > 2 && !strstr(kept->buf, key))
		return;
	strbuf_addf(out, "%c\t%s", kind_letter[kind - 1], oid);
	if (kind == 3)
		strbuf_addf(out, "\t%s", rs(r, 2));
	for (int f = 0; f < nf; f++) {
		const char *v = rv(r, 3 + f);
		strbuf_addc(out, '\t');
		copytext_field(out, v, v ? strlen(v) : 0);
	}
	strbuf_addc(out, '\n');
}

/* Fields after OID of each object kind: OWNER SCHEMA NAME and its own. */
static int obj_nfields(char letter)
{
	switch (letter) {
	case 'd': return 6;
	case 's': case 'f': return 13;
	case 'k': case 'i': return 5;
	case 'x': return 4;
	case 'u': return 7;
	default: return 3;      /* e c, and parts: SUB NAME DEF */
	}
}

static bool table_kept(const strbuf *kept, const char *oid)
{
	char key[24];

	snprintf(key, sizeof key, ",%s,", oid);
	return strstr(kept->buf, key) != NULL;
}

/* Is the object of row r one the target replicates? kept: table oids. */
static bool obj_wanted(const raw_row *r, const tp_target *t, const strbuf *kept)
{
	char letter = rs(r, 1)[0];
	const char *schema = rs(r, 6), *name = rs(r, 7);

	if (letter == 'k' || letter == 'i')
		return table_kept(kept, rs(r, 5));
	if (letter == 'f')
		/* a key the target could not hold, to a table it lacks, is left out */
		return table_kept(kept, rs(r, 5)) && table_kept(kept, rs(r, 8));
	if (letter == 's')
		/* owned by a replicated table's column (serial), or matched by name */
		return target_matches(t, schema, name) ||
		       (rv(r, 15) && table_kept(kept, rs(r, 15)));
	return target_matches_schema(t, schema);
}

/* An object or a part as a description line; a part follows its object. */
static void describe_object(const raw_row *r, const tp_target *t, strbuf *out,
			    const strbuf *kept, bool *keep)
{
	char letter = rs(r, 1)[0];
	bool part = rs(r, 3)[0] == '1';
	int nf = part ? 3 : obj_nfields(letter);

	if (!part)
		*keep = obj_wanted(r, t, kept);
	if (!*keep)
		return;
	if ((letter == 'i' && !rv(r, 9)) || (letter == 'u' && !rv(r, 11)))
		log_warn("target %s: %s %s.%s: its definition is not in the expected form;"
			 " it is not replicated", t->name, letter == 'i' ? "index" : "function",
			 rs(r, 6), rs(r, 7));
	strbuf_addf(out, "%c\t%s", letter, rs(r, 2));
	for (int f = 0; f < nf; f++) {
		const char *v = rv(r, 5 + f);
		strbuf_addc(out, '\t');
		copytext_field(out, v, v ? strlen(v) : 0);
	}
	strbuf_addc(out, '\n');
}

/*
 * The newline that ends the record text at p, or NULL: one inside a
 * quoted field (a function's body) belongs to it. record_out doubles a
 * quote or backslash within quotes, so toggling at each quote and
 * stepping over the character after a backslash keeps track.
 */
static const char *record_nl(const char *p)
{
	bool quoted = false;

	for (; *p; p++) {
		if (*p == '\n' && !quoted)
			return p;
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '\\' && quoted && p[1])
			p++;
	}
	return NULL;
}

int ddl_filter(const char *raw, const tp_target *t, char **out)
{
	strbuf text = { 0 }, kept = { 0 }, store = { 0 };
	record_field *f = NULL;
	size_t cap = 0;
	bool objects = false, keep = false;
	int rc = TP_OK;

	strbuf_adds(&kept, ",");
	strbuf_adds(&text, "");
	for (const char *p = raw; *p && rc == TP_OK;) {
		const char *nl = record_nl(p);
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		raw_row r = { .n = 0 };
		int n;

		if (len == 2 && memcmp(p, "--", 2) == 0) {
			objects = true;
		} else if (len > 0) {
			n = record_parse(p, len, &store, &f, &cap);
			if (n < 1 || n > RAW_MAXF) {
				rc = TP_EFAIL;
				break;
			}
			for (r.n = 0; r.n < n; r.n++)
				r.v[r.n] = f[r.n].null ? NULL : store.buf + f[r.n].off;
			if (objects)
				describe_object(&r, t, &text, &kept, &keep);
			else
				describe_row(&r, t, &text, &kept);
		}
		p += len + (nl != NULL);
	}
	strbuf_free(&kept);
	strbuf_free(&store);
	free(f);
	if (rc != TP_OK) {
		log_error("target %s: a catalog description is malformed", t->name);
		strbuf_free(&text);
		return rc;
	}
	*out = strbuf_detach(&text);
	return TP_OK;
}

int ddl_describe(PGconn *conn, const tp_config *cfg, const tp_target *t, char **out)
{
	strbuf sql = { 0 };
	char *q = db_ident(conn, cfg->schema);
	PGresult *res;
	int rc;

	strbuf_addf(&sql, "SELECT %s.describe()", q);
	res = db_query(conn, "describing the catalog", sql.buf, 0, NULL, &rc);
	free(q);
	strbuf_free(&sql);
	if (!res)
		return rc;
	rc = ddl_filter(PQgetvalue(res, 0, 0), t, out);
	PQclear(res);
	return rc;
}

/* ---- parsing ---- */

static void obj_free(ddl_obj *o)
{
	free(o->schema);
	free(o->name);
	for (int i = 0; i < o->nf; i++)
		free(o->f[i]);
	for (size_t i = 0; i < o->nparts; i++) {
		free(o->parts[i].name);
		free(o->parts[i].def);
	}
	free(o->parts);
}

void ddl_cat_free(ddl_cat *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nnsps; i++)
		free(c->nsps[i].name);
	for (size_t i = 0; i < c->nrels; i++) {
		ddl_rel *r = &c->rels[i];
		for (size_t j = 0; j < r->ncols; j++) {
			free(r->cols[j].name);
			free(r->cols[j].type);
			free(r->cols[j].def);
			free(r->cols[j].idvalue);
		}
		free(r->cols);
		free(r->schema);
		free(r->name);
		free(r->pk_name);
		free(r->pk);
	}
	for (size_t i = 0; i < c->nobjs; i++)
		obj_free(&c->objs[i]);
	free(c->nsps);
	free(c->rels);
	free(c->objs);
	free(c);
}

const ddl_rel *ddl_rel_find(const ddl_cat *c, unsigned oid)
{
	size_t lo = 0, hi = c->nrels;

	while (lo < hi) {       /* rels are sorted by oid */
		size_t mid = (lo + hi) / 2;
		if (c->rels[mid].oid == oid)
			return &c->rels[mid];
		if (c->rels[mid].oid < oid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Objects are sorted by kind in this order, then by oid (objects_sql). */
static int kind_rank(char kind)
{
	static const char order[] = "ecdskixuf";
	const char *p = strchr(order, kind);

	return p && kind ? (int)(p - order) : 99;
}

static int obj_cmp(char k1, unsigned o1, char k2, unsigned o2)
{
	int r1 = kind_rank(k1), r2 = kind_rank(k2);

	if (r1 != r2)
		return r1 < r2 ? -1 : 1;
	return o1 < o2 ? -1 : o1 > o2;
}

const ddl_obj *ddl_obj_find(const ddl_cat *c, char kind, unsigned oid)
{
	size_t lo = 0, hi = c->nobjs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = obj_cmp(c->objs[mid].kind, c->objs[mid].oid, kind, oid);
		if (r == 0)
			return &c->objs[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const ddl_nsp *ddl_nsp_find(const ddl_cat *c, unsigned oid)
{
	for (size_t i = 0; i < c->nnsps; i++)
		if (c->nsps[i].oid == oid)
			return &c->nsps[i];
	return NULL;
}

const ddl_col *ddl_col_find(const ddl_rel *r, int attnum)
{
	for (size_t i = 0; i < r->ncols; i++)
		if (r->cols[i].attnum == attnum)
			return &r->cols[i];
	return NULL;
}

static char *dup_field(char *f)
{
	return f ? xstrdup(f) : NULL;
}

static int parse_pk(ddl_rel *r, char **f)
{
	char *p = f[4];

	r->pk_oid = (unsigned)strtoul(f[2], NULL, 10);
	r->pk_name = xstrdup(f[3]);
	while (p && *p) {
		r->pk = xrealloc(r->pk, (r->npk + 1) * sizeof *r->pk);
		r->pk[r->npk++] = (int)strtol(p, &p, 10);
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	return 0;
}

/* "KIND OID OWNER SCHEMA NAME FIELD...": objects come sorted (ddl_obj_find). */
static int parse_obj(ddl_cat *c, char **f, int n)
{
	ddl_obj *o;
	char kind = f[0][0];
	unsigned oid;

	if (n < 5 || n - 5 > DDL_OBJ_MAXF || !f[1] || !f[2] || !f[3] || !f[4])
		return -1;
	oid = (unsigned)strtoul(f[1], NULL, 10);
	if (c->nobjs && obj_cmp(c->objs[c->nobjs - 1].kind, c->objs[c->nobjs - 1].oid,
				kind, oid) >= 0)
		return -1;
	c->objs = xrealloc(c->objs, (c->nobjs + 1) * sizeof *c->objs);
	o = &c->objs[c->nobjs++];
	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->oid = oid;
	o->owner = (unsigned)strtoul(f[2], NULL, 10);
	o->schema = xstrdup(f[3]);
	o->name = xstrdup(f[4]);
	for (int i = 5; i < n; i++)
		o->f[o->nf++] = dup_field(f[i]);
	return 0;
}

/* "PART OID SUB NAME DEF": a part of the object just read. */
static int parse_part(ddl_cat *c, char **f, int n)
{
	ddl_obj *o = c->nobjs ? &c->objs[c->nobjs - 1] : NULL;

	if (n != 5 || !o || o->kind != f[0][0] - 'A' + 'a' || !f[1] || !f[2] || !f[3] ||
	    o->oid != (unsigned)strtoul(f[1], NULL, 10))
		return -1;
	o->parts = xrealloc(o->parts, (o->nparts + 1) * sizeof *o->parts);
	o->parts[o->nparts++] = (ddl_part){ (unsigned)strtoul(f[2], NULL, 10), xstrdup(f[3]),
					    dup_field(f[4]) };
	return 0;
}

/* One line, split into fields f[0..n). */
static int parse_line(ddl_cat *c, char **f, int n)
{
	ddl_rel *r;

	if (f[0][0] && f[0][1] == '\0' && strchr("ecdskixuf", f[0][0]))
		return parse_obj(c, f, n);
	if (f[0][0] && f[0][1] == '\0' && strchr("ECD", f[0][0]))
		return parse_part(c, f, n);

	if (n >= 3 && f[0][0] == 'n' && f[1] && f[2]) {
		c->nsps = xrealloc(c->nsps, (c->nnsps + 1) * sizeof *c->nsps);
		c->nsps[c->nnsps++] = (ddl_nsp){ (unsigned)strtoul(f[1], NULL, 10), xstrdup(f[2]) };
		return 0;
	}
	if (n >= 6 && f[0][0] == 'r' && f[1] && f[2] && f[3] && f[4] && f[5]) {
		c->rels = xrealloc(c->rels, (c->nrels + 1) * sizeof *c->rels);
		r = &c->rels[c->nrels++];
		memset(r, 0, sizeof *r);
		r->oid = (unsigned)strtoul(f[1], NULL, 10);
		r->nsp = (unsigned)strtoul(f[2], NULL, 10);
		r->schema = xstrdup(f[3]);
		r->name = xstrdup(f[4]);
		r->natts = atoi(f[5]);
		return 0;
	}
	if (n < 5 || !f[1] || !(r = (ddl_rel *)ddl_rel_find(c, (unsigned)strtoul(f[1], NULL, 10))))
		return -1;
	if (f[0][0] == 'p' && f[2] && f[3])
		return parse_pk(r, f);
	if (f[0][0] != 'a' || n < 8 || !f[2] || !f[3] || !f[4] || !f[5] || !f[7])
		return -1;
	r->cols = xrealloc(r->cols, (r->ncols + 1) * sizeof *r->cols);
	/* identity and its value: absent from descriptions stored before them */
	r->cols[r->ncols++] = (ddl_col){ atoi(f[2]), xstrdup(f[3]), xstrdup(f[4]),
					  dup_field(f[6]), f[5][0] == 't', f[7][0] == 't',
					  n > 8 && f[8] ? f[8][0] : '\0',
					  n > 9 ? dup_field(f[9]) : NULL };
	return 0;
}

ddl_cat *ddl_cat_parse(const char *descr)
{
	ddl_cat *c = xcalloc(1, sizeof *c);
	char *copy = xstrdup(descr), *line = copy, *nl;
	char *f[5 + DDL_OBJ_MAXF];
	size_t lens[5 + DDL_OBJ_MAXF];
	int bad = 0;

	while (!bad && *line) {
		size_t len;
		nl = strchr(line, '\n');
		len = nl ? (size_t)(nl - line) : strlen(line);
		line[len] = '\0';
		int n = copytext_split(line, len, f, lens, 5 + DDL_OBJ_MAXF);
		bad = n < 1 || !f[0] || parse_line(c, f, n) < 0;
		line = nl ? nl + 1 : line + len;
	}
	free(copy);
	if (bad) {
		ddl_cat_free(c);
		return NULL;
	}
	return c;
}
