/*
 * ddldiff.c - the S lines that turn one description into another.
 *
 * Order, chosen so that every statement finds what it needs and no name
 * is taken twice (a column dropped and another renamed into its name, a
 * table dropped and created again under its name):
 *
 *   before the delta's rows: constraint drops, column drops, table drops
 *   (all under lo's names); schema renames and creates; table moves and
 *   renames; column and constraint renames; schema drops; table creates
 *   and column adds; type and default changes; NOT NULL drops
 *   after the rows: NOT NULL sets, primary keys added
 *
 * Drops come first rather than last: the rows of a dropped table are not
 * shipped, and those of a dropped column are left out of the rows (see
 * batchbuild.c), so nothing in the delta needs them, while a same-named
 * successor does need the name. Constraints that only restrict (NOT NULL,
 * primary keys) are added after the rows: the rows were valid on the
 * source when written, but the target's state before them need not
 * satisfy a constraint the source added later in the delta (UPDATE ...
 * SET c = 0 WHERE c IS NULL; ALTER ... SET NOT NULL).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copytext.h"
#include "db.h"
#include "ddl.h"

enum phase {
	PH_CON_DROP, PH_COL_DROP, PH_TAB_DROP, PH_NSP_RENAME, PH_NSP_CREATE,
	PH_TAB_MOVE, PH_TAB_RENAME, PH_COL_RENAME, PH_CON_RENAME, PH_NSP_DROP,
	PH_TAB_CREATE, PH_COL_ADD, PH_COL_TYPE, PH_COL_DEFAULT, PH_NOTNULL_DROP,
	PH_ROWS,
	PH_NOTNULL_SET, PH_PKEY_ADD, PH_N
};

typedef struct items {
	strbuf ph[PH_N];
} items;

/* One S line of n fields (NULL: \N) into phase ph. */
static void item(items *it, enum phase ph, const char *kind, int n, ...)
{
	strbuf *sb = &it->ph[ph];
	va_list ap;

	strbuf_addf(sb, "S\t%s", kind);
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *v = va_arg(ap, const char *);
		strbuf_addc(sb, '\t');
		copytext_field(sb, v, v ? strlen(v) : 0);
	}
	va_end(ap);
	strbuf_addc(sb, '\n');
}

static const ddl_nsp *nsp_find(const ddl_cat *c, unsigned oid)
{
	for (size_t i = 0; i < c->nnsps; i++)
		if (c->nsps[i].oid == oid)
			return &c->nsps[i];
	return NULL;
}

static void diff_schemas(const ddl_cat *lo, const ddl_cat *hi, items *it)
{
	for (size_t i = 0; i < lo->nnsps; i++) {
		const ddl_nsp *o = &lo->nsps[i], *n = nsp_find(hi, o->oid);
		if (!n)
			item(it, PH_NSP_DROP, "schema-drop", 1, o->name);
		else if (strcmp(o->name, n->name) != 0)
			item(it, PH_NSP_RENAME, "schema-rename", 2, o->name, n->name);
	}
	for (size_t i = 0; i < hi->nnsps; i++)
		if (!nsp_find(lo, hi->nsps[i].oid))
			item(it, PH_NSP_CREATE, "schema", 1, hi->nsps[i].name);
}

/* ADD COLUMN for c of table r (hi names). */
static void add_column(items *it, const ddl_rel *r, const ddl_col *c)
{
	item(it, PH_COL_ADD, "column", 6, r->schema, r->name, c->name, c->type, c->def,
	     c->generated ? "t" : "f");
	if (c->notnull)
		item(it, PH_NOTNULL_SET, "column-notnull", 4, r->schema, r->name, c->name, "t");
}

static void add_pkey(items *it, const ddl_rel *r)
{
	strbuf sb = { 0 };

	/* PRIMARY KEY (c1, c2): the column names as one tab-free list field each */
	strbuf_addf(&sb, "S\tpkey");
	for (int f = 0; f < 3; f++) {
		const char *v = f == 0 ? r->schema : f == 1 ? r->name : r->pk_name;
		strbuf_addc(&sb, '\t');
		copytext_field(&sb, v, strlen(v));
	}
	for (size_t k = 0; k < r->npk; k++) {
		const ddl_col *c = ddl_col_find(r, r->pk[k]);
		strbuf_addc(&sb, '\t');
		copytext_field(&sb, c ? c->name : "", c ? strlen(c->name) : 0);
	}
	strbuf_addc(&sb, '\n');
	strbuf_add(&it->ph[PH_PKEY_ADD], sb.buf, sb.len);
	strbuf_free(&sb);
}

