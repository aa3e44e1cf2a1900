/*
 * spoolstat.h - what tp-status and tp-vacuum need to know about a spool
 * folder, read in one streaming pass (readdir, no list in memory), and
 * the pruning of old files.
 */
#ifndef TP_SPOOLSTAT_H
#define TP_SPOOLSTAT_H

#include <stdint.h>
#include <time.h>

/* The batch files ("<16 digits><ext>") of one folder. */
typedef struct spool_stat {
	uint64_t n;            /* how many */
	uint64_t min, max;     /* lowest and highest number; 0 when n == 0 */
	uint64_t bytes;        /* their total size */
	time_t oldest;         /* oldest mtime; 0 when n == 0 */
} spool_stat;

/* Fill st for dir; a missing dir is empty. 0 or -1/errno. */
int spool_stat_dir(const char *dir, spool_stat *st);

enum spool_prune_kind {
	PRUNE_BATCHES,         /* batch files only (sent/, applied/) */
	PRUNE_ALL,             /* every regular file not starting with '.' (quarantine/) */
	PRUNE_TEMP             /* ".tmp-*" leftovers of killed writers */
};

/*
 * Delete the regular files of the kind in dir whose mtime is before
 * cutoff; adds the count to *deleted. A missing dir is fine. 0, or -1
 * with errno set (the first failure; the others are still tried).
 */
int spool_prune(const char *dir, enum spool_prune_kind kind, time_t cutoff,
		uint64_t *deleted);

/*
 * Call fn(name, arg) for each sub-folder of dir whose name is a valid
 * node name (outbox/<target>, inbox/<source>). 0 or -1/errno.
 */
int spool_each_subdir(const char *dir, void (*fn)(const char *name, void *arg), void *arg);

#endif
