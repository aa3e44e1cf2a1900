/*
 * apply.c - tp-apply: which batches to apply, in which order, and the
 * transaction around each.
 *
 * Exactly once rests on one rule: a batch's rows and its ledger line
 * (<schema>.applied, <schema>.apply_log) commit together. The ledger row
 * of the source is locked FOR UPDATE and its seq re-checked inside that
 * transaction, so two appliers, a crash at any point, or a re-run can
 * neither skip nor repeat a batch. The batch file leaves the inbox only
 * after COMMIT; a file found at or below the ledger was applied by a run
 * that died before moving it, and is moved quietly.
 *
 * Every write carries SET LOCAL teleport.origin = <source>: the capture
 * trigger of a node that is also a source skips such rows, so changes do
 * not travel back where they came from.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "apply_int.h"
#include "batch.h"
#include "db.h"
#include "hold.h"
#include "lock.h"
#include "log.h"
#include "spool.h"
#include "strbuf.h"
#include "tp.h"

volatile sig_atomic_t apply_stop;

/*
 * Set while connected: SIGTERM also cancels the statement in progress
 * (one waiting for a lock, say), as pg_dump does, so a stop is not kept
 * waiting; the batch then rolls back. PQcancel may be called from a
 * signal handler, with the error buffer on the handler's stack.
 */
static PGcancel *volatile apply_cancel;

static void on_signal(int sig)
{
	char err[256];

	(void)sig;
	apply_stop = 1;
	if (apply_cancel)
		(void)PQcancel(apply_cancel, err, sizeof err);
}

