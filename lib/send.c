/*
 * send.c - tp-send's queue: each target's outbox, oldest first, through
 * the transport its endpoint names; and the batch stream read from stdin.
 *
 * Order is the whole point: a batch that fails stops its target's queue
 * (a later batch is never sent before an earlier one), while the other
 * targets go on. The move to outbox/<target>/sent/ after delivery is the
 * only record of "sent", so a crash in between re-sends, never skips.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "filecopy.h"
#include "log.h"
#include "send.h"
#include "spool.h"
#include "strbuf.h"
#include "tp.h"

volatile int send_stop;

send_transport *send_transport_new(const tp_target *t, int *rc)
{
	const char *e = t->endpoint ? t->endpoint : "";

	if (strncmp(e, "dir:", 4) == 0 && e[4] != '\0')
		return send_dir_new(e + 4);
	if ((strncmp(e, "http://", 7) == 0 && e[7]) ||
	    (strncmp(e, "https://", 8) == 0 && e[8]))
		return send_http_new(t, rc);
	log_error("target %s: endpoint \"%s\": want dir:PATH or "
		  "http(s)://HOST/", t->name, e);
	*rc = TP_ECONFIG;
	return NULL;
}

void send_transport_free(send_transport *t)
{
	if (t)
		t->free(t);
}

static int outbox_dir(char *buf, const tp_config *cfg, const char *target)
{
	int n = snprintf(buf, PATH_MAX, "%s/outbox/%s", cfg->spool, target);
	if (n < 0 || n >= PATH_MAX) {
		log_error("spool path too long: %s", cfg->spool);
		return -1;
	}
	return 0;
}

/* Deliver one outbox file, then record it as sent by moving it. */
static int send_one(send_transport *tr, const tp_config *cfg,
		    const tp_target *t, const char *dir, const spool_entry *e)
{
	char path[PATH_MAX], sent[PATH_MAX];
	send_batch b = {
		.path = path, .name = e->name, .ext = e->name + SPOOL_SEQ_DIGITS,
		.source = cfg->node_name, .target = t->name, .seq = e->seq,
	};

	if (fc_path(path, sizeof path, dir, e->name) < 0 ||
	    snprintf(sent, sizeof sent, "%s/sent/%s", dir, e->name)
	    >= (int)sizeof sent) {
		log_error("target %s: path too long in %s", t->name, dir);
		return TP_EFAIL;
	}
	int rc = tr->deliver(tr, &b);
	if (rc != TP_OK)
		return rc;
	if (spool_move(path, sent) < 0) {
		log_error("target %s: batch %s delivered but could not be "
			  "moved to %s: %m", t->name, e->name, sent);
		return TP_EFAIL;
	}
	log_info("target %s: sent batch %s", t->name, e->name);
	return TP_OK;
}

static int send_queue(send_transport *tr, const tp_config *cfg,
		      const tp_target *t, const char *dir)
{
	spool_entry *list = NULL;
	size_t n = 0;
	char sentdir[PATH_MAX];
	int rc = TP_OK;

	if (spool_list(dir, false, &list, &n) < 0) {
		log_error("target %s: could not list %s: %m", t->name, dir);
		return TP_EFAIL;
	}
	if (n > 0 && (snprintf(sentdir, sizeof sentdir, "%s/sent", dir)
		      >= (int)sizeof sentdir || spool_mkdirs(sentdir) < 0)) {
		log_error("target %s: could not create %s/sent: %m", t->name, dir);
		rc = TP_EFAIL;
	}
	for (size_t i = 0; i < n && rc == TP_OK; i++) {
		if (send_stop) {
			log_warn("target %s: interrupted, %zu batch(es) left",
				 t->name, n - i);
			rc = TP_ETEMP;
			break;
		}
		rc = send_one(tr, cfg, t, dir, &list[i]);
	}
	spool_list_free(list, n);
	return rc;
}

int send_target(const tp_config *cfg, const tp_target *t)
{
	char dir[PATH_MAX];
	int rc = TP_OK;

	/* The transport first, so a bad endpoint shows even with no backlog. */
	send_transport *tr = send_transport_new(t, &rc);
	if (!tr)
		return rc;
	if (outbox_dir(dir, cfg, t->name) == 0)
		rc = send_queue(tr, cfg, t, dir);
	else
		rc = TP_EFAIL;
	send_transport_free(tr);
	return rc;
}

