/*
 * applyeng.c - the apply engine: event lines in, statements out, with no
 * round trip per row.
 *
 * A run of inserts into one table goes through COPY: the tail of an I
 * line is already a COPY text row, so it is passed through unchanged.
 * Short runs (a COPY costs two round trips) and every other event go
 * through libpq's pipeline mode as prepared statements; the pipeline is
 * synced every PIPE_STMTS statements or PIPE_BYTES of parameters, and the
 * results of one sync are read while the next chunk is being sent, so the
 * server never waits for the client. Order is kept exactly: the pipeline
 * is drained before a COPY starts, and a COPY ends before the next
 * statement, so the target sees the source's statements in the source's
 * order (key swaps, foreign keys and unique constraints work as there).
 *
 * Results are matched to batch lines through a FIFO of what was sent, so
 * an error names the batch line it came from. Row values never reach the
 * log (see apply_report).
 */
#include <stdlib.h>
#include <string.h>

#include "apply_int.h"
#include "copytext.h"
#include "db.h"
#include "log.h"
#include "tp.h"

#define PIPE_STMTS 500              /* statements between syncs */
#define PIPE_BYTES (1u << 20)       /* parameter bytes between syncs */
#define COPY_MIN_ROWS 8             /* shorter insert runs: INSERTs */
#define COPY_CHUNK (256u << 10)     /* bytes per PQputCopyData */
#define MAX_TID 1000000u            /* a larger TID means a forged batch */

/* What a pipeline result belongs to. */
enum pend_kind { P_STMT, P_PREPARE, P_TRUNCATE, P_SYNC };

typedef struct pending {
	uint64_t line;
	const apply_table *t;
	unsigned char kind;     /* enum pend_kind */
	unsigned char op;       /* enum apply_op, for P_STMT and P_PREPARE */
} pending;

struct apply_engine {
	PGconn *conn;
	FILE *dry;
	char label[160];
	apply_tabcache *cache;
	apply_table **tids;     /* TID -> table, for the current batch */
	size_t ntids;
	uint64_t events;
	uint64_t rows;          /* of them, row changes (I U D T): not S lines */
	/* pipeline */
	bool in_pipeline;
	pending *q;             /* FIFO of results to come */
	size_t qhead, qtail, qcap;
	size_t chunk_stmts;     /* sent since the last sync */
	size_t chunk_bytes;
	unsigned syncs;         /* syncs sent and not yet read */
	/* the current run of inserts into one table */
	apply_table *run_t;
	uint64_t run_start;     /* batch line of the run's first row */
	size_t run_rows;
	strbuf run;             /* rows not yet sent, each ending in '\n' */
	bool in_copy;
	strbuf early;           /* enum labels to add ahead of the batch */
	/* consecutive TRUNCATEs, sent as one statement (trunc_flush) */
	strbuf trunc;
	const apply_table *trunc_t;
	uint64_t trunc_line;
	/* scratch for splitting lines */
	char **f;
	size_t *lens;
	size_t fcap;
};

static int end_run(apply_engine *e);
static int pipe_flush(apply_engine *e);

apply_engine *engine_new(PGconn *conn, FILE *dry)
{
	apply_engine *e = xcalloc(1, sizeof *e);

	e->conn = conn;
	e->dry = dry;
	e->cache = tabcache_new();
	return e;
}

void engine_free(apply_engine *e)
{
	if (!e)
		return;
	tabcache_free(e->cache);
	free(e->tids);
	free(e->q);
	strbuf_free(&e->run);
	strbuf_free(&e->early);
	strbuf_free(&e->trunc);
	free(e->f);
	free(e->lens);
	free(e);
}

void engine_begin(apply_engine *e, const char *label)
{
	snprintf(e->label, sizeof e->label, "%s", label);
	if (e->ntids)           /* memset(NULL, ...) is undefined even for 0 */
		memset(e->tids, 0, e->ntids * sizeof *e->tids);
	e->events = 0;
	e->rows = 0;
	e->run_t = NULL;
	e->run_rows = 0;
	strbuf_reset(&e->run);
	strbuf_reset(&e->early);
	strbuf_reset(&e->trunc);
}

const strbuf *engine_early(const apply_engine *e)
{
	return &e->early;
}

