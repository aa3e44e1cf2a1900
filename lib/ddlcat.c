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
 * Every object the description may hold, as rows (kind, oid, sub, f1..f5)
 * in the order the parser wants them: schemas, tables, columns, keys.
 * Only tables with the row capture trigger: a table without it is not
 * replicated yet (tp-batch attaches it first, then a later plan sees it).
 */
static const char describe_sql[] =
	"WITH nsp AS (SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n"
	"  WHERE n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast', $1])"
	"    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'),"
	" rel AS (SELECT c.oid, c.relnamespace, n.nspname, c.relname, c.relnatts"
	"  FROM pg_catalog.pg_class c JOIN nsp n ON n.oid = c.relnamespace"
	"  WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
	"    AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid"
	"      AND t.tgfoid = pg_catalog.to_regprocedure($2) AND (t.tgtype & 1) = 1))"
	" SELECT 1, n.oid, 0, n.nspname, NULL, NULL, NULL, NULL FROM nsp n"
	" UNION ALL SELECT 2, r.oid, 0, r.relnamespace::text, r.nspname, r.relname,"
	"   r.relnatts::text, NULL FROM rel r"
	" UNION ALL SELECT 3, a.attrelid, a.attnum, a.attname,"
	"   pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull::text,"
	"   pg_catalog.pg_get_expr(d.adbin, d.adrelid), (a.attgenerated <> '')::text"
	"   FROM rel r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid"
	"     AND a.attnum > 0 AND NOT a.attisdropped"
	"   LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
	" UNION ALL SELECT 4, k.conrelid, 0, k.oid::text, k.conname,"
	"   pg_catalog.array_to_string(k.conkey, ','), NULL, NULL"
	"   FROM rel r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid AND k.contype = 'p'"
	" ORDER BY 1, 2, 3";

static const char *const kind_letter = "nrap";

/* Append result row i as a description line when the target wants it. */
static void describe_row(PGresult *res, int i, const tp_target *t, strbuf *out,
			 strbuf *kept)
{
	int kind = atoi(PQgetvalue(res, i, 0));
	const char *oid = PQgetvalue(res, i, 1);
	int nf = kind == 1 ? 1 : kind == 2 ? 4 : kind == 3 ? 5 : 3;
	char key[24];

	snprintf(key, sizeof key, ",%s,", oid);
	if (kind == 1 && !target_matches_schema(t, PQgetvalue(res, i, 3)))
		return;
	if (kind == 2 && !target_matches(t, PQgetvalue(res, i, 4), PQgetvalue(res, i, 5))) {
		log_debug("target %s: table %s.%s is not matched: its schema changes are ignored",
			  t->name, PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
		return;
	}
	if (kind == 2)
		strbuf_addf(kept, "%s,", oid);
	if (kind > 2 && !strstr(kept->buf, key))
		return;
	strbuf_addf(out, "%c\t%s", kind_letter[kind - 1], oid);
	if (kind == 3)
		strbuf_addf(out, "\t%s", PQgetvalue(res, i, 2));
	for (int f = 0; f < nf; f++) {
		const char *v = PQgetisnull(res, i, 3 + f) ? NULL : PQgetvalue(res, i, 3 + f);
		strbuf_addc(out, '\t');
		copytext_field(out, v, v ? strlen(v) : 0);
	}
	strbuf_addc(out, '\n');
}

int ddl_describe(PGconn *conn, const tp_config *cfg, const tp_target *t, char **out)
{
	strbuf fn = { 0 }, text = { 0 }, kept = { 0 };
	char *q = db_ident(conn, cfg->schema);
	const char *params[2];
	PGresult *res;
	int rc;

	strbuf_addf(&fn, "%s.capture()", q);
	params[0] = cfg->schema;
	params[1] = fn.buf;
	res = db_query(conn, "describing the catalog", describe_sql, 2, params, &rc);
	free(q);
	strbuf_free(&fn);
	if (!res)
		return rc;
	strbuf_adds(&kept, ",");
	strbuf_adds(&text, "");
	for (int i = 0; i < PQntuples(res); i++)
		describe_row(res, i, t, &text, &kept);
	PQclear(res);
	strbuf_free(&kept);
	*out = strbuf_detach(&text);
	return TP_OK;
}

/* ---- parsing ---- */

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
		}
		free(r->cols);
		free(r->schema);
		free(r->name);
		free(r->pk_name);
		free(r->pk);
	}
	free(c->nsps);
	free(c->rels);
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

/* One line, split into fields f[0..n). */
static int parse_line(ddl_cat *c, char **f, int n)
{
	ddl_rel *r;

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
	r->cols[r->ncols++] = (ddl_col){ atoi(f[2]), xstrdup(f[3]), xstrdup(f[4]),
					  dup_field(f[6]), f[5][0] == 't', f[7][0] == 't' };
	return 0;
}

ddl_cat *ddl_cat_parse(const char *descr)
{
	ddl_cat *c = xcalloc(1, sizeof *c);
	char *copy = xstrdup(descr), *line = copy, *nl;
	char *f[8];
	size_t lens[8];
	int bad = 0;

	while (!bad && *line) {
		size_t len;
		nl = strchr(line, '\n');
		len = nl ? (size_t)(nl - line) : strlen(line);
		line[len] = '\0';
		int n = copytext_split(line, len, f, lens, 8);
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
