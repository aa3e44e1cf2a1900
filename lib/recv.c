/*
 * recv.c - verify incoming batches and store them in the inbox.
 *
 * A drop folder is shared and writable by others, so a file there is read
 * exactly once: copied into a temp file in the spool, and only that copy is
 * verified and renamed into the inbox. Nobody can swap the bytes between
 * the check and the store.
 *
 * Crash safety: the copy is renamed into the inbox before the dropped file
 * is unlinked. A crash in between leaves both; the re-run finds the batch
 * held with the same digest and just removes the dropped file.
 */
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
#include "recv.h"
#include "spool.h"
#include "strbuf.h"
#include "tp.h"

/* A source's token, read on first use. */
typedef struct recv_key {
	char *token;        /* NULL: no token_file, unsigned batches accepted */
	int state;          /* 0 unread, 1 read, -1 unreadable */
} recv_key;

struct recv_ctx {
	const tp_config *cfg;
	batch_limits lim;
	char inbox[PATH_MAX];
	int inbox_ready;    /* inbox/ exists and our stale temp files are gone */
	recv_key *keys;     /* one per cfg->sources */
};

recv_ctx *recv_new(const tp_config *cfg)
{
	recv_ctx *r = xcalloc(1, sizeof *r);

	r->cfg = cfg;
	batch_limits_default(&r->lim, (uint64_t)cfg->max_batch_bytes);
	snprintf(r->inbox, sizeof r->inbox, "%s/inbox", cfg->spool);
	r->keys = xcalloc(cfg->nsources ? cfg->nsources : 1, sizeof *r->keys);
	return r;
}

void recv_free(recv_ctx *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->cfg->nsources; i++) {
		char *t = r->keys[i].token;
		if (t) {
			/* The token is a secret: do not leave it in freed memory. */
			memset(t, 0, strlen(t));
			free(t);
		}
	}
	free(r->keys);
	free(r);
}

int recv_tmpfile(recv_ctx *r, char *path)
{
	if (!r->inbox_ready) {
		if (spool_mkdirs(r->inbox) < 0) {
			log_error("could not create %s: %m", r->inbox);
			return -1;
		}
		/* Callers hold the tp-recv lock: such files are a killed run's. */
		fc_clean_tmp(r->inbox, "recv");
		r->inbox_ready = 1;
	}
	int fd = fc_tmpfile(r->inbox, "recv", path);
	if (fd < 0)
		log_error("could not create a file in %s: %m", r->inbox);
	return fd;
}

int recv_check_source(recv_ctx *r, const char *source, char *why, size_t len)
{
	if (source && config_source(r->cfg, source))
		return TP_OK;
	snprintf(why, len, "unknown source %s", source ? source : "(none)");
	return TP_EDATA;
}

/* The source's token, or NULL when it has none; TP_ECONFIG if unreadable. */
static int source_key(recv_ctx *r, const tp_source *s, const char **key,
		      char *why, size_t len)
{
	recv_key *k = &r->keys[s - r->cfg->sources];

	if (k->state == 0 && s->token_file) {
		char err[256];
		k->token = token_read(s->token_file, err, sizeof err);
		k->state = k->token ? 1 : -1;
		if (!k->token)
			log_error("source %s: %s", s->name, err);
	}
	if (k->state < 0) {
		snprintf(why, len, "source %s: token_file %s cannot be read",
			 s->name, s->token_file);
		return TP_ECONFIG;
	}
	*key = k->token;
	return TP_OK;
}

const tp_config *recv_config(const recv_ctx *r)
{
	return r->cfg;
}

int recv_source_token(recv_ctx *r, const char *source, const char **token,
		      char *why, size_t len)
{
	const tp_source *s = config_source(r->cfg, source);

	*token = NULL;
	if (!s)
		return recv_check_source(r, source, why, len);
	return source_key(r, s, token, why, len);
}

/* The header must name this node, the claimed source and number. */
static int check_header(const recv_ctx *r, const batch_header *h,
			const char *source, uint64_t seq, char *why, size_t len)
{
	const char *node = r->cfg->node_name;

	if (!h->target || strcmp(h->target, node) != 0)
		snprintf(why, len, "batch is for target %s, not this node %s",
			 h->target ? h->target : "(none)", node);
	else if (!h->source || strcmp(h->source, source) != 0)
		snprintf(why, len, "batch comes from source %s, its name says %s",
			 h->source ? h->source : "(none)", source);
	else if (h->seq != seq)
		snprintf(why, len, "batch is number %" PRIu64 ", its name says %"
			 PRIu64, h->seq, seq);
	else
		return TP_OK;
	return TP_EDATA;
}

