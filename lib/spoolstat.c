/*
 * spoolstat.c - one-pass scans and pruning of spool folders (see
 * spoolstat.h). Everything is relative to an open folder (fstatat,
 * unlinkat), so a name is never looked up through a symlinked path twice.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "spool.h"
#include "spoolstat.h"

/* The entry as a regular file (never following a symlink), or -1. */
static int stat_regular(DIR *d, const struct dirent *de, struct stat *st)
{
	if (fstatat(dirfd(d), de->d_name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	return S_ISREG(st->st_mode) ? 0 : -1;
}

int spool_stat_dir(const char *dir, spool_stat *st)
{
	struct dirent *de;
	struct stat sb;
	uint64_t seq;

	memset(st, 0, sizeof *st);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !spool_parse_name(de->d_name, &seq) ||
		    stat_regular(d, de, &sb) < 0)
			continue;
		if (st->n == 0 || seq < st->min)
			st->min = seq;
		if (seq > st->max)
			st->max = seq;
		if (st->n == 0 || sb.st_mtime < st->oldest)
			st->oldest = sb.st_mtime;
		st->bytes += (uint64_t)sb.st_size;
		st->n++;
	}
	closedir(d);
	return 0;
}

static int wanted(const char *name, enum spool_prune_kind kind)
{
	uint64_t seq;

	switch (kind) {
	case PRUNE_BATCHES:
		return name[0] != '.' && spool_parse_name(name, &seq);
	case PRUNE_ALL:
		return name[0] != '.';
	case PRUNE_TEMP:
		return strncmp(name, ".tmp-", 5) == 0;
	}
	return 0;
}

int spool_prune(const char *dir, enum spool_prune_kind kind, time_t cutoff,
		uint64_t *deleted)
{
	struct dirent *de;
	struct stat sb;
	int rc = 0, first_errno = 0;

	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (!wanted(de->d_name, kind) || stat_regular(d, de, &sb) < 0 ||
		    sb.st_mtime >= cutoff)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			(*deleted)++;
		} else if (errno != ENOENT && rc == 0) {
			rc = -1;
			first_errno = errno;
		}
	}
	closedir(d);
	errno = first_errno;
	return rc;
}

int spool_each_subdir(const char *dir, void (*fn)(const char *name, void *arg), void *arg)
{
	struct dirent *de;
	struct stat sb;

	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (!config_name_valid(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(sb.st_mode))
			continue;
		fn(de->d_name, arg);
	}
	closedir(d);
	return 0;
}
