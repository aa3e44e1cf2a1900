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
 * the extended protocol, so one line is at most one statement. The
 * kinds for types, sequences, constraints, indexes, extensions, functions
 * and foreign keys are built in applyobj.c; new enum labels may run ahead
 * of the batch (apply_ddl_line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_int.h"
#include "applyddl_int.h"
#include "copytext.h"
#include "db.h"
#include "log.h"
#include "tp.h"

char *ddl_q(ddl_stmt *s, int i)
{
	return i < s->n && s->f[i] && *s->f[i] ? db_ident(s->conn, s->f[i]) : NULL;
}

char *ddl_lit(ddl_stmt *s, int i)
{
	char *l, *r;

	if (i >= s->n || !s->f[i] || !(l = PQescapeLiteral(s->conn, s->f[i], strlen(s->f[i]))))
		return NULL;
	r = xstrdup(l);         /* PQfreemem and free must not be mixed */
	PQfreemem(l);
	return r;
}

const char *ddl_own(ddl_stmt *s, char *str)
{
	for (size_t i = 0; i < sizeof s->own / sizeof s->own[0]; i++)
		if (!s->own[i])
			return s->own[i] = str;
	abort();                /* a builder keeps more than it may: a bug */
}

void ddl_type(ddl_stmt *s, int i)
{
	s->types[s->ntypes++] = s->f[i];
}

bool ddl_qualified(ddl_stmt *s, int a)
{
	char *rel;

	if (a + 1 >= s->n || !s->f[a] || !*s->f[a] || !s->f[a + 1] || !*s->f[a + 1])
		return false;
	rel = db_qualified(s->conn, s->f[a], s->f[a + 1]);
	strbuf_adds(&s->sql, rel);
	free(rel);
	return true;
}

/* "ALTER TABLE s.t " for f[2], f[3]; false when malformed. */
static bool alter_table(ddl_stmt *s)
{
	strbuf_adds(&s->sql, "ALTER TABLE ");
	if (!ddl_qualified(s, 2))
		return false;
	strbuf_addc(&s->sql, ' ');
	return true;
}

bool ddl_with_names(ddl_stmt *s, const char *fmt, int a, int b)
{
	char *x = ddl_q(s, a), *y = b >= 0 ? ddl_q(s, b) : NULL;
	bool ok = x && (b < 0 || y);

	if (ok && b < 0)
		strbuf_addf(&s->sql, fmt, x);
	else if (ok)
		strbuf_addf(&s->sql, fmt, x, y);
	free(x);
	free(y);
	return ok;
}

#define q ddl_q
#define with_names ddl_with_names

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
	ddl_type(s, 5);
	strbuf_adds(&s->sql, f[5]);
	if (f[6] && f[7][0] == 't')
		strbuf_addf(&s->sql, " GENERATED ALWAYS AS (%s) STORED", f[6]);
	else if (f[6])
		strbuf_addf(&s->sql, " DEFAULT (%s)", f[6]);
	return true;
}

static const char identity_exists[] =
	"SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1)"
	" AND attname = $2 AND attidentity <> ''";
/* forward only, in the direction the identity's sequence counts */
static const char identity_setval[] =
	"SELECT pg_catalog.setval(q.seq, $2::bigint)"
	" FROM (SELECT pg_catalog.pg_get_serial_sequence($1, $3)::pg_catalog.regclass seq) q"
	" JOIN pg_catalog.pg_sequence p ON p.seqrelid = q.seq,"
	" LATERAL (SELECT pg_catalog.pg_sequence_last_value(q.seq) v) l"
	" WHERE l.v IS NULL OR CASE WHEN p.seqincrement > 0 THEN l.v < $2::bigint"
	"   ELSE l.v > $2::bigint END";

/*
 * column-identity SCHEMA TABLE COLUMN t|f: the target's identity is BY
 * DEFAULT whatever the source's, as tp-apply writes the ids the source
 * handed out. column-identity-value SCHEMA TABLE COLUMN VALUE.
 */
