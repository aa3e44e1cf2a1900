/*
 * send_dir.c - the "dir:PATH" transport: a shared drop folder.
 *
 * Batch <seq> of source S lands as PATH/S.<seq16><ext> through a temporary
 * ".tmp-send-S-XXXXXX" in PATH: fsync, rename, fsync PATH. A receiver
 * never sees a half-written batch under its final name, and the name carries
 * the source because several sources may share one folder.
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

#include "filecopy.h"
#include "log.h"
#include "send.h"
#include "spool.h"
#include "strbuf.h"
#include "tp.h"

typedef struct dir_priv {
	char *path;
	int checked;    /* folder checked and our stale temp files cleared */
} dir_priv;

/*
 * The folder must exist and take new files. Checked once per run, at the
 * first batch, so an empty outbox needs no mounted share.
 */
static int dir_check(dir_priv *d, const send_batch *b)
{
	struct stat st;
	char tag[NAME_MAX];

	if (d->checked)
		return TP_OK;
	if (stat(d->path, &st) < 0) {
		log_error("target %s: drop folder %s: %m", b->target, d->path);
		return TP_EUNAVAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("target %s: drop folder %s: not a directory",
			  b->target, d->path);
		return TP_EUNAVAIL;
	}
	if (access(d->path, W_OK | X_OK) < 0) {
		log_error("target %s: drop folder %s: not writable: %m",
			  b->target, d->path);
		return TP_EUNAVAIL;
	}
	/* Our lock is held: any temp file of this source is a killed run's. */
	snprintf(tag, sizeof tag, "send-%s", b->source);
	fc_clean_tmp(d->path, tag);
	d->checked = 1;
	return TP_OK;
}

/* Copy the outbox file into a temp file in the folder and commit it. */
static int dir_copy(const dir_priv *d, const send_batch *b, const char *final)
{
	char tmp[PATH_MAX], tag[NAME_MAX];
	int in, out, rc;

	in = open(b->path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		log_error("target %s: could not open %s: %m", b->target, b->path);
		return TP_EFAIL;
	}
	snprintf(tag, sizeof tag, "send-%s", b->source);
	out = fc_tmpfile(d->path, tag, tmp);
	if (out < 0) {
		log_error("target %s: could not create a file in %s: %m",
			  b->target, d->path);
		close(in);
		return TP_EUNAVAIL;
	}
	rc = fc_copy_fd(in, out, 0, NULL);
	close(in);
	if (rc == FC_EREAD) {
		log_error("target %s: could not read %s: %m", b->target, b->path);
		close(out);
		unlink(tmp);
		return TP_EFAIL;
	}
	if (rc != FC_OK) {
		log_error("target %s: could not write %s: %m", b->target, tmp);
		close(out);
		unlink(tmp);
		return TP_EUNAVAIL;
	}
	if (spool_commit(out, tmp, final) < 0) {
		log_error("target %s: could not store %s: %m", b->target, final);
		return TP_EUNAVAIL;
	}
	return TP_OK;
}

/* The batch already sits in the folder: fine if identical, else conflict. */
static int dir_existing(const dir_priv *d, const send_batch *b,
			const char *final)
{
	int same = fc_same_file(b->path, final);
	if (same < 0 && errno == ENOENT && access(b->path, F_OK) == 0) {
		/* The receiver took it meanwhile: deliver again, it will
		 * recognise the duplicate. */
		return dir_copy(d, b, final);
	}
	if (same == 1) {
		log_debug("target %s: batch %s already in %s", b->target,
			  b->name, final);
		return TP_OK;
	}
	if (same == 0) {
		log_error("target %s: batch %s conflicts with %s, which holds "
			  "different bytes under the same number",
			  b->target, b->name, final);
		return TP_EDATA;
	}
	log_error("target %s: could not compare %s with %s: %m",
		  b->target, b->path, final);
	return TP_EUNAVAIL;
}

static int dir_deliver(send_transport *t, const send_batch *b)
{
	dir_priv *d = t->priv;
	char final[PATH_MAX];
	struct stat st;
	int rc = dir_check(d, b);

	if (rc != TP_OK)
		return rc;
	if (snprintf(final, sizeof final, "%s/%s.%0*" PRIu64 "%s", d->path,
		     b->source, SPOOL_SEQ_DIGITS, b->seq, b->ext)
	    >= (int)sizeof final) {
		log_error("target %s: drop folder path too long: %s",
			  b->target, d->path);
		return TP_ECONFIG;
	}
	/* A re-send after a crash finds its own earlier copy: not an error. */
	if (lstat(final, &st) == 0)
		return dir_existing(d, b, final);
	if (errno != ENOENT) {
		log_error("target %s: %s: %m", b->target, final);
		return TP_EUNAVAIL;
	}
	return dir_copy(d, b, final);
}

static void dir_free(send_transport *t)
{
	dir_priv *d = t->priv;
	free(d->path);
	free(d);
	free(t);
}

send_transport *send_dir_new(const char *path)
{
	send_transport *t = xcalloc(1, sizeof *t);
	dir_priv *d = xcalloc(1, sizeof *d);
	size_t n = strlen(path);

	/* "dir:/x/" and "dir:/x" name the same folder; keep "/" itself. */
	while (n > 1 && path[n - 1] == '/')
		n--;
	d->path = xstrndup(path, n);
	t->priv = d;
	t->deliver = dir_deliver;
	t->free = dir_free;
	return t;
}