static int verify(recv_ctx *r, const char *path, const char *source,
		  uint64_t seq, char digest[65], char *why, size_t len)
{
	const tp_source *s = config_source(r->cfg, source);
	const char *key = NULL;
	batch_header h = { 0 };

	if (!s)
		return recv_check_source(r, source, why, len);
	int rc = source_key(r, s, &key, why, len);
	if (rc != TP_OK)
		return rc;
	if (batch_verify_file(path, &r->lim, (const unsigned char *)key,
			      key ? strlen(key) : 0, &h, digest, why, len) != 0) {
		batch_header_clear(&h);
		return TP_EDATA;
	}
	rc = check_header(r, &h, source, seq, why, len);
	batch_header_clear(&h);
	return rc;
}

/*
 * Look for batch seq of source already held, under any extension, in the
 * inbox or in applied/. 0 none, 1 found (held and its digest filled),
 * -1 error (why filled).
 */
static int find_held(recv_ctx *r, const char *source, uint64_t seq,
		     char *held, char digest[65], char *why, size_t len)
{
	static const char *const sub[] = { "", "/applied" };
	static const char *const ext[] = { ".tar.zst", ".tar.gz", ".tar" };
	struct stat st;

	for (size_t i = 0; i < 2; i++)
		for (size_t j = 0; j < 3; j++) {
			int n = snprintf(held, PATH_MAX, "%s/%s%s/%0*" PRIu64 "%s",
					 r->inbox, source, sub[i],
					 SPOOL_SEQ_DIGITS, seq, ext[j]);
			if (n < 0 || n >= PATH_MAX || lstat(held, &st) < 0)
				continue;
			batch_header h = { 0 };
			char err[512];
			/* No key: the held copy was checked on receipt; only
			 * its identity matters here. */
			int v = batch_verify_file(held, &r->lim, NULL, 0, &h,
						  digest, err, sizeof err);
			batch_header_clear(&h);
			if (v == 0)
				return 1;
			snprintf(why, len, "batch already held in %s cannot be "
				 "read: %s", held, err);
			return -1;
		}
	return 0;
}

/* fsync path, rename it to final (copying across file systems), fsync. */
static int place(recv_ctx *r, const char *path, const char *final,
		 const char *dir)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (rename(path, final) == 0)
		return spool_fsync_dir(dir);
	if (errno != EXDEV)
		return -1;
	/* path lives elsewhere: copy into the inbox, then drop path. */
	char tmp[PATH_MAX];
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	int out = recv_tmpfile(r, tmp);
	int rc = out < 0 ? FC_EWRITE : fc_copy_fd(in, out, 0, NULL);
	close(in);
	if (out >= 0 && rc != FC_OK) {
		close(out);
		unlink(tmp);
	}
	if (rc != FC_OK || spool_commit(out, tmp, final) < 0)
		return -1;
	unlink(path);
	return 0;
}

static int store(recv_ctx *r, const char *path, const char *source,
		 uint64_t seq, const char *ext, char *why, size_t len)
{
	char dir[PATH_MAX], final[PATH_MAX];

	if (snprintf(dir, sizeof dir, "%s/%s", r->inbox, source)
	    >= (int)sizeof dir ||
	    snprintf(final, sizeof final, "%s/%0*" PRIu64 "%s", dir,
		     SPOOL_SEQ_DIGITS, seq, ext) >= (int)sizeof final) {
		snprintf(why, len, "inbox path too long");
		return TP_EFAIL;
	}
	if (spool_mkdirs(dir) < 0 || place(r, path, final, dir) < 0) {
		snprintf(why, len, "could not store %s: %s", final,
			 strerror(errno));
		return TP_EFAIL;
	}
	return TP_OK;
}

int recv_store_file(recv_ctx *r, const char *path, const char *source,
		    uint64_t seq, const char *ext, enum recv_stored *how,
		    char *why, size_t len)
{
	char digest[65], held_digest[65], held[PATH_MAX];

	*how = RECV_NEW;
	/* ext becomes part of a file name: only the three known ones. */
	if (strcmp(ext, ".tar.zst") && strcmp(ext, ".tar.gz") &&
	    strcmp(ext, ".tar")) {
		snprintf(why, len, "not a batch file extension");
		return TP_EDATA;
	}
	int rc = verify(r, path, source, seq, digest, why, len);
	if (rc != TP_OK)
		return rc;
	int found = find_held(r, source, seq, held, held_digest, why, len);
	if (found < 0)
		return TP_EFAIL;
	if (found == 1) {
		if (strcmp(digest, held_digest) != 0) {
			snprintf(why, len, "conflicts with batch already "
				 "received (%s)", held);
			return TP_EDATA;
		}
		*how = RECV_DUPLICATE;
		return TP_OK;
	}
	return store(r, path, source, seq, ext, why, len);
}

