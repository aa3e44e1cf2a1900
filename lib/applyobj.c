/*
 * applyobj.c - the statements of the S lines for types, sequences,
 * unique and check constraints and indexes (teleport-batch(5)).
 *
 * As in applyddl.c, each statement is built here from the line's data:
 * names quoted, labels as string literals (utility statements take no
 * parameters), types checked with ::regtype, numbers checked to be
 * numbers. Three fields are SQL text run as sent, like column defaults:
 * a domain's default and its CHECK, a table constraint's definition (one
 * that starts with UNIQUE or CHECK), and an index's definition after
 * USING. Creating an object that is there already (adopted by hand, or
 * a description from before this kind was replicated) is skipped.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "applyddl_int.h"
#include "db.h"
#include "tp.h"

static const char type_exists[] =
	"SELECT 1 WHERE pg_catalog.to_regtype($1) IS NOT NULL";
static const char label_exists[] =
	"SELECT 1 FROM pg_catalog.pg_enum WHERE enumtypid = pg_catalog.to_regtype($1)"
	" AND enumlabel = $2";
static const char domain_con_exists[] =
	"SELECT 1 FROM pg_catalog.pg_constraint WHERE contypid = pg_catalog.to_regtype($1)"
	" AND conname = $2";
static const char table_con_exists[] =
	"SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = pg_catalog.to_regclass($1)"
	" AND conname = $2";
/* forward only, in the direction the sequence counts */
static const char setval_sql[] =
	"SELECT pg_catalog.setval(q.seqrelid::pg_catalog.regclass, $2::bigint)"
	" FROM pg_catalog.pg_sequence q,"
	" LATERAL (SELECT pg_catalog.pg_sequence_last_value(q.seqrelid::pg_catalog.regclass) v) l"
	" WHERE q.seqrelid = $1::pg_catalog.regclass AND (l.v IS NULL OR"
	"   CASE WHEN q.seqincrement > 0 THEN l.v < $2::bigint ELSE l.v > $2::bigint END)";

/* Statements of one shape: HEAD schema.name TAIL, TAIL naming f[a] (and f[b]). */
typedef struct simple_kind {
	const char *kind;
	int n;
	const char *head, *tail;
	int a, b;
} simple_kind;

static const simple_kind simple[] = {
	{ "type-drop", 4, "DROP TYPE ", NULL, -1, -1 },
	{ "type-rename", 5, "ALTER TYPE ", " RENAME TO %s", 4, -1 },
	{ "type-schema", 5, "ALTER TYPE ", " SET SCHEMA %s", 4, -1 },
	{ "attribute-drop", 5, "ALTER TYPE ", " DROP ATTRIBUTE IF EXISTS %s CASCADE", 4, -1 },
	{ "attribute-rename", 6, "ALTER TYPE ", " RENAME ATTRIBUTE %s TO %s CASCADE", 4, 5 },
	{ "domain-drop", 4, "DROP DOMAIN ", NULL, -1, -1 },
	{ "domain-rename", 5, "ALTER DOMAIN ", " RENAME TO %s", 4, -1 },
	{ "domain-schema", 5, "ALTER DOMAIN ", " SET SCHEMA %s", 4, -1 },
	{ "domain-constraint-drop", 5, "ALTER DOMAIN ", " DROP CONSTRAINT IF EXISTS %s", 4, -1 },
	{ "domain-constraint-rename", 6, "ALTER DOMAIN ", " RENAME CONSTRAINT %s TO %s", 4, 5 },
	{ "sequence-drop", 4, "DROP SEQUENCE IF EXISTS ", NULL, -1, -1 },
	{ "sequence-rename", 5, "ALTER SEQUENCE ", " RENAME TO %s", 4, -1 },
	{ "sequence-schema", 5, "ALTER SEQUENCE ", " SET SCHEMA %s", 4, -1 },
	{ "index-drop", 4, "DROP INDEX IF EXISTS ", NULL, -1, -1 },
	{ "index-rename", 5, "ALTER INDEX ", " RENAME TO %s", 4, -1 },
};

/* HEAD schema.name (f[2], f[3]) when the line has exactly n fields. */
static bool head(ddl_stmt *s, int n, const char *h)
{
	if (s->n != n)
		return false;
	strbuf_adds(&s->sql, h);
	return ddl_qualified(s, 2);
}

/* Skip the statement when sql finds the object: $1 schema.name, $2 f[i]. */
static void skip_when(ddl_stmt *s, const char *sql, int i)
{
	s->skip_sql = sql;
	s->skip_p[0] = ddl_own(s, db_qualified(s->conn, s->f[2], s->f[3]));
	s->skip_p[1] = i >= 0 ? s->f[i] : NULL;
}

static bool starts(const char *v, const char *prefix)
{
	return v && strncmp(v, prefix, strlen(prefix)) == 0;
}

