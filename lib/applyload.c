/*
 * applyload.c - tp-apply for initial loads (tp-load, lib/load.h).
 *
 * A load is several batches of kind "load" ("parts"), the first naming the
 * loaded tables, the last flagged "last". It is applied only once every
 * part is in the inbox, in ONE transaction with the ledger: TRUNCATE of
 * all its tables in one statement (foreign keys among them are fine, no
 * CASCADE), then every part's rows through the engine, which turns runs of
 * inserts into COPY, then the ledger at the last part. So the target
 * either has the whole load at the source's snapshot, or none of it.
 *
 * A load that never finished on the source (tp-load died) left numbers
 * that no batch will ever fill; the first batch after them carries
 * "void_from". load_void_skip moves the ledger over such numbers, logging
 * the parts found there as 'load-abandoned'.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply_int.h"
#include "batch.h"
#include "db.h"
#include "log.h"
#include "spool.h"
#include "tp.h"

/* One part file, opened for its header or for all of it. */
typedef struct part_file {
	int fd;
	batch_reader *r;
	const batch_header *h;
} part_file;

static void part_close(part_file *p)
{
	batch_reader_free(p->r);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->r = NULL;
}

/* Open path and read its header; key NULL: header only, not verified. */
static int part_open(const load_apply *la, part_file *p, const char *path, const char *key)
{
	p->r = NULL;
	p->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0) {
		log_error("cannot open %s: %m", path);
		return TP_EFAIL;
	}
	p->r = batch_reader_new(p->fd, la->lim, (const unsigned char *)key, key ? strlen(key) : 0);
	if (batch_reader_header(p->r, &p->h) < 0) {
		log_error("%s: bad batch: %s", path, batch_reader_error(p->r));
		return TP_EDATA;
	}
	return TP_OK;
}

static const spool_entry *entry_find(const spool_entry *e, size_t n, uint64_t seq)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].seq == seq)
			return &e[i];
	return NULL;
}

/* Part k (1-based) of the load that part 1's header h starts? */
static bool part_matches(const load_apply *la, const batch_header *p, uint64_t k)
{
	return strcmp(p->kind, "load") == 0 && strcmp(p->load, la->h->load) == 0 &&
	       p->part == k && strcmp(p->source, la->source) == 0 &&
	       strcmp(p->target, la->node) == 0;
}

/*
 * Every part of the load in the inbox, in order, up to the "last" one:
 * their paths into paths (strbuf array, count in *nparts). 75 while one is
 * missing; 65 (with la->bad_path) for a part that does not belong.
 */
static int parts_collect(load_apply *la, const char *dir, strbuf **paths, size_t *nparts)
{
	spool_entry *list = NULL;
	size_t n = 0;
	int rc = TP_OK;
	bool last = false;

	if (spool_list(dir, false, &list, &n) < 0) {
		log_error("cannot list %s: %m", dir);
		return TP_EFAIL;
	}
	for (uint64_t k = 1; rc == TP_OK && !last; k++) {
		uint64_t seq = la->h->seq + k - 1;
		const spool_entry *e = entry_find(list, n, seq);
		part_file p = { -1, NULL, NULL };

		if (!e) {
			log_warn("load %s from %s: waiting for part %" PRIu64 " (batch %" PRIu64 ")",
				 la->h->load, la->source, k, seq);
			rc = TP_ETEMP;
			break;
		}
		*paths = xrealloc(*paths, (size_t)k * sizeof(**paths));
		memset(&(*paths)[k - 1], 0, sizeof(**paths));
		strbuf_addf(&(*paths)[k - 1], "%s/%s", dir, e->name);
		*nparts = (size_t)k;
		rc = part_open(la, &p, (*paths)[k - 1].buf, NULL);
		if (rc == TP_OK && !part_matches(la, p.h, k)) {
			log_error("%s: bad batch: not part %" PRIu64 " of load %s", e->name, k, la->h->load);
			rc = TP_EDATA;
		}
		if (rc == TP_EDATA)
			snprintf(la->bad_path, sizeof(la->bad_path), "%s", (*paths)[k - 1].buf);
		last = rc == TP_OK && p.h->last;
		part_close(&p);
	}
	spool_list_free(list, n);
	return rc;
}

