/*
 * db.h - libpq access, the way PostgreSQL's own client programs do it.
 *
 * Every connection: application_name = the command, search_path = ''
 * (everything in teleport's SQL is schema-qualified), and the settings that
 * make values round-trip (DateStyle=ISO, IntervalStyle=postgres,
 * TimeZone=UTC, extra_float_digits=3, bytea_output=hex,
 * client_encoding=UTF8). A connect_timeout of 10 s is added when neither
 * the conninfo nor PGCONNECT_TIMEOUT sets one.
 *
 * Errors are logged as one line: "SQLSTATE: message", plus the server's
 * DETAIL/HINT on hint lines, and mapped to an exit code by db_exit_code().
 */
#ifndef TP_DB_H
#define TP_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include "strbuf.h"

/* Connect; on failure logs and returns NULL with *rc set (69, 78 for class 28). */
PGconn *db_connect(const char *conninfo, int *rc);
void db_close(PGconn *conn);

/*
 * Map a failed result (or NULL: connection trouble) to an exit code:
 * class 08 and 57P01..57P03 -> 69; 40001, 40P01, 55P03, 57014, 25006 -> 75;
 * class 28 -> 78; everything else -> 1.
 */
int db_exit_code(const PGresult *res);
/* SQLSTATE of a result, or "" */
const char *db_sqlstate(const PGresult *res);

/*
 * Run one statement with text parameters (NULL pointer = SQL NULL).
 * Returns the result when it is COMMAND_OK or TUPLES_OK; otherwise logs
 * "what: SQLSTATE: message", clears it, stores the exit code in *rc and
 * returns NULL. `what` names the action for the log ("reading events").
 */
PGresult *db_query(PGconn *conn, const char *what, const char *sql,
		   int nparams, const char *const *params, int *rc);

/* db_query for statements whose result is not needed. TP_OK or exit code. */
int db_exec(PGconn *conn, const char *what, const char *sql);
int db_execp(PGconn *conn, const char *what, const char *sql,
	     int nparams, const char *const *params);

/* Log a failed result as db_query does, return its exit code. */
int db_report(PGconn *conn, const PGresult *res, const char *what);

/*
 * Quote an identifier with PQescapeIdentifier. Returns malloc'd string
 * (free with free()); aborts on failure (only out of memory or bad
 * encoding, which the caller cannot mend).
 */
char *db_ident(PGconn *conn, const char *name);
/* "schema"."name", malloc'd */
char *db_qualified(PGconn *conn, const char *schema, const char *name);
/* Append s to a text[] literal being built in sb (empty sb: starts it). */
void db_array_add(strbuf *sb, const char *s);

#endif