/* Append ", " (unless first) and literal f[i]. */
static bool add_lit(ddl_stmt *s, int i, const char *sep)
{
	char *l = ddl_lit(s, i);

	if (!l)
		return false;
	strbuf_addf(&s->sql, "%s%s", sep, l);
	free(l);
	return true;
}

static bool enum_stmt(ddl_stmt *s, const char *kind)
{
	if (strcmp(kind, "enum") == 0) {
		if (s->n < 4 || !head(s, s->n, "CREATE TYPE "))
			return false;
		strbuf_adds(&s->sql, " AS ENUM (");
		for (int i = 4; i < s->n; i++)
			if (!add_lit(s, i, i > 4 ? ", " : ""))
				return false;
		strbuf_addc(&s->sql, ')');
		skip_when(s, type_exists, -1);
		return true;
	}
	if (strcmp(kind, "enum-label-rename") == 0)
		return head(s, 6, "ALTER TYPE ") && add_lit(s, 4, " RENAME VALUE ") &&
		       add_lit(s, 5, " TO ");
	/* enum-label SCHEMA NAME LABEL before|after|\N NEIGHBOUR */
	if (!head(s, 7, "ALTER TYPE ") || !add_lit(s, 4, " ADD VALUE IF NOT EXISTS "))
		return false;
	if (s->f[5] && !add_lit(s, 6, strcmp(s->f[5], "before") == 0 ? " BEFORE " : " AFTER "))
		return false;
	skip_when(s, label_exists, 4);
	s->early = true;
	return true;
}

static bool composite_stmt(ddl_stmt *s, const char *kind)
{
	if (strcmp(kind, "composite") == 0) {
		if (s->n < 4 || s->n % 2 != 0 || !head(s, s->n, "CREATE TYPE "))
			return false;
		strbuf_adds(&s->sql, " AS (");
		for (int i = 4; i + 1 < s->n; i += 2) {
			char *a = ddl_q(s, i);
			if (!a || !s->f[i + 1] || !*s->f[i + 1]) {
				free(a);
				return false;
			}
			strbuf_addf(&s->sql, "%s%s %s", i > 4 ? ", " : "", a, s->f[i + 1]);
			ddl_type(s, i + 1);
			free(a);
		}
		strbuf_addc(&s->sql, ')');
		skip_when(s, type_exists, -1);
		return true;
	}
	/* attribute, attribute-type SCHEMA TYPE ATTR ATTRTYPE */
	if (!head(s, 6, "ALTER TYPE ") || !s->f[5] || !*s->f[5] ||
	    !ddl_with_names(s, strcmp(kind, "attribute") == 0 ? " ADD ATTRIBUTE %s "
							      : " ALTER ATTRIBUTE %s TYPE ", 4, -1))
		return false;
	ddl_type(s, 5);
	strbuf_addf(&s->sql, "%s CASCADE", s->f[5]);
	return true;
}

/* domain SCHEMA NAME BASETYPE DEFAULT NOTNULL [CONNAME CHECKDEF]... */
static bool create_domain(ddl_stmt *s)
{
	char **f = s->f;

	if (s->n < 7 || s->n % 2 == 0 || !head(s, s->n, "CREATE DOMAIN ") || !f[4] || !*f[4] ||
	    !f[6])
		return false;
	ddl_type(s, 4);
	strbuf_addf(&s->sql, " AS %s", f[4]);
	if (f[5])
		strbuf_addf(&s->sql, " DEFAULT (%s)", f[5]);
	if (f[6][0] == 't')
		strbuf_adds(&s->sql, " NOT NULL");
	for (int i = 7; i + 1 < s->n; i += 2) {
		if (!starts(f[i + 1], "CHECK (") || !ddl_with_names(s, " CONSTRAINT %s ", i, -1))
			return false;
		strbuf_adds(&s->sql, f[i + 1]);
	}
	skip_when(s, type_exists, -1);
	return true;
}

static bool domain_stmt(ddl_stmt *s, const char *kind)
{
	char **f = s->f;

	if (strcmp(kind, "domain") == 0)
		return create_domain(s);
	if (strcmp(kind, "domain-default") == 0 && head(s, 5, "ALTER DOMAIN ")) {
		if (f[4])
			strbuf_addf(&s->sql, " SET DEFAULT (%s)", f[4]);
		else
			strbuf_adds(&s->sql, " DROP DEFAULT");
		return true;
	}
	if (strcmp(kind, "domain-notnull") == 0 && head(s, 5, "ALTER DOMAIN ") && f[4]) {
		strbuf_adds(&s->sql, f[4][0] == 't' ? " SET NOT NULL" : " DROP NOT NULL");
		return true;
	}
	if (strcmp(kind, "domain-check") != 0 || !head(s, 6, "ALTER DOMAIN ") ||
	    !starts(f[5], "CHECK (") || !ddl_with_names(s, " ADD CONSTRAINT %s ", 4, -1))
		return false;
	strbuf_adds(&s->sql, f[5]);
	skip_when(s, domain_con_exists, 4);
	return true;
}

