/*
 * spool.c - the node's files (see spool.h).
 *
 * Durability is maildir's recipe: write under a temporary name in the
 * final folder, fsync the file, rename it, fsync the folder. A crash at
 * any point leaves either no file or the whole file under its final name;
 * leftover ".tmp-*" files are skipped by spool_list.
 *
 * Every function returns 0 or -1 with errno set, so callers can log "%m".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "config.h"
#include "spool.h"
#include "strbuf.h"

/* snprintf into a PATH_MAX buffer; ENAMETOOLONG when it does not fit. */
static int path_fmt(char *buf, const char *fmt, const char *a, const char *b)
{
	int n = snprintf(buf, PATH_MAX, fmt, a, b);
	if (n < 0 || n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* The folder holding path: "a/b/c" gives "a/b", "c" gives ".". */
static void parent_of(const char *path, char *buf)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		strcpy(buf, ".");
	else if (slash == path)
		strcpy(buf, "/");
	else
		snprintf(buf, PATH_MAX, "%.*s", (int)(slash - path), path);
}

int spool_mkdirs(const char *path)
{
	char buf[PATH_MAX];
	struct stat st;

	if (!*path) {
		errno = ENOENT;
		return -1;
	}
	if (path_fmt(buf, "%s%s", path, "") < 0)
		return -1;
	/* Each prefix ending before a '/', then the whole path. */
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0750) < 0) {
			if (errno != EEXIST)
				return -1;
			if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode)) {
				errno = ENOTDIR;
				return -1;
			}
		}
		*p = c;
		if (c == '\0')
			return 0;
	}
}

int spool_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int spool_tmpfile(const char *dir, char *tmppath)
{
	if (path_fmt(tmppath, "%s/%s", dir, ".tmp-XXXXXX") < 0)
		return -1;
	int fd = mkostemp(tmppath, O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0640) < 0) {
		int saved = errno;
		close(fd);
		unlink(tmppath);
		errno = saved;
		return -1;
	}
	return fd;
}

int spool_commit(int fd, const char *tmppath, const char *finalpath)
{
	char dir[PATH_MAX];
	int saved;

	int rc = fsync(fd);
	saved = errno;
	if (close(fd) < 0 && rc == 0) {
		rc = -1;        /* NFS may report write errors only here */
		saved = errno;
	}
	if (rc == 0 && rename(tmppath, finalpath) < 0) {
		rc = -1;
		saved = errno;
	}
	if (rc < 0) {
		unlink(tmppath);
		errno = saved;
		return -1;
	}
	parent_of(finalpath, dir);
	return spool_fsync_dir(dir);
}

int spool_move(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (rename(from, to) < 0)
		return -1;
	parent_of(to, b);
	parent_of(from, a);
	if (spool_fsync_dir(b) < 0)
		return -1;
	return strcmp(a, b) ? spool_fsync_dir(a) : 0;
}

/* ---- listing ---------------------------------------------------------- */

/*
 * "<16 digits><ext>", or with a source "<name>.<16 digits><ext>". Names
 * are checked strictly so that nothing else in the folder (notes, a
 * ".why" file, a stray "../x") is ever taken for a batch.
 */
static bool parse_name(const char *name, bool with_source, uint64_t *seq, size_t *srclen)
{
	static const char *const exts[] = { ".tar.zst", ".tar.gz", ".tar" };
	const char *p = name;

	*srclen = 0;
	if (with_source) {
		const char *dot = strchr(name, '.');
		char src[64];
		if (!dot || dot == name || (size_t)(dot - name) >= sizeof src)
			return false;
		memcpy(src, name, (size_t)(dot - name));
		src[dot - name] = '\0';
		if (!config_name_valid(src))
			return false;
		*srclen = (size_t)(dot - name);
		p = dot + 1;
	}
	if (strspn(p, "0123456789") != SPOOL_SEQ_DIGITS)
		return false;
	for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
		if (strcmp(p + SPOOL_SEQ_DIGITS, exts[i]) == 0) {
			*seq = strtoull(p, NULL, 10);   /* 16 digits fit in 64 bits */
			return true;
		}
	}
	return false;
}

bool spool_parse_name(const char *name, uint64_t *seq)
{
	size_t srclen;

	return parse_name(name, false, seq, &srclen);
}

static int entry_cmp(const void *a, const void *b)
{
	const spool_entry *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	int c = strcmp(x->source ? x->source : "", y->source ? y->source : "");
	return c ? c : strcmp(x->name, y->name);
}

