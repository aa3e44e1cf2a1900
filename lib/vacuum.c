/*
 * vacuum.c - tp-vacuum's database work: event table rotation, and
 * pruning of batch records and the apply log (see vacuum.h).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "lock.h"
#include "log.h"
#include "outcome.h"
#include "spoolstat.h"
#include "strbuf.h"
#include "tp.h"
#include "vacuum.h"

/*
 * Fail fast instead of queueing behind the application: a lock we cannot
 * have within 2 s means "another time". No statement of ours should take
 * long, and an idle transaction must never hold the xmin horizon.
 */
static const char session_sql[] =
	"SELECT pg_catalog.set_config('lock_timeout', '2s', false),"
	" pg_catalog.set_config('statement_timeout', '5min', false),"
	" pg_catalog.set_config('idle_in_transaction_session_timeout', '1min', false)";

typedef struct vac {
	PGconn *conn;
	const tp_config *cfg;
	const vacuum_opts *o;
	char *schema;           /* quoted */
	char retention[24];     /* seconds, as a parameter */
	int rotated;            /* the table made current, or -1 */
	uint64_t batches, logs, files;
} vac;

long vacuum_rotate_interval(const tp_config *cfg)
{
	long r = cfg->retention / 10;

	if (cfg->rotate_interval >= 0)
		return cfg->rotate_interval;
	return r < VACUUM_ROTATE_CAP ? r : VACUUM_ROTATE_CAP;
}

/*
 * Lock the queue row; *cur is the current table, *due whether it has been
 * current long enough. TP_OK or exit code (transaction open either way).
 */