static void create_table(items *it, const ddl_rel *r)
{
	/* the table and its columns in one phase, in this order */
	item(it, PH_TAB_CREATE, "table", 2, r->schema, r->name);
	for (size_t i = 0; i < r->ncols; i++) {
		const ddl_col *c = &r->cols[i];
		item(it, PH_TAB_CREATE, "column", 6, r->schema, r->name, c->name, c->type,
		     c->def, c->generated ? "t" : "f");
		if (c->notnull)
			item(it, PH_NOTNULL_SET, "column-notnull", 4, r->schema, r->name, c->name, "t");
	}
	if (r->pk_oid)
		add_pkey(it, r);
}

static bool str_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* A column in both: rename, type, default, NOT NULL. */
static void diff_column(items *it, const ddl_rel *o, const ddl_rel *n,
			const ddl_col *oc, const ddl_col *nc)
{
	const char *s = n->schema, *t = n->name;

	if (strcmp(oc->name, nc->name) != 0)
		item(it, PH_COL_RENAME, "column-rename", 4, s, t, oc->name, nc->name);
	if (strcmp(oc->type, nc->type) != 0)
		item(it, PH_COL_TYPE, "column-type", 4, s, t, nc->name, nc->type);
	if (!nc->generated && str_differ(oc->def, nc->def))
		item(it, PH_COL_DEFAULT, "column-default", 4, s, t, nc->name, nc->def);
	if (oc->notnull != nc->notnull)
		item(it, nc->notnull ? PH_NOTNULL_SET : PH_NOTNULL_DROP, "column-notnull", 4,
		     s, t, nc->name, nc->notnull ? "t" : "f");
	(void)o;
}

/* Schema name of lo table o once the schema renames ran. */
static const char *renamed_schema(const ddl_cat *hi, const ddl_rel *o)
{
	const ddl_nsp *n = nsp_find(hi, o->nsp);
	return n ? n->name : o->schema;
}

static void diff_keys(items *it, const ddl_rel *o, const ddl_rel *n)
{
	if (o->pk_oid && o->pk_oid != n->pk_oid)
		item(it, PH_CON_DROP, "constraint-drop", 3, o->schema, o->name, o->pk_name);
	else if (o->pk_oid && strcmp(o->pk_name, n->pk_name) != 0)
		item(it, PH_CON_RENAME, "constraint-rename", 4, n->schema, n->name,
		     o->pk_name, n->pk_name);
	if (n->pk_oid && o->pk_oid != n->pk_oid)
		add_pkey(it, n);
}

static void diff_table(const ddl_cat *hi, items *it, const ddl_rel *o, const ddl_rel *n)
{
	const char *mid = renamed_schema(hi, o);

	diff_keys(it, o, n);
	if (strcmp(mid, n->schema) != 0)
		item(it, PH_TAB_MOVE, "table-schema", 3, mid, o->name, n->schema);
	if (strcmp(o->name, n->name) != 0)
		item(it, PH_TAB_RENAME, "table-rename", 3, n->schema, o->name, n->name);
	for (size_t i = 0; i < o->ncols; i++) {
		const ddl_col *oc = &o->cols[i], *nc = ddl_col_find(n, oc->attnum);
		if (!nc) {
			/* a dropped NOT NULL column would refuse the delta's new rows
			 * until dropped: it goes first, with the other drops */
			item(it, PH_COL_DROP, "column-drop", 3, o->schema, o->name, oc->name);
		} else {
			diff_column(it, o, n, oc, nc);
		}
	}
	for (size_t i = 0; i < n->ncols; i++)
		if (!ddl_col_find(o, n->cols[i].attnum))
			add_column(it, n, &n->cols[i]);
}

