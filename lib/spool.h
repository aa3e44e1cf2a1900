/*
 * spool.h - the node's files: outbox/<target>/, inbox/<source>/,
 * quarantine/, and lock files, below config `spool`.
 *
 * Every file that matters is written durably: a temporary name in the same
 * folder, fsync, rename, fsync of the folder (maildir's tmp/new). Readers
 * never see a half-written file under its final name.
 *
 * Batch files are named by sequence number, zero padded so that name order
 * is number order: outbox/<target>/0000000000000042.tar.zst,
 * inbox/<source>/0000000000000042.tar.zst. In a shared drop folder, where
 * several sources may write, the name carries the source:
 * <source>.0000000000000042.tar.zst.
 */
#ifndef TP_SPOOL_H
#define TP_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_SEQ_DIGITS 16

/* mkdir -p, mode 0750 for new folders. Returns 0, or -1 with errno set. */
int spool_mkdirs(const char *path);

/* fsync a folder so a rename or unlink in it is durable. 0 or -1/errno. */
int spool_fsync_dir(const char *dir);

/*
 * Create a temporary file in dir ("dir/.tmp-XXXXXX"), O_CLOEXEC, mode 0640.
 * Writes its path into tmppath (size PATH_MAX). Returns fd or -1/errno.
 */
int spool_tmpfile(const char *dir, char *tmppath);

/*
 * fsync fd, close it, rename tmppath to finalpath, fsync finalpath's folder.
 * Closes fd in every case; on failure unlinks tmppath. 0 or -1/errno.
 */
int spool_commit(int fd, const char *tmppath, const char *finalpath);

/* rename + fsync of both folders. 0 or -1/errno. */
int spool_move(const char *from, const char *to);

/*
 * List the batch files in dir: regular files whose names are
 * "<16 digits>.tar[.zst|.gz]" (with_source: "<source>.<16 digits>.tar…"
 * for drop folders, any valid source name; entry.source holds it), sorted
 * by sequence, then source. Dot files (".tmp-*"), symlinks, folders and
 * any other name are skipped.
 * *out is a malloc'd array of malloc'd names; free with spool_list_free.
 * Returns 0 or -1/errno (a missing dir gives 0 and an empty list).
 */
typedef struct spool_entry {
	char *name;          /* file name inside dir */
	char *source;        /* drop folders: the "<source>." prefix, else NULL */
	uint64_t seq;
} spool_entry;
int spool_list(const char *dir, bool with_source, spool_entry **out, size_t *n);
void spool_list_free(spool_entry *list, size_t n);

/* Is name a batch file name "<16 digits><ext>"? Its number into *seq. */
bool spool_parse_name(const char *name, uint64_t *seq);

/* Extension for a compression setting: ".tar.zst", ".tar.gz", ".tar". */
const char *spool_batch_ext(int compression);

/* Format "<seq 16 digits><ext>" into buf. */
void spool_batch_name(char *buf, size_t len, uint64_t seq, const char *ext);

/*
 * Quarantine a file: move it to <spool>/quarantine/<UTC stamp>-<name> and
 * write a "<same>.why" file holding the reason line. 0 or -1/errno.
 */
int spool_quarantine(const char *spool, const char *path, const char *why);

#endif