static int rotate_begin(vac *v, int *cur, int *due)
{
	char secs[24];
	const char *params[1] = { secs };
	strbuf sql = { 0 };
	int rc = db_exec(v->conn, "starting a transaction", "BEGIN");

	if (rc != TP_OK)
		return rc;
	snprintf(secs, sizeof secs, "%ld", v->o->rotate_now ? 0L : vacuum_rotate_interval(v->cfg));
	strbuf_addf(&sql, "SELECT cur, switched <= pg_catalog.now()"
		    " - pg_catalog.make_interval(secs => $1::double precision)"
		    " FROM %s.queue FOR UPDATE", v->schema);
	PGresult *res = db_query(v->conn, "locking the queue", sql.buf, 1, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	if (PQntuples(res) != 1) {
		log_error("the capture schema %s has no queue row", v->schema);
		log_hint("run tp-install -c %s", v->cfg->path);
		PQclear(res);
		return TP_ECONFIG;
	}
	*cur = atoi(PQgetvalue(res, 0, 0));
	*due = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	return TP_OK;
}

/*
 * ACCESS EXCLUSIVE on event_<next> within lock_timeout: 1 granted, 0 busy
 * (a writer or reader is in it: postpone), or -exit code.
 */
static int rotate_lock(vac *v, int next)
{
	strbuf sql = { 0 };

	strbuf_addf(&sql, "LOCK TABLE %s.event_%d IN ACCESS EXCLUSIVE MODE", v->schema, next);
	PGresult *res = PQexec(v->conn, sql.buf);      /* not db_query: busy is no error */
	strbuf_free(&sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	int busy = !ok && strcmp(db_sqlstate(res), "55P03") == 0;
	int rc = ok || busy ? TP_OK : db_report(v->conn, res, "locking an event table");
	PQclear(res);
	if (rc != TP_OK)
		return -rc;
	return ok;
}

/*
 * Who still needs event_<next>: a target with a planned, unwritten batch
 * (it is rebuilt from events), or one whose last snapshot does not show
 * some event's transaction (not batched yet). The first such target's
 * name into who (empty: drained). TP_OK or exit code.
 */
static int rotate_blocker(vac *v, int next, char *who, size_t len)
{
	strbuf sql = { 0 };
	int rc;

	strbuf_addf(&sql,
		"SELECT target FROM %s.batch WHERE written IS NULL"
		" UNION ALL"
		" SELECT t.name FROM %s.target t WHERE EXISTS (SELECT 1 FROM %s.event_%d e"
		"   WHERE e.ev_txid >= pg_catalog.pg_snapshot_xmin(t.last_snap)"
		"   AND NOT pg_catalog.pg_visible_in_snapshot(e.ev_txid, t.last_snap))"
		" LIMIT 1", v->schema, v->schema, v->schema, next);
	PGresult *res = db_query(v->conn, "checking that an event table is drained",
				 sql.buf, 0, NULL, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	snprintf(who, len, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return TP_OK;
}

static int rotate_switch(vac *v, int next)
{
	char n[8];
	const char *params[1] = { n };
	strbuf sql = { 0 };

	snprintf(n, sizeof n, "%d", next);
	strbuf_addf(&sql, "TRUNCATE %s.event_%d", v->schema, next);
	int rc = db_exec(v->conn, "truncating a drained event table", sql.buf);
	strbuf_reset(&sql);
	strbuf_addf(&sql, "UPDATE %s.queue SET cur = $1, switched = pg_catalog.now()", v->schema);
	if (rc == TP_OK)
		rc = db_execp(v->conn, "switching writers to the next event table", sql.buf, 1, params);
	strbuf_free(&sql);
	return rc;
}

/* One rotation step, all in one short transaction. */
static int rotate(vac *v)
{
	int cur = 0, due = 0, got = 0, rc = rotate_begin(v, &cur, &due);
	int next = (cur + 1) % 3;
	char who[128] = "";

	if (rc == TP_OK && !due)
		log_debug("rotation not due: event_%d is current since less than %lds",
			  cur, vacuum_rotate_interval(v->cfg));
	if (rc == TP_OK && due) {
		got = rotate_lock(v, next);
		if (got < 0)
			rc = -got;
		else if (got == 0)
			log_debug("rotation postponed: event_%d is in use (lock not granted)", next);
	}
	if (rc == TP_OK && got == 1)
		rc = rotate_blocker(v, next, who, sizeof who);
	if (rc == TP_OK && got == 1 && *who)
		log_info("rotation postponed: target %s still needs event_%d", who, next);
	if (rc == TP_OK && got == 1 && !*who && (rc = rotate_switch(v, next)) == TP_OK)
		v->rotated = next;
	int end = db_exec(v->conn, "ending the transaction",
			  rc == TP_OK && v->rotated >= 0 ? "COMMIT" : "ROLLBACK");
	if (rc == TP_OK && end == TP_OK && v->rotated >= 0)
		log_info("rotated: event_%d truncated, writers use it now", next);
	if (end != TP_OK)
		v->rotated = -1;
	return tp_exit_worse(rc, end);
}

/*
 * Run a chunked DELETE (one autocommitted statement of at most
 * VACUUM_CHUNK rows each) until one deletes less than a chunk; `what`
 * names the rows for the log ("batch records of target x").
 */
static int delete_chunks(vac *v, const char *what, const char *sql,
			 int nparams, const char *const *params, uint64_t *count)
{
	char doing[160];
	int rc = TP_OK;
	long n;

	snprintf(doing, sizeof doing, "deleting %s", what);
	do {
		PGresult *res = db_query(v->conn, doing, sql, nparams, params, &rc);
		if (!res)
			return rc;
		n = atol(PQcmdTuples(res));
		*count += (uint64_t)n;
		PQclear(res);
		if (n > 0)
			log_debug("deleted %ld %s", n, what);
	} while (n >= VACUUM_CHUNK);
	return rc;
}

/*
 * The lowest batch number of target whose row must stay: not older than
 * retention, not written, its file still unsent in the outbox, or the
 * newest. The database is read before the outbox: a row marked written
 * has its file in place already, so the listing cannot miss it.
 */
static int batch_bound(vac *v, const char *target, uint64_t *bound)
{
	const char *params[2] = { target, v->retention };
	char dir[PATH_MAX];
	strbuf sql = { 0 };
	spool_stat st;
	int rc;

	strbuf_addf(&sql, "SELECT coalesce(max(seq) FILTER (WHERE written IS NOT NULL AND created <"
		    "   pg_catalog.now() - pg_catalog.make_interval(secs => $2::double precision)), 0) + 1,"
		    " coalesce(min(seq) FILTER (WHERE written IS NULL), 0), coalesce(max(seq), 0)"
		    " FROM %s.batch WHERE target = $1", v->schema);
	PGresult *res = db_query(v->conn, "reading batch records", sql.buf, 2, params, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	uint64_t old_end = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	uint64_t unwritten = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	uint64_t newest = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	*bound = old_end < newest ? old_end : newest;
	if (unwritten && unwritten < *bound)
		*bound = unwritten;
	snprintf(dir, sizeof dir, "%s/outbox/%s", v->cfg->spool, target);
	if (spool_stat_dir(dir, &st) < 0) {
		log_error("cannot read %s: %m", dir);
		return TP_EFAIL;
	}
	if (st.n && st.min < *bound)
		*bound = st.min;
	return TP_OK;
}

static int prune_target_batches(vac *v, const char *target)
{
	char bound[24];
	const char *params[3] = { target, bound, v->retention };
	strbuf sql = { 0 };
	uint64_t b = 0;
	int rc;

	if (!config_name_valid(target))
		return TP_OK;   /* no outbox can be named after it: keep its rows */
	if ((rc = batch_bound(v, target, &b)) != TP_OK || b <= 1)
		return rc;
	snprintf(bound, sizeof bound, "%" PRIu64, b);
	strbuf_addf(&sql, "DELETE FROM %s.batch WHERE target = $1 AND seq IN"
		    " (SELECT seq FROM %s.batch WHERE target = $1 AND seq < $2"
		    "  AND written IS NOT NULL AND created < pg_catalog.now()"
		    "   - pg_catalog.make_interval(secs => $3::double precision)"
		    "  ORDER BY seq LIMIT %d)", v->schema, v->schema, VACUUM_CHUNK);
	char what[128];
	snprintf(what, sizeof what, "batch records of target %s", target);
	rc = delete_chunks(v, what, sql.buf, 3, params, &v->batches);
	strbuf_free(&sql);
	return rc;
}

/* Every target the database knows, configured or not (a dropped one too). */
static int prune_batches(vac *v)
{
	strbuf sql = { 0 };
	int rc;

	strbuf_addf(&sql, "SELECT name FROM %s.target ORDER BY name", v->schema);
	PGresult *res = db_query(v->conn, "reading targets", sql.buf, 0, NULL, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	for (int i = 0; i < PQntuples(res); i++)
		rc = tp_exit_worse(rc, prune_target_batches(v, PQgetvalue(res, i, 0)));
	PQclear(res);
	return rc;
}

/* The apply log past retention, but always each source's newest line. */
static int prune_apply_log(vac *v)
{
	const char *params[1] = { v->retention };
	strbuf sql = { 0 };

	strbuf_addf(&sql, "DELETE FROM %s.apply_log WHERE (source, seq) IN"
		    " (SELECT l.source, l.seq FROM %s.apply_log l"
		    "  WHERE l.applied_at < pg_catalog.now()"
		    "   - pg_catalog.make_interval(secs => $1::double precision)"
		    "  AND l.seq < (SELECT max(m.seq) FROM %s.apply_log m WHERE m.source = l.source)"
		    "  LIMIT %d)", v->schema, v->schema, v->schema, VACUUM_CHUNK);
	int rc = delete_chunks(v, "apply log lines", sql.buf, 1, params, &v->logs);
	strbuf_free(&sql);
	return rc;
}

static int vacuum_db(vac *v)
{
	int rc = db_exec(v->conn, "setting timeouts", session_sql);

	if (rc != TP_OK)
		return rc;
	if (v->cfg->ntargets > 0) {
		rc = rotate(v);
		rc = tp_exit_worse(rc, prune_batches(v));
	}
	if (v->cfg->nsources > 0)
		rc = tp_exit_worse(rc, prune_apply_log(v));
	return rc;
}

int vacuum_run(const tp_config *cfg, const vacuum_opts *o)
{
	vac v = { .cfg = cfg, .o = o, .rotated = -1 };
	int rc = lock_stage(cfg->spool, "tp-vacuum");

	if (rc != TP_OK)
		return rc;
	snprintf(v.retention, sizeof v.retention, "%ld", cfg->retention);
	rc = vacuum_spool(cfg, &v.files);
	if (cfg->ntargets > 0 || cfg->nsources > 0) {
		int crc;
		v.conn = db_connect(cfg->conninfo, &crc);
		if (v.conn) {
			v.schema = db_ident(v.conn, cfg->schema);
			crc = vacuum_db(&v);
		}
		rc = tp_exit_worse(rc, crc);
	}
	char rot[32] = "no rotation";
	if (v.rotated >= 0)
		snprintf(rot, sizeof rot, "rotated to event_%d", v.rotated);
	outcome_note("%s; deleted %" PRIu64 " batch records, %" PRIu64
		     " apply log lines, %" PRIu64 " files", rot, v.batches, v.logs, v.files);
	log_info("%s; deleted %" PRIu64 " batch records, %" PRIu64 " apply log lines, %"
		 PRIu64 " files", rot, v.batches, v.logs, v.files);
	free(v.schema);
	db_close(v.conn);
	return rc;
}
