/*
 * applyddl.c - apply one schema change line ("S", teleport-batch(5)).
 *
 * The line carries data: names, a type as format_type() wrote it, and
 * for defaults and generated columns the expression text. The statement
 * is built here: every name quoted with PQescapeIdentifier; a type is
 * first checked with ::regtype, whose parser accepts a type name and
 * nothing else, so neither can carry SQL. Expressions cannot be checked
 * that way: they are executed as sent, as the source's pg_get_expr()
 * wrote them. That is safe only because a batch is authenticated (HMAC
 * with the shared token) before anything of it runs: whoever may make
 * batches may change the target's data anyway. Statements go through
 * the extended protocol, so one line is at most one statement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_int.h"
#include "copytext.h"
#include "db.h"
#include "log.h"
#include "tp.h"

#define DDL_MAXF 1700           /* a primary key of up to 1600 columns, and more */

typedef struct ddl_stmt {
	PGconn *conn;
	char **f;
	int n;
	strbuf sql;
	const char *type;       /* to check with ::regtype first, or NULL */
	char *has_pkey;         /* pkey: the table, to skip when it has one */
} ddl_stmt;

/* f[i] quoted; NULL when absent or empty (a malformed line). */
static char *q(ddl_stmt *s, int i)
{
	return i < s->n && s->f[i] && *s->f[i] ? db_ident(s->conn, s->f[i]) : NULL;
}

/* "ALTER TABLE s.t " for f[2], f[3]; false when malformed. */
static bool alter_table(ddl_stmt *s)
{
	char *rel;

	if (s->n < 4 || !s->f[2] || !*s->f[2] || !s->f[3] || !*s->f[3])
		return false;
	rel = db_qualified(s->conn, s->f[2], s->f[3]);
	strbuf_addf(&s->sql, "ALTER TABLE %s ", rel);
	free(rel);
	return true;
}

/* Append fmt with one or two quoted fields (f[a], f[b]; b < 0: one). */
static bool with_names(ddl_stmt *s, const char *fmt, int a, int b)
{
	char *x = q(s, a), *y = b >= 0 ? q(s, b) : NULL;
	bool ok = x && (b < 0 || y);

	if (ok && b < 0)
		strbuf_addf(&s->sql, fmt, x);
	else if (ok)
		strbuf_addf(&s->sql, fmt, x, y);
	free(x);
	free(y);
	return ok;
}

static bool schema_stmt(ddl_stmt *s, const char *kind)
{
	if (strcmp(kind, "schema") == 0)
		return s->n == 3 && with_names(s, "CREATE SCHEMA IF NOT EXISTS %s", 2, -1);
	if (strcmp(kind, "schema-drop") == 0)
		return s->n == 3 && with_names(s, "DROP SCHEMA %s", 2, -1);
	if (strcmp(kind, "schema-rename") == 0)
		return s->n == 4 && with_names(s, "ALTER SCHEMA %s RENAME TO %s", 2, 3);
	return false;
}

static bool table_stmt(ddl_stmt *s, const char *kind)
{
	char *rel;

	if (strcmp(kind, "table") == 0 || strcmp(kind, "table-drop") == 0) {
		if (s->n != 4 || !s->f[2] || !*s->f[2] || !s->f[3] || !*s->f[3])
			return false;
		rel = db_qualified(s->conn, s->f[2], s->f[3]);
		/* IF NOT EXISTS: a table made on the target by hand is adopted; the
		 * source's rows replace its content (the batch truncates it) */
		strbuf_addf(&s->sql, kind[5] ? "DROP TABLE %s" : "CREATE TABLE IF NOT EXISTS %s ()", rel);
		free(rel);
		return true;
	}
	if (strcmp(kind, "table-rename") == 0)
		return s->n == 5 && alter_table(s) && with_names(s, "RENAME TO %s", 4, -1);
	if (strcmp(kind, "table-schema") == 0)
		return s->n == 5 && alter_table(s) && with_names(s, "SET SCHEMA %s", 4, -1);
	return false;
}

/* ADD COLUMN c type [DEFAULT (e) | GENERATED ALWAYS AS (e) STORED] */
static bool add_column(ddl_stmt *s)
{
	char **f = s->f;

	if (s->n != 8 || !f[5] || !*f[5] || !f[7] || !alter_table(s) ||
	    !with_names(s, "ADD COLUMN IF NOT EXISTS %s ", 4, -1))
		return false;
	s->type = f[5];
	strbuf_adds(&s->sql, f[5]);
	if (f[6] && f[7][0] == 't')
		strbuf_addf(&s->sql, " GENERATED ALWAYS AS (%s) STORED", f[6]);
	else if (f[6])
		strbuf_addf(&s->sql, " DEFAULT (%s)", f[6]);
	return true;
}