uint64_t engine_events(const apply_engine *e)
{
	return e->events;
}

uint64_t engine_rows(const apply_engine *e)
{
	return e->rows;
}

static const char *op_verb(enum apply_op op)
{
	return op == OP_INSERT ? "INSERT INTO" : op == OP_UPDATE ? "UPDATE" : "DELETE FROM";
}

/* ---- errors ---- */

static bool is_schema_missing(const char *state)
{
	return strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0 ||
	       strcmp(state, "42704") == 0;
}

/* Cut a data exception's message at its first quote: values hide there. */
static int redacted_len(const char *state, const char *msg)
{
	size_t n = strlen(msg);
	const char *quote = strchr(msg, '"');

	if (strncmp(state, "22", 2) == 0 && quote)
		n = (size_t)(quote - msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ' || msg[n - 1] == ':'))
		n--;
	return (int)n;
}

/* The last wait for a schema change apply_report saw, for apply_wait_take. */
static apply_wait last_wait;
static bool have_wait;

void apply_wait_reset(void)
{
	have_wait = false;
}

bool apply_wait_take(apply_wait *out)
{
	if (!have_wait)
		return false;
	*out = last_wait;
	have_wait = false;
	return true;
}

int apply_report(const PGresult *res, PGconn *conn, const char *what)
{
	const char *state = db_sqlstate(res);
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	bool redacted = msg && strncmp(state, "22", 2) == 0 && strchr(msg, '"');

	if (!msg)
		msg = PQerrorMessage(conn);
	log_error("%s: %s%s%.*s%s", what, state, *state ? ": " : "",
		  redacted_len(state, msg), msg, redacted ? " (value not shown)" : "");
	if (is_schema_missing(state)) {
		/* class 42, never a data exception: the message holds no value */
		snprintf(last_wait.sqlstate, sizeof last_wait.sqlstate, "%s", state);
		snprintf(last_wait.reason, sizeof last_wait.reason, "%s: %s: %.*s", what, state,
			 redacted_len(state, msg), msg);
		have_wait = true;
		log_hint("waiting for a schema change: the batch stays in the inbox and is retried");
		return TP_ETEMP;
	}
	return db_exit_code(res);
}

/* ---- the FIFO of pipeline results ---- */

static void q_push(apply_engine *e, enum pend_kind kind, const apply_table *t,
		   enum apply_op op, uint64_t line)
{
	if (e->qtail == e->qcap) {
		if (e->qhead > 0) {     /* slide down before growing */
			memmove(e->q, e->q + e->qhead, (e->qtail - e->qhead) * sizeof *e->q);
			e->qtail -= e->qhead;
			e->qhead = 0;
		} else {
			e->qcap = e->qcap ? 2 * e->qcap : 2 * PIPE_STMTS + 64;
			e->q = xrealloc(e->q, e->qcap * sizeof *e->q);
		}
	}
	e->q[e->qtail++] = (pending){ line, t, (unsigned char)kind, (unsigned char)op };
}

/* Check one statement's result against what it was. Returns the exit code. */
static int check_result(apply_engine *e, const pending *p, const PGresult *r)
{
	char what[512];
	ExecStatusType st = PQresultStatus(r);
	const char *verb = p->kind == P_TRUNCATE ? "TRUNCATE" : op_verb(p->op);

	snprintf(what, sizeof what, "batch %s line %llu: %s%s %s", e->label,
		 (unsigned long long)p->line, p->kind == P_PREPARE ? "preparing " : "",
		 verb, p->t->display);
	if (st != PGRES_COMMAND_OK)
		return apply_report(r, e->conn, what);
	if (p->kind == P_STMT && p->op != OP_INSERT) {
		const char *n = PQcmdTuples((PGresult *)r);
		if (strcmp(n, "1") == 0)
			return TP_OK;
		if (strcmp(n, "0") == 0 && p->op == OP_DELETE && p->t->cascade_child == 1) {
			/* the target's own ON DELETE CASCADE got there first */
			log_debug("%s matched no row: removed by a cascading foreign key", what);
			return TP_OK;
		}
		if (strcmp(n, "0") == 0)
			log_error("%s matched no row (target diverged)", what);
		else
			log_error("%s matched %s rows (target diverged: no unique key?)", what, n);
		return TP_EFAIL;
	}
	return TP_OK;
}

/* The next result that is not the NULL between two queries' results. */
static PGresult *next_result(apply_engine *e)
{
	for (int nulls = 0; nulls < 2; nulls++) {
		PGresult *r = PQgetResult(e->conn);
		if (r)
			return r;
		if (PQstatus(e->conn) == CONNECTION_BAD)
			break;
	}
	return NULL;
}

/*
 * Read results up to and including the oldest outstanding sync. rc is
 * the code so far: after the first failure the rest is read and dropped
 * (the server skips to the sync and the transaction is doomed anyway).
 */
static int drain_one_sync(apply_engine *e, int rc)
{
	while (e->qhead < e->qtail) {
		pending p = e->q[e->qhead++];
		PGresult *r = next_result(e);
		if (!r) {
			log_error("batch %s: lost the connection: %s", e->label,
				  PQerrorMessage(e->conn));
			e->qhead = e->qtail = 0;
			e->syncs = 0;
			return tp_exit_worse(rc, TP_EUNAVAIL);
		}
		if (p.kind == P_SYNC) {
			bool ok = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
			PQclear(r);
			e->syncs--;
			if (!ok && rc == TP_OK)
				rc = apply_report(NULL, e->conn, "pipeline out of step");
			break;
		}
		if (rc == TP_OK)
			rc = check_result(e, &p, r);
		PQclear(r);
	}
	if (e->qhead == e->qtail)
		e->qhead = e->qtail = 0;
	return rc;
}

/*
 * End the current chunk with a sync; read the previous chunk's results
 * meanwhile, so one chunk is always in flight.
 */
static int pipe_sync(apply_engine *e, unsigned keep)
{
	int rc = TP_OK;

	if (e->chunk_stmts > 0) {
		if (!PQpipelineSync(e->conn))
			return apply_report(NULL, e->conn, "sending to the server");
		q_push(e, P_SYNC, NULL, OP_INSERT, 0);
		e->syncs++;
		e->chunk_stmts = e->chunk_bytes = 0;
	}
	while (e->syncs > keep && (rc = drain_one_sync(e, rc)) == TP_OK)
		;
	return rc;
}

/* Read every outstanding result and leave pipeline mode. */
static int pipe_flush(apply_engine *e)
{
	int rc;

	if (!e->in_pipeline)
		return TP_OK;
	rc = pipe_sync(e, 0);
	while (e->syncs > 0)            /* after a failure: still read the rest */
		rc = drain_one_sync(e, rc);
	if (PQexitPipelineMode(e->conn))
		e->in_pipeline = false;     /* else engine_abort tries again */
	else if (rc == TP_OK)
		rc = apply_report(NULL, e->conn, "leaving pipeline mode");
	return rc;
}

static int pipe_enter(apply_engine *e)
{
	if (e->in_pipeline)
		return TP_OK;
	if (!PQenterPipelineMode(e->conn))
		return apply_report(NULL, e->conn, "entering pipeline mode");
	e->in_pipeline = true;
	return TP_OK;
}

/* Account for one sent statement; sync when the chunk is full. */
static int pipe_sent(apply_engine *e, size_t bytes)
{
	e->chunk_stmts++;
	e->chunk_bytes += bytes;
	if (e->chunk_stmts >= PIPE_STMTS || e->chunk_bytes >= PIPE_BYTES)
		return pipe_sync(e, 1);
	return TP_OK;
}

/* ---- statements ---- */

typedef struct literal_arg {
	PGconn *conn;
	char **f;
	size_t *lens;
} literal_arg;

static int literal(strbuf *sb, size_t idx, void *arg)
{
	literal_arg *a = arg;
	char *lit;

	if (!a->f[idx]) {
		strbuf_adds(sb, "NULL");
		return 0;
	}
	lit = PQescapeLiteral(a->conn, a->f[idx], a->lens[idx]);
	if (!lit)
		return -1;
	strbuf_adds(sb, lit);
	PQfreemem(lit);
	return 0;
}

/* --dry-run: the statement with its values as literals. */
static int print_stmt(apply_engine *e, const apply_table *t, enum apply_op op,
		      uint64_t line)
{
	strbuf sb = { 0 };
	literal_arg a = { e->conn, e->f, e->lens };
	int rc = TP_OK;

	if (tab_stmt_build(&sb, t, op, literal, &a) < 0) {
		log_error("batch %s line %llu: cannot quote a value for %s %s (bad encoding?)",
			  e->label, (unsigned long long)line, op_verb(op), t->display);
		rc = TP_EDATA;
	} else {
		fprintf(e->dry, "%s;\n", sb.buf);
	}
	strbuf_free(&sb);
	return rc;
}

static int send_prepare(apply_engine *e, apply_table *t, enum apply_op op,
			const char *name, uint64_t line)
{
	char *sql = tab_stmt_sql(t, op);
	int ok = PQsendPrepare(e->conn, name, sql, (int)tab_nparams(t, op), NULL);

	free(sql);
	if (!ok)
		return apply_report(NULL, e->conn, "sending to the server");
	t->prepared[op] = true;
	q_push(e, P_PREPARE, t, op, line);
	return pipe_sent(e, 0);
}

/* Run op on t with e->f as parameters: printed, or queued in the pipeline. */
static int send_stmt(apply_engine *e, apply_table *t, enum apply_op op, uint64_t line)
{
	char name[40];
	size_t n = tab_nparams(t, op), bytes = 0;
	int rc;

	if (e->dry)
		return print_stmt(e, t, op, line);
	if ((rc = pipe_enter(e)) != TP_OK)
		return rc;
	tab_stmt_name(t, op, name, sizeof name);
	if (!t->prepared[op] && (rc = send_prepare(e, t, op, name, line)) != TP_OK)
		return rc;
	if (!PQsendQueryPrepared(e->conn, name, (int)n, (const char *const *)e->f,
				 NULL, NULL, 0))
		return apply_report(NULL, e->conn, "sending to the server");
	q_push(e, P_STMT, t, op, line);
	for (size_t i = 0; i < n; i++)
		bytes += e->lens[i];
	return pipe_sent(e, bytes);
}

/*
 * TRUNCATE lines in a row become one statement: PostgreSQL truncates a
 * table that a foreign key references only together with the referencing
 * tables, and a source's TRUNCATE a, b (or ... CASCADE) captures one line
 * per table. Sent at the next line that is not a T or a definition.
 */
static int trunc_flush(apply_engine *e)
{
	int rc = TP_OK;

	if (!e->trunc.len)
		return TP_OK;
	if (e->dry)
		fprintf(e->dry, "%s;\n", e->trunc.buf);
	else if ((rc = pipe_enter(e)) == TP_OK) {
		if (!PQsendQueryParams(e->conn, e->trunc.buf, 0, NULL, NULL, NULL, NULL, 0))
			rc = apply_report(NULL, e->conn, "sending to the server");
		else {
			q_push(e, P_TRUNCATE, e->trunc_t, OP_INSERT, e->trunc_line);
			rc = pipe_sent(e, 0);
		}
	}
	strbuf_reset(&e->trunc);
	return rc;
}

static int send_truncate(apply_engine *e, const apply_table *t, uint64_t line)
{
	if (!e->trunc.len) {
		strbuf_addf(&e->trunc, "TRUNCATE %s", t->qname);
		e->trunc_t = t;
		e->trunc_line = line;
	} else {
		strbuf_addf(&e->trunc, ", %s", t->qname);
	}
	return TP_OK;
}

/* ---- COPY runs ---- */

/* The batch line of a failed COPY row, read from the error's context. */
static uint64_t copy_error_line(const apply_engine *e, const PGresult *r)
{
	const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
	strbuf pre = { 0 };
	uint64_t line = e->run_start;
	const char *p;

	strbuf_addf(&pre, "COPY %s, line ", e->run_t->relname);
	if (ctx && (p = strstr(ctx, pre.buf))) {
		unsigned long long n = strtoull(p + pre.len, NULL, 10);
		if (n >= 1 && n <= e->run_rows)
			line = e->run_start + n - 1;
	}
	strbuf_free(&pre);
	return line;
}

/* Collect the results of an ended (or failed) COPY. */
static int copy_result(apply_engine *e)
{
	int rc = TP_OK;
	PGresult *r;
	char what[512];

	while ((r = PQgetResult(e->conn))) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_COPY_IN) {      /* still open: end it, or give up */
			if (PQputCopyEnd(e->conn, "aborted by tp-apply") != 1) {
				PQclear(r);
				break;
			}
		} else if (st != PGRES_COMMAND_OK && rc == TP_OK) {
			snprintf(what, sizeof what, "batch %s line %llu: COPY %s", e->label,
				 (unsigned long long)copy_error_line(e, r), e->run_t->display);
			rc = apply_report(r, e->conn, what);
		}
		PQclear(r);
	}
	if (rc == TP_OK && PQstatus(e->conn) == CONNECTION_BAD)
		rc = apply_report(NULL, e->conn, "COPY");
	e->in_copy = false;
	return rc;
}

