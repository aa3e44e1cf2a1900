/*
 * status.c - tp-status's facts: gathered from the database, the spool and
 * the outcome records, then judged against max_lag (see status.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "db.h"
#include "hold.h"
#include "log.h"
#include "spool.h"
#include "spoolstat.h"
#include "status.h"
#include "strbuf.h"
#include "tp.h"

typedef struct collector {
	status *st;
	const tp_config *cfg;
	PGconn *conn;
	char *schema;             /* quoted */
} collector;

static void add_problem(status *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_problem(status *st, const char *fmt, ...)
{
	strbuf sb = { 0 };
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	strbuf_adds(&sb, line);
	st->problems = xrealloc(st->problems, (st->nproblems + 1) * sizeof *st->problems);
	st->problems[st->nproblems++] = strbuf_detach(&sb);
}

static st_target *target_slot(status *st, const char *name)
{
	for (size_t i = 0; i < st->ntargets; i++)
		if (!strcmp(st->targets[i].name, name))
			return &st->targets[i];
	st->targets = xrealloc(st->targets, (st->ntargets + 1) * sizeof *st->targets);
	st_target *t = &st->targets[st->ntargets++];
	memset(t, 0, sizeof *t);
	t->name = xstrdup(name);
	return t;
}

/* ---- source side -------------------------------------------------------- */

/*
 * The committed events no batch of t holds yet: not visible in its last
 * snapshot (an open transaction's are not visible to us either), counted
 * only for tables its globs match.
 */
static int target_backlog(collector *c, st_target *t)
{
	const tp_target *conf = config_target(c->cfg, t->name);
	const char *params[1] = { t->name };
	strbuf sql = { 0 };
	int rc;

	strbuf_addf(&sql, "SELECT e.ev_schema, e.ev_table, count(*),"
		    " sum(coalesce(pg_catalog.octet_length(e.ev_old), 0)"
		    "     + coalesce(pg_catalog.octet_length(e.ev_new), 0)),"
		    " pg_catalog.floor(EXTRACT(epoch FROM min(e.ev_time)))::bigint"
		    " FROM %s.event e, %s.target t WHERE t.name = $1"
		    " AND e.ev_txid >= pg_catalog.pg_snapshot_xmin(t.last_snap)"
		    " AND NOT pg_catalog.pg_visible_in_snapshot(e.ev_txid, t.last_snap)"
		    " GROUP BY 1, 2", c->schema, c->schema);
	PGresult *res = db_query(c->conn, "reading a target's backlog", sql.buf, 1, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	for (int i = 0; i < PQntuples(res); i++) {
		if (conf && !target_matches(conf, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1)))
			continue;
		time_t oldest = (time_t)strtoll(PQgetvalue(res, i, 4), NULL, 10);
		t->backlog_events += strtoll(PQgetvalue(res, i, 2), NULL, 10);
		t->backlog_bytes += strtoll(PQgetvalue(res, i, 3), NULL, 10);
		if (!t->oldest_backlog || oldest < t->oldest_backlog)
			t->oldest_backlog = oldest;
	}
	PQclear(res);
	return TP_OK;
}

/*
 * Every target the database knows: its position, and the first unwritten
 * batch (batches are written in order, so all below it are written).
 */
static int collect_positions(collector *c)
{
	strbuf sql = { 0 };
	int rc;

	strbuf_addf(&sql, "SELECT t.name, t.last_seq,"
		    " (SELECT min(b.seq) FROM %s.batch b WHERE b.target = t.name AND b.written IS NULL),"
		    " (SELECT pg_catalog.floor(EXTRACT(epoch FROM b.created))::bigint FROM %s.batch b"
		    "   WHERE b.target = t.name AND b.seq = t.last_seq)"
		    " FROM %s.target t ORDER BY t.name", c->schema, c->schema, c->schema);
	PGresult *res = db_query(c->conn, "reading targets", sql.buf, 0, NULL, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	for (int i = 0; i < PQntuples(res); i++) {
		st_target *t = target_slot(c->st, PQgetvalue(res, i, 0));
		t->installed = true;
		t->last_seq = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		t->written = PQgetisnull(res, i, 2) ? t->last_seq
			     : strtoll(PQgetvalue(res, i, 2), NULL, 10) - 1;
		t->last_cut = (time_t)strtoll(PQgetvalue(res, i, 3), NULL, 10);
		if ((rc = target_backlog(c, t)) != TP_OK)
			break;
	}
	PQclear(res);
	return rc;
}

/*
 * What the outbox says. tp-send ships in order and stops at the first
 * failure, so everything below the oldest unsent file was sent; sent/
 * files may be vacuumed already.
 */
static void target_spool(collector *c, st_target *t)
{
	char dir[PATH_MAX];
	spool_stat out, sent;

	snprintf(dir, sizeof dir, "%s/outbox/%s", c->cfg->spool, t->name);
	if (spool_stat_dir(dir, &out) < 0)
		log_warn("cannot read %s: %m", dir);
	snprintf(dir, sizeof dir, "%s/outbox/%s/sent", c->cfg->spool, t->name);
	if (spool_stat_dir(dir, &sent) < 0)
		log_warn("cannot read %s: %m", dir);
	t->unsent = out.n;
	t->unsent_bytes = out.bytes;
	t->oldest_unsent = out.oldest;
	if (out.n)
		t->sent = (int64_t)out.min - 1;
	else
		t->sent = (int64_t)sent.max > t->written ? (int64_t)sent.max : t->written;
	time_t oldest = t->oldest_backlog;
	if (out.n && (!oldest || out.oldest < oldest))
		oldest = out.oldest;
	t->lag = oldest && oldest < c->st->now ? (double)(c->st->now - oldest) : 0;
}

static int collect_targets(collector *c)
{
	int rc = TP_OK;

	for (size_t i = 0; i < c->cfg->ntargets; i++)
		target_slot(c->st, c->cfg->targets[i].name)->configured = true;
	if (c->conn)
		rc = collect_positions(c);
	for (size_t i = 0; i < c->st->ntargets; i++)
		if (config_name_valid(c->st->targets[i].name))
			target_spool(c, &c->st->targets[i]);
	return rc;
}

/* ---- target side -------------------------------------------------------- */

/* When batch seq in dir was cut, from its header.json; 0 if unreadable. */
static time_t header_created(const tp_config *cfg, const char *dir, uint64_t seq)
{
	static const char *const exts[] = { ".tar.zst", ".tar.gz", ".tar" };
	char name[64], path[PATH_MAX];
	time_t t = 0;

	for (size_t i = 0; i < sizeof exts / sizeof exts[0] && !t; i++) {
		spool_batch_name(name, sizeof name, seq, exts[i]);
		if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
			return 0;
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			continue;
		batch_limits lim;
		const batch_header *h;
		batch_limits_default(&lim, (uint64_t)cfg->max_batch_bytes);
		/* no key: only the header is read, and it decides nothing */
		batch_reader *r = batch_reader_new(fd, &lim, NULL, 0);
		if (r && batch_reader_header(r, &h) == 0)
			t = tp_time_parse(h->created);
		batch_reader_free(r);
		close(fd);
	}
	return t;
}

/*
 * When the last applied batch was cut: apply_log.batch_created where
 * tp-apply recorded it (read through to_jsonb, so that a ledger from
 * before that column still answers), else the applied file's header.
 */
static time_t applied_created(collector *c, const st_source *s, const char *dir)
{
	char seq[24];
	const char *params[2] = { s->name, seq };
	strbuf sql = { 0 };
	time_t t = 0;
	int rc;

	snprintf(seq, sizeof seq, "%" PRId64, s->applied);
	strbuf_addf(&sql, "SELECT pg_catalog.floor(EXTRACT(epoch FROM"
		    " (pg_catalog.to_jsonb(l) ->> 'batch_created')::timestamptz))::bigint"
		    " FROM %s.apply_log l WHERE l.source = $1 AND l.seq = $2", c->schema);
	PGresult *res = db_query(c->conn, "reading the apply log", sql.buf, 2, params, &rc);
	strbuf_free(&sql);
	if (res && PQntuples(res) == 1)
		t = (time_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (!t) {
		char applied[PATH_MAX];
		if (snprintf(applied, sizeof applied, "%s/applied", dir) < (int)sizeof applied)
			t = header_created(c->cfg, applied, (uint64_t)s->applied);
	}
	return t;
}

static int source_ledger(collector *c, st_source *s)
{
	const char *params[1] = { s->name };
	strbuf sql = { 0 };
	int rc;

	strbuf_addf(&sql, "SELECT seq, pg_catalog.floor(EXTRACT(epoch FROM applied_at))::bigint"
		    " FROM %s.applied WHERE source = $1", c->schema);
	PGresult *res = db_query(c->conn, "reading the ledger", sql.buf, 1, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	if (PQntuples(res) == 1) {
		s->applied = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		s->applied_at = (time_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	return TP_OK;
}

/*
 * Lag: with batches waiting, how long ago the oldest was cut; else how
 * long the last applied one took from cut to apply.
 */
static void source_lag(collector *c, st_source *s, const char *dir, uint64_t oldest)
{
	time_t created = 0;

	if (s->waiting) {
		created = header_created(c->cfg, dir, oldest);
		if (created) {
			s->lag = created < c->st->now ? (double)(c->st->now - created) : 0;
			s->lag_known = true;
		}
	} else if (s->applied > 0 && c->conn) {
		created = applied_created(c, s, dir);
		if (created) {
			s->lag = created < s->applied_at ? (double)(s->applied_at - created) : 0;
			s->lag_known = true;
		}
	} else if (s->applied == 0 && c->conn) {
		s->lag_known = true;    /* nothing received, nothing behind */
	}
}

/*
 * tp-apply's record of a batch held for a schema change. One the ledger
 * has passed is stale (the batch was applied by hand, say): no wait.
 */
static void source_hold(collector *c, st_source *s)
{
	tp_hold h;
	int found = hold_read(c->cfg->spool, s->name, &h);

	if (found < 0)
		log_warn("cannot read the hold record of source %s: %m", s->name);
	if (found == 1 && (int64_t)h.seq > s->applied) {
		s->ddl_waiting = (int64_t)h.seq;
		s->ddl_since = h.since;
		s->ddl_seconds = h.since && h.since < c->st->now ? (double)(c->st->now - h.since) : 0;
		snprintf(s->ddl_sqlstate, sizeof s->ddl_sqlstate, "%s", h.sqlstate);
		s->ddl_reason = h.reason;
		h.reason = NULL;
	}
	hold_clear(&h);
}

static int collect_source(collector *c, st_source *s)
{
	char dir[PATH_MAX], applied[PATH_MAX];
	spool_stat in, done;
	int rc = c->conn ? source_ledger(c, s) : TP_OK;

	if (snprintf(dir, sizeof dir, "%s/inbox/%s", c->cfg->spool, s->name) >= (int)sizeof dir ||
	    snprintf(applied, sizeof applied, "%s/inbox/%s/applied", c->cfg->spool, s->name)
	    >= (int)sizeof applied)
		return rc;      /* no such path: the spool setting is absurd */
	if (spool_stat_dir(dir, &in) < 0)
		log_warn("cannot read %s: %m", dir);
	if (spool_stat_dir(applied, &done) < 0)
		log_warn("cannot read %s: %m", applied);
	s->waiting = in.n;
	s->received = (int64_t)(in.max > done.max ? in.max : done.max);
	if (s->applied > s->received)
		s->received = s->applied;
	if (rc == TP_OK)
		source_lag(c, s, dir, in.min);
	source_hold(c, s);
	return rc;
}

static int collect_sources(collector *c)
{
	int rc = TP_OK;

	c->st->sources = xcalloc(c->cfg->nsources + 1, sizeof *c->st->sources);
	for (size_t i = 0; i < c->cfg->nsources && rc == TP_OK; i++) {
		st_source *s = &c->st->sources[c->st->nsources++];
		s->name = xstrdup(c->cfg->sources[i].name);
		rc = collect_source(c, s);
	}
	return rc;
}

/* ---- outcome records ---------------------------------------------------- */

static int cmd_cmp(const void *a, const void *b)
{
	return strcmp(((const outcome *)a)->command, ((const outcome *)b)->command);
}

/* <spool>/state/<command>.json, each read once; unreadable ones skipped. */
static void collect_outcomes(collector *c)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	status *st = c->st;

	snprintf(dir, sizeof dir, "%s/state", c->cfg->spool);
	DIR *d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		outcome o;
		if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".json") ||
		    snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path ||
		    outcome_read(path, &o) < 0)
			continue;
		st->cmds = xrealloc(st->cmds, (st->ncmds + 1) * sizeof *st->cmds);
		st->cmds[st->ncmds++] = o;
	}
	closedir(d);
	if (st->ncmds > 1)
		qsort(st->cmds, st->ncmds, sizeof *st->cmds, cmd_cmp);
}

/* ---- judgment ----------------------------------------------------------- */

/* A stream held for a schema change is lag too, whatever its batches' age. */
static void judge_source(status *st, const st_source *s)
{
	const long max = st->cfg->max_lag;

	if (s->lag_known && s->lag > (double)max)
		add_problem(st, "source %s: lag %.0fs exceeds max_lag %lds", s->name, s->lag, max);
	if (s->ddl_waiting && s->ddl_seconds > (double)max)
		add_problem(st, "source %s: batch %" PRId64 " has waited %.0fs for a schema change,"
			    " more than max_lag %lds: %s", s->name, s->ddl_waiting, s->ddl_seconds,
			    max, s->ddl_reason ? s->ddl_reason : s->ddl_sqlstate);
}

/*
 * Unhealthy: a lag beyond max_lag; a batch held for a schema change for
 * longer than max_lag; a command whose last run failed; a command that
 * keeps exiting 75 (locked, not ready) for longer than max_lag.
 * tp-status's own record is no evidence: its exit 1 would otherwise feed
 * itself.
 */
static void judge(status *st)
{
	const long max = st->cfg->max_lag;

	if (!st->db_up)
		add_problem(st, "database unreachable");
	for (size_t i = 0; i < st->ntargets; i++)
		if (st->targets[i].lag > (double)max)
			add_problem(st, "target %s: lag %.0fs exceeds max_lag %lds",
				    st->targets[i].name, st->targets[i].lag, max);
	for (size_t i = 0; i < st->nsources; i++)
		judge_source(st, &st->sources[i]);
	for (size_t i = 0; i < st->ncmds; i++) {
		const outcome *o = &st->cmds[i];
		bool lingering = o->exit == TP_ETEMP && o->error_since &&
				 st->now - o->error_since > max;
		if (!strcmp(o->command, "tp-status") || o->exit == 0 ||
		    (o->exit == TP_ETEMP && !lingering))
			continue;
		add_problem(st, "%s: exit %d: %s", o->command, o->exit,
			    o->error ? o->error : "failed");
	}
}

int status_collect(const tp_config *cfg, status *st)
{
	collector c = { st, cfg, NULL, NULL };
	int rc = TP_OK, crc;

	memset(st, 0, sizeof *st);
	st->cfg = cfg;
	st->now = time(NULL);
	c.conn = db_connect(cfg->conninfo, &crc);
	st->db_up = c.conn != NULL;
	if (c.conn)
		c.schema = db_ident(c.conn, cfg->schema);
	else
		rc = crc;
	if (cfg->ntargets > 0)
		rc = tp_exit_worse(rc, collect_targets(&c));
	if (cfg->nsources > 0)
		rc = tp_exit_worse(rc, collect_sources(&c));
	collect_outcomes(&c);
	if (rc != TP_OK && st->db_up)
		add_problem(st, "%s", log_last_error());
	judge(st);
	free(c.schema);
	db_close(c.conn);
	return rc;
}

void status_free(status *st)
{
	for (size_t i = 0; i < st->ntargets; i++)
		free(st->targets[i].name);
	for (size_t i = 0; i < st->nsources; i++) {
		free(st->sources[i].name);
		free(st->sources[i].ddl_reason);
	}
	for (size_t i = 0; i < st->ncmds; i++)
		outcome_clear(&st->cmds[i]);
	for (size_t i = 0; i < st->nproblems; i++)
		free(st->problems[i]);
	free(st->targets);
	free(st->sources);
	free(st->cmds);
	free(st->problems);
	memset(st, 0, sizeof *st);
}
