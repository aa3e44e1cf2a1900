/*
 * filecopy.h - small file helpers shared by tp-send and tp-recv: bounded
 * copies, byte comparison, and temporary files whose name tells which
 * command made them, so that a re-run can clear what a killed run left.
 */
#ifndef TP_FILECOPY_H
#define TP_FILECOPY_H

#include <stdint.h>

enum fc_copy_result {
	FC_OK = 0,
	FC_EREAD = -1,     /* reading the input failed (errno set) */
	FC_EWRITE = -2,    /* writing the output failed (errno set) */
	FC_ELIMIT = -3     /* the input holds more than limit bytes */
};

/*
 * Copy everything from in to out, at most limit bytes (0: no limit).
 * *copied (may be NULL) gets the bytes written. Returns an fc_copy_result.
 */
int fc_copy_fd(int in, int out, uint64_t limit, uint64_t *copied);

/*
 * Compare two files byte by byte: 1 same, 0 different, -1 error (errno;
 * ENOENT when one is missing).
 */
int fc_same_file(const char *a, const char *b);

/*
 * Create "dir/.tmp-<tag>-XXXXXX" (mode 0640, O_CLOEXEC) and write its path
 * into path (PATH_MAX bytes). Returns the fd, or -1 with errno set.
 */
int fc_tmpfile(const char *dir, const char *tag, char *path);

/*
 * Remove "dir/.tmp-<tag>-*" files: what a killed run of the same command
 * left. Call only while holding that command's lock. Errors are ignored
 * (a leftover temp file is harmless, readers skip ".tmp-*").
 */
void fc_clean_tmp(const char *dir, const char *tag);

/* Join dir and name into buf; -1 (ENAMETOOLONG) when it does not fit. */
int fc_path(char *buf, size_t len, const char *dir, const char *name);

#endif
