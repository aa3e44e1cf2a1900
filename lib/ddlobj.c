/*
 * ddlobj.c - the S lines for the objects beside tables and columns:
 * enums, composite types, domains, sequences, unique and check
 * constraints, indexes (ddl.h, ddl_obj). Phases (ddl_int.h):
 *
 *   - new labels of an enum that existed come first of all, under lo's
 *     names: PostgreSQL lets a transaction add a label but not use it
 *     before COMMIT, so the applier may have to run them in a transaction
 *     of their own ahead of the batch's (applyddl.c), when nothing else
 *     of the batch has run yet;
 *   - types and sequences are created before the tables and columns that
 *     use them (enums, then domains, then composites, which may use
 *     both), and dropped after the columns that used them are gone or
 *     changed type, composites first;
 *   - what only restricts (constraints, a domain's NOT NULL and checks)
 *     and indexes come after the rows, like primary keys (ddldiff.c);
 *     sequence ownership and values too.
 *
 * Objects of a table (constraints, indexes) are only diffed while the
 * table lives on: a dropped table takes them along, a new one gets them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddl.h"
#include "ddl_int.h"

/* Schema of lo object o once the schema renames ran. */
static const char *mid_schema(const ddl_cat *hi, const ddl_obj *o)
{
	const ddl_nsp *n = ddl_nsp_find(hi, o->owner);

	return n ? n->name : o->schema;
}

static const char *class_of(char kind)
{
	return kind == 'd' ? "domain" : kind == 's' ? "sequence" : "type";
}

static bool differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* "<class>-schema" and "<class>-rename" for a type or sequence in both. */
static void move_rename(const ddl_cat *hi, ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	const char *mid = mid_schema(hi, o);
	char kind[32];

	if (strcmp(mid, n->schema) != 0) {
		snprintf(kind, sizeof kind, "%s-schema", class_of(o->kind));
		ddl_item(it, PH_OBJ_MOVE, kind, 3, mid, o->name, n->schema);
	}
	if (strcmp(o->name, n->name) != 0) {
		snprintf(kind, sizeof kind, "%s-rename", class_of(o->kind));
		ddl_item(it, PH_OBJ_RENAME, kind, 3, n->schema, o->name, n->name);
	}
}

static const ddl_part *part_find(const ddl_obj *o, unsigned oid)
{
	for (size_t i = 0; i < o->nparts; i++)
		if (o->parts[i].oid == oid)
			return &o->parts[i];
	return NULL;
}

/* "KIND SCHEMA NAME" then a name (and def) per part: enum, composite. */
static void create_with_parts(ddl_items *it, enum ddl_phase ph, const char *kind,
			      const ddl_obj *n, bool defs)
{
	size_t cap = 2 + n->nparts * 2, k = 0;
	const char **v = xmalloc(cap * sizeof *v);

	v[k++] = n->schema;
	v[k++] = n->name;
	for (size_t i = 0; i < n->nparts; i++) {
		v[k++] = n->parts[i].name;
		if (defs)
			v[k++] = n->parts[i].def;
	}
	ddl_itemv(it, ph, kind, (int)k, v);
	free(v);
}

/* The name label i of hi enum n has before the batch's renames run. */
static const char *label_then(const ddl_obj *o, const ddl_obj *n, size_t i)
{
	const ddl_part *p = part_find(o, n->parts[i].oid);

	return p ? p->name : n->parts[i].name;
}

/*
 * New labels, each placed next to a neighbour that exists by then (one
 * from lo, or one added just before), so the sort order is hi's.
 */
static void diff_enum(const ddl_cat *hi, ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	(void)hi;
	for (size_t i = 0; i < n->nparts; i++) {
		const ddl_part *lp = part_find(o, n->parts[i].oid);

		if (lp && strcmp(lp->name, n->parts[i].name) != 0)
			ddl_item(it, PH_OBJ_RENAME, "enum-label-rename", 4, n->schema, n->name,
				 lp->name, n->parts[i].name);
		if (lp)
			continue;
		if (i > 0)
			ddl_item(it, PH_ENUM_ADD, "enum-label", 5, o->schema, o->name,
				 n->parts[i].name, "after", label_then(o, n, i - 1));
		else
			ddl_item(it, PH_ENUM_ADD, "enum-label", 5, o->schema, o->name,
				 n->parts[i].name, n->nparts > 1 ? "before" : NULL,
				 n->nparts > 1 ? label_then(o, n, 1) : NULL);
	}
}

