/*
 * ddldiff.c - the S lines that turn one description into another.
 *
 * Order, chosen so that every statement finds what it needs and no name
 * is taken twice (a column dropped and another renamed into its name, a
 * table dropped and created again under its name): the phases of
 * ddl_int.h. Before the delta's rows: new enum labels (ddlobj.c says
 * why first); foreign key, constraint, index, column and table drops
 * (all under lo's names); schema renames and creates; extensions;
 * type, sequence and function moves and renames; table moves and
 * renames; column and constraint renames; types, sequences and functions
 * created; table creates and column adds; type and default changes; NOT
 * NULL drops; functions, types, sequences, extensions and then schemas
 * dropped, once nothing uses them. After the rows: NOT NULL sets,
 * primary keys, other constraints, indexes, foreign keys, sequence
 * ownership and values.
 *
 * Drops of columns and tables come first rather than last: the rows of a
 * dropped table are not shipped, and those of a dropped column are left
 * out of the rows (see batchbuild.c), so nothing in the delta needs them,
 * while a same-named successor does need the name. Constraints that only
 * restrict (NOT NULL, keys, checks) are added after the rows: the rows
 * were valid on the source when written, but the target's state before
 * them need not satisfy a constraint the source added later in the delta
 * (UPDATE ... SET c = 0 WHERE c IS NULL; ALTER ... SET NOT NULL).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copytext.h"
#include "db.h"
#include "ddl.h"
#include "ddl_int.h"

#define item ddl_item
typedef ddl_items items;

void ddl_itemv(ddl_items *it, enum ddl_phase ph, const char *kind, int n,
	       const char *const *v)
{
	strbuf *sb = &it->ph[ph];

	strbuf_addf(sb, "S\t%s", kind);
	for (int i = 0; i < n; i++) {
		strbuf_addc(sb, '\t');
		copytext_field(sb, v[i], v[i] ? strlen(v[i]) : 0);
	}
	strbuf_addc(sb, '\n');
}

void ddl_item(ddl_items *it, enum ddl_phase ph, const char *kind, int n, ...)
{
	const char *v[8];
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n && i < 8; i++)
		v[i] = va_arg(ap, const char *);
	va_end(ap);
	ddl_itemv(it, ph, kind, n < 8 ? n : 8, v);
}

#define nsp_find ddl_nsp_find

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

/*
 * An identity column's identity and its sequence's value, after the rows
 * and NOT NULL (which an identity needs): so a target promoted after a
 * failover goes on after the ids the source handed out.
 */
static void add_identity(items *it, const ddl_rel *r, const ddl_col *c)
{
	item(it, PH_SEQ_POST, "column-identity", 4, r->schema, r->name, c->name, "t");
	if (c->idvalue)
		item(it, PH_SEQ_POST, "column-identity-value", 4, r->schema, r->name, c->name,
		     c->idvalue);
}

/* ADD COLUMN for c of table r (hi names), in phase ph. */
static void add_column(items *it, enum ddl_phase ph, const ddl_rel *r, const ddl_col *c)
{
	item(it, ph, "column", 6, r->schema, r->name, c->name, c->type, c->def,
	     c->generated ? "t" : "f");
	if (c->notnull)
		item(it, PH_NOTNULL_SET, "column-notnull", 4, r->schema, r->name, c->name, "t");
	if (c->identity)
		add_identity(it, r, c);
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
	for (size_t i = 0; i < r->ncols; i++)
		add_column(it, PH_TAB_CREATE, r, &r->cols[i]);
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
	if (!oc->identity && nc->identity)
		add_identity(it, n, nc);
	else if (oc->identity && !nc->identity)
		item(it, PH_COL_DEFAULT, "column-identity", 4, s, t, nc->name, "f");
	else if (nc->identity && nc->idvalue && str_differ(oc->idvalue, nc->idvalue))
		item(it, PH_SEQ_POST, "column-identity-value", 4, s, t, nc->name, nc->idvalue);
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
			add_column(it, PH_COL_ADD, n, &n->cols[i]);
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
	ddl_diff_objs(lo, hi, &it);
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
	"schema", "schema-drop", "schema-rename", "table-schema", "type-schema",
	"domain-schema", "sequence-schema", "function-schema", "extension-schema"
};