/* BEGIN, mark the origin, lock the ledger; it must stand right before the load. */
static int txn_begin(load_apply *la)
{
	const char *p[1] = { la->source };
	strbuf sql = { 0 };
	PGresult *res;
	int rc;

	if ((rc = db_exec(la->conn, "starting a transaction", "BEGIN")) != TP_OK ||
	    (rc = db_execp(la->conn, "marking the origin",
			   "SELECT pg_catalog.set_config('teleport.origin', $1, true)", 1, p)) != TP_OK)
		return rc;
	strbuf_addf(&sql, "SELECT seq FROM %s.applied WHERE source = $1 FOR UPDATE", la->schema);
	res = db_query(la->conn, "locking the ledger", sql.buf, 1, p, &rc);
	strbuf_free(&sql);
	if (!res)
		return rc;
	if (PQntuples(res) != 1 || strtoull(PQgetvalue(res, 0, 0), NULL, 10) != la->h->seq - 1) {
		log_warn("load %s from %s: the ledger moved meanwhile (another tp-apply?)",
			 la->h->load, la->source);
		rc = TP_ETEMP;
	}
	PQclear(res);
	return rc;
}

/* TRUNCATE every loaded table in one statement: FKs among them are fine. */
static int truncate_tables(load_apply *la)
{
	strbuf sql = { 0 };
	PGresult *res;
	int rc = TP_OK;

	strbuf_adds(&sql, "TRUNCATE ");
	for (size_t i = 0; i < la->h->ntables; i++) {
		char *q = db_qualified(la->conn, la->h->tables[2 * i], la->h->tables[2 * i + 1]);
		strbuf_addf(&sql, "%s%s", i ? ", " : "", q);
		free(q);
	}
	res = PQexec(la->conn, sql.buf);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		char what[200];
		snprintf(what, sizeof(what), "load %s from %s: TRUNCATE", la->h->load, la->source);
		rc = apply_report(res, la->conn, what);
	}
	PQclear(res);
	strbuf_free(&sql);
	return rc;
}

/*
 * The load's schema part, first of all: the S lines that open part 1
 * create what the target lacks (tp-load(1)), so that the TRUNCATE finds
 * the tables. *nlines: how many, for part_stream to pass over.
 */
static int schema_first(load_apply *la, const char *path, uint64_t *nlines)
{
	part_file p = { -1, NULL, NULL };
	char label[160], *line;
	size_t len;
	int n = 0, rc = part_open(la, &p, path, la->key);

	*nlines = 0;
	if (rc == TP_OK) {
		snprintf(label, sizeof(label), "%s/%" PRIu64, la->source, p.h->seq);
		engine_begin(la->eng, label);
	}
	while (rc == TP_OK && (n = batch_reader_next(p.r, &line, &len)) > 0 && line[0] == 'S')
		rc = engine_line(la->eng, line, len, ++*nlines);
	if (rc == TP_OK && n < 0) {
		log_error("batch %s: bad batch: %s", label, batch_reader_error(p.r));
		rc = TP_EDATA;
	}
	if (rc == TP_OK)
		rc = engine_finish(la->eng);
	if (rc == APPLY_EARLY) {
		log_error("batch %s: bad batch: a load's schema part adds enum labels", label);
		rc = TP_EDATA;
	}
	if (rc == TP_EDATA)
		snprintf(la->bad_path, sizeof(la->bad_path), "%s", path);
	part_close(&p);
	return rc;
}

/*
 * One part's lines through the engine, the first skip of them passed
 * over (done by schema_first); the reader verifies it at the end.
 */
static int part_stream(load_apply *la, const char *path, uint64_t skip, char digest[65],
		       uint64_t *events)
{
	part_file p = { -1, NULL, NULL };
	char label[160], *line;
	size_t len;
	uint64_t lineno = 0;
	int n, rc = part_open(la, &p, path, la->key);

	if (rc == TP_OK) {
		snprintf(label, sizeof(label), "%s/%" PRIu64, la->source, p.h->seq);
		engine_begin(la->eng, label);
	}
	while (rc == TP_OK && (n = batch_reader_next(p.r, &line, &len)) != 0) {
		if (n < 0) {
			log_error("batch %s: bad batch: %s", label, batch_reader_error(p.r));
			rc = TP_EDATA;
		} else if (apply_stop) {
			rc = TP_ETEMP;
		} else if (lineno < skip) {
			lineno++;
		} else if (line[0] != '=' && line[0] != 'I' && line[0] != 'S') {
			log_error("batch %s line %" PRIu64 ": bad batch: a load holds inserts and"
				  " schema changes only", label, lineno + 1);
			rc = TP_EDATA;
		} else {
			rc = engine_line(la->eng, line, len, ++lineno);
		}
	}
	if (rc == TP_OK)
		rc = engine_finish(la->eng);
	if (rc == TP_OK) {
		memcpy(digest, batch_reader_digest(p.r), 65);
		*events = engine_rows(la->eng);    /* the rows: not its schema part */
	}
	if (rc == TP_EDATA)
		snprintf(la->bad_path, sizeof(la->bad_path), "%s", path);
	part_close(&p);
	return rc;
}

