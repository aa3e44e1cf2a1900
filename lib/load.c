/*
 * load.c - tp-load: connections, the tables to load, the hand-over to the
 * change stream (see load.h), and the COPY of each table into parts
 * (loadpart.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batcher_int.h"
#include "copytext.h"
#include "db.h"
#include "ddl.h"
#include "filecopy.h"
#include "load_int.h"
#include "lock.h"
#include "log.h"
#include "spool.h"
#include "tp.h"

/* ---- setup ---- */

/* The capture objects and the target's row must be there: 78 otherwise. */
static int check_installed(load_ctx *lc)
{
	const char *params[2] = { lc->cfg->schema, lc->target->name };
	strbuf sql = { 0 };
	PGresult *res;
	int rc;

	res = db_query(lc->c, "looking for the capture schema",
		       "SELECT pg_catalog.to_regclass(pg_catalog.quote_ident($1) || '.load_reserve')"
		       " IS NOT NULL", 1, params, &rc);
	if (res && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		PQclear(res);
		strbuf_addf(&sql, "SELECT 1 FROM %s.target WHERE name = $1", lc->schema);
		res = db_query(lc->c, "looking for the target", sql.buf, 1, params + 1, &rc);
		strbuf_free(&sql);
	} else if (res) {
		PQclear(res);
		res = NULL;
		rc = TP_ECONFIG;
	}
	if (res && PQntuples(res) == 0)
		rc = TP_ECONFIG;
	PQclear(res);
	if (rc == TP_ECONFIG) {
		log_error("target %s is not installed in schema %s: capture must run before a load",
			  lc->target->name, lc->cfg->schema);
		log_hint("run tp-install -c %s first", lc->cfg->path);
	}
	return rc;
}

/* The row C updates for each part; made before B locks anything. */
static int reserve_row(load_ctx *lc)
{
	const char *params[1] = { lc->target->name };
	strbuf sql = { 0 };
	int rc;

	strbuf_addf(&sql, "INSERT INTO %s.load_reserve (target, seq) VALUES ($1, 0)"
		    " ON CONFLICT (target) DO NOTHING", lc->schema);
	rc = db_execp(lc->c, "preparing number reservations", sql.buf, 1, params);
	strbuf_free(&sql);
	return rc;
}

static int outbox_prepare(load_ctx *lc)
{
	char err[512];

	snprintf(lc->dir, sizeof(lc->dir), "%s/outbox/%s", lc->cfg->spool, lc->target->name);
	if (spool_mkdirs(lc->dir) < 0) {
		log_error("outbox %s: %s", lc->dir, strerror(errno));
		return TP_EFAIL;
	}
	fc_clean_tmp(lc->dir, "tp-load");       /* a killed run's; we hold the lock */
	if (lc->target->token_file && !(lc->key = token_read(lc->target->token_file, err, sizeof(err)))) {
		log_error("target %s: %s", lc->target->name, err);
		return TP_ECONFIG;
	}
	return TP_OK;
}

/* A is the copy: one snapshot, S, for every table. */
static int snapshot_take(load_ctx *lc)
{
	PGresult *res;
	int rc = db_exec(lc->a, "starting the load's transaction",
			 "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");

	if (rc != TP_OK)
		return rc;
	res = db_query(lc->a, "taking the load's snapshot",
		       "SELECT s::text, pg_catalog.pg_snapshot_xmin(s)::text || '-' ||"
		       "  pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS'),"
		       " pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC',"
		       "  'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
		       " FROM pg_catalog.pg_current_snapshot() s", 0, NULL, &rc);
	if (!res)
		return rc;
	lc->snap = xstrdup(PQgetvalue(res, 0, 0));
	lc->load_id = xstrdup(PQgetvalue(res, 0, 1));
	lc->created = xstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);
	return TP_OK;
}

/*
 * The schema part: every object the target replicates, described in S,
 * as the schema changes that create it from nothing (ddl.h). The target
 * creates what it lacks and skips what it has (tables and columns IF NOT
 * EXISTS, types, keys, constraints and indexes found by name).
 */
