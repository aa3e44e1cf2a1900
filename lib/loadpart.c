/*
 * loadpart.c - the parts of a load: batch files of kind "load", written
 * through a temporary file (tar needs each entry's size before its data,
 * so memory stays flat however large a part), then emitted: appended to
 * the batch stream on stdout, or renamed into the outbox.
 *
 * Before a part is emitted its number is reserved on connection C, in a
 * transaction of its own: once a number may exist downstream, the source
 * never hands it out again, whatever happens to this run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <archive.h>
#include <archive_entry.h>

#include "db.h"
#include "ddl.h"
#include "filecopy.h"
#include "load_int.h"
#include "log.h"
#include "spool.h"
#include "tp.h"

/* The loaded tables as the target names them, for part 1's header. */
static char **header_tables(const load_ctx *lc)
{
	char **v = xcalloc(2 * lc->nt, sizeof(char *));
	const char *as = lc->target->apply_schema;

	for (size_t i = 0; i < lc->nt; i++) {
		v[2 * i] = as ? (char *)as : lc->t[i].schema;
		v[2 * i + 1] = lc->t[i].name;
	}
	return v;
}

/* Schema change lines (the load's schema part) into the open part. */
static int part_lines(load_ctx *lc, const strbuf *text)
{
	strbuf line = { 0 };
	int rc = TP_OK;

	for (const char *p = text->buf; p && *p && rc == TP_OK;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (ddl_remap(p, len, lc->target, &line) &&
		    batch_writer_line(lc->w, line.buf, line.len) < 0) {
			log_error("load of %s: %s", lc->target->name, batch_writer_error(lc->w));
			rc = TP_EFAIL;
		}
		p += len + (nl != NULL);
	}
	strbuf_free(&line);
	return rc;
}

static int part_open(load_ctx *lc, bool last)
{
	batch_header h = { "load", lc->cfg->node_name, lc->target->name, 0, "", lc->snap,
			   lc->created };
	char err[256];

	lc->part++;
	lc->part_bytes = 0;
	h.seq = lc->first_seq + lc->part - 1;
	h.load = lc->load_id;
	h.part = lc->part;
	h.last = last;
	if (lc->part == 1) {
		h.tables = header_tables(lc);
		h.ntables = lc->nt;
		h.void_from = lc->void_from;
		h.rebuild_indexes = lc->o->rebuild_indexes;
	}
	lc->fd = fc_tmpfile(lc->dir, "tp-load", lc->tmp);
	if (lc->fd < 0) {
		log_error("load of %s: cannot create a file in %s: %s", lc->target->name,
			  lc->dir, strerror(errno));
		free(h.tables);
		return TP_EFAIL;
	}
	/* a stream's part needs no name: a crash then leaves nothing behind */
	if (!lc->o->outbox)
		unlink(lc->tmp);
	lc->w = batch_writer_new(lc->fd, lc->cfg->compression, &h, (unsigned char *)lc->key,
				 lc->key ? strlen(lc->key) : 0, BATCH_MEMBER_CAP_DEFAULT,
				 err, sizeof(err));
	free(h.tables);
	if (!lc->w) {
		log_error("load of %s: part %" PRIu64 ": %s", lc->target->name, lc->part, err);
		return TP_EFAIL;
	}
	/* what the target may lack before the rows; what restricts, after */
	if (lc->part == 1 && part_lines(lc, &lc->schema_pre) != TP_OK)
		return TP_EFAIL;
	return last ? part_lines(lc, &lc->schema_post) : TP_OK;
}

/* Record on C that numbers up to seq may exist downstream. */
static int reserve(load_ctx *lc, uint64_t seq)
{
	char s[24];
	const char *params[2] = { lc->target->name, s };
	strbuf sql = { 0 };
	int rc;

	snprintf(s, sizeof(s), "%" PRIu64, seq);
	strbuf_addf(&sql, "INSERT INTO %s.load_reserve AS r (target, seq) VALUES ($1, $2)"
		    " ON CONFLICT (target) DO UPDATE SET seq = GREATEST(r.seq, EXCLUDED.seq)",
		    lc->schema);
	rc = db_execp(lc->c, "reserving a batch number", sql.buf, 2, params);
	strbuf_free(&sql);
	return rc;
}

static int stream_open(load_ctx *lc)
{
	struct archive *a = archive_write_new();

	if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_fd(a, lc->o->out_fd) != ARCHIVE_OK) {
		log_error("load of %s: cannot start the batch stream: %s", lc->target->name,
			  a ? archive_error_string(a) : "out of memory");
		if (a)
			archive_write_free(a);
		return TP_EFAIL;
	}
	lc->out = a;
	return TP_OK;
}

