/*
 * applyobj.c - the statements of the S lines for types, sequences,
 * unique and check constraints, indexes, extensions, functions and
 * procedures, foreign keys (teleport-batch(5)).
 *
 * As in applyddl.c, each statement is built here from the line's data:
 * names quoted, labels and versions as string literals (utility
 * statements take no parameters), types checked with ::regtype, numbers
 * checked to be numbers, a foreign key's options picked from fixed
 * words. Some fields are SQL text run as sent, like column defaults: a
 * domain's default and its CHECK, a table constraint's definition (one
 * that starts with UNIQUE or CHECK), an index's definition after USING,
 * a function's arguments and definition after them. Creating an object
 * that is there already (adopted by hand, or a description from before
 * this kind was replicated) is skipped, or replaces it (functions).
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
	/*
	 * enum-label SCHEMA NAME LABEL before|after|\N NEIGHBOUR [SCHEMA0 NAME0]:
	 * added by NAME0 when given, the type's name where the batch starts
	 * (ahead of the batch, the type has not been renamed yet).
	 */
	if (s->n != 7 && s->n != 9)
		return false;
	strbuf_adds(&s->sql, "ALTER TYPE ");
	if (!ddl_qualified(s, s->n == 9 ? 7 : 2) || !add_lit(s, 4, " ADD VALUE IF NOT EXISTS "))
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

/* ---- extensions, functions, foreign keys ---- */

/* extension, extension-update, -drop, -schema: SCHEMA NAME [VERSION|NEWSCHEMA] */
static bool extension_stmt(ddl_stmt *s, const char *kind)
{
	if (strcmp(kind, "extension") == 0)
		return s->n == 5 && ddl_with_names(s, "CREATE EXTENSION IF NOT EXISTS %s WITH SCHEMA %s",
						   3, 2) && add_lit(s, 4, " VERSION ");
	if (strcmp(kind, "extension-update") == 0)
		return s->n == 5 && ddl_with_names(s, "ALTER EXTENSION %s UPDATE", 3, -1) &&
		       add_lit(s, 4, " TO ");
	if (strcmp(kind, "extension-drop") == 0)
		return s->n == 4 && ddl_with_names(s, "DROP EXTENSION %s", 3, -1);
	return strcmp(kind, "extension-schema") == 0 && s->n == 5 &&
	       ddl_with_names(s, "ALTER EXTENSION %s SET SCHEMA %s", 3, 4);
}

/*
 * function SCHEMA NAME function|procedure ARGS TAIL: CREATE OR REPLACE,
 * its body unchecked (check_function_bodies off, as pg_dump restores),
 * since it may use a table created later in the batch.
 */
static bool create_function(ddl_stmt *s)
{
	char **f = s->f;
	bool proc = s->n == 7 && f[4] && strcmp(f[4], "procedure") == 0;

	if (s->n != 7 || !f[4] || (!proc && strcmp(f[4], "function") != 0) || !f[5] ||
	    !f[6] || !*f[6])
		return false;
	strbuf_adds(&s->sql, proc ? "CREATE OR REPLACE PROCEDURE " : "CREATE OR REPLACE FUNCTION ");
	if (!ddl_qualified(s, 2))
		return false;
	strbuf_addf(&s->sql, "(%s)%s", f[5], f[6]);
	s->before = "SET LOCAL check_function_bodies = off";
	return true;
}

/* function-drop SCHEMA NAME ARGS, -rename and -schema ... ARGS NEW */
static bool function_stmt(ddl_stmt *s, const char *kind)
{
	bool drop = strcmp(kind, "function-drop") == 0;
	bool rename = strcmp(kind, "function-rename") == 0;

	if (strcmp(kind, "function") == 0)
		return create_function(s);
	if (!drop && !rename && strcmp(kind, "function-schema") != 0)
		return false;
	if (s->n != (drop ? 5 : 6) || !s->f[4])
		return false;
	strbuf_adds(&s->sql, drop ? "DROP ROUTINE " : "ALTER ROUTINE ");
	if (!ddl_qualified(s, 2))
		return false;
	strbuf_addf(&s->sql, "(%s)", s->f[4]);
	if (drop)
		return true;
	return ddl_with_names(s, rename ? " RENAME TO %s" : " SET SCHEMA %s", 5, -1);
}