/* The ledger at the last part, an apply_log line per part, COMMIT. */
static int ledger_write(load_apply *la, const uint64_t *seqs, char (*digests)[65],
			const uint64_t *events, size_t n)
{
	strbuf adv = { 0 }, lg = { 0 };
	char seq[24], ev[24];
	const char *pa[3] = { la->source, seq, NULL };
	const char *pl[4] = { la->source, seq, NULL, ev };
	int rc = TP_OK;

	strbuf_addf(&lg, "INSERT INTO %s.apply_log (source, seq, kind, digest, events)"
		    " VALUES ($1, $2, 'load', $3, $4)", la->schema);
	for (size_t i = 0; i < n && rc == TP_OK; i++) {
		snprintf(seq, sizeof(seq), "%" PRIu64, seqs[i]);
		snprintf(ev, sizeof(ev), "%" PRIu64, events[i]);
		pl[2] = digests[i];
		rc = db_execp(la->conn, "writing the apply log", lg.buf, 4, pl);
	}
	strbuf_addf(&adv, "UPDATE %s.applied SET seq = $2, digest = $3,"
		    " applied_at = pg_catalog.now() WHERE source = $1", la->schema);
	pa[2] = digests[n - 1];
	if (rc == TP_OK)
		rc = db_execp(la->conn, "advancing the ledger", adv.buf, 3, pa);
	if (rc == TP_OK)
		rc = db_exec(la->conn, "committing the load", "COMMIT");
	strbuf_free(&adv);
	strbuf_free(&lg);
	return rc;
}

/* The transaction of a load whose parts are all there. */
static int load_txn(load_apply *la, strbuf *paths, size_t n)
{
	uint64_t *seqs = xcalloc(n, sizeof(*seqs)), *events = xcalloc(n, sizeof(*events)), rows = 0;
	char (*digests)[65] = xcalloc(n, sizeof(*digests));
	uint64_t schema_lines = 0;
	PGresult *saved = NULL;
	int rc = txn_begin(la);

	if (rc == TP_OK)
		rc = schema_first(la, paths[0].buf, &schema_lines);
	if (rc == TP_OK)
		rc = truncate_tables(la);
	if (rc == TP_OK && la->h->rebuild_indexes)
		rc = rebuild_drop(la, &saved);
	for (size_t i = 0; i < n && rc == TP_OK; i++) {
		seqs[i] = la->h->seq + i;
		rc = part_stream(la, paths[i].buf, i ? 0 : schema_lines, digests[i], &events[i]);
		rows += events[i];
	}
	if (rc == TP_OK && saved)
		rc = rebuild_create(la, saved);
	PQclear(saved);
	if (rc == TP_OK)
		rc = ledger_write(la, seqs, digests, events, n);
	if (rc != TP_OK)
		engine_abort(la->eng);      /* ROLLBACK */
	else
		log_info("applied load %s from %s: %zu tables, %" PRIu64 " rows, batches %"
			 PRIu64 "..%" PRIu64, la->h->load, la->source, la->h->ntables, rows,
			 seqs[0], seqs[n - 1]);
	free(seqs);
	free(events);
	free(digests);
	return rc;
}

int load_apply_inbox(load_apply *la)
{
	strbuf *paths = NULL, dir = { 0 };
	size_t n = 0;
	int rc = TP_OK;

	if (la->h->part != 1 || la->h->ntables == 0) {
		log_error("%s: batch %s/%" PRIu64 " is part %" PRIu64 " of load %s, whose first part"
			  " was never applied", la->path, la->source, la->h->seq, la->h->part, la->h->load);
		return TP_EFAIL;
	}
	strbuf_adds(&dir, la->path);
	rc = parts_collect(la, dirname(dir.buf), &paths, &n);
	if (rc == TP_OK && la->dry) {
		fprintf(la->dry, "-- load %s: batches %" PRIu64 "..%" PRIu64 " (not shown)\n",
			la->h->load, la->h->seq, la->h->seq + n - 1);
	} else if (rc == TP_OK) {
		rc = load_txn(la, paths, n);
	}
	if (rc == TP_OK)
		la->last = la->h->seq + n - 1;
	for (size_t i = 0; i < n; i++)
		strbuf_free(&paths[i]);
	free(paths);
	strbuf_free(&dir);
	return rc;
}

