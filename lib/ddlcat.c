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

/*
 * The other objects (ddl.h): rows (ord, letter, oid, part, sub, c1..c13),
 * each object followed by its parts, so the parser attaches a part to the
 * object just read. Sequence values are read here, in the plan's
 * transaction (they are not transactional: the value may be a little
 * ahead of the snapshot, which only moves the target's further on).
 * An index's definition is kept from USING on, cut after the exact head
 * pg_get_indexdef writes for it (name and table quoted as quote_ident
 * does), so the target builds the head from its own names.
 */
static const char objects_sql[] =
	"WITH nsp AS (SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n"
	"  WHERE n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast', $1])"
	"    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'),"
	" typ AS (SELECT t.*, n.nspname FROM pg_catalog.pg_type t JOIN nsp n ON n.oid = t.typnamespace"
	"  WHERE t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND EXISTS (SELECT 1"
	"    FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))),"
	" tab AS (SELECT c.oid, c.relname, c.relkind, n.nspname FROM pg_catalog.pg_class c"
	"  JOIN nsp n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition)"
	" SELECT 1 o, 'e' l, t.oid, 0 p, 0 s, t.typnamespace::text c1, t.nspname::text c2,"
	"   t.typname::text c3, NULL::text c4, NULL::text c5, NULL::text c6, NULL::text c7,"
	"   NULL::text c8, NULL::text c9, NULL::text c10, NULL::text c11, NULL::text c12,"
	"   NULL::text c13 FROM typ t WHERE t.typtype = 'e'"
	" UNION ALL SELECT 1, 'E', e.enumtypid, 1, pg_catalog.row_number() OVER"
	"   (PARTITION BY e.enumtypid ORDER BY e.enumsortorder)::int, e.oid::text, e.enumlabel::text,"
	"   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
	"   FROM typ t JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid"
	" UNION ALL SELECT 2, 'c', t.oid, 0, 0, t.typnamespace::text, t.nspname, t.typname,"
	"   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM typ t WHERE t.typtype = 'c'"
	" UNION ALL SELECT 2, 'C', t.oid, 1, a.attnum, a.attnum::text, a.attname::text,"
	"   pg_catalog.format_type(a.atttypid, a.atttypmod),"
	"   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
	"   FROM typ t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid"
	"     AND a.attnum > 0 AND NOT a.attisdropped WHERE t.typtype = 'c'"
	" UNION ALL SELECT 3, 'd', t.oid, 0, 0, t.typnamespace::text, t.nspname, t.typname,"
	"   pg_catalog.format_type(t.typbasetype, t.typtypmod), t.typnotnull::text,"
	"   pg_catalog.pg_get_expr(t.typdefaultbin, 0), NULL, NULL, NULL, NULL, NULL, NULL, NULL"
	"   FROM typ t WHERE t.typtype = 'd'"
	" UNION ALL SELECT 3, 'D', k.contypid, 1, pg_catalog.row_number() OVER"
	"   (PARTITION BY k.contypid ORDER BY k.oid)::int, k.oid::text, k.conname::text,"
	"   pg_catalog.pg_get_constraintdef(k.oid), NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
	"   NULL, NULL, NULL"
	"   FROM typ t JOIN pg_catalog.pg_constraint k ON k.contypid = t.oid AND k.contype = 'c'"
	" UNION ALL SELECT 4, 's', c.oid, 0, 0, c.relnamespace::text, n.nspname, c.relname,"
	"   pg_catalog.format_type(q.seqtypid, NULL), q.seqstart::text, q.seqincrement::text,"
	"   q.seqmin::text, q.seqmax::text, q.seqcache::text, q.seqcycle::text, d.refobjid::text,"
	"   d.refobjsubid::text, CASE WHEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE')"
	"     THEN pg_catalog.pg_sequence_last_value(c.oid::pg_catalog.regclass)::text END"
	"   FROM pg_catalog.pg_class c JOIN nsp n ON n.oid = c.relnamespace"
	"   JOIN pg_catalog.pg_sequence q ON q.seqrelid = c.oid"
	"   LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
	"     AND d.objid = c.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
	"     AND d.deptype = 'a'"
	"   WHERE c.relkind = 'S' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i"
	"     WHERE i.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND i.objid = c.oid"
	"       AND i.deptype = 'i')"
	" UNION ALL SELECT 5, 'k', k.oid, 0, 0, k.conrelid::text, r.nspname, k.conname,"
	"   k.contype::text, pg_catalog.pg_get_constraintdef(k.oid),"
	"   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
	"   FROM tab r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid AND k.contype IN ('u', 'c')"
	" UNION ALL SELECT 6, 'i', i.indexrelid, 0, 0, i.indrelid::text, r.nspname, x.relname,"
	"   i.indisunique::text, CASE WHEN pg_catalog.left(x.d, pg_catalog.length(x.head)) = x.head"
	"     THEN pg_catalog.substr(x.d, pg_catalog.length(x.head) + 1) END,"
	"   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
	"   FROM tab r JOIN pg_catalog.pg_index i ON i.indrelid = r.oid"
	"   CROSS JOIN LATERAL (SELECT ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid) d,"
	"     'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX '"
	"     || pg_catalog.quote_ident(ic.relname) || ' ON '"
	"     || CASE WHEN r.relkind = 'p' THEN 'ONLY ' ELSE '' END"
	"     || pg_catalog.quote_ident(r.nspname) || '.' || pg_catalog.quote_ident(r.relname)"
	"     || ' USING ' head FROM pg_catalog.pg_class ic WHERE ic.oid = i.indexrelid) x"
	"   WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k"
	"     WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid"
	"       AND k.contype IN ('p', 'u', 'x'))"
	" ORDER BY 1, 3, 4, 5";