/* Attributes by number: dropped, renamed, retyped, added. */
static void diff_composite(ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	for (size_t i = 0; i < o->nparts; i++)
		if (!part_find(n, o->parts[i].oid))
			ddl_item(it, PH_TYPE_ALTER, "attribute-drop", 3, n->schema, n->name,
				 o->parts[i].name);
	for (size_t i = 0; i < n->nparts; i++) {
		const ddl_part *np = &n->parts[i], *op = part_find(o, np->oid);

		if (!op) {
			ddl_item(it, PH_TYPE_ALTER, "attribute", 4, n->schema, n->name, np->name,
				 np->def);
			continue;
		}
		if (strcmp(op->name, np->name) != 0)
			ddl_item(it, PH_OBJ_RENAME, "attribute-rename", 4, n->schema, n->name,
				 op->name, np->name);
		if (differ(op->def, np->def))
			ddl_item(it, PH_TYPE_ALTER, "attribute-type", 4, n->schema, n->name,
				 np->name, np->def);
	}
}

/* A domain's NOT NULL (f[1]) and checks (parts) that n has and o lacks. */
static void domain_restrict(ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	if (n->f[1] && n->f[1][0] == 't' && !(o && o->f[1] && o->f[1][0] == 't'))
		ddl_item(it, PH_CON_ADD, "domain-notnull", 3, n->schema, n->name, "t");
	for (size_t i = 0; i < n->nparts; i++)
		if (!o || !part_find(o, n->parts[i].oid))
			ddl_item(it, PH_CON_ADD, "domain-check", 4, n->schema, n->name,
				 n->parts[i].name, n->parts[i].def);
}

/*
 * With its NOT NULL and checks: ALTER DOMAIN cannot add them once a
 * composite type stored in a table uses the domain, which may happen in
 * this very batch. A new domain holds no value yet that they could refuse.
 */
static void create_domain(ddl_items *it, const ddl_obj *n)
{
	size_t k = 0;
	const char **v = xmalloc((5 + 2 * n->nparts) * sizeof *v);

	v[k++] = n->schema;
	v[k++] = n->name;
	v[k++] = n->f[0];
	v[k++] = n->f[2];
	v[k++] = n->f[1];
	for (size_t i = 0; i < n->nparts; i++) {
		v[k++] = n->parts[i].name;
		v[k++] = n->parts[i].def;
	}
	ddl_itemv(it, PH_DOMAIN_CREATE, "domain", (int)k, v);
	free(v);
}

/* f: BASETYPE NOTNULL DEFAULT; parts: checks by constraint oid. */
static void diff_domain(ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	for (size_t i = 0; i < o->nparts; i++) {
		const ddl_part *op = &o->parts[i], *np = part_find(n, op->oid);

		if (!np)
			ddl_item(it, PH_CON_DROP, "domain-constraint-drop", 3, o->schema, o->name,
				 op->name);
		else if (strcmp(op->name, np->name) != 0)
			ddl_item(it, PH_OBJ_RENAME, "domain-constraint-rename", 4, n->schema,
				 n->name, op->name, np->name);
	}
	if (differ(o->f[2], n->f[2]))
		ddl_item(it, PH_TYPE_ALTER, "domain-default", 3, n->schema, n->name, n->f[2]);
	if (o->f[1] && o->f[1][0] == 't' && n->f[1] && n->f[1][0] == 'f')
		ddl_item(it, PH_TYPE_ALTER, "domain-notnull", 3, n->schema, n->name, "f");
	domain_restrict(it, o, n);
}

/* OWNED BY and the value, after the rows (the owning column exists then). */
static void sequence_post(const ddl_cat *hi, ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	unsigned rel = n->f[7] ? (unsigned)strtoul(n->f[7], NULL, 10) : 0;
	const ddl_rel *r = rel ? ddl_rel_find(hi, rel) : NULL;
	const ddl_col *c = r && n->f[8] ? ddl_col_find(r, atoi(n->f[8])) : NULL;

	if ((!o || differ(o->f[7], n->f[7]) || differ(o->f[8], n->f[8])) && (c || !rel))
		ddl_item(it, PH_SEQ_POST, "sequence-owned", 4, n->schema, n->name,
			 c ? r->name : NULL, c ? c->name : NULL);
	if (n->f[9] && (!o || differ(o->f[9], n->f[9])))
		ddl_item(it, PH_SEQ_POST, "sequence-value", 3, n->schema, n->name, n->f[9]);
}

/* f: TYPE START INC MIN MAX CACHE CYCLE OWNERREL OWNERATT VALUE */
static void sequence_def(ddl_items *it, enum ddl_phase ph, const char *kind, const ddl_obj *n)
{
	const char *v[9] = { n->schema, n->name };

	for (int i = 0; i < 7; i++)
		v[2 + i] = n->f[i];
	ddl_itemv(it, ph, kind, 9, v);
}