/* The keyword for word v (words: pairs of word and keyword); NULL if none. */
static const char *keyword(const char *v, const char *const (*words)[2], size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		if (strcmp(v, words[i][0]) == 0)
			return words[i][1];
	return NULL;
}

static bool is_bool(const char *v)
{
	return v && (v[0] == 't' || v[0] == 'f') && !v[1];
}

/* " (a, b)": fields [from, to) quoted. */
static bool name_list(ddl_stmt *s, int from, int to)
{
	strbuf_adds(&s->sql, " (");
	for (int i = from; i < to; i++) {
		char *c = ddl_q(s, i);

		if (!c)
			return false;
		strbuf_addf(&s->sql, "%s%s", i > from ? ", " : "", c);
		free(c);
	}
	strbuf_addc(&s->sql, ')');
	return true;
}

/*
 * The clause after REFERENCES table (columns): f[7] MATCH, f[8] ON
 * UPDATE, f[9] ON DELETE (with SET NULL/DEFAULT columns from setcols on),
 * f[10] DEFERRABLE, f[11] INITIALLY DEFERRED, f[12] valid.
 */
static bool fkey_options(ddl_stmt *s, int setcols)
{
	static const char *const match[][2] = { { "full", "FULL" }, { "partial", "PARTIAL" },
						{ "simple", "SIMPLE" } };
	static const char *const action[][2] = { { "no action", "NO ACTION" },
		{ "restrict", "RESTRICT" }, { "cascade", "CASCADE" }, { "set null", "SET NULL" },
		{ "set default", "SET DEFAULT" } };
	const char *m = keyword(s->f[7], match, 3), *u = keyword(s->f[8], action, 5),
		   *d = keyword(s->f[9], action, 5);
	char **f = s->f;

	if (!m || !u || !d || !is_bool(f[10]) || !is_bool(f[11]) || !is_bool(f[12]))
		return false;
	strbuf_addf(&s->sql, " MATCH %s ON UPDATE %s ON DELETE %s", m, u, d);
	if (setcols < s->n && !name_list(s, setcols, s->n))
		return false;
	strbuf_addf(&s->sql, " %sDEFERRABLE INITIALLY %s%s", f[10][0] == 't' ? "" : "NOT ",
		    f[11][0] == 't' ? "DEFERRED" : "IMMEDIATE", f[12][0] == 't' ? "" : " NOT VALID");
	return true;
}

/*
 * fkey SCHEMA TABLE NAME REFSCHEMA REFTABLE MATCH UPDATE DELETE
 * DEFERRABLE DEFERRED VALID N COLUMN... REFCOLUMN... [SETCOLUMN...]
 */
static bool fkey_stmt(ddl_stmt *s)
{
	char *end = NULL;
	long nk = s->n > 14 && s->f[13] ? strtol(s->f[13], &end, 10) : 0;

	if (nk < 1 || !end || *end || nk > (s->n - 14) / 2 || !head(s, s->n, "ALTER TABLE ") ||
	    !ddl_with_names(s, " ADD CONSTRAINT %s FOREIGN KEY", 4, -1) ||
	    !name_list(s, 14, 14 + (int)nk))
		return false;
	strbuf_adds(&s->sql, " REFERENCES ");
	if (!ddl_qualified(s, 5) || !name_list(s, 14 + (int)nk, 14 + 2 * (int)nk))
		return false;
	skip_when(s, table_con_exists, 4);
	return fkey_options(s, 14 + 2 * (int)nk);
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
	if (strncmp(kind, "extension", 9) == 0)
		return extension_stmt(s, kind);
	if (strncmp(kind, "function", 8) == 0)
		return function_stmt(s, kind);
	if (strcmp(kind, "fkey") == 0)
		return fkey_stmt(s);
	*known = false;
	return false;
}