/* Fields after OID of each object kind: OWNER SCHEMA NAME and its own. */
static int obj_nfields(char letter)
{
	switch (letter) {
	case 'd': return 6;
	case 's': return 13;
	case 'k': case 'i': return 5;
	default: return 3;      /* e c, and parts: SUB NAME DEF */
	}
}

/* Is the object of row i one the target replicates? kept: table oids. */
static bool obj_wanted(PGresult *res, int i, const tp_target *t, const strbuf *kept)
{
	char letter = PQgetvalue(res, i, 1)[0], key[24];
	const char *schema = PQgetvalue(res, i, 6), *name = PQgetvalue(res, i, 7);

	if (letter == 'k' || letter == 'i') {
		snprintf(key, sizeof key, ",%s,", PQgetvalue(res, i, 5));
		return strstr(kept->buf, key) != NULL;
	}
	if (letter == 's') {
		/* owned by a replicated table's column (serial), or matched by name */
		snprintf(key, sizeof key, ",%s,", PQgetvalue(res, i, 15));
		return target_matches(t, schema, name) ||
		       (!PQgetisnull(res, i, 15) && strstr(kept->buf, key) != NULL);
	}
	return target_matches_schema(t, schema);
}

/* Objects and their parts as description lines; a part follows its object. */
static void describe_objects(PGresult *res, const tp_target *t, strbuf *out, const strbuf *kept)
{
	bool keep = false;

	for (int i = 0; i < PQntuples(res); i++) {
		char letter = PQgetvalue(res, i, 1)[0];
		bool part = PQgetvalue(res, i, 3)[0] == '1';
		int nf = part ? 3 : obj_nfields(letter);

		if (!part)
			keep = obj_wanted(res, i, t, kept);
		if (!keep)
			continue;
		if (letter == 'i' && PQgetisnull(res, i, 9))
			log_warn("target %s: index %s.%s: its definition is not in the expected form;"
				 " it is not replicated", t->name, PQgetvalue(res, i, 6),
				 PQgetvalue(res, i, 7));
		strbuf_addf(out, "%c\t%s", letter, PQgetvalue(res, i, 2));
		for (int f = 0; f < nf; f++) {
			const char *v = PQgetisnull(res, i, 5 + f) ? NULL : PQgetvalue(res, i, 5 + f);
			strbuf_addc(out, '\t');
			copytext_field(out, v, v ? strlen(v) : 0);
		}
		strbuf_addc(out, '\n');
	}
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
	res = db_query(conn, "describing types, sequences, constraints and indexes",
		       objects_sql, 1, params, &rc);
	if (res) {
		describe_objects(res, t, &text, &kept);
		PQclear(res);
	}
	strbuf_free(&kept);
	if (!res) {
		strbuf_free(&text);
		return rc;
	}
	*out = strbuf_detach(&text);
	return TP_OK;
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
	static const char order[] = "ecdski";
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

	if (f[0][0] && f[0][1] == '\0' && strchr("ecdski", f[0][0]))
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
	r->cols[r->ncols++] = (ddl_col){ atoi(f[2]), xstrdup(f[3]), xstrdup(f[4]),
					  dup_field(f[6]), f[5][0] == 't', f[7][0] == 't' };
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
