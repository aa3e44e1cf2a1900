/*
 * recv.h - tp-recv: verify incoming batches and store them in the inbox,
 * <spool>/inbox/<source>/<seq16><ext>, where tp-apply takes them.
 *
 * Every way in (a drop folder, HTTP: recv_http.h) ends the same: the bytes
 * sit in a temporary file, recv_store_file() verifies them (known source,
 * digests, signature with the source's token, header naming this node and
 * the claimed source and number) and renames them into the inbox. A batch
 * whose number is already held (in the inbox or applied/) is a duplicate
 * when its manifest digest matches, a conflict otherwise.
 */
#ifndef TP_RECV_H
#define TP_RECV_H

#include <stddef.h>
#include <stdint.h>
#include "batch.h"
#include "config.h"

typedef struct recv_ctx recv_ctx;

/* Per-run state: limits, tokens read once per source. */
recv_ctx *recv_new(const tp_config *cfg);
void recv_free(recv_ctx *r);

/* The config r was made with. */
const tp_config *recv_config(const recv_ctx *r);

/*
 * The token of [source NAME] (read once, kept): *token is NULL when the
 * source has no token_file. TP_OK; TP_EDATA when source is not one this
 * node accepts; TP_ECONFIG when its token_file cannot be read (logged).
 * why is filled on failure.
 */
int recv_source_token(recv_ctx *r, const char *source, const char **token,
		      char *why, size_t len);

/* What recv_store_file did with a good batch. */
enum recv_stored { RECV_NEW, RECV_DUPLICATE };

/*
 * Create a temporary file for an incoming batch in <spool>/inbox/ (same
 * file system as the inbox, so storing it is a rename). Writes its path
 * into path (PATH_MAX bytes); fd or -1 with an error logged.
 */
int recv_tmpfile(recv_ctx *r, char *path);

/*
 * Is source one this node accepts? TP_OK, or TP_EDATA with why filled.
 */
int recv_check_source(recv_ctx *r, const char *source, char *why, size_t len);

/*
 * Verify the batch file at path, which claims to be batch seq of source
 * with extension ext (".tar.zst", ...), and store it durably as
 * inbox/<source>/<seq16><ext> (fsync, rename, fsync; copied first when
 * path is on another file system).
 * Returns:
 *   TP_OK      stored (*how = RECV_NEW: path is gone) or an identical batch
 *              was already held (*how = RECV_DUPLICATE: path is untouched)
 *   TP_EDATA   the batch is bad or conflicts: why says so; path untouched,
 *              the caller quarantines it
 *   other      the node failed (token unreadable, disk): logged, why set,
 *              path untouched; try again later
 */
int recv_store_file(recv_ctx *r, const char *path, const char *source,
		    uint64_t seq, const char *ext, enum recv_stored *how,
		    char *why, size_t len);

/*
 * Take every batch file that senders dropped in dir, store the good ones
 * in the inbox and remove them from dir, quarantine the bad ones. Returns
 * TP_OK, TP_EDATA when any was refused (after doing the rest),
 * TP_EUNAVAIL when dir cannot be read, or the worst other failure.
 */
int recv_from_dir(recv_ctx *r, const char *dir);

#endif