/* Send (or print) the rows buffered so far. */
static int copy_put(apply_engine *e)
{
	int rc = TP_OK;

	if (e->run.len == 0)
		return TP_OK;
	if (e->dry)
		fwrite(e->run.buf, 1, e->run.len, e->dry);
	else if (PQputCopyData(e->conn, e->run.buf, (int)e->run.len) != 1) {
		/* the server ended the COPY early: its error says why */
		rc = copy_result(e);
		if (rc == TP_OK)
			rc = apply_report(NULL, e->conn, "COPY");
	}
	strbuf_reset(&e->run);
	return rc;
}

static int copy_start(apply_engine *e)
{
	int rc = pipe_flush(e);     /* no COPY inside a pipeline */

	if (rc != TP_OK)
		return rc;
	if (e->dry) {
		fprintf(e->dry, "%s;\n", e->run_t->copy_sql);
	} else {
		PGresult *r = PQexec(e->conn, e->run_t->copy_sql);
		if (PQresultStatus(r) != PGRES_COPY_IN) {
			char what[512];
			snprintf(what, sizeof what, "batch %s line %llu: COPY %s", e->label,
				 (unsigned long long)e->run_start, e->run_t->display);
			rc = apply_report(r, e->conn, what);
		}
		PQclear(r);
		if (rc != TP_OK)
			return rc;
	}
	e->in_copy = true;
	return copy_put(e);
}