static void diff_sequence(const ddl_cat *hi, ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	for (int i = 0; i < 7; i++)
		if (differ(o->f[i], n->f[i])) {
			sequence_def(it, PH_TYPE_ALTER, "sequence-alter", n);
			break;
		}
	sequence_post(hi, it, o, n);
}

/* ---- objects of a table ---- */

/*
 * Constraint (k) or index (i) o of lo, n of hi (NULL: dropped), while
 * their table lives on: a dropped table takes them along.
 */
static void table_obj_change(const ddl_cat *lo, const ddl_cat *hi, ddl_items *it,
			     const ddl_obj *o, const ddl_obj *n)
{
	const ddl_rel *lr = ddl_rel_find(lo, o->owner), *hr = ddl_rel_find(hi, o->owner);
	bool idx = o->kind == 'i';

	if (!hr || !lr)
		return;
	if (!n && idx)
		ddl_item(it, PH_IDX_DROP, "index-drop", 2, o->schema, o->name);
	else if (!n)
		ddl_item(it, PH_CON_DROP, "constraint-drop", 3, lr->schema, lr->name, o->name);
	else if (strcmp(o->name, n->name) != 0 && idx)
		ddl_item(it, PH_CON_RENAME, "index-rename", 3, hr->schema, o->name, n->name);
	else if (strcmp(o->name, n->name) != 0)
		ddl_item(it, PH_CON_RENAME, "constraint-rename", 4, hr->schema, hr->name, o->name,
			 n->name);
}

/* A constraint or index new in hi; a new table gets its own this way. */
static void table_obj_add(const ddl_cat *hi, ddl_items *it, const ddl_obj *n)
{
	const ddl_rel *hr = ddl_rel_find(hi, n->owner);

	if (hr && n->kind == 'i' && n->f[1])
		ddl_item(it, PH_IDX_ADD, "index", 5, hr->schema, hr->name, n->name, n->f[0], n->f[1]);
	else if (hr && n->kind == 'k')
		ddl_item(it, PH_CON_ADD, "constraint", 4, hr->schema, hr->name, n->name, n->f[1]);
}

/* ---- create, drop, change ---- */

static void create_obj(const ddl_cat *hi, ddl_items *it, const ddl_obj *n)
{
	switch (n->kind) {
	case 'e':
		create_with_parts(it, PH_ENUM_CREATE, "enum", n, false);
		break;
	case 'c':
		create_with_parts(it, PH_COMPOSITE_CREATE, "composite", n, true);
		break;
	case 'd':
		create_domain(it, n);
		break;
	case 's':
		sequence_def(it, PH_SEQ_CREATE, "sequence", n);
		sequence_post(hi, it, NULL, n);
		break;
	}
}

static void drop_obj(const ddl_cat *hi, ddl_items *it, const ddl_obj *o)
{
	static const enum ddl_phase ph[] = { PH_ENUM_DROP, PH_COMPOSITE_DROP, PH_DOMAIN_DROP,
					     PH_SEQ_DROP };
	const char *p = strchr("ecds", o->kind);
	char kind[32];

	if (!p || !o->kind)
		return;
	snprintf(kind, sizeof kind, "%s-drop", class_of(o->kind));
	ddl_item(it, ph[p - "ecds"], kind, 2, mid_schema(hi, o), o->name);
}

static void change_obj(const ddl_cat *hi, ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	move_rename(hi, it, o, n);
	if (o->kind == 'e')
		diff_enum(hi, it, o, n);
	else if (o->kind == 'c')
		diff_composite(it, o, n);
	else if (o->kind == 'd')
		diff_domain(it, o, n);
	else if (o->kind == 's')
		diff_sequence(hi, it, o, n);
}

void ddl_diff_objs(const ddl_cat *lo, const ddl_cat *hi, ddl_items *it)
{
	for (size_t i = 0; i < lo->nobjs; i++) {
		const ddl_obj *o = &lo->objs[i], *n = ddl_obj_find(hi, o->kind, o->oid);

		if (o->kind == 'k' || o->kind == 'i')
			table_obj_change(lo, hi, it, o, n);
		else if (!n)
			drop_obj(hi, it, o);
		else
			change_obj(hi, it, o, n);
	}
	for (size_t i = 0; i < hi->nobjs; i++) {
		const ddl_obj *n = &hi->objs[i];

		if (ddl_obj_find(lo, n->kind, n->oid))
			continue;
		if (n->kind == 'k' || n->kind == 'i')
			table_obj_add(hi, it, n);
		else
			create_obj(hi, it, n);
	}
}