static int schema_part(load_ctx *lc)
{
	ddl_cat empty = { 0 }, *c;
	char *text = NULL;
	int rc;

	if (lc->o->no_schema)
		return TP_OK;
	rc = ddl_describe(lc->a, lc->cfg, lc->target, &text);
	if (rc != TP_OK)
		return rc;
	if (!(c = ddl_cat_parse(text))) {
		log_error("load of %s: the catalog description is malformed", lc->target->name);
		free(text);
		return TP_EFAIL;
	}
	ddl_diff(&empty, c, &lc->schema_pre, &lc->schema_post);
	ddl_cat_free(c);
	free(text);
	return TP_OK;
}

/* ---- the tables ---- */

static PGresult *tables_query(load_ctx *lc, int *rc)
{
	strbuf sql = { 0 }, fn = { 0 };
	const char *params[3] = { NULL, lc->target->name, lc->cfg->schema };
	PGresult *res;

	strbuf_addf(&fn, "%s.capture()", lc->schema);
	params[0] = fn.buf;
	/* partitions come with their parent, as tp-install's triggers do */
	strbuf_addf(&sql,
		"SELECT n.nspname, c.relname, c.oid, c.relkind, GREATEST(c.reltuples, 0),"
		"  EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid"
		"          AND g.tgfoid = pg_catalog.to_regprocedure($1) AND (g.tgtype & 1) = 1),"
		"  (SELECT l.load_id FROM %s.loaded l WHERE l.target = $2"
		"   AND l.table_schema = n.nspname AND l.table_name = c.relname)"
		" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		" WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
		"   AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast', $3])"
		"   AND n.nspname NOT LIKE 'pg\\_temp\\_%%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'"
		" ORDER BY 1, 2", lc->schema);
	res = db_query(lc->a, "listing tables", sql.buf, 3, params, rc);
	strbuf_free(&sql);
	strbuf_free(&fn);
	return res;
}

/* Was schema.name named on the command line? Marks the name as found. */
static bool named(const load_opts *o, bool *found, const char *schema, const char *name)
{
	size_t sl = strlen(schema);

	if (o->ntables == 0)
		return true;
	for (size_t i = 0; i < o->ntables; i++) {
		const char *a = o->tables[i];
		if (strncmp(a, schema, sl) == 0 && a[sl] == '.' && strcmp(a + sl + 1, name) == 0)
			return found[i] = true;
	}
	return false;
}

static void table_add(load_ctx *lc, PGresult *res, int i)
{
	load_table *t;

	lc->t = xrealloc(lc->t, (lc->nt + 1) * sizeof(*lc->t));
	t = &lc->t[lc->nt];
	memset(t, 0, sizeof(*t));
	t->schema = xstrdup(PQgetvalue(res, i, 0));
	t->name = xstrdup(PQgetvalue(res, i, 1));
	t->tid = (unsigned)++lc->nt;
	t->est_rows = strtod(PQgetvalue(res, i, 4), NULL);
	strbuf_addf(&t->defline, "%s.%s", t->schema, t->name);
	t->display = strbuf_detach(&t->defline);
	t->oid = xstrdup(PQgetvalue(res, i, 2));
	t->relkind = *PQgetvalue(res, i, 3);
}

/* One catalog row: load it, skip it, or refuse the run (-1 with *rc). */
static int table_consider(load_ctx *lc, PGresult *res, int i, bool *found, int *rc)
{
	const char *s = PQgetvalue(res, i, 0), *n = PQgetvalue(res, i, 1);

	if (!target_matches(lc->target, s, n) || !named(lc->o, found, s, n))
		return 0;
	if (*PQgetvalue(res, i, 5) != 't') {
		log_error("table %s.%s has no capture trigger: its changes would be lost", s, n);
		log_hint("run tp-install -c %s first", lc->cfg->path);
		*rc = TP_ECONFIG;
		return -1;
	}
	if (!PQgetisnull(res, i, 6) && !lc->o->fresh) {
		log_info("table %s.%s: loaded already (load %s); --fresh loads it again", s, n,
			 PQgetvalue(res, i, 6));
		return 0;
	}
	table_add(lc, res, i);
	return 0;
}