/* An integer, as pg_sequence prints them. */
static bool is_int(const char *v)
{
	if (!v || !*v)
		return false;
	v += *v == '-';
	for (; *v; v++)
		if (!isdigit((unsigned char)*v))
			return false;
	return true;
}

/* sequence, sequence-alter SCHEMA NAME TYPE START INC MIN MAX CACHE CYCLE */
static bool sequence_def(ddl_stmt *s, const char *kind)
{
	char **f = s->f;
	bool create = strcmp(kind, "sequence") == 0;

	if (!head(s, 11, create ? "CREATE SEQUENCE IF NOT EXISTS " : "ALTER SEQUENCE ") ||
	    !f[4] || !*f[4] || !f[10])
		return false;
	for (int i = 5; i < 10; i++)
		if (!is_int(f[i]))
			return false;
	ddl_type(s, 4);
	strbuf_addf(&s->sql, " AS %s START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s"
		    " CACHE %s %sCYCLE", f[4], f[5], f[6], f[7], f[8], f[9],
		    f[10][0] == 't' ? "" : "NO ");
	return true;
}

/* OWNED BY schema.table.column: f[2], f[4], f[5] */
static bool owned_by(ddl_stmt *s)
{
	char *a = ddl_q(s, 2), *b = ddl_q(s, 4), *c = ddl_q(s, 5);
	bool ok = a && b && c;

	if (ok)
		strbuf_addf(&s->sql, " OWNED BY %s.%s.%s", a, b, c);
	free(a);
	free(b);
	free(c);
	return ok;
}

static bool sequence_stmt(ddl_stmt *s, const char *kind)
{
	char **f = s->f;

	if (strcmp(kind, "sequence-value") == 0) {
		if (s->n != 5 || !f[2] || !f[3] || !is_int(f[4]))
			return false;
		strbuf_adds(&s->sql, setval_sql);
		s->p[0] = ddl_own(s, db_qualified(s->conn, f[2], f[3]));
		s->p[1] = f[4];
		s->np = 2;
		return true;
	}
	if (strcmp(kind, "sequence-owned") == 0) {
		if (!head(s, 6, "ALTER SEQUENCE "))
			return false;
		if (!f[4] && !f[5]) {
			strbuf_adds(&s->sql, " OWNED BY NONE");
			return true;
		}
		/* the owning table is in the sequence's schema */
		return owned_by(s);
	}
	return sequence_def(s, kind);
}

/* constraint SCHEMA TABLE NAME DEF; index SCHEMA TABLE NAME UNIQUE TAIL */
static bool table_obj_stmt(ddl_stmt *s, const char *kind)
{
	char **f = s->f;
	char *name;

	if (strcmp(kind, "constraint") == 0) {
		if (!head(s, 6, "ALTER TABLE ") || !(starts(f[5], "UNIQUE") || starts(f[5], "CHECK (")) ||
		    !ddl_with_names(s, " ADD CONSTRAINT %s ", 4, -1))
			return false;
		strbuf_adds(&s->sql, f[5]);
		skip_when(s, table_con_exists, 4);
		return true;
	}
	if (s->n != 7 || !f[5] || !f[6] || !*f[6] || !(name = ddl_q(s, 4)))
		return false;
	strbuf_addf(&s->sql, "CREATE %sINDEX IF NOT EXISTS %s ON ", f[5][0] == 't' ? "UNIQUE " : "",
		    name);
	free(name);
	if (!ddl_qualified(s, 2))
		return false;
	strbuf_addf(&s->sql, " USING %s", f[6]);
	return true;
}

bool ddl_obj_stmt(ddl_stmt *s, const char *kind, bool *known)
{
	*known = true;
	for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
		const simple_kind *k = &simple[i];

		if (strcmp(kind, k->kind) != 0)
			continue;
		if (!head(s, k->n, k->head))
			return false;
		return !k->tail || ddl_with_names(s, k->tail, k->a, k->b);
	}
	if (strncmp(kind, "enum", 4) == 0)
		return enum_stmt(s, kind);
	if (strcmp(kind, "composite") == 0 || strcmp(kind, "attribute") == 0 ||
	    strcmp(kind, "attribute-type") == 0)
		return composite_stmt(s, kind);
	if (strncmp(kind, "domain", 6) == 0)
		return domain_stmt(s, kind);
	if (strncmp(kind, "sequence", 8) == 0)
		return sequence_stmt(s, kind);
	if (strcmp(kind, "constraint") == 0 || strcmp(kind, "index") == 0)
		return table_obj_stmt(s, kind);
	*known = false;
	return false;
}