static bool column_stmt(ddl_stmt *s, const char *kind)
{
	char **f = s->f;

	if (strcmp(kind, "column") == 0)
		return add_column(s);
	if (strcmp(kind, "column-drop") == 0)
		return s->n == 5 && alter_table(s) && with_names(s, "DROP COLUMN %s", 4, -1);
	if (strcmp(kind, "column-rename") == 0)
		return s->n == 6 && alter_table(s) && with_names(s, "RENAME COLUMN %s TO %s", 4, 5);
	if (s->n != 6 || !alter_table(s) || !with_names(s, "ALTER COLUMN %s ", 4, -1))
		return false;
	if (strcmp(kind, "column-type") == 0 && f[5] && *f[5]) {
		char *c = q(s, 4);
		s->type = f[5];
		strbuf_addf(&s->sql, "TYPE %s USING %s::%s", f[5], c, f[5]);
		free(c);
		return true;
	}
	if (strcmp(kind, "column-default") == 0) {
		if (f[5])
			strbuf_addf(&s->sql, "SET DEFAULT (%s)", f[5]);
		else
			strbuf_adds(&s->sql, "DROP DEFAULT");
		return true;
	}
	if (strcmp(kind, "column-notnull") == 0 && f[5]) {
		strbuf_adds(&s->sql, f[5][0] == 't' ? "SET NOT NULL" : "DROP NOT NULL");
		return true;
	}
	return false;
}

static bool constraint_stmt(ddl_stmt *s, const char *kind)
{
	if (strcmp(kind, "pkey") == 0) {
		if (s->n < 6 || !alter_table(s) ||
		    !with_names(s, "ADD CONSTRAINT %s PRIMARY KEY (", 4, -1))
			return false;
		for (int i = 5; i < s->n; i++) {
			char *c = q(s, i);
			if (!c)
				return false;
			strbuf_addf(&s->sql, "%s%s", i > 5 ? ", " : "", c);
			free(c);
		}
		strbuf_addc(&s->sql, ')');
		return true;
	}
	if (strcmp(kind, "constraint-drop") == 0)
		return s->n == 5 && alter_table(s) && with_names(s, "DROP CONSTRAINT %s", 4, -1);
	if (strcmp(kind, "constraint-rename") == 0)
		return s->n == 6 && alter_table(s) &&
		       with_names(s, "RENAME CONSTRAINT %s TO %s", 4, 5);
	return false;
}

static bool build(ddl_stmt *s)
{
	const char *kind = s->n >= 2 && s->f[1] ? s->f[1] : "";

	if (strcmp(kind, "pkey") == 0 && s->n >= 4 && s->f[2] && s->f[3]) {
		/* an adopted table may have its key already: checked at run time */
		char *rel = db_qualified(s->conn, s->f[2], s->f[3]);
		s->has_pkey = xstrdup(rel);
		free(rel);
	}
	if (strncmp(kind, "schema", 6) == 0)
		return schema_stmt(s, kind);
	if (strncmp(kind, "table", 5) == 0)
		return table_stmt(s, kind);
	if (strncmp(kind, "column", 6) == 0)
		return column_stmt(s, kind);
	return constraint_stmt(s, kind);
}

/* Run one statement (no parameters unless type is set). TP_OK or exit code. */
static int run(PGconn *conn, const char *sql, const char *type, const char *what)
{
	const char *params[1] = { type };
	PGresult *r = PQexecParams(conn, sql, type ? 1 : 0, NULL, params, NULL, NULL, 0);
	int rc = TP_OK;

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = apply_report(r, conn, what);
	PQclear(r);
	return rc;
}

/* Has table rel (quoted, qualified) a primary key? */
static bool has_pkey(PGconn *conn, const char *rel)
{
	const char *params[1] = { rel };
	PGresult *r = PQexecParams(conn, "SELECT 1 FROM pg_catalog.pg_constraint"
				   " WHERE conrelid = pg_catalog.to_regclass($1) AND contype = 'p'",
				   1, NULL, params, NULL, NULL, 0);
	bool yes = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;

	PQclear(r);
	return yes;
}

int apply_ddl_line(PGconn *conn, FILE *dry, const char *label, char *line, size_t len,
		   uint64_t lineno)
{
	char **f = xmalloc(DDL_MAXF * sizeof *f);
	size_t *lens = xmalloc(DDL_MAXF * sizeof *lens);
	ddl_stmt s = { conn, f, copytext_split(line, len, f, lens, DDL_MAXF), { 0 }, NULL, NULL };
	char what[512];
	int rc = TP_OK;

	if (s.n < 2 || !build(&s)) {
		log_error("batch %s line %llu: bad batch: malformed schema change", label,
			  (unsigned long long)lineno);
		rc = TP_EDATA;
	} else if (dry) {
		fprintf(dry, "%s;\n", s.sql.buf);
	} else {
		snprintf(what, sizeof what, "batch %s line %llu: schema change %s", label,
			 (unsigned long long)lineno, f[1]);
		log_info("batch %s: %s", label, s.sql.buf);
		if (s.type)
			rc = run(conn, "SELECT $1::pg_catalog.regtype", s.type, what);
		if (rc == TP_OK && !(s.has_pkey && has_pkey(conn, s.has_pkey)))
			rc = run(conn, s.sql.buf, NULL, what);
	}
	free(s.has_pkey);
	strbuf_free(&s.sql);
	free(f);
	free(lens);
	return rc;
}