static int tables_find(load_ctx *lc)
{
	bool *found = xcalloc(lc->o->ntables + 1, sizeof(bool));
	int rc = TP_OK, i;
	PGresult *res = tables_query(lc, &rc);

	for (i = 0; res && i < PQntuples(res) && rc == TP_OK; i++)
		table_consider(lc, res, i, found, &rc);
	for (size_t k = 0; res && rc == TP_OK && k < lc->o->ntables; k++) {
		if (!found[k]) {
			log_error("table %s: no such table among those target %s replicates",
				  lc->o->tables[k], lc->target->name);
			rc = TP_EUSAGE;
		}
	}
	PQclear(res);
	free(found);
	return rc;
}

/*
 * Order the tables so that a table comes after those its foreign keys
 * reference: the target checks each COPY's keys as it ends. Cycles keep
 * their catalog order (and need deferrable keys on the target).
 */
static int tables_order(load_ctx *lc)
{
	strbuf oids = { 0 };
	const char *params[1];
	PGresult *res;
	int rc;
	size_t done = 0;

	for (size_t i = 0; i < lc->nt; i++)
		db_array_add(&oids, lc->t[i].oid);
	strbuf_adds(&oids, "}");
	params[0] = oids.buf;
	res = db_query(lc->a, "reading foreign keys",
		       "SELECT conrelid::text, confrelid::text FROM pg_catalog.pg_constraint"
		       " WHERE contype = 'f' AND conrelid <> confrelid"
		       " AND conrelid = ANY ($1::pg_catalog.oid[]) AND confrelid = ANY ($1::pg_catalog.oid[])",
		       1, params, &rc);
	strbuf_free(&oids);
	if (!res)
		return rc;
	/* selection: move forward any table whose referenced ones are placed */
	while (done < lc->nt) {
		size_t pick = done;
		for (size_t i = done; i < lc->nt && pick == done; i++) {
			bool ready = true;
			for (int k = 0; k < PQntuples(res) && ready; k++)
				for (size_t j = done; j < lc->nt && ready; j++)
					ready = !(j != i && strcmp(PQgetvalue(res, k, 0), lc->t[i].oid) == 0 &&
						  strcmp(PQgetvalue(res, k, 1), lc->t[j].oid) == 0);
			if (ready)
				pick = i;
		}
		load_table tmp = lc->t[pick];
		memmove(&lc->t[done + 1], &lc->t[done], (pick - done) * sizeof(*lc->t));
		lc->t[done++] = tmp;
	}
	PQclear(res);
	for (size_t i = 0; i < lc->nt; i++)
		lc->t[i].tid = (unsigned)i + 1;
	return TP_OK;
}

/* Columns of t (no generated ones): its definition line and its COPY. */
static int table_define(load_ctx *lc, load_table *t)
{
	const char *params[1] = { t->oid };
	const char *schema = lc->target->apply_schema ? lc->target->apply_schema : t->schema;
	strbuf sel = { 0 };
	char *q = db_qualified(lc->a, t->schema, t->name);
	int rc;
	PGresult *res;

	res = db_query(lc->a, "reading a table's columns",
		"SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),"
		"  coalesce((SELECT k.n FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
		"            WHERE k.attnum = a.attnum), 0)"
		" FROM pg_catalog.pg_attribute a"
		" LEFT JOIN pg_catalog.pg_index i ON i.indrelid = a.attrelid AND i.indisprimary"
		" WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped"
		"   AND a.attgenerated = '' ORDER BY a.attnum", 1, params, &rc);
	strbuf_addf(&t->defline, "=\t%u\t", t->tid);
	copytext_field(&t->defline, schema, strlen(schema));
	strbuf_addc(&t->defline, '\t');
	copytext_field(&t->defline, t->name, strlen(t->name));
	strbuf_adds(&sel, "COPY (SELECT ");
	for (int i = 0; res && i < PQntuples(res); i++) {
		const char *col = PQgetvalue(res, i, 0), *type = PQgetvalue(res, i, 1);
		char *qc = db_ident(lc->a, col);

		strbuf_addf(&sel, "%s%s", i ? ", " : "", qc);
		free(qc);
		strbuf_addc(&t->defline, '\t');
		copytext_field(&t->defline, col, strlen(col));
		strbuf_addc(&t->defline, '\t');
		copytext_field(&t->defline, type, strlen(type));
		strbuf_addf(&t->defline, "\t%s", PQgetvalue(res, i, 2));
	}
	/* ONLY: inheritance children are tables of their own */
	strbuf_addf(&sel, " FROM %s%s) TO STDOUT", t->relkind == 'r' ? "ONLY " : "", q);
	free(q);
	t->select = strbuf_detach(&sel);
	PQclear(res);
	return res ? TP_OK : rc;
}