static int copy_end(apply_engine *e)
{
	int rc = copy_put(e);

	if (rc != TP_OK || !e->in_copy)
		return rc;
	if (e->dry) {
		fputs("\\.\n", e->dry);
		e->in_copy = false;
		return TP_OK;
	}
	if (PQputCopyEnd(e->conn, NULL) != 1) {
		rc = copy_result(e);
		return rc != TP_OK ? rc : apply_report(NULL, e->conn, "COPY");
	}
	return copy_result(e);
}

/* ---- runs of inserts ---- */

static int bad_line(const apply_engine *e, uint64_t line, const char *why)
{
	log_error("batch %s line %llu: bad batch: %s", e->label, (unsigned long long)line, why);
	return TP_EDATA;
}

/* A short run: one INSERT per buffered row. */
static int run_inserts(apply_engine *e)
{
	char *p = e->run.buf, *end = p + e->run.len;
	uint64_t line = e->run_start;
	int rc = TP_OK;

	while (rc == TP_OK && p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		*nl = '\0';
		int n = copytext_split(p, (size_t)(nl - p), e->f, e->lens, e->fcap);
		if (n != (int)e->run_t->ncols)
			return bad_line(e, line, "malformed INSERT row");
		rc = send_stmt(e, e->run_t, OP_INSERT, line++);
		p = nl + 1;
	}
	return rc;
}

