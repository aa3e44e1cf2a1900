/*
 * ddlobj.c - the S lines for the objects beside tables and columns:
 * enums, composite types, domains, sequences, unique and check
 * constraints, indexes, extensions, functions and procedures, foreign
 * keys (ddl.h, ddl_obj). Phases (ddl_int.h):
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
 *     sequence ownership and values too;
 *   - extensions are created (and updated) right after the schemas, as a
 *     column, type or function may use their types, and dropped after
 *     all of those, just before the schemas;
 *   - functions are created (or replaced) after the types, which their
 *     arguments may use, and before the tables, whose defaults may call
 *     them; dropped once defaults changed, before the types. Their
 *     bodies are not checked on creation (applyobj.c), so a body may use
 *     a table that comes later;
 *   - foreign keys are dropped first of all drops, as the unique keys,
 *     columns and tables they rest on may go too, and added last, after
 *     the rows of both tables and the keys they reference. A changed one
 *     is dropped and added again; one whose table is dropped is dropped
 *     first all the same, as its referenced table may go in the same
 *     delta, before it.
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
	return kind == 'd' ? "domain" : kind == 's' ? "sequence" :
	       kind == 'x' ? "extension" : "type";
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

/* ---- foreign keys: f REFOID KEY REFKEY MATCH UPD DEL DEFERRABLE DEFERRED SETCOLS VALID ---- */

/* The word for pg_constraint's letter c among letters; NULL if unknown. */
static const char *fk_word(const char *c, const char *letters, const char *const *words)
{
	const char *p = c && *c ? strchr(letters, *c) : NULL;

	return p ? words[p - letters] : NULL;
}

static size_t list_len(const char *list)
{
	size_t n = list && *list ? 1 : 0;

	for (const char *p = list; n && *p; p++)
		n += *p == ',';
	return n;
}

/* Append the names of r's columns listed by attnum ("1,2"); false if one lacks. */
static bool fk_cols(const ddl_rel *r, const char *list, const char **v, size_t *k)
{
	for (const char *p = list; p && *p;) {
		char *end;
		const ddl_col *c = ddl_col_find(r, (int)strtol(p, &end, 10));

		if (!c || end == p)
			return false;
		v[(*k)++] = c->name;
		p = end + (*end == ',');
	}
	return true;
}

/*
 * "fkey SCHEMA TABLE NAME REFSCHEMA REFTABLE MATCH UPDATE DELETE
 * DEFERRABLE DEFERRED VALID N COLUMN... REFCOLUMN... [SETCOLUMN...]", all
 * by hi's names: the target builds the clause, REFSCHEMA remapped like
 * SCHEMA (ddl_remap).
 */
static void fkey_add(const ddl_cat *hi, ddl_items *it, const ddl_obj *n)
{
	static const char *const match[] = { "full", "partial", "simple" };
	static const char *const action[] = { "no action", "restrict", "cascade", "set null",
					      "set default" };
	const ddl_rel *r = ddl_rel_find(hi, n->owner);
	const ddl_rel *rr = n->f[0] ? ddl_rel_find(hi, (unsigned)strtoul(n->f[0], NULL, 10)) : NULL;
	size_t nk = list_len(n->f[1]), k = 0;
	const char **v;
	char num[24];

	if (!r || !rr)          /* described only when both tables are */
		return;
	v = xmalloc((12 + 2 * nk + list_len(n->f[8])) * sizeof *v);
	snprintf(num, sizeof num, "%zu", nk);
	v[k++] = r->schema;
	v[k++] = r->name;
	v[k++] = n->name;
	v[k++] = rr->schema;
	v[k++] = rr->name;
	v[k++] = fk_word(n->f[3], "fps", match);
	v[k++] = fk_word(n->f[4], "arcnd", action);
	v[k++] = fk_word(n->f[5], "arcnd", action);
	v[k++] = n->f[6] ? n->f[6][0] == 't' ? "t" : "f" : NULL;
	v[k++] = n->f[7] ? n->f[7][0] == 't' ? "t" : "f" : NULL;
	v[k++] = n->f[9] ? n->f[9][0] == 't' ? "t" : "f" : NULL;
	v[k++] = num;
	for (size_t i = 0; i < k; i++)
		if (!v[i])
			nk = 0;         /* not as the catalog says: leave it out */
	if (nk && nk == list_len(n->f[2]) && fk_cols(r, n->f[1], v, &k) &&
	    fk_cols(rr, n->f[2], v, &k) && fk_cols(r, n->f[8], v, &k))
		ddl_itemv(it, PH_FK_ADD, "fkey", (int)k, v);
	free(v);
}

/*
 * Foreign key o of lo, n of hi (NULL: gone). Dropped under lo's names
 * even when its table is dropped too: the table it references may be
 * dropped before it. A column or table renamed is followed by the key
 * itself; anything else changed makes it dropped and added again.
 */
static void fkey_change(const ddl_cat *lo, const ddl_cat *hi, ddl_items *it,
			const ddl_obj *o, const ddl_obj *n)
{
	const ddl_rel *lr = ddl_rel_find(lo, o->owner), *hr = n ? ddl_rel_find(hi, n->owner) : NULL;
	bool same = hr && o->nf == n->nf;

	for (int i = 0; same && i < o->nf; i++)
		same = !differ(o->f[i], n->f[i]);
	if (!lr)
		return;
	if (!same) {
		ddl_item(it, PH_FK_DROP, "constraint-drop", 3, lr->schema, lr->name, o->name);
		if (n)
			fkey_add(hi, it, n);
	} else if (strcmp(o->name, n->name) != 0) {
		ddl_item(it, PH_CON_RENAME, "constraint-rename", 4, hr->schema, hr->name, o->name,
			 n->name);
	}
}