/* ---- numbers of a load that never finished ---- */

/* Move the ledger from `from` to `to`, logging the void parts e[0..k). */
static int void_record(load_apply *la, const spool_entry *e, size_t k, uint64_t from,
		       uint64_t to)
{
	strbuf sql = { 0 };
	char seq[24];
	const char *p[2] = { la->source, seq };
	int rc = db_exec(la->conn, "starting a transaction", "BEGIN");
	PGresult *res = NULL;

	strbuf_addf(&sql, "SELECT seq FROM %s.applied WHERE source = $1 FOR UPDATE", la->schema);
	if (rc == TP_OK)
		res = db_query(la->conn, "locking the ledger", sql.buf, 1, p, &rc);
	if (res && (PQntuples(res) != 1 || strtoull(PQgetvalue(res, 0, 0), NULL, 10) != from))
		rc = TP_ETEMP;          /* another tp-apply moved it: let it be */
	PQclear(res);
	strbuf_reset(&sql);
	strbuf_addf(&sql, "INSERT INTO %s.apply_log (source, seq, kind, digest, events)"
		    " VALUES ($1, $2, 'load-abandoned', '', 0) ON CONFLICT DO NOTHING", la->schema);
	for (size_t i = 0; i < k && rc == TP_OK; i++) {
		snprintf(seq, sizeof(seq), "%" PRIu64, e[i].seq);
		rc = db_execp(la->conn, "writing the apply log", sql.buf, 2, p);
	}
	strbuf_reset(&sql);
	strbuf_addf(&sql, "UPDATE %s.applied SET seq = $2, digest = '', applied_at = pg_catalog.now()"
		    " WHERE source = $1", la->schema);
	snprintf(seq, sizeof(seq), "%" PRIu64, to);
	if (rc == TP_OK)
		rc = db_execp(la->conn, "advancing the ledger", sql.buf, 2, p);
	rc = tp_exit_worse(rc, db_exec(la->conn, "ending the transaction",
				       rc == TP_OK ? "COMMIT" : "ROLLBACK"));
	strbuf_free(&sql);
	return rc;
}

/*
 * Is e[k] the batch that voids the numbers before it? Only a batch whose
 * whole content is verified (signature included) may move the ledger.
 */
static bool voids_to(load_apply *la, const char *dir, const spool_entry *e, uint64_t last)
{
	char path[4200], digest[65], err[256];
	batch_header h = { 0 };
	bool yes;

	snprintf(path, sizeof(path), "%s/%s", dir, e->name);
	if (batch_verify_file(path, la->lim, (const unsigned char *)la->key,
			      la->key ? strlen(la->key) : 0, &h, digest, err, sizeof(err)) < 0)
		return false;           /* the normal apply quarantines it */
	yes = h.void_from == last + 1 && h.seq == e->seq && strcmp(h.source, la->source) == 0;
	batch_header_clear(&h);
	return yes;
}

int load_void_skip(load_apply *la, const char *dir, const spool_entry *e, size_t n,
		   uint64_t *last)
{
	for (size_t k = 0; k < n; k++) {
		part_file p = { -1, NULL, NULL };
		char path[4200];
		bool other_part;

		snprintf(path, sizeof(path), "%s/%s", dir, e[k].name);
		if (e[k].seq <= *last || part_open(la, &p, path, NULL) != TP_OK) {
			part_close(&p);
			return 0;
		}
		/* a part voids nothing itself, unless it starts a new load that says so */
		other_part = strcmp(p.h->kind, "load") == 0 && p.h->void_from == 0;
		part_close(&p);
		if (other_part)
			continue;
		if (!voids_to(la, dir, &e[k], *last) ||
		    void_record(la, e, k, *last, e[k].seq - 1) != TP_OK)
			return 0;
		log_warn("batches %s/%" PRIu64 "..%" PRIu64 " belong to a load that never finished:"
			 " skipped", la->source, *last + 1, e[k].seq - 1);
		*last = e[k].seq - 1;
		return 1;
	}
	return 0;
}