static int end_run(apply_engine *e)
{
	int rc = TP_OK;

	if (e->run_t)
		rc = e->in_copy ? copy_end(e) : run_inserts(e);
	e->run_t = NULL;
	e->run_rows = 0;
	strbuf_reset(&e->run);
	return rc;
}

/*
 * Fields of a COPY text row, or -1 when it holds a byte or escape our
 * writer never makes and COPY would misread: "\." (end of data), a raw
 * CR, an unknown escape, a NUL.
 */
static long copy_row_fields(const char *s, size_t len)
{
	long n = 1;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\t') {
			n++;
		} else if (c == '\r' || c == '\0') {
			return -1;
		} else if (c == '\\') {
			if (++i >= len || !s[i] || !strchr("\\tnrbfvN01234567x", s[i]))
				return -1;
		}
	}
	return n;
}

static int on_insert(apply_engine *e, apply_table *t, const char *row, size_t len,
		     uint64_t line)
{
	if (copy_row_fields(row, len) != (long)t->ncols)
		return bad_line(e, line, "malformed INSERT row");
	if (e->run_t != t) {
		int rc = end_run(e);
		if (rc != TP_OK)
			return rc;
		e->run_t = t;
		e->run_start = line;
	}
	strbuf_add(&e->run, row, len);
	strbuf_addc(&e->run, '\n');
	e->run_rows++;
	if (e->in_copy)
		return e->run.len >= COPY_CHUNK ? copy_put(e) : TP_OK;
	if (e->run_rows >= COPY_MIN_ROWS)
		return copy_start(e);
	return TP_OK;
}