static bool identity_stmt(ddl_stmt *s, const char *kind)
{
	char **f = s->f;

	if (s->n != 6 || !f[4] || !f[5])
		return false;
	if (strcmp(kind, "column-identity-value") == 0) {
		s->p[0] = ddl_own(s, db_qualified(s->conn, f[2], f[3]));
		s->p[1] = f[5];
		s->p[2] = f[4];
		s->np = 3;
		strbuf_adds(&s->sql, identity_setval);
		return s->p[0] != NULL;
	}
	if (!alter_table(s) || !with_names(s, "ALTER COLUMN %s ", 4, -1))
		return false;
	if (f[5][0] != 't') {
		strbuf_adds(&s->sql, "DROP IDENTITY IF EXISTS");
		return true;
	}
	strbuf_adds(&s->sql, "ADD GENERATED BY DEFAULT AS IDENTITY");
	s->skip_sql = identity_exists;
	s->skip_p[0] = ddl_own(s, db_qualified(s->conn, f[2], f[3]));
	s->skip_p[1] = f[4];
	return true;
}

static bool column_stmt(ddl_stmt *s, const char *kind)
{
	char **f = s->f;

	if (strcmp(kind, "column") == 0)
		return add_column(s);
	if (strncmp(kind, "column-identity", 15) == 0)
		return identity_stmt(s, kind);
	if (strcmp(kind, "column-drop") == 0)
		return s->n == 5 && alter_table(s) && with_names(s, "DROP COLUMN %s", 4, -1);
	if (strcmp(kind, "column-rename") == 0)
		return s->n == 6 && alter_table(s) && with_names(s, "RENAME COLUMN %s TO %s", 4, 5);
	if (s->n != 6 || !alter_table(s) || !with_names(s, "ALTER COLUMN %s ", 4, -1))
		return false;
	if (strcmp(kind, "column-type") == 0 && f[5] && *f[5]) {
		char *c = q(s, 4);
		ddl_type(s, 5);
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

static const char pkey_exists[] =
	"SELECT 1 FROM pg_catalog.pg_constraint"
	" WHERE conrelid = pg_catalog.to_regclass($1) AND contype = 'p'";

static bool build(ddl_stmt *s)
{
	const char *kind = s->n >= 2 && s->f[1] ? s->f[1] : "";
	bool known = true, ok;

	if (strcmp(kind, "pkey") == 0 && s->n >= 4 && s->f[2] && s->f[3]) {
		/* an adopted table may have its key already: checked at run time */
		s->skip_sql = pkey_exists;
		s->skip_p[0] = ddl_own(s, db_qualified(s->conn, s->f[2], s->f[3]));
	}
	ok = ddl_obj_stmt(s, kind, &known);
	if (known)
		return ok;
	if (strncmp(kind, "schema", 6) == 0)
		return schema_stmt(s, kind);
	if (strncmp(kind, "table", 5) == 0)
		return table_stmt(s, kind);
	if (strncmp(kind, "column", 6) == 0)
		return column_stmt(s, kind);
	return constraint_stmt(s, kind);
}

/* Run one statement with n parameters. TP_OK or exit code. */
static int run(PGconn *conn, const char *sql, int n, const char *const *p, const char *what)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
	int rc = TP_OK;

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = apply_report(r, conn, what);
	PQclear(r);
	return rc;
}

/* Does the skip query return a row (the object is there already)? */
static int skip_it(ddl_stmt *s, const char *what, bool *skip)
{
	PGresult *r = PQexecParams(s->conn, s->skip_sql, s->skip_p[1] ? 2 : 1, NULL, s->skip_p,
				   NULL, NULL, 0);
	int rc = TP_OK;

	*skip = false;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = apply_report(r, s->conn, what);
	else
		*skip = PQntuples(r) > 0;
	PQclear(r);
	return rc;
}

/*
 * Was the enum of a label line (skip_p[0]) created by this transaction?
 * Then its new labels may be used right away (PostgreSQL allows it), and
 * adding one ahead of the batch would not even find the type: with ddl =
 * event-triggers an enum created and extended within one batch is usual.
 * The pg_type row itself changes with a rename; the dependency of its
 * array type on it is written once, with the type.
 */
static int type_is_new(ddl_stmt *s, const char *what, bool *early)
{
	PGresult *r = PQexecParams(s->conn,
		"SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_depend d"
		"  ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid = t.typarray"
		" AND d.refobjid = t.oid AND d.deptype = 'i'"
		" WHERE t.oid = pg_catalog.to_regtype($1)"
		"   AND d.xmin = pg_catalog.pg_current_xact_id()::pg_catalog.xid", 1, NULL,
		s->skip_p, NULL, NULL, 0);
	int rc = TP_OK;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = apply_report(r, s->conn, what);
	else if (PQntuples(r) > 0)
		*early = false;
	PQclear(r);
	return rc;
}

/*
 * Types first (a missing one waits, 75), then the skip check, then the
 * statement; a new enum label is kept for early (see apply_ddl_line).
 */
static int execute(ddl_stmt *s, const char *label, const char *what, strbuf *early)
{
	bool skip = false;
	int rc = TP_OK;

	for (int i = 0; i < s->ntypes && rc == TP_OK; i++)
		rc = run(s->conn, "SELECT $1::pg_catalog.regtype", 1, &s->types[i], what);
	if (rc == TP_OK && s->skip_sql)
		rc = skip_it(s, what, &skip);
	if (rc != TP_OK || skip)
		return rc;
	if (s->early && (rc = type_is_new(s, what, &s->early)) != TP_OK)
		return rc;
	if (s->early) {
		strbuf_add(early, s->sql.buf, s->sql.len + 1);  /* with its NUL */
		return TP_OK;
	}
	log_info("batch %s: %s", label, s->sql.buf);
	if (s->before && (rc = run(s->conn, s->before, 0, NULL, what)) != TP_OK)
		return rc;
	return run(s->conn, s->sql.buf, s->np, s->p, what);
}

/*
 * A new enum label cannot be used before the transaction that added it
 * commits; the batch that adds it may well use it (a row, a default).
 * So a label missing on the target is not added here: it is kept in
 * early, and the engine, at the first line that is not such a label (they
 * all come first in a batch), stops the batch. tp-apply then rolls back,
 * checks the batch to its end, adds the labels in a transaction of their
 * own (apply_ddl_early) and applies the batch again, which finds them.
 * Adding a label that the batch would add anyway is harmless even if the
 * batch then fails.
 */
int apply_ddl_line(PGconn *conn, FILE *dry, const char *label, char *line, size_t len,
		   uint64_t lineno, strbuf *early)
{
	char **f = xmalloc(DDL_MAXF * sizeof *f);
	size_t *lens = xmalloc(DDL_MAXF * sizeof *lens);
	const char **types = xmalloc(DDL_MAXF * sizeof *types);
	ddl_stmt s = { conn, f, copytext_split(line, len, f, lens, DDL_MAXF) };
	char what[512];
	int rc = TP_OK;

	s.types = types;
	if (s.n < 2 || !build(&s)) {
		log_error("batch %s line %llu: bad batch: malformed schema change", label,
			  (unsigned long long)lineno);
		rc = TP_EDATA;
	} else if (dry) {
		if (s.before)
			fprintf(dry, "%s;\n", s.before);
		fprintf(dry, "%s;\n", s.sql.buf);
	} else {
		snprintf(what, sizeof what, "batch %s line %llu: schema change %s", label,
			 (unsigned long long)lineno, f[1]);
		rc = execute(&s, label, what, early);
	}
	for (size_t i = 0; i < sizeof s.own / sizeof s.own[0]; i++)
		free(s.own[i]);
	strbuf_free(&s.sql);
	free(f);
	free(lens);
	free(types);
	return rc;
}

int apply_ddl_early(PGconn *conn, const char *label, const strbuf *early)
{
	char what[512];
	int rc = TP_OK;

	snprintf(what, sizeof what, "batch %s: adding enum labels ahead of the batch", label);
	for (size_t i = 0; i < early->len && rc == TP_OK; i += strlen(early->buf + i) + 1) {
		log_info("batch %s: ahead of the batch: %s", label, early->buf + i);
		rc = run(conn, early->buf + i, 0, NULL, what);
	}
	return rc;
}