/* ---- the hand-over ---- */

/* text[] literals of the loaded tables' source names: tp-batch skips them. */
static void skip_lists(const load_ctx *lc, strbuf *schemas, strbuf *names)
{
	for (size_t i = 0; i < lc->nt; i++) {
		db_array_add(schemas, lc->t[i].schema);
		db_array_add(names, lc->t[i].name);
	}
	strbuf_adds(schemas, "}");
	strbuf_adds(names, "}");
}

/*
 * On B: lock the target, then (after S is taken) plan its events up to S
 * without the loaded tables. The parts are numbered after those batches.
 */
static int plan_rows(load_ctx *lc, batch_ctx *bc, const plan_pos *pos)
{
	strbuf schemas = { 0 }, names = { 0 };
	int64_t n = 0;
	int rc;

	skip_lists(lc, &schemas, &names);
	bc->skip_schemas = schemas.buf;
	bc->skip_names = names.buf;
	rc = plan_delta(bc, pos, lc->snap, &n);
	bc->skip_schemas = bc->skip_names = NULL;
	strbuf_free(&schemas);
	strbuf_free(&names);
	lc->first_seq = (uint64_t)(pos->base + n + 1);
	/* numbers a failed load reserved, not taken by a row batch: void */
	if (n == 0 && pos->base > pos->last_seq)
		lc->void_from = (uint64_t)pos->last_seq + 1;
	if (rc == TP_OK && n > 0)
		log_info("target %s: %" PRId64 " row batches before the load", lc->target->name, n);
	return rc;
}

static void progress(const load_ctx *lc, const load_table *t, bool end)
{
	if (!lc->progress)
		return;
	fprintf(stderr, "\rtp-load: %s: %" PRIu64 " rows of ~%.0f, %.1f MiB%s", t->display,
		t->rows, t->est_rows > (double)t->rows ? t->est_rows : (double)t->rows,
		(double)t->bytes / 1048576.0, end ? "\n" : "");
}

/* COPY one table out of snapshot S into the parts. */
static int copy_table(load_ctx *lc, load_table *t)
{
	PGresult *res = PQexec(lc->a, t->select);
	char *row;
	int n, rc = TP_OK;

	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		rc = db_report(lc->a, res, "copying a table");
		PQclear(res);
		return rc;
	}
	PQclear(res);
	while ((n = PQgetCopyData(lc->a, &row, 0)) > 0) {
		if (rc == TP_OK)
			rc = part_row(lc, t, row, (size_t)n);
		PQfreemem(row);
		if (rc == TP_OK && (t->rows & 0xffff) == 0)
			progress(lc, t, false);
	}
	while ((res = PQgetResult(lc->a)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == TP_OK)
			rc = db_report(lc->a, res, "copying a table");
		PQclear(res);
	}
	if (rc == TP_OK && n == -2)
		rc = db_report(lc->a, NULL, "copying a table");
	progress(lc, t, true);
	log_info("table %s: %" PRIu64 " rows, %" PRIu64 " bytes", t->display, t->rows, t->bytes);
	return rc;
}

