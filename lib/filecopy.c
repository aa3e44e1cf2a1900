/*
 * filecopy.c - bounded copies, byte comparison, tagged temporary files.
 * Buffers are fixed-size so memory stays flat whatever the file size.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filecopy.h"
#include "strbuf.h"

#define FC_BUF (64u * 1024u)

/* write(2) until done: a short write is not an error (pipes, signals). */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static ssize_t read_some(int fd, char *buf, size_t n)
{
	ssize_t r;
	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

int fc_copy_fd(int in, int out, uint64_t limit, uint64_t *copied)
{
	char *buf = xmalloc(FC_BUF);
	uint64_t total = 0;
	ssize_t r;
	int rc = FC_OK;

	if (copied)
		*copied = 0;
	while ((r = read_some(in, buf, FC_BUF)) > 0) {
		total += (uint64_t)r;
		if (limit && total > limit) {
			rc = FC_ELIMIT;
			break;
		}
		if (write_all(out, buf, (size_t)r) < 0) {
			rc = FC_EWRITE;
			break;
		}
		if (copied)
			*copied = total;
	}
	if (r < 0)
		rc = FC_EREAD;
	int e = errno;
	free(buf);
	errno = e;
	return rc;
}

/* Read exactly n bytes unless the file ends first; -1 on error. */
static ssize_t read_full(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read_some(fd, buf + got, n - got);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int same_fd(int fa, int fb)
{
	struct stat sa, sb;

	if (fstat(fa, &sa) < 0 || fstat(fb, &sb) < 0)
		return -1;
	if (sa.st_size != sb.st_size)
		return 0;
	char *ba = xmalloc(FC_BUF), *bb = xmalloc(FC_BUF);
	int rc;
	for (;;) {
		ssize_t ra = read_full(fa, ba, FC_BUF);
		ssize_t rb = read_full(fb, bb, FC_BUF);
		if (ra < 0 || rb < 0) {
			rc = -1;
			break;
		}
		if (ra != rb || memcmp(ba, bb, (size_t)ra) != 0) {
			rc = 0;
			break;
		}
		if (ra == 0) {
			rc = 1;
			break;
		}
	}
	int e = errno;
	free(ba);
	free(bb);
	errno = e;
	return rc;
}

int fc_same_file(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fa < 0)
		return -1;
	int fb = open(b, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fb < 0) {
		int e = errno;
		close(fa);
		errno = e;
		return -1;
	}
	int rc = same_fd(fa, fb);
	int e = errno;
	close(fa);
	close(fb);
	errno = e;
	return rc;
}

int fc_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int fc_tmpfile(const char *dir, const char *tag, char *path)
{
	char name[NAME_MAX];

	snprintf(name, sizeof name, ".tmp-%s-XXXXXX", tag);
	if (fc_path(path, PATH_MAX, dir, name) < 0)
		return -1;
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* mkostemp makes 0600; the spool's files are group-readable. */
	if (fchmod(fd, 0640) < 0) {
		int e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return -1;
	}
	return fd;
}

void fc_clean_tmp(const char *dir, const char *tag)
{
	char prefix[NAME_MAX], path[PATH_MAX];
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	int n = snprintf(prefix, sizeof prefix, ".tmp-%s-", tag);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, (size_t)n) != 0)
			continue;
		if (fc_path(path, sizeof path, dir, de->d_name) == 0)
			unlink(path);
	}
	closedir(d);
}
