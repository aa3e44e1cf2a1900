/*
 * db.c - connecting to PostgreSQL and running statements, pg_dump style:
 * errors become one log line with the SQLSTATE, and an exit code.
 */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "strbuf.h"
#include "tp.h"

/* Settings that make every value's text form the same on both ends. */
static const char *const session_setup =
	"SELECT pg_catalog.set_config('search_path', '', false),"
	" pg_catalog.set_config('DateStyle', 'ISO', false),"
	" pg_catalog.set_config('IntervalStyle', 'postgres', false),"
	" pg_catalog.set_config('TimeZone', 'UTC', false),"
	" pg_catalog.set_config('extra_float_digits', '3', false),"
	" pg_catalog.set_config('bytea_output', 'hex', false)";

static void notice_to_log(void *arg, const char *msg)
{
	size_t n = strlen(msg);

	(void)arg;
	while (n > 0 && msg[n - 1] == '\n')
		n--;
	log_debug("server: %.*s", (int)n, msg);
}

/* True when the user's conninfo (or PGCONNECT_TIMEOUT) sets a timeout. */
static int has_connect_timeout(const char *conninfo)
{
	PQconninfoOption *opts, *o;
	int found = getenv("PGCONNECT_TIMEOUT") != NULL;

	opts = PQconninfoParse(conninfo, NULL);
	if (!opts)
		return found;
	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && *o->val)
			found = 1;
	PQconninfoFree(opts);
	return found;
}

static void log_conn_error(PGconn *conn)
{
	const char *msg = PQerrorMessage(conn);
	size_t n = strlen(msg);

	while (n > 0 && msg[n - 1] == '\n')
		n--;
	/* libpq's message may span lines; keep one log line per event */
	log_error("could not connect to the database: %.*s", (int)n, msg);
}

PGconn *db_connect(const char *conninfo, int *rc)
{
	/* defaults go before dbname, forced values after it */
	const char *keys[] = { "fallback_application_name", "connect_timeout",
			       "dbname", "client_encoding", NULL };
	const char *vals[] = { log_progname(), "10", conninfo, "UTF8", NULL };
	PGconn *conn;
	PGresult *res;

	if (has_connect_timeout(conninfo)) {
		keys[1] = "dbname";
		vals[1] = conninfo;
		keys[2] = "client_encoding";
		vals[2] = "UTF8";
		keys[3] = NULL;
	}
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn) {
		log_error("could not connect to the database: out of memory");
		*rc = TP_EFAIL;
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		const char *m = PQerrorMessage(conn);

		log_conn_error(conn);
		*rc = (strstr(m, "authentication") || strstr(m, "password") ||
		       strstr(m, "does not exist")) ? TP_ECONFIG : TP_EUNAVAIL;
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	res = db_query(conn, "setting up the session", session_setup, 0, NULL, rc);
	if (!res) {
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	*rc = TP_OK;
	return conn;
}

void db_close(PGconn *conn)
{
	if (conn)
		PQfinish(conn);
}

const char *db_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

int db_exit_code(const PGresult *res)
{
	const char *s = db_sqlstate(res);

	if (!*s)
		return TP_EUNAVAIL;     /* no SQLSTATE: the connection broke */
	if (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 ||
	    strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 ||
	    strcmp(s, "53300") == 0)
		return TP_EUNAVAIL;
	if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 ||
	    strcmp(s, "55P03") == 0 || strcmp(s, "57014") == 0 ||
	    strcmp(s, "25006") == 0)
		return TP_ETEMP;
	if (strncmp(s, "28", 2) == 0)
		return TP_ECONFIG;
	return TP_EFAIL;
}

/* Strip trailing newlines into a printable length. */
static int trimmed(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	return (int)n;
}

int db_report(PGconn *conn, const PGresult *res, const char *what)
{
	const char *state = db_sqlstate(res);
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;

	if (!msg)
		msg = PQerrorMessage(conn);
	log_error("%s: %s%s%.*s", what, state, *state ? ": " : "", trimmed(msg), msg);
	if (detail)
		log_hint("%.*s", trimmed(detail), detail);
	if (hint)
		log_hint("%.*s", trimmed(hint), hint);
	return db_exit_code(res);
}

PGresult *db_query(PGconn *conn, const char *what, const char *sql,
		   int nparams, const char *const *params, int *rc)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		*rc = TP_OK;
		return res;
	}
	*rc = db_report(conn, res, what);
	PQclear(res);
	return NULL;
}

int db_execp(PGconn *conn, const char *what, const char *sql,
	     int nparams, const char *const *params)
{
	int rc;
	PGresult *res = db_query(conn, what, sql, nparams, params, &rc);

	PQclear(res);
	return rc;
}

int db_exec(PGconn *conn, const char *what, const char *sql)
{
	return db_execp(conn, what, sql, 0, NULL);
}

char *db_ident(PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));
	char *copy;

	if (!q) {
		log_error("cannot quote identifier: %.*s", trimmed(PQerrorMessage(conn)),
			  PQerrorMessage(conn));
		abort();
	}
	copy = xstrdup(q);
	PQfreemem(q);
	return copy;
}

char *db_qualified(PGconn *conn, const char *schema, const char *name)
{
	char *s = db_ident(conn, schema), *n = db_ident(conn, name);
	strbuf sb = { 0 };

	strbuf_addf(&sb, "%s.%s", s, n);
	free(s);
	free(n);
	return strbuf_detach(&sb);
}

void db_array_add(strbuf *sb, const char *s)
{
	strbuf_addc(sb, sb->len == 0 ? '{' : ',');
	strbuf_addc(sb, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			strbuf_addc(sb, '\\');
		strbuf_addc(sb, *s);
	}
	strbuf_addc(sb, '"');
}