int send_run(const tp_config *cfg, const char *only)
{
	int rc = TP_OK;

	if (only) {
		const tp_target *t = config_target(cfg, only);
		if (!t) {
			log_error("unknown target \"%s\": no [target %s] in %s",
				  only, only, cfg->path);
			return TP_EUSAGE;
		}
		return send_target(cfg, t);
	}
	for (size_t i = 0; i < cfg->ntargets && !send_stop; i++)
		rc = tp_exit_worse(rc, send_target(cfg, &cfg->targets[i]));
	if (send_stop)
		rc = tp_exit_worse(rc, TP_ETEMP);
	return rc;
}

/* ---- batch stream from stdin ---- */

/* "<16 digits>.tar", ".tar.gz" or ".tar.zst", nothing else. */
static int parse_batch_name(const char *name, uint64_t *seq)
{
	uint64_t v = 0;

	for (int i = 0; i < SPOOL_SEQ_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	const char *ext = name + SPOOL_SEQ_DIGITS;
	if (strcmp(ext, ".tar") && strcmp(ext, ".tar.gz") &&
	    strcmp(ext, ".tar.zst"))
		return -1;
	if (v == 0)
		return -1;
	*seq = v;
	return 0;
}

typedef struct stream_ctx {
	const tp_config *cfg;
	const tp_target *t;
	char dir[PATH_MAX];
	batch_limits lim;
} stream_ctx;

/*
 * Is batch seq queued or sent already, under any extension? The very same
 * file is fine (a re-run of the stream); anything else is a conflict.
 */
static int stream_existing(const stream_ctx *s, const char *tmp,
			   const char *name, uint64_t seq, int *done)
{
	static const char *const sub[] = { "", "sent/" };
	static const char *const ext[] = { ".tar.zst", ".tar.gz", ".tar" };
	char path[PATH_MAX];
	struct stat st;

	*done = 0;
	for (size_t i = 0; i < 2; i++)
		for (size_t j = 0; j < 3; j++) {
			int n = snprintf(path, sizeof path, "%s/%s%0*" PRIu64 "%s",
					 s->dir, sub[i], SPOOL_SEQ_DIGITS, seq,
					 ext[j]);
			if (n < 0 || n >= (int)sizeof path || lstat(path, &st) < 0)
				continue;
			const char *base = strrchr(path, '/') + 1;
			if (strcmp(base, name) == 0 && fc_same_file(tmp, path) == 1) {
				log_debug("target %s: batch %s already in the "
					  "outbox", s->t->name, name);
				*done = 1;
				return TP_OK;
			}
			log_error("stdin: batch %s conflicts with %s, which "
				  "holds different bytes", name, path);
			return TP_EDATA;
		}
	return TP_OK;
}

/* The entry must be a good batch of ours for this target, numbered as named. */
static int stream_verify(const stream_ctx *s, const char *tmp,
			 const char *name, uint64_t seq)
{
	batch_header h = { 0 };
	char digest[65], err[512];
	int rc = TP_OK;

	if (batch_verify_file(tmp, &s->lim, NULL, 0, &h, digest,
			      err, sizeof err) != 0) {
		log_error("stdin: batch %s: %s", name, err);
		batch_header_clear(&h);
		return TP_EDATA;
	}
	if (!h.target || strcmp(h.target, s->t->name) != 0) {
		log_error("stdin: batch %s is for target %s, not %s", name,
			  h.target ? h.target : "?", s->t->name);
		rc = TP_EDATA;
	} else if (!h.source || strcmp(h.source, s->cfg->node_name) != 0) {
		log_error("stdin: batch %s comes from %s, not this node %s",
			  name, h.source ? h.source : "?", s->cfg->node_name);
		rc = TP_EDATA;
	} else if (h.seq != seq) {
		log_error("stdin: entry %s holds batch %" PRIu64, name, h.seq);
		rc = TP_EDATA;
	}
	batch_header_clear(&h);
	return rc;
}

/* Copy the current entry's data into fd, at most max bytes. */
static int stream_copy(struct archive *a, int fd, const char *name,
		       uint64_t max)
{
	char buf[65536];
	uint64_t total = 0;
	la_ssize_t r;

	while ((r = archive_read_data(a, buf, sizeof buf)) > 0) {
		total += (uint64_t)r;
		if (total > max) {
			log_error("stdin: entry %s is larger than max_batch_bytes "
				  "(%" PRIu64 ")", name, max);
			return TP_EDATA;
		}
		for (la_ssize_t off = 0; off < r;) {
			ssize_t w = write(fd, buf + off, (size_t)(r - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				log_error("stdin: could not write batch %s: %m", name);
				return TP_EFAIL;
			}
			off += w;
		}
	}
	if (r < 0) {
		log_error("stdin: entry %s: %s", name, archive_error_string(a));
		return TP_EDATA;
	}
	return TP_OK;
}

/* Store one entry: temp file, verify, then rename into the outbox. */
static int stream_entry(const stream_ctx *s, struct archive *a,
			const char *name, uint64_t seq)
{
	char tmp[PATH_MAX], final[PATH_MAX];
	int done = 0;
	int fd = fc_tmpfile(s->dir, "send", tmp);

	if (fd < 0) {
		log_error("target %s: could not create a file in %s: %m",
			  s->t->name, s->dir);
		return TP_EFAIL;
	}
	int rc = stream_copy(a, fd, name, (uint64_t)s->cfg->max_batch_bytes);
	if (rc == TP_OK)
		rc = stream_verify(s, tmp, name, seq);
	if (rc == TP_OK)
		rc = stream_existing(s, tmp, name, seq, &done);
	if (rc != TP_OK || done) {
		close(fd);
		unlink(tmp);
		return rc;
	}
	if (fc_path(final, sizeof final, s->dir, name) < 0) {
		log_error("target %s: path too long in %s", s->t->name, s->dir);
		close(fd);
		unlink(tmp);
		return TP_EFAIL;
	}
	if (spool_commit(fd, tmp, final) < 0) {
		log_error("target %s: could not store %s: %m", s->t->name, final);
		return TP_EFAIL;
	}
	log_info("target %s: queued batch %s from stdin", s->t->name, name);
	return TP_OK;
}

/* Only plain batch files at the top level: no paths, links or devices. */
static int stream_check_entry(struct archive_entry *e, uint64_t *seq)
{
	const char *name = archive_entry_pathname(e);

	if (!name || strchr(name, '/') || parse_batch_name(name, seq) < 0) {
		log_error("stdin: entry \"%s\": not a batch file name "
			  "(want <16 digits>.tar[.zst|.gz])", name ? name : "");
		return TP_EDATA;
	}
	if (archive_entry_filetype(e) != AE_IFREG) {
		log_error("stdin: entry %s: not a regular file", name);
		return TP_EDATA;
	}
	return TP_OK;
}

static struct archive *stream_open(int fd)
{
	struct archive *a = archive_read_new();

	/* Only what tp-load writes: other formats and filters are attack
	 * surface (and some would run external programs). */
	if (!a || archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(a) != ARCHIVE_OK) {
		log_error("stdin: libarchive setup failed");
		archive_read_free(a);
		return NULL;
	}
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
		/* Empty input lands here too: a failed producer, not "done". */
		log_error("stdin: not a tar stream of batches: %s",
			  archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static int stream_loop(const stream_ctx *s, struct archive *a)
{
	struct archive_entry *e;
	int r, rc = TP_OK;
	unsigned count = 0;

	while (rc == TP_OK && !send_stop &&
	       (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		uint64_t seq = 0;
		if (r != ARCHIVE_OK && send_stop)
			break;          /* a signal broke the read: retry later */
		if (r != ARCHIVE_OK) {
			log_error("stdin: not a tar stream of batches: %s",
				  archive_error_string(a));
			return TP_EDATA;
		}
		rc = stream_check_entry(e, &seq);
		if (rc == TP_OK)
			rc = stream_entry(s, a, archive_entry_pathname(e), seq);
		count++;
	}
	if (send_stop) {
		log_warn("stdin: interrupted after %u entr%s", count,
			 count == 1 ? "y" : "ies");
		rc = TP_ETEMP;
	}
	log_debug("stdin: %u entr%s read", count, count == 1 ? "y" : "ies");
	return rc;
}

int send_store_stream(const tp_config *cfg, const tp_target *t, int fd)
{
	stream_ctx s = { .cfg = cfg, .t = t };

	if (outbox_dir(s.dir, cfg, t->name) < 0)
		return TP_EFAIL;
	if (spool_mkdirs(s.dir) < 0) {
		log_error("target %s: could not create %s: %m", t->name, s.dir);
		return TP_EFAIL;
	}
	fc_clean_tmp(s.dir, "send");
	batch_limits_default(&s.lim, (uint64_t)cfg->max_batch_bytes);
	struct archive *a = stream_open(fd);
	if (!a)
		return send_stop ? TP_ETEMP : TP_EDATA;
	int rc = stream_loop(&s, a);
	archive_read_free(a);
	return rc;
}