void apply_signals_init(void)
{
	struct sigaction sa = { 0 };

	/* no SA_RESTART needed: libpq retries interrupted reads and writes */
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* One run: the connection, the engine and the ledger's statements. */
typedef struct apply_ctx {
	const tp_config *cfg;
	const apply_opts *o;
	PGconn *conn;
	apply_engine *eng;
	batch_limits lim;
	char *sql_ensure;       /* ledger row of a source, if missing */
	char *sql_seq;          /* its seq */
	char *sql_lock;         /* its seq, FOR UPDATE */
	char *sql_advance;      /* move it to a batch */
	char *sql_log;          /* the apply_log line */
	char *schema;           /* quoted bookkeeping schema */
	uint64_t load_last;     /* a load just applied: its last part (applyload.c) */
	uint64_t held;          /* the inbox batch that waits for a schema change, 0: none */
	apply_wait wait;        /* ... and why */
} apply_ctx;

/* What apply_batch is asked to do with one file. */
typedef struct batch_job {
	const tp_source *src;
	const char *path;
	uint64_t want;          /* inbox: the seq the file name says; 0: any */
	bool force;
	bool inbox;             /* quarantine when bad; 75 when the ledger moved */
} batch_job;

static void ledger_sql(apply_ctx *c, const char *schema)
{
	strbuf sb = { 0 };
	bool f = c->o->force;

	strbuf_addf(&sb, "INSERT INTO %s.applied (source, seq, digest) VALUES ($1, 0, '')"
		    " ON CONFLICT (source) DO NOTHING", schema);
	c->sql_ensure = strbuf_detach(&sb);
	strbuf_addf(&sb, "SELECT seq FROM %s.applied WHERE source = $1", schema);
	c->sql_seq = strbuf_detach(&sb);
	strbuf_addf(&sb, "SELECT seq FROM %s.applied WHERE source = $1 FOR UPDATE", schema);
	c->sql_lock = strbuf_detach(&sb);
	/* --force replays may be old batches: the ledger never moves back */
	strbuf_addf(&sb, "UPDATE %s.applied SET seq = $2, digest = $3,"
		    " applied_at = pg_catalog.now() WHERE source = $1%s",
		    schema, f ? " AND seq < $2" : "");
	c->sql_advance = strbuf_detach(&sb);
	strbuf_addf(&sb, "INSERT INTO %s.apply_log (source, seq, kind, digest, events, batch_created)"
		    " VALUES ($1, $2, $3, $4, $5, NULLIF($6::text, '')::timestamptz)%s", schema,
		    f ? " ON CONFLICT (source, seq) DO UPDATE SET kind = EXCLUDED.kind,"
			" digest = EXCLUDED.digest, events = EXCLUDED.events,"
			" applied_at = pg_catalog.now()" : "");
	c->sql_log = strbuf_detach(&sb);
}

static void ctx_clear(apply_ctx *c)
{
	engine_free(c->eng);
	db_close(c->conn);
	free(c->sql_ensure);
	free(c->sql_seq);
	free(c->sql_lock);
	free(c->sql_advance);
	free(c->sql_log);
	free(c->schema);
}

/* sql/target.sql must be installed: 78 with a hint otherwise. */
static int check_installed(apply_ctx *c, const char *schema)
{
	strbuf a = { 0 }, l = { 0 };
	const char *params[2];
	int rc;
	PGresult *res;

	strbuf_addf(&a, "%s.applied", schema);
	strbuf_addf(&l, "%s.apply_log", schema);
	params[0] = a.buf;
	params[1] = l.buf;
	res = db_query(c->conn, "looking for the ledger",
		       "SELECT pg_catalog.to_regclass($1) IS NOT NULL"
		       " AND pg_catalog.to_regclass($2) IS NOT NULL", 2, params, &rc);
	if (res && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		log_error("%s and %s are missing: this node's target bookkeeping is not installed",
			  a.buf, l.buf);
		log_hint("run tp-install -c %s", c->cfg->path);
		rc = TP_ECONFIG;
	}
	PQclear(res);
	strbuf_free(&a);
	strbuf_free(&l);
	return rc;
}

/* The ledger's seq of a source (creating its row first), into *seq. */
static int ledger_read(apply_ctx *c, const char *source, uint64_t *seq)
{
	const char *p[1] = { source };
	int rc;
	PGresult *res;

	if (!c->o->dry_run &&
	    (rc = db_execp(c->conn, "adding the ledger row", c->sql_ensure, 1, p)) != TP_OK)
		return rc;
	if (!(res = db_query(c->conn, "reading the ledger", c->sql_seq, 1, p, &rc)))
		return rc;
	*seq = PQntuples(res) ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return TP_OK;
}

/* ---- one batch ---- */

/* An open batch file: its reader and what the run knows about it. */
typedef struct open_batch {
	int fd;
	batch_reader *r;
	const batch_header *h;
	char label[160];        /* "source/seq" for every log line */
	uint64_t lines;
} open_batch;

static void open_batch_close(open_batch *b)
{
	batch_reader_free(b->r);
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	b->r = NULL;
}

/* Read the token of a [source] (NULL key when it has no token_file). */
static int source_key(const tp_source *src, char **key)
{
	char err[256];

	*key = NULL;
	if (!src->token_file)
		return TP_OK;
	if (!(*key = token_read(src->token_file, err, sizeof err))) {
		log_error("[source %s] token_file: %s", src->name, err);
		return TP_ECONFIG;
	}
	return TP_OK;
}

/* Open path and read its header. key may be NULL (header only). */
static int batch_open(apply_ctx *c, open_batch *b, const char *path, const char *key)
{
	b->fd = open(path, O_RDONLY | O_CLOEXEC);
	b->r = NULL;
	b->lines = 0;
	if (b->fd < 0) {
		log_error("cannot open %s: %m", path);
		return TP_EFAIL;
	}
	b->r = batch_reader_new(b->fd, &c->lim, (const unsigned char *)key,
				key ? strlen(key) : 0);
	if (batch_reader_header(b->r, &b->h) < 0) {
		log_error("%s: bad batch: %s", path, batch_reader_error(b->r));
		return TP_EDATA;
	}
	snprintf(b->label, sizeof b->label, "%s/%" PRIu64, b->h->source, b->h->seq);
	return TP_OK;
}

/* Is the header the batch the job expects? 65 (bad batch) if not. */
static int header_check(apply_ctx *c, const batch_job *j, const open_batch *b)
{
	const batch_header *h = b->h;

	if (strcmp(h->source, j->src->name) != 0) {
		log_error("%s: bad batch: it comes from \"%s\", not \"%s\"", j->path,
			  h->source, j->src->name);
		return TP_EDATA;
	}
	if (strcmp(h->target, c->cfg->node_name) != 0) {
		log_error("%s: bad batch: it is for \"%s\", not for this node \"%s\"",
			  j->path, h->target, c->cfg->node_name);
		return TP_EDATA;
	}
	if (j->want && h->seq != j->want) {
		log_error("%s: bad batch: its header says batch %s, the file name %" PRIu64,
			  j->path, b->label, j->want);
		return TP_EDATA;
	}
	return TP_OK;
}

/*
 * --dry-run: print sql with $1..$9 replaced by the params as literals.
 * A '$' inside a quoted identifier (the schema's name) is left alone.
 */
static void print_sql(apply_ctx *c, const char *sql, int n, const char *const *params)
{
	strbuf sb = { 0 };
	bool quoted = false;

	for (const char *p = sql; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		if (quoted || *p != '$' || p[1] < '1' || p[1] > '0' + n) {
			strbuf_addc(&sb, *p);
			continue;
		}
		const char *v = params[*++p - '1'];
		char *lit = PQescapeLiteral(c->conn, v, strlen(v));
		strbuf_adds(&sb, lit ? lit : "NULL");
		PQfreemem(lit);
	}
	fprintf(c->o->out, "%s;\n", sb.buf);
	strbuf_free(&sb);
}

static const char sql_origin[] =
	"SELECT pg_catalog.set_config('teleport.origin', $1, true)";

/* BEGIN, mark the origin, lock the ledger row; *cur receives its seq. */
static int txn_begin(apply_ctx *c, const batch_job *j, uint64_t *cur)
{
	const char *p[1] = { j->src->name };
	PGresult *res;
	int rc;

	if (c->o->dry_run) {
		fprintf(c->o->out, "BEGIN;\n");
		print_sql(c, sql_origin, 1, p);
		return ledger_read(c, j->src->name, cur);
	}
	if ((rc = db_exec(c->conn, "starting a transaction", "BEGIN")) != TP_OK ||
	    (rc = db_execp(c->conn, "marking the origin", sql_origin, 1, p)) != TP_OK)
		return rc;
	if (!(res = db_query(c->conn, "locking the ledger", c->sql_lock, 1, p, &rc)))
		return rc;
	*cur = PQntuples(res) ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return TP_OK;
}

/* Is this batch the next one of its source? Checked under the row lock. */
static int order_check(const batch_job *j, const open_batch *b, uint64_t cur)
{
	uint64_t seq = b->h->seq;

	if (j->force || seq == cur + 1)
		return TP_OK;
	if (j->inbox) {
		log_warn("batch %s: the ledger moved to %" PRIu64 " meanwhile (another tp-apply?)",
			 b->label, cur);
		return TP_ETEMP;
	}
	if (seq <= cur)
		log_error("%s: batch %s is applied already (the ledger of %s is at %" PRIu64 ")",
			  j->path, b->label, j->src->name, cur);
	else
		log_error("%s: batch %s is out of order: the next batch of %s is %" PRIu64,
			  j->path, b->label, j->src->name, cur + 1);
	log_hint("--force applies it anyway");
	return TP_EFAIL;
}

/* The reader failed: the batch is bad (65). */
static int reader_failed(open_batch *b, char *why, size_t whylen)
{
	snprintf(why, whylen, "%s", batch_reader_error(b->r));
	log_error("batch %s: bad batch: %s", b->label, why);
	return TP_EDATA;
}

/*
 * A statement failed: is the batch itself intact? A flipped byte can
 * make a bad value before it makes a bad digest, and a damaged batch must
 * be quarantined (65), not retried forever. So read on to the end.
 */
static int failed_mid_batch(open_batch *b, int rc, char *why, size_t whylen)
{
	char *line;
	size_t len;
	int n;

	if (rc == TP_EDATA || apply_stop)
		return rc;
	while ((n = batch_reader_next(b->r, &line, &len)) == 1)
		;
	return n < 0 ? reader_failed(b, why, whylen) : rc;
}

/* Every event line through the engine; 0 from the reader means verified. */
static int stream_events(apply_ctx *c, open_batch *b, char *why, size_t whylen)
{
	char *line;
	size_t len;
	int n;

	while ((n = batch_reader_next(b->r, &line, &len)) == 1) {
		if (apply_stop) {
			log_warn("batch %s: interrupted, rolling back", b->label);
			return TP_ETEMP;
		}
		int rc = engine_line(c->eng, line, len, ++b->lines);
		if (rc == TP_EDATA)
			snprintf(why, whylen, "bad event line %" PRIu64, b->lines);
		if (rc != TP_OK)
			return failed_mid_batch(b, rc, why, whylen);
	}
	if (n < 0)
		return reader_failed(b, why, whylen);
	return engine_finish(c->eng);     /* the batch is verified by now */
}

/* The ledger lines, then COMMIT. */
static int ledger_write(apply_ctx *c, const batch_job *j, const open_batch *b)
{
	char seq[24], events[24];
	const char *digest = batch_reader_digest(b->r);
	const char *adv[3] = { j->src->name, seq, digest };
	const char *logp[6] = { j->src->name, seq, b->h->kind, digest, events,
				b->h->created ? b->h->created : "" };
	int rc;

	snprintf(seq, sizeof seq, "%" PRIu64, b->h->seq);
	/* row changes, as the source counts them: not schema change lines */
	snprintf(events, sizeof events, "%" PRIu64, engine_rows(c->eng));
	if (c->o->dry_run) {
		print_sql(c, c->sql_advance, 3, adv);
		print_sql(c, c->sql_log, 6, logp);
		fprintf(c->o->out, "COMMIT;\n");
		return TP_OK;
	}
	if ((rc = db_execp(c->conn, "advancing the ledger", c->sql_advance, 3, adv)) != TP_OK ||
	    (rc = db_execp(c->conn, "writing the apply log", c->sql_log, 6, logp)) != TP_OK)
		return rc;
	return db_exec(c->conn, "committing", "COMMIT");
}

/* The transaction of one batch whose header is read and checked. */
static int apply_txn(apply_ctx *c, const batch_job *j, open_batch *b,
		     char *why, size_t whylen)
{
	uint64_t cur = 0;
	int rc;

	if (c->o->dry_run)
		fprintf(c->o->out, "-- batch %s from %s\n", b->label, j->path);
	rc = txn_begin(c, j, &cur);
	if (rc == TP_OK)
		rc = order_check(j, b, cur);
	if (rc == TP_OK) {
		engine_begin(c->eng, b->label);
		rc = stream_events(c, b, why, whylen);
	}
	if (rc == TP_OK)
		rc = ledger_write(c, j, b);
	if (rc != TP_OK) {
		engine_abort(c->eng);
		return rc;
	}
	log_info("%s batch %s: %" PRIu64 " events", c->o->dry_run ? "printed" : "applied",
		 b->label, batch_reader_events(b->r));
	return TP_OK;
}

static void quarantine(apply_ctx *c, const char *path, const char *why)
{
	if (spool_quarantine(c->cfg->spool, path, why) < 0)
		log_error("cannot quarantine %s: %m", path);
	else
		log_hint("the batch was moved to %s/quarantine/; the stream waits for a good copy",
			 c->cfg->spool);
}

/* A load's first part (applyload.c): the whole load, from the inbox only. */
static int apply_load(apply_ctx *c, const batch_job *j, open_batch *b, char *key)
{
	load_apply la = { c->conn, c->eng, &c->lim, key, c->schema, j->src->name,
			  c->cfg->node_name, c->o->dry_run ? c->o->out : NULL, j->path, b->h };
	int rc = TP_EFAIL;

	if (!j->inbox)
		log_error("%s: batch %s is part of a load: loads are applied from the inbox",
			  j->path, b->label);
	else
		rc = load_apply_inbox(&la);
	if (rc == TP_OK)
		c->load_last = la.last;
	if (rc == TP_EDATA && la.bad_path[0] && !c->o->dry_run)
		quarantine(c, la.bad_path, "bad part of a load");
	open_batch_close(b);
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return rc;
}

/*
 * The batch stopped for new enum labels (apply_ddl_line): it was rolled
 * back and read to its end, so it is intact. Add them, committed, and
 * apply it again from the start; it cannot stop for them twice.
 */
static int apply_again(apply_ctx *c, const batch_job *j, open_batch *b, const char *key,
		       char *why, size_t whylen)
{
	int rc = apply_ddl_early(c->conn, b->label, engine_early(c->eng));

	open_batch_close(b);
	if (rc == TP_OK)
		rc = batch_open(c, b, j->path, key);
	if (rc == TP_OK)
		rc = apply_txn(c, j, b, why, whylen);
	if (rc == APPLY_EARLY) {
		log_error("batch %s: its new enum labels are still missing after adding them",
			  b->label);
		rc = TP_EFAIL;
	}
	return rc;
}

static int apply_batch(apply_ctx *c, const batch_job *j)
{
	open_batch b = { .fd = -1 };
	char *key = NULL, why[256] = "bad batch";
	int rc = source_key(j->src, &key);

	if (rc == TP_OK)
		rc = batch_open(c, &b, j->path, key);
	if (rc == TP_EDATA)
		snprintf(why, sizeof why, "%s", batch_reader_error(b.r));
	if (rc == TP_OK && (rc = header_check(c, j, &b)) == TP_EDATA)
		snprintf(why, sizeof why, "header does not match its place in the stream");
	if (rc == TP_OK && strcmp(b.h->kind, "load") == 0)
		return apply_load(c, j, &b, key);
	if (rc == TP_OK)
		rc = apply_txn(c, j, &b, why, sizeof why);
	if (rc == APPLY_EARLY)
		rc = apply_again(c, j, &b, key, why, sizeof why);
	if (rc == TP_EDATA && j->inbox && !c->o->dry_run)
		quarantine(c, j->path, why);
	open_batch_close(&b);
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return rc;
}

/* ---- inbox mode ---- */

/* After COMMIT (or when found applied already): into applied/. */
static void move_applied(const char *dir, const char *name)
{
	strbuf from = { 0 }, to = { 0 }, sub = { 0 };

	strbuf_addf(&from, "%s/%s", dir, name);
	strbuf_addf(&sub, "%s/applied", dir);
	strbuf_addf(&to, "%s/%s", sub.buf, name);
	/* the batch is committed: a failed move only leaves it for the next run */
	if (spool_mkdirs(sub.buf) < 0 || spool_move(from.buf, to.buf) < 0)
		log_warn("cannot move %s to %s: %m", from.buf, sub.buf);
	strbuf_free(&from);
	strbuf_free(&to);
	strbuf_free(&sub);
}

/* The digest the apply log keeps for batch seq of src ("" when pruned). */
static int logged_digest(apply_ctx *c, const tp_source *src, uint64_t seq, char out[65])
{
	char seqs[24];
	const char *params[2] = { src->name, seqs };
	strbuf sql = { 0 };
	PGresult *res;
	int rc;

	snprintf(seqs, sizeof seqs, "%" PRIu64, seq);
	strbuf_addf(&sql, "SELECT digest FROM %s.apply_log WHERE source = $1 AND seq = $2",
		    c->schema);
	res = db_query(c->conn, "reading the apply log", sql.buf, 2, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	snprintf(out, 65, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return TP_OK;
}

/*
 * A batch under a number applied already: the same batch again goes to
 * applied/; another one (its manifest's digest differs from the one the
 * apply log keeps for that number) is a conflict: refused, quarantined,
 * 65, and the stream goes on, as that number is done.
 */
static int applied_again(apply_ctx *c, const tp_source *src, const char *dir,
			 const spool_entry *e)
{
	strbuf path = { 0 };
	batch_header h = { 0 };
	char *key = NULL, digest[65], logged[65] = "", err[256] = "";
	int rc = source_key(src, &key);

	strbuf_addf(&path, "%s/%s", dir, e->name);
	if (rc == TP_OK && batch_verify_file(path.buf, &c->lim, (unsigned char *)key,
					     key ? strlen(key) : 0, &h, digest, err, sizeof err) < 0) {
		log_error("%s: bad batch: %s", path.buf, err);
		rc = TP_EDATA;
	}
	if (rc == TP_OK)
		rc = logged_digest(c, src, e->seq, logged);
	if (rc == TP_OK && logged[0] && strcmp(logged, digest) != 0) {
		log_error("%s: batch %s/%" PRIu64 " conflicts with the batch applied under that"
			  " number (digest %.12s, applied %.12s)", path.buf, src->name, e->seq,
			  digest, logged);
		snprintf(err, sizeof err, "conflicts with the batch applied under its number");
		rc = TP_EDATA;
	}
	if (rc == TP_EDATA)
		quarantine(c, path.buf, err);
	else if (rc == TP_OK)
		move_applied(dir, e->name);
	batch_header_clear(&h);
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	strbuf_free(&path);
	return rc;
}

static int inbox_entry(apply_ctx *c, const tp_source *src, const char *dir,
		       const spool_entry *e, uint64_t *last)
{
	strbuf path = { 0 };
	int rc;

	c->held = 0;
	if (e->seq <= *last) {
		log_debug("batch %s/%" PRIu64 " is applied already: moving %s to applied/",
			  src->name, e->seq, e->name);
		return c->o->dry_run ? TP_OK : applied_again(c, src, dir, e);
	}
	if (e->seq != *last + 1) {
		log_warn("waiting for batch %s/%" PRIu64 " (%s is there already)",
			 src->name, *last + 1, e->name);
		return TP_ETEMP;
	}
	strbuf_addf(&path, "%s/%s", dir, e->name);
	batch_job j = { src, path.buf, e->seq, false, true };
	apply_wait_reset();
	rc = apply_batch(c, &j);
	if (rc == TP_ETEMP && apply_wait_take(&c->wait))
		c->held = e->seq;
	strbuf_free(&path);
	if (rc != TP_OK)
		return rc;
	*last = c->load_last ? c->load_last : e->seq;   /* a load: its last part */
	c->load_last = 0;
	if (!c->o->dry_run)
		move_applied(dir, e->name);
	return TP_OK;
}

/* A load that never finished: skip its numbers (applyload.c). 1 if it did. */
static int inbox_void(apply_ctx *c, const tp_source *src, const char *dir,
		      const spool_entry *e, size_t n, uint64_t *last)
{
	char *key = NULL;
	load_apply la = { c->conn, c->eng, &c->lim, NULL, c->schema, src->name,
			  c->cfg->node_name, NULL, NULL, NULL };
	int skipped = 0;

	if (c->o->dry_run || apply_stop || source_key(src, &key) != TP_OK)
		return 0;
	la.key = key;
	skipped = load_void_skip(&la, dir, e, n, last);
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return skipped;
}

/*
 * Keep the hold record (hold.h) in step with this run of src: written
 * when its next batch waits for a schema change, with the since of an
 * earlier run held at the same batch; removed once the ledger has passed
 * that batch, or the stream ran on or failed for another reason. A run
 * that was interrupted, lost the database or waited for another cause
 * tells nothing new, and leaves it.
 */
static void hold_update(apply_ctx *c, const tp_source *src, int rc, uint64_t last)
{
	const char *spool = c->cfg->spool;
	time_t t = time(NULL);
	tp_hold old, now = { c->held, t, t, "", c->wait.reason };
	char path[PATH_MAX] = "held.json";
	int found = hold_read(spool, src->name, &old);
	bool over = rc == TP_OK || rc == TP_EDATA || rc == TP_EFAIL;

	hold_path(spool, src->name, path, sizeof path);
	if (c->held) {
		if (found == 1 && old.seq == now.seq && old.since)
			now.since = old.since;
		snprintf(now.sqlstate, sizeof now.sqlstate, "%s", c->wait.sqlstate);
		if (hold_write(spool, src->name, &now) < 0)
			log_warn("cannot record the wait in %s: %m", path);
	} else if (found != 0 && (old.seq <= last || over) && hold_remove(spool, src->name) < 0) {
		log_warn("cannot remove %s: %m", path);
	}
	hold_clear(&old);
}

static int apply_source(apply_ctx *c, const tp_source *src)
{
	strbuf dir = { 0 };
	spool_entry *list = NULL;
	size_t n = 0;
	uint64_t last;
	int rc, conflict = TP_OK;

	c->held = 0;
	if ((rc = ledger_read(c, src->name, &last)) != TP_OK)
		return rc;
	strbuf_addf(&dir, "%s/inbox/%s", c->cfg->spool, src->name);
	if (spool_list(dir.buf, false, &list, &n) < 0) {
		log_error("cannot list %s: %m", dir.buf);
		rc = TP_EFAIL;
	}
	for (size_t i = 0; i < n && rc == TP_OK; i++) {
		if (apply_stop)
			rc = TP_ETEMP;
		else if (list[i].seq <= last && !c->o->dry_run)
			/* a conflict under an old number does not hold the stream up */
			conflict = tp_exit_worse(conflict, applied_again(c, src, dir.buf, &list[i]));
		else
			rc = inbox_entry(c, src, dir.buf, &list[i], &last);
		while (rc == TP_ETEMP && inbox_void(c, src, dir.buf, &list[i], n - i, &last))
			rc = inbox_entry(c, src, dir.buf, &list[i], &last);
	}
	rc = tp_exit_worse(rc, conflict);
	if (!c->o->dry_run)
		hold_update(c, src, rc, last);
	spool_list_free(list, n);
	strbuf_free(&dir);
	return rc;
}

/* Every [source], in config order; one source's trouble stops only it. */
static int apply_sources(apply_ctx *c)
{
	int rc = TP_OK;

	for (size_t i = 0; i < c->cfg->nsources && !apply_stop; i++) {
		const tp_source *src = &c->cfg->sources[i];
		if (c->o->source && strcmp(c->o->source, src->name) != 0)
			continue;
		int one = apply_source(c, src);
		rc = tp_exit_worse(rc, one);
		if (one == TP_EUNAVAIL)     /* the database went away: stop */
			break;
	}
	return rc;
}

/* ---- file mode ---- */

static int apply_named(apply_ctx *c, const char *path)
{
	open_batch b = { .fd = -1 };
	const tp_source *src = NULL;
	uint64_t last;
	int rc = batch_open(c, &b, path, NULL);     /* header only: which source? */

	if (rc == TP_OK && !(src = config_source(c->cfg, b.h->source))) {
		log_error("%s: batch %s comes from a source %s has no [source] section for",
			  path, b.label, c->cfg->path);
		rc = TP_EDATA;
	} else if (rc == TP_OK && c->o->source && strcmp(c->o->source, src->name) != 0) {
		log_error("%s: batch %s is not from --source %s", path, b.label, c->o->source);
		rc = TP_EFAIL;
	}
	open_batch_close(&b);
	if (rc == TP_OK)
		rc = ledger_read(c, src->name, &last);
	if (rc == TP_OK) {
		batch_job j = { src, path, 0, c->o->force, false };
		rc = apply_batch(c, &j);
	}
	return rc;
}

static int apply_files(apply_ctx *c)
{
	int rc = TP_OK;

	for (size_t i = 0; i < c->o->nfiles && rc == TP_OK; i++)
		rc = apply_stop ? TP_ETEMP : apply_named(c, c->o->files[i]);
	return rc;
}

/* ---- the run ---- */

static int run_connected(apply_ctx *c)
{
	char *schema = c->schema = db_ident(c->conn, c->cfg->schema);
	int rc;

	ledger_sql(c, schema);
	rc = check_installed(c, schema);
	if (rc != TP_OK)
		return rc;
	batch_limits_default(&c->lim, (uint64_t)c->cfg->max_batch_bytes);
	c->eng = engine_new(c->conn, c->o->dry_run ? c->o->out : NULL);
	rc = c->o->nfiles ? apply_files(c) : apply_sources(c);
	if (apply_stop)
		rc = tp_exit_worse(rc, TP_ETEMP);
	return rc;
}

int apply_run(const tp_config *cfg, const apply_opts *o)
{
	apply_ctx c = { .cfg = cfg, .o = o };
	int rc;

	if (o->source && !config_source(cfg, o->source)) {
		log_error("--source %s: %s has no [source %s] section", o->source,
			  cfg->path, o->source);
		return TP_EUSAGE;
	}
	if (cfg->nsources == 0 && o->nfiles == 0) {
		log_info("%s has no [source] section: nothing to apply", cfg->path);
		return TP_OK;
	}
	if ((rc = lock_stage(cfg->spool, "tp-apply")) != TP_OK)
		return rc;
	if ((c.conn = db_connect(cfg->conninfo, &rc))) {
		apply_cancel = PQgetCancel(c.conn);
		rc = run_connected(&c);
	}
	if (apply_cancel) {
		/* the handler runs to its end before this goes on: no race */
		PGcancel *cancel = apply_cancel;

		apply_cancel = NULL;
		PQfreeCancel(cancel);
	}
	if (o->dry_run && o->out)
		fflush(o->out);
	ctx_clear(&c);
	return rc;
}