static bool is_regular(int dfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_REG;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

int spool_list(const char *dir, bool with_source, spool_entry **out, size_t *n)
{
	spool_entry *list = NULL;
	size_t len = 0, cap = 0;
	struct dirent *de;

	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		uint64_t seq;
		size_t srclen;
		if (de->d_name[0] == '.' || !parse_name(de->d_name, with_source, &seq, &srclen) ||
		    !is_regular(dirfd(d), de)) {
			errno = 0;
			continue;
		}
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			list = xrealloc(list, cap * sizeof *list);
		}
		list[len++] = (spool_entry){
			.name = xstrdup(de->d_name),
			.source = srclen ? xstrndup(de->d_name, srclen) : NULL,
			.seq = seq,
		};
		errno = 0;
	}
	int saved = errno;
	closedir(d);
	if (saved) {
		spool_list_free(list, len);
		errno = saved;
		return -1;
	}
	if (len)
		qsort(list, len, sizeof *list, entry_cmp);
	*out = list;
	*n = len;
	return 0;
}

void spool_list_free(spool_entry *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].name);
		free(list[i].source);
	}
	free(list);
}

const char *spool_batch_ext(int compression)
{
	switch (compression) {
	case TP_COMPRESS_ZSTD: return ".tar.zst";
	case TP_COMPRESS_GZIP: return ".tar.gz";
	default:               return ".tar";
	}
}

void spool_batch_name(char *buf, size_t len, uint64_t seq, const char *ext)
{
	snprintf(buf, len, "%0*" PRIu64 "%s", SPOOL_SEQ_DIGITS, seq, ext);
}

/* ---- quarantine ------------------------------------------------------- */

static int write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write data durably to path via a temporary file in dir. */
static int write_file(const char *dir, const char *path, const char *data, size_t n)
{
	char tmp[PATH_MAX];
	int fd = spool_tmpfile(dir, tmp);

	if (fd < 0)
		return -1;
	if (write_all(fd, data, n) < 0) {
		int saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return spool_commit(fd, tmp, path);
}

/* Across file systems rename fails: copy durably, then unlink the original. */
static int copy_move(const char *from, const char *dir, const char *to)
{
	char tmp[PATH_MAX], parent[PATH_MAX], buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), saved;

	if (in < 0)
		return -1;
	int out = spool_tmpfile(dir, tmp);
	if (out < 0)
		goto fail_in;
	for (;;) {
		ssize_t r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r > 0 && write_all(out, buf, (size_t)r) < 0))
			goto fail_out;
		if (r == 0)
			break;
	}
	close(in);
	if (spool_commit(out, tmp, to) < 0 || unlink(from) < 0)
		return -1;
	parent_of(from, parent);
	return spool_fsync_dir(parent);
fail_out:
	saved = errno;
	close(out);
	unlink(tmp);
	errno = saved;
fail_in:
	saved = errno;
	close(in);
	errno = saved;
	return -1;
}

int spool_quarantine(const char *spool, const char *path, const char *why)
{
	char qdir[PATH_MAX], dest[PATH_MAX], whypath[PATH_MAX], stamp[32], name[NAME_MAX + 40];
	struct tm tm;
	struct stat st;
	time_t now = time(NULL);
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;

	if (path_fmt(qdir, "%s/%s", spool, "quarantine") < 0 || spool_mkdirs(qdir) < 0)
		return -1;
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
	/* Never overwrite an earlier quarantined file of the same name. */
	for (int i = 0;; i++) {
		if (i == 0)
			snprintf(name, sizeof name, "%s-%s", stamp, base);
		else
			snprintf(name, sizeof name, "%s.%d-%s", stamp, i, base);
		if (path_fmt(dest, "%s/%s", qdir, name) < 0)
			return -1;
		if (lstat(dest, &st) < 0 && errno == ENOENT)
			break;
		if (i >= 1000) {
			errno = EEXIST;
			return -1;
		}
	}
	if (spool_move(path, dest) < 0) {
		if (errno != EXDEV || copy_move(path, qdir, dest) < 0)
			return -1;
	}
	if (path_fmt(whypath, "%s%s", dest, ".why") < 0)
		return -1;
	strbuf sb = { 0 };
	strbuf_addf(&sb, "%s\n", why);
	int rc = write_file(qdir, whypath, sb.buf, sb.len);
	int saved = errno;
	strbuf_free(&sb);
	errno = saved;
	return rc;
}