void ddl_diff(const ddl_cat *lo, const ddl_cat *hi, strbuf *pre, strbuf *post)
{
	items it;

	memset(&it, 0, sizeof it);
	diff_schemas(lo, hi, &it);
	for (size_t i = 0; i < lo->nrels; i++) {
		const ddl_rel *o = &lo->rels[i], *n = ddl_rel_find(hi, o->oid);
		if (n)
			diff_table(hi, &it, o, n);
		else
			item(&it, PH_TAB_DROP, "table-drop", 2, o->schema, o->name);
	}
	for (size_t i = 0; i < hi->nrels; i++)
		if (!ddl_rel_find(lo, hi->rels[i].oid))
			create_table(&it, &hi->rels[i]);
	for (int p = 0; p < PH_N; p++) {
		if (it.ph[p].len)
			strbuf_add(p < PH_ROWS ? pre : post, it.ph[p].buf, it.ph[p].len);
		strbuf_free(&it.ph[p]);
	}
}

void ddl_event_names(const ddl_cat *lo, const ddl_cat *hi, strbuf *schemas, strbuf *names)
{
	size_t n = 0;

	strbuf_reset(schemas);
	strbuf_reset(names);
	for (size_t i = 0; i < hi->nrels; i++) {
		const ddl_rel *r = &hi->rels[i], *o = ddl_rel_find(lo, r->oid);
		if (!o)
			continue;
		db_array_add(schemas, r->schema);
		db_array_add(names, r->name);
		n++;
		if (strcmp(o->schema, r->schema) != 0 || strcmp(o->name, r->name) != 0) {
			db_array_add(schemas, o->schema);
			db_array_add(names, o->name);
		}
	}
	strbuf_adds(schemas, n ? "}" : "{}");
	strbuf_adds(names, n ? "}" : "{}");
}

/* Items about schemas themselves: meaningless when apply_schema is set. */
static const char *const schema_kinds[] = {
	"schema", "schema-drop", "schema-rename", "table-schema"
};

bool ddl_remap(const char *line, size_t len, const char *apply_schema, strbuf *out)
{
	const char *kind = line + 2, *tab, *rest;
	size_t klen;

	strbuf_reset(out);
	if (!apply_schema || len < 3) {
		strbuf_add(out, line, len);
		return true;
	}
	tab = memchr(kind, '\t', len - 2);
	klen = tab ? (size_t)(tab - kind) : len - 2;
	for (size_t i = 0; i < sizeof schema_kinds / sizeof schema_kinds[0]; i++)
		if (strlen(schema_kinds[i]) == klen && memcmp(schema_kinds[i], kind, klen) == 0)
			return false;
	if (!tab) {
		strbuf_add(out, line, len);
		return true;
	}
	/* every other kind: "S KIND SCHEMA ...": replace the schema field */
	rest = memchr(tab + 1, '\t', len - (size_t)(tab + 1 - line));
	strbuf_add(out, line, (size_t)(tab + 1 - line));
	copytext_field(out, apply_schema, strlen(apply_schema));
	if (rest)
		strbuf_add(out, rest, len - (size_t)(rest - line));
	return true;
}

/*
 * Events carry their table's name at capture time. If a table was renamed
 * (or moved) and another table took its old name within one delta, the
 * delta's events under that name could belong to either: refuse rather
 * than guess. Returns true and names the table in what.
 */
bool ddl_names_ambiguous(const ddl_cat *lo, const ddl_cat *hi, char *what, size_t len)
{
	for (size_t i = 0; i < lo->nrels; i++) {
		const ddl_rel *o = &lo->rels[i], *n = ddl_rel_find(hi, o->oid);

		if (!n || (strcmp(o->schema, n->schema) == 0 && strcmp(o->name, n->name) == 0))
			continue;
		for (size_t j = 0; j < hi->nrels; j++) {
			const ddl_rel *r = &hi->rels[j];

			if (r->oid != o->oid && strcmp(r->schema, o->schema) == 0 &&
			    strcmp(r->name, o->name) == 0) {
				snprintf(what, len, "%s.%s", o->schema, o->name);
				return true;
			}
		}
	}
	return false;
}