/* On B: the parts as batches, the tables as loaded, the target moved on. */
static int record_load(load_ctx *lc)
{
	strbuf b = { 0 }, l = { 0 }, u = { 0 };
	char seq[24], ev[24], by[24], first[24], last[24], rows[24];
	const char *pb[5] = { lc->target->name, seq, lc->snap, ev, by };
	const char *pl[7] = { lc->target->name, NULL, NULL, lc->load_id, first, last, rows };
	int rc = TP_OK;

	strbuf_addf(&b, "INSERT INTO %s.batch (target, seq, lo, hi, ev_lo, ev_hi, events, bytes,"
		    " kind, written) VALUES ($1, $2, $3, $3, 0, 0, $4, $5, 'load', pg_catalog.now())",
		    lc->schema);
	for (size_t i = 0; i < lc->ndone && rc == TP_OK; i++) {
		snprintf(seq, sizeof(seq), "%" PRIu64, lc->done[i].seq);
		snprintf(ev, sizeof(ev), "%" PRIu64, lc->done[i].events);
		snprintf(by, sizeof(by), "%" PRIu64, lc->done[i].bytes);
		rc = db_execp(lc->b, "recording a load part", b.buf, 5, pb);
	}
	strbuf_addf(&l, "INSERT INTO %s.loaded (target, table_schema, table_name, load_id,"
		    " first_seq, last_seq, rows) VALUES ($1, $2, $3, $4, $5, $6, $7)"
		    " ON CONFLICT (target, table_schema, table_name) DO UPDATE SET"
		    " load_id = EXCLUDED.load_id, first_seq = EXCLUDED.first_seq,"
		    " last_seq = EXCLUDED.last_seq, rows = EXCLUDED.rows, loaded_at = pg_catalog.now()",
		    lc->schema);
	snprintf(first, sizeof(first), "%" PRIu64, lc->first_seq);
	snprintf(last, sizeof(last), "%" PRIu64, lc->done[lc->ndone - 1].seq);
	for (size_t i = 0; i < lc->nt && rc == TP_OK; i++) {
		pl[1] = lc->t[i].schema;
		pl[2] = lc->t[i].name;
		snprintf(rows, sizeof(rows), "%" PRIu64, lc->t[i].rows);
		rc = db_execp(lc->b, "recording a loaded table", l.buf, 7, pl);
	}
	strbuf_addf(&u, "UPDATE %s.target SET last_seq = $2 WHERE name = $1", lc->schema);
	pb[1] = last;
	if (rc == TP_OK)
		rc = db_execp(lc->b, "moving the target on", u.buf, 2, pb);
	strbuf_free(&b);
	strbuf_free(&l);
	strbuf_free(&u);
	return rc;
}

/* Everything after the connections; B and A are rolled back by the caller. */
static int load_connected(load_ctx *lc, batch_ctx *bc, plan_pos *pos)
{
	int rc = check_installed(lc);

	if (rc == TP_OK)
		rc = outbox_prepare(lc);
	if (rc == TP_OK)
		rc = reserve_row(lc);
	if (rc == TP_OK && (rc = db_exec(lc->b, "starting a transaction", "BEGIN")) == TP_OK)
		rc = plan_lock(bc, pos);
	if (rc == TP_OK)
		rc = snapshot_take(lc);
	if (rc == TP_OK)
		rc = tables_find(lc);
	if (rc == TP_OK && lc->nt == 0) {
		log_info("target %s: nothing to load", lc->target->name);
		return TP_OK;
	}
	if (rc == TP_OK)
		rc = tables_order(lc);
	if (rc == TP_OK)
		rc = schema_part(lc);
	for (size_t i = 0; i < lc->nt && rc == TP_OK; i++)
		rc = table_define(lc, &lc->t[i]);
	if (rc == TP_OK)
		rc = plan_rows(lc, bc, pos);
	for (size_t i = 0; i < lc->nt && rc == TP_OK; i++)
		rc = copy_table(lc, &lc->t[i]);
	if (rc == TP_OK)
		rc = part_finish(lc);
	if (rc == TP_OK)
		rc = record_load(lc);
	if (rc == TP_OK)
		rc = db_exec(lc->b, "committing the load", "COMMIT");
	if (rc == TP_OK)
		log_info("target %s: load %s: batches %" PRIu64 "..%" PRIu64, lc->target->name,
			 lc->load_id, lc->first_seq, lc->done[lc->ndone - 1].seq);
	return rc;
}