/* ---- functions: u PROKIND ARGS IDENTITY TAIL ---- */

/* CREATE OR REPLACE: "function SCHEMA NAME function|procedure ARGS TAIL". */
static void function_def(ddl_items *it, const ddl_obj *n)
{
	if (n->f[1] && n->f[3])         /* no TAIL: not in the form expected */
		ddl_item(it, PH_FUNC_CREATE, "function", 5, n->schema, n->name,
			 n->f[0] && n->f[0][0] == 'p' ? "procedure" : "function", n->f[1], n->f[3]);
}

/*
 * Moved, renamed, redefined. A function is named by its argument types,
 * as format_type wrote them when its description was taken: lo's before
 * the renames (a move comes with the types' moves, before their renames),
 * hi's after them.
 */
static void function_change(const ddl_cat *hi, ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	const char *mid = mid_schema(hi, o);

	if (strcmp(mid, n->schema) != 0)
		ddl_item(it, PH_OBJ_MOVE, "function-schema", 4, mid, o->name, o->f[2], n->schema);
	if (strcmp(o->name, n->name) != 0)
		ddl_item(it, PH_OBJ_RENAME, "function-rename", 4, n->schema, o->name, n->f[2],
			 n->name);
	if (differ(o->f[0], n->f[0]) || differ(o->f[1], n->f[1]) || differ(o->f[3], n->f[3]))
		function_def(it, n);
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
	case 'x':
		ddl_item(it, PH_EXT_CREATE, "extension", 3, n->schema, n->name, n->f[0]);
		break;
	case 'u':
		function_def(it, n);
		break;
	}
}

/*
 * Is extension or function o of lo, gone from hi, followed by a new one
 * of the same name (and arguments)? DROP and CREATE again, say to change
 * a return type. Then it goes right before its successor is made: the
 * late drop would come after CREATE OR REPLACE (which cannot change the
 * return type) or CREATE EXTENSION IF NOT EXISTS (which would keep the
 * old one), and remove the new one.
 */
/* Do objects of kinds a and b share one namespace of names? (types do) */
static bool same_names(char a, char b)
{
	return a == b || (strchr("ecd", a) && strchr("ecd", b));
}

static bool recreated(const ddl_cat *lo, const ddl_cat *hi, const ddl_obj *o)
{
	const char *mid = mid_schema(hi, o);

	for (size_t i = 0; i < hi->nobjs; i++) {
		const ddl_obj *n = &hi->objs[i];

		if (same_names(n->kind, o->kind) && strcmp(n->name, o->name) == 0 &&
		    (o->kind == 'x' || (strcmp(n->schema, mid) == 0 &&
					(o->kind != 'u' || !differ(n->f[2], o->f[2])))) &&
		    !ddl_obj_find(lo, n->kind, n->oid))
			return true;
	}
	return false;
}

/*
 * A type or sequence dropped and made again under its name in one delta
 * goes right before the types (or sequences) are created, as above: late,
 * it would remove the new one, whose creation the old one's name made the
 * target skip. (If a column still uses the old one there, the drop fails
 * loudly; ddl = event-triggers orders such changes exactly.)
 */
static void drop_obj(const ddl_cat *lo, const ddl_cat *hi, ddl_items *it, const ddl_obj *o)
{
	static const enum ddl_phase ph[] = { PH_ENUM_DROP, PH_COMPOSITE_DROP, PH_DOMAIN_DROP,
					     PH_SEQ_DROP };
	const char *p = strchr("ecds", o->kind);
	bool again = o->kind && strchr("xuecds", o->kind) && recreated(lo, hi, o);
	char kind[32];

	if (o->kind == 'x')
		ddl_item(it, again ? PH_EXT_CREATE : PH_EXT_DROP, "extension-drop", 2,
			 mid_schema(hi, o), o->name);
	else if (o->kind == 'u')
		ddl_item(it, again ? PH_FUNC_CREATE : PH_FUNC_DROP, "function-drop", 3,
			 mid_schema(hi, o), o->name, o->f[2]);
	if (!p || !o->kind)
		return;
	snprintf(kind, sizeof kind, "%s-drop", class_of(o->kind));
	ddl_item(it, !again ? ph[p - "ecds"] : o->kind == 's' ? PH_SEQ_CREATE : PH_ENUM_CREATE,
		 kind, 2, mid_schema(hi, o), o->name);
}

static void change_obj(const ddl_cat *hi, ddl_items *it, const ddl_obj *o, const ddl_obj *n)
{
	if (o->kind == 'u') {
		function_change(hi, it, o, n);
		return;
	}
	move_rename(hi, it, o, n);
	if (o->kind == 'x' && differ(o->f[0], n->f[0]))
		ddl_item(it, PH_EXT_CREATE, "extension-update", 3, n->schema, n->name, n->f[0]);
	else if (o->kind == 'e')
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
		else if (o->kind == 'f')
			fkey_change(lo, hi, it, o, n);
		else if (!n)
			drop_obj(lo, hi, it, o);
		else
			change_obj(hi, it, o, n);
	}
	for (size_t i = 0; i < hi->nobjs; i++) {
		const ddl_obj *n = &hi->objs[i];

		if (ddl_obj_find(lo, n->kind, n->oid))
			continue;
		if (n->kind == 'k' || n->kind == 'i')
			table_obj_add(hi, it, n);
		else if (n->kind == 'f')
			fkey_add(hi, it, n);
		else
			create_obj(hi, it, n);
	}
}