/* ---- drop folder ---- */

static int reject(recv_ctx *r, const char *path, const char *why)
{
	log_error("rejected %s: %s", path, why);
	if (spool_quarantine(r->cfg->spool, path, why) < 0) {
		log_error("could not quarantine %s: %m", path);
		return TP_EFAIL;
	}
	return TP_EDATA;
}

/* Remove a dropped file once its batch is safe in the inbox. */
static int drop_done(const char *dir, const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT) {
		log_error("batch stored, but could not remove %s: %m", path);
		return TP_EFAIL;
	}
	if (spool_fsync_dir(dir) < 0)
		log_warn("could not fsync %s: %m", dir);
	return TP_OK;
}

/*
 * Copy the dropped file into an inbox temp file, at most max_batch_bytes.
 * TP_OK, TP_EDATA (why filled), or another code (logged).
 */
static int drop_copy(recv_ctx *r, const char *path, char *tmp,
		     char *why, size_t len)
{
	uint64_t max = (uint64_t)r->cfg->max_batch_bytes;
	struct stat st;
	/* O_NONBLOCK: a fifo put there must not hang the run. */
	int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (in < 0) {
		log_error("could not open %s: %m", path);
		return TP_EUNAVAIL;
	}
	int rc = TP_OK;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, len, "not a regular file");
		rc = TP_EDATA;
	} else if ((uint64_t)st.st_size > max) {
		snprintf(why, len, "%jd bytes, larger than max_batch_bytes "
			 "(%" PRIu64 ")", (intmax_t)st.st_size, max);
		rc = TP_EDATA;
	}
	int out = rc == TP_OK ? recv_tmpfile(r, tmp) : -1;
	if (rc == TP_OK && out < 0)
		rc = TP_EFAIL;
	if (rc == TP_OK) {
		int c = fc_copy_fd(in, out, max, NULL);
		if (c == FC_ELIMIT) {
			snprintf(why, len, "larger than max_batch_bytes (%" PRIu64
				 ")", max);
			rc = TP_EDATA;
		} else if (c != FC_OK) {
			log_error("could not copy %s to %s: %m", path, tmp);
			rc = c == FC_EREAD ? TP_EUNAVAIL : TP_EFAIL;
		}
	}
	close(in);
	if (out >= 0 && close(out) < 0 && rc == TP_OK) {
		log_error("could not write %s: %m", tmp);
		rc = TP_EFAIL;
	}
	if (out >= 0 && rc != TP_OK)
		unlink(tmp);
	return rc;
}

static int drop_one(recv_ctx *r, const char *dir, const spool_entry *e)
{
	char path[PATH_MAX], tmp[PATH_MAX], why[512] = "";
	enum recv_stored how;
	const char *ext = e->name + strlen(e->source) + 1 + SPOOL_SEQ_DIGITS;

	if (fc_path(path, sizeof path, dir, e->name) < 0) {
		log_error("path too long: %s/%s", dir, e->name);
		return TP_EFAIL;
	}
	int rc = recv_check_source(r, e->source, why, sizeof why);
	if (rc == TP_OK)
		rc = drop_copy(r, path, tmp, why, sizeof why);
	if (rc == TP_EDATA)
		return reject(r, path, why);
	if (rc != TP_OK)
		return rc;
	rc = recv_store_file(r, tmp, e->source, e->seq, ext, &how, why,
			     sizeof why);
	if (rc != TP_OK || how == RECV_DUPLICATE)
		unlink(tmp);
	if (rc == TP_EDATA)
		return reject(r, path, why);
	if (rc != TP_OK) {
		log_error("%s: %s", path, why);
		return rc;
	}
	if (how == RECV_DUPLICATE)
		log_debug("%s: duplicate of a batch already received, removed",
			  path);
	else
		log_info("source %s: received batch %" PRIu64 " from %s",
			 e->source, e->seq, path);
	return drop_done(dir, path);
}

int recv_from_dir(recv_ctx *r, const char *dir)
{
	struct stat st;
	spool_entry *list = NULL;
	size_t n = 0;
	int rc = TP_OK;

	if (stat(dir, &st) < 0) {
		log_error("drop folder %s: %m", dir);
		return TP_EUNAVAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("drop folder %s: not a directory", dir);
		return TP_EUNAVAIL;
	}
	if (spool_list(dir, true, &list, &n) < 0) {
		log_error("could not list drop folder %s: %m", dir);
		return TP_EUNAVAIL;
	}
	for (size_t i = 0; i < n; i++)
		rc = tp_exit_worse(rc, drop_one(r, dir, &list[i]));
	spool_list_free(list, n);
	return rc;
}
