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
		    " pg_catalog.extract(epoch FROM min(e.ev_time))::bigint"
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
		    " (SELECT pg_catalog.extract(epoch FROM b.created)::bigint FROM %s.batch b"
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