/* ---- the run ---- */

/* Sessions that may idle in a transaction for as long as a load takes. */
static int session_setup(PGconn *conn)
{
	int rc = db_exec(conn, "setting timeouts", "SET idle_in_transaction_session_timeout = 0");

	return rc == TP_OK ? db_exec(conn, "setting timeouts", "SET statement_timeout = 0") : rc;
}

static int connect_all(load_ctx *lc)
{
	int rc = TP_OK;

	if (!(lc->c = db_connect(lc->cfg->conninfo, &rc)) ||
	    !(lc->b = db_connect(lc->cfg->conninfo, &rc)) ||
	    !(lc->a = db_connect(lc->cfg->conninfo, &rc)))
		return rc;
	if ((rc = session_setup(lc->a)) == TP_OK)
		rc = session_setup(lc->b);
	if (rc == TP_OK)
		lc->schema = db_ident(lc->c, lc->cfg->schema);
	return rc;
}

static void ctx_free(load_ctx *lc)
{
	for (size_t i = 0; i < lc->nt; i++) {
		free(lc->t[i].schema);
		free(lc->t[i].name);
		free(lc->t[i].display);
		free(lc->t[i].select);
		free(lc->t[i].oid);
		strbuf_free(&lc->t[i].defline);
	}
	free(lc->t);
	free(lc->schema);
	free(lc->snap);
	free(lc->load_id);
	free(lc->created);
	free(lc->done);
	strbuf_free(&lc->line);
	strbuf_free(&lc->schema_pre);
	strbuf_free(&lc->schema_post);
	if (lc->key) {
		explicit_bzero(lc->key, strlen(lc->key));
		free(lc->key);
	}
	db_close(lc->a);
	db_close(lc->b);
	db_close(lc->c);
}

static int check_opts(const tp_config *cfg, const load_opts *o)
{
	if (!config_target(cfg, o->target)) {
		log_error("no [target %s] in %s", o->target, cfg->path);
		return TP_EUSAGE;
	}
	if (!o->outbox && isatty(o->out_fd)) {
		log_error("refusing to write a batch stream to a terminal");
		log_hint("pipe it into tp-send -c %s --target %s -, or use --outbox", cfg->path,
			 o->target);
		return TP_EUSAGE;
	}
	if (o->batch_size == 0 || o->batch_size > (uint64_t)cfg->max_batch_bytes / 2) {
		log_error("--batch-size must be between 1 and half of max_batch_bytes (%ld)",
			  cfg->max_batch_bytes);
		return TP_EUSAGE;
	}
	return TP_OK;
}

int load_run(const tp_config *cfg, const load_opts *o)
{
	load_ctx lc = { .cfg = cfg, .o = o, .fd = -1 };
	plan_pos pos = { 0 };
	int rc = check_opts(cfg, o);
	batch_ctx bc = { 0 };

	if (rc != TP_OK)
		return rc;
	lc.target = config_target(cfg, o->target);
	lc.progress = isatty(STDERR_FILENO) && log_get_level() >= LOG_WARN;
	if ((rc = lock_stage(cfg->spool, "tp-load")) != TP_OK)
		return rc;
	rc = connect_all(&lc);
	if (rc == TP_OK) {
		bc = (batch_ctx){ lc.b, cfg, lc.target, db_ident(lc.b, cfg->schema) };
		bc.loading = true;
		rc = load_connected(&lc, &bc, &pos);
	}
	if (rc == TP_OK)
		rc = part_stream_close(&lc);
	if (rc != TP_OK) {
		part_abort(&lc);
		if (lc.b && PQtransactionStatus(lc.b) != PQTRANS_IDLE)
			PQclear(PQexec(lc.b, "ROLLBACK"));
	} else if (lc.b && PQtransactionStatus(lc.b) != PQTRANS_IDLE) {
		rc = db_exec(lc.b, "ending the transaction", "ROLLBACK");   /* nothing to load */
	}
	free(bc.schema);
	plan_pos_free(&pos);
	ctx_free(&lc);
	return rc;
}