static bool is_schema_kind(const char *kind)
{
	for (size_t i = 0; i < sizeof schema_kinds / sizeof schema_kinds[0]; i++)
		if (strcmp(schema_kinds[i], kind) == 0)
			return true;
	return false;
}

/* Is field i (0: the first after the kind) of kind a schema besides field 0? */
static bool is_schema_field(const char *kind, int i)
{
	return (i == 3 && strcmp(kind, "fkey") == 0) ||  /* the referenced table's */
	       (i == 5 && strcmp(kind, "enum-label") == 0);     /* the name to add it by */
}

/* Is field i (0: the first after the kind) of kind a type name? */
static bool is_type_field(const char *kind, int i)
{
	if (strcmp(kind, "column") == 0 || strcmp(kind, "column-type") == 0 ||
	    strcmp(kind, "attribute") == 0 || strcmp(kind, "attribute-type") == 0)
		return i == 3;
	if (strcmp(kind, "domain") == 0)
		return i == 2;
	return strcmp(kind, "composite") == 0 && i >= 3 && i % 2 == 1;
}

/*
 * A type name as format_type writes it with an empty search_path: its
 * schema first when it has one ("public.mood[]", "\"My s\".\"T\"").
 * With apply_schema, the schema of a replicated type (one in a schema the
 * target matches) becomes apply_schema; built-in and other types stay.
 */
static void remap_type(const char *type, const tp_target *t, strbuf *out)
{
	strbuf nsp = { 0 };
	const char *p = type;

	if (*p == '"') {
		for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
			if (*p == '"')
				p++;
			strbuf_addc(&nsp, *p);
		}
		p += *p == '"';
	} else {
		while (*p && strchr("abcdefghijklmnopqrstuvwxyz0123456789_$", *p))
			strbuf_addc(&nsp, *p++);
	}
	if (*p != '.' || !nsp.len || !target_matches_schema(t, nsp.buf)) {
		strbuf_adds(out, type);
	} else {
		/* quoted like quote_ident would, but always: the target checks it */
		strbuf_addc(out, '"');
		for (const char *a = t->apply_schema; *a; a++) {
			if (*a == '"')
				strbuf_addc(out, '"');
			strbuf_addc(out, *a);
		}
		strbuf_addc(out, '"');
		strbuf_adds(out, p);
	}
	strbuf_free(&nsp);
}

bool ddl_remap(const char *line, size_t len, const tp_target *t, strbuf *out)
{
	char *copy, **f;
	size_t *lens, nf = 1;
	int n;
	bool keep = true;

	strbuf_reset(out);
	if (!t->apply_schema || len < 3) {
		strbuf_add(out, line, len);
		return true;
	}
	for (size_t i = 0; i < len; i++)
		nf += line[i] == '\t';
	copy = xstrndup(line, len);
	f = xmalloc(nf * sizeof *f);
	lens = xmalloc(nf * sizeof *lens);
	n = copytext_split(copy, len, f, lens, nf);
	if (n < 2 || !f[1]) {
		strbuf_add(out, line, len);     /* malformed: the applier says so */
	} else if (is_schema_kind(f[1])) {
		keep = false;
	} else {
		/* every other kind: "S KIND SCHEMA ...": replace the schema field */
		strbuf_adds(out, "S\t");
		copytext_field(out, f[1], lens[1]);
		for (int i = 2; i < n; i++) {
			strbuf tmp = { 0 };
			const char *v = i == 2 || is_schema_field(f[1], i - 2) ? t->apply_schema
									       : f[i];

			if (v && i > 2 && is_type_field(f[1], i - 2)) {
				remap_type(v, t, &tmp);
				v = tmp.buf;
			}
			strbuf_addc(out, '\t');
			copytext_field(out, v, v ? strlen(v) : 0);
			strbuf_free(&tmp);
		}
	}
	free(copy);
	free(f);
	free(lens);
	return keep;
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