/* ---- event lines ---- */

static void ensure_fields(apply_engine *e, size_t n)
{
	if (n <= e->fcap)
		return;
	e->fcap = n;
	e->f = xrealloc(e->f, n * sizeof *e->f);
	e->lens = xrealloc(e->lens, n * sizeof *e->lens);
}

/*
 * Does the target delete rows of t by itself, through a foreign key with
 * ON DELETE CASCADE? The source captured those cascaded deletes too, so
 * they may find nothing here: not divergence. Asked once per table per
 * run; the pipeline is flushed first, as a plain query cannot run in it.
 */
static int learn_cascade(apply_engine *e, apply_table *t)
{
	const char *params[1] = { t->qname };
	PGresult *res;
	int rc;

	if (e->dry) {
		t->cascade_child = 0;
		return TP_OK;
	}
	if ((rc = end_run(e)) != TP_OK || (rc = pipe_flush(e)) != TP_OK)
		return rc;
	res = db_query(e->conn, "reading foreign keys",
		       "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint"
		       " WHERE conrelid = pg_catalog.to_regclass($1) AND contype = 'f'"
		       " AND confdeltype = 'c')", 1, params, &rc);
	if (!res)
		return rc;
	t->cascade_child = *PQgetvalue(res, 0, 0) == 't';
	PQclear(res);
	return TP_OK;
}

static int on_define(apply_engine *e, const char *line, size_t len, uint64_t lineno)
{
	char err[160];
	unsigned tid;
	apply_table *t = tabcache_define(e->cache, e->conn, line, len, &tid, err, sizeof err);

	if (!t)
		return bad_line(e, lineno, err);
	if (tid >= MAX_TID)
		return bad_line(e, lineno, "table id out of range");
	if (tid >= e->ntids) {
		size_t n = tid + 1 > 2 * e->ntids ? tid + 1 : 2 * e->ntids;
		e->tids = xrealloc(e->tids, n * sizeof *e->tids);
		memset(e->tids + e->ntids, 0, (n - e->ntids) * sizeof *e->tids);
		e->ntids = n;
	}
	e->tids[tid] = t;
	ensure_fields(e, t->nkeys + t->ncols + 1);
	return t->cascade_child < 0 ? learn_cascade(e, t) : TP_OK;
}

/*
 * "X\tTID" or "X\tTID\tREST": the table of TID, and REST (*more says
 * whether there was a tab after the TID). NULL for a bad line.
 */
static apply_table *event_table(const apply_engine *e, char *line, size_t len,
				char **rest, size_t *restlen, bool *more)
{
	size_t i = 2;
	unsigned long tid = 0;

	if (len < 3 || line[1] != '\t')
		return NULL;
	for (; i < len && i < 12 && line[i] >= '0' && line[i] <= '9'; i++)
		tid = tid * 10 + (unsigned long)(line[i] - '0');
	if (i == 2 || (i < len && line[i] != '\t') || tid >= e->ntids)
		return NULL;
	*more = i < len;
	*rest = *more ? line + i + 1 : line + len;
	*restlen = len - (size_t)(*rest - line);
	return e->tids[tid];
}