/* Append the part's file to the stream as entry `name`. */
static int stream_entry(load_ctx *lc, const char *name)
{
	struct stat st;
	char buf[65536];
	ssize_t n = 0;
	struct archive_entry *e;
	int rc = TP_OK;

	if (!lc->out && (rc = stream_open(lc)) != TP_OK)
		return rc;
	if (fstat(lc->fd, &st) < 0 || lseek(lc->fd, 0, SEEK_SET) < 0) {
		log_error("load of %s: %s: %s", lc->target->name, name, strerror(errno));
		return TP_EFAIL;
	}
	e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, st.st_size);
	archive_entry_set_mtime(e, time(NULL), 0);
	if (archive_write_header(lc->out, e) != ARCHIVE_OK)
		rc = TP_EFAIL;
	archive_entry_free(e);
	while (rc == TP_OK && (n = read(lc->fd, buf, sizeof(buf))) > 0)
		if (archive_write_data(lc->out, buf, (size_t)n) != n)
			rc = TP_EFAIL;
	if (rc == TP_OK && n < 0)
		rc = TP_EFAIL;
	if (rc != TP_OK)
		log_error("load of %s: writing %s to the stream: %s", lc->target->name, name,
			  n < 0 ? strerror(errno) : archive_error_string(lc->out));
	return rc;
}

static int outbox_entry(load_ctx *lc, const char *name)
{
	char final[PATH_MAX];
	int fd = lc->fd;

	lc->fd = -1;
	if (fc_path(final, sizeof(final), lc->dir, name) < 0 || access(final, F_OK) == 0) {
		log_error("load of %s: %s/%s exists already (a number used twice?)",
			  lc->target->name, lc->dir, name);
		close(fd);
		unlink(lc->tmp);
		return TP_EFAIL;
	}
	if (spool_commit(fd, lc->tmp, final) < 0) {
		log_error("load of %s: writing %s: %s", lc->target->name, final, strerror(errno));
		return TP_EFAIL;
	}
	return TP_OK;
}

/* Finish the open part, reserve its number, emit it. */
static int part_close(load_ctx *lc)
{
	load_done d = { lc->first_seq + lc->part - 1, 0, lc->part_bytes };
	char name[64];
	int rc = TP_OK;

	if (batch_writer_finish(lc->w) < 0) {
		log_error("load of %s: part %" PRIu64 ": %s", lc->target->name, lc->part,
			  batch_writer_error(lc->w));
		return TP_EFAIL;
	}
	d.events = batch_writer_events(lc->w);
	batch_writer_free(lc->w);
	lc->w = NULL;
	spool_batch_name(name, sizeof(name), d.seq, spool_batch_ext(lc->cfg->compression));
	rc = reserve(lc, d.seq);
	if (rc == TP_OK)
		rc = lc->o->outbox ? outbox_entry(lc, name) : stream_entry(lc, name);
	if (lc->fd >= 0)
		close(lc->fd);
	lc->fd = -1;
	if (rc != TP_OK)
		return rc;
	lc->done = xrealloc(lc->done, (lc->ndone + 1) * sizeof(*lc->done));
	lc->done[lc->ndone++] = d;
	log_debug("load of %s: part %" PRIu64 " is batch %" PRIu64 " (%" PRIu64 " rows)",
		  lc->target->name, lc->part, d.seq, d.events);
	return TP_OK;
}

int part_row(load_ctx *lc, load_table *t, const char *row, size_t len)
{
	int rc;

	if (len > 0 && row[len - 1] == '\n')
		len--;
	if (!lc->w && (rc = part_open(lc, false)) != TP_OK)
		return rc;
	strbuf_reset(&lc->line);
	strbuf_addf(&lc->line, "I\t%u\t", t->tid);
	strbuf_add(&lc->line, row, len);
	if (batch_writer_table(lc->w, t->tid, t->defline.buf, t->defline.len) < 0 ||
	    batch_writer_event(lc->w, t->tid, lc->line.buf, lc->line.len) < 0) {
		log_error("load of %s: table %s: %s", lc->target->name, t->display,
			  batch_writer_error(lc->w));
		return TP_EFAIL;
	}
	t->rows++;
	t->bytes += len + 1;
	lc->part_bytes += lc->line.len + 1;
	return lc->part_bytes >= lc->o->batch_size ? part_cut(lc) : TP_OK;
}

int part_cut(load_ctx *lc)
{
	return lc->w ? part_close(lc) : TP_OK;
}

int part_finish(load_ctx *lc)
{
	int rc = part_cut(lc);

	if (rc == TP_OK)
		rc = part_open(lc, true);
	return rc == TP_OK ? part_close(lc) : rc;
}

int part_stream_close(load_ctx *lc)
{
	int rc = TP_OK;

	if (lc->out && archive_write_close(lc->out) != ARCHIVE_OK) {
		log_error("load of %s: ending the batch stream: %s", lc->target->name,
			  archive_error_string(lc->out));
		rc = TP_EFAIL;
	}
	if (lc->out)
		archive_write_free(lc->out);
	lc->out = NULL;
	return rc;
}

void part_abort(load_ctx *lc)
{
	batch_writer_free(lc->w);
	lc->w = NULL;
	if (lc->fd >= 0) {
		close(lc->fd);
		if (lc->o->outbox)
			unlink(lc->tmp);
	}
	lc->fd = -1;
	if (lc->out) {
		/* no end-of-archive: the reader must see the stream broke off */
		archive_write_fail(lc->out);
		archive_write_free(lc->out);
		lc->out = NULL;
	}
}
