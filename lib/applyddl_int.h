/*
 * applyddl_int.h - what applyddl.c (tables, columns, keys; running a
 * statement) and applyobj.c (types, sequences, constraints, indexes,
 * extensions, functions, foreign keys) share: one S line being turned
 * into a statement.
 */
#ifndef TP_APPLYDDL_INT_H
#define TP_APPLYDDL_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include "strbuf.h"

#define DDL_MAXF 3300           /* a composite type of 1600 attributes, and more */

typedef struct ddl_stmt {
	PGconn *conn;
	char **f;               /* f[0] "S", f[1] the kind, f[2]... its fields */
	int n;
	strbuf sql;
	const char **types;     /* each checked with ::regtype first */
	int ntypes;
	const char *before;     /* run first, without parameters (a SET LOCAL) */
	const char *skip_sql;   /* the statement is skipped when this returns a row */
	const char *skip_p[2];
	const char *p[3];       /* the statement's own parameters */
	int np;
	char *own[4];           /* strings the above point to, freed after */
	bool early;             /* a new enum label (applyddl.c, apply_ddl_line) */
} ddl_stmt;

/* f[i] quoted; NULL when absent or empty (a malformed line). */
char *ddl_q(ddl_stmt *s, int i);
/* f[i] as a string literal; NULL when absent. */
char *ddl_lit(ddl_stmt *s, int i);
/* Append fmt with one or two quoted fields (f[a], f[b]; b < 0: one). */
bool ddl_with_names(ddl_stmt *s, const char *fmt, int a, int b);
/* Append "schema.name" for f[a], f[a + 1]; false when malformed. */
bool ddl_qualified(ddl_stmt *s, int a);
/* Keep str until the statement is done; returns it. */
const char *ddl_own(ddl_stmt *s, char *str);
/* Check f[i] with ::regtype before the statement runs. */
void ddl_type(ddl_stmt *s, int i);
/* Types, sequences, constraints, indexes, extensions, functions (applyobj.c). */
bool ddl_obj_stmt(ddl_stmt *s, const char *kind, bool *known);

#endif