/* U and D: split the key (and new row), then one prepared statement. */
static int on_keyed(apply_engine *e, apply_table *t, enum apply_op op,
		    char *rest, size_t len, uint64_t line)
{
	int n;

	if (t->nkeys == 0) {
		log_error("batch %s line %llu: %s %s: the table has no key to find the row by",
			  e->label, (unsigned long long)line, op_verb(op), t->display);
		return TP_EFAIL;
	}
	n = copytext_split(rest, len, e->f, e->lens, e->fcap);
	if (n != (int)tab_nparams(t, op))
		return bad_line(e, line, op == OP_UPDATE ? "malformed UPDATE line"
							  : "malformed DELETE line");
	return send_stmt(e, t, op, line);
}

int engine_line(apply_engine *e, char *line, size_t len, uint64_t lineno)
{
	char *rest;
	size_t rlen;
	bool more;
	apply_table *t;
	int rc;

	/* labels come first: at the first other line, stop for them */
	if (e->early.len && !(len > 13 && memcmp(line, "S\tenum-label\t", 13) == 0))
		return APPLY_EARLY;
	if (e->trunc.len && len > 0 && line[0] != 'T' && line[0] != '=' &&
	    (rc = trunc_flush(e)) != TP_OK)
		return rc;
	if (len > 0 && line[0] == '=') {
		rc = end_run(e);
		return rc != TP_OK ? rc : on_define(e, line, len, lineno);
	}
	if (len > 0 && line[0] == 'S') {
		/* a schema change sees every row before it: flush, then run it alone */
		e->events++;
		if ((rc = end_run(e)) == TP_OK && (rc = pipe_flush(e)) == TP_OK)
			rc = apply_ddl_line(e->conn, e->dry, e->label, line, len, lineno, &e->early);
		/* the tables' foreign keys may have changed: in later batches of
		 * this run, deletes that a cascade got to first must be known */
		tabcache_forget_cascades(e->cache);
		return rc;
	}
	if (!(t = event_table(e, line, len, &rest, &rlen, &more)))
		return bad_line(e, lineno, "malformed event line or undefined table");
	e->events++;
	e->rows++;
	if (line[0] == 'I' && more)
		return on_insert(e, t, rest, rlen, lineno);
	if ((rc = end_run(e)) != TP_OK)
		return rc;
	if (line[0] == 'U' && more)
		return on_keyed(e, t, OP_UPDATE, rest, rlen, lineno);
	if (line[0] == 'D' && more)
		return on_keyed(e, t, OP_DELETE, rest, rlen, lineno);
	if (line[0] == 'T' && !more)
		return send_truncate(e, t, lineno);
	return bad_line(e, lineno, "malformed event line");
}

int engine_finish(apply_engine *e)
{
	int rc = e->early.len ? APPLY_EARLY : end_run(e);

	if (rc == TP_OK)
		rc = trunc_flush(e);
	return rc != TP_OK ? rc : pipe_flush(e);
}

/* Run a statement whose failure only gets logged (we are failing already). */
static void exec_quietly(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQstatus(conn) == CONNECTION_OK)
		apply_report(r, conn, sql);
	PQclear(r);
}

void engine_abort(apply_engine *e)
{
	e->run_t = NULL;
	e->run_rows = 0;
	strbuf_reset(&e->run);
	if (e->dry) {
		e->in_copy = false;
		return;
	}
	if (e->in_copy) {
		PGresult *r;
		PQputCopyEnd(e->conn, "aborted by tp-apply");
		while ((r = PQgetResult(e->conn)))
			PQclear(r);
		e->in_copy = false;
	}
	if (e->in_pipeline) {
		if (e->chunk_stmts > 0 && PQpipelineSync(e->conn)) {
			q_push(e, P_SYNC, NULL, OP_INSERT, 0);
			e->syncs++;
		}
		e->chunk_stmts = e->chunk_bytes = 0;
		while (e->syncs > 0)
			drain_one_sync(e, TP_EFAIL);    /* TP_EFAIL: log nothing more */
		PQexitPipelineMode(e->conn);
		e->in_pipeline = false;
	}
	e->qhead = e->qtail = 0;
	exec_quietly(e->conn, "ROLLBACK");
	/* a failed pipeline may have left some statements unprepared */
	exec_quietly(e->conn, "DEALLOCATE ALL");
	tabcache_forget_prepared(e->cache);
}
