/*
 * batch.h - the batch file: a tar archive (zstd, gzip or no compression)
 * whose members are, in this order:
 *
 *   header.json         identity: format, kind, source, target, seq,
 *                       lo/hi snapshots, created; read first so the
 *                       applier can refuse a gap or a duplicate before
 *                       any data
 *   events-000001.tsv   events, one per line (see below), each member at
 *   events-000002.tsv   most member_cap bytes unless one line is larger
 *   ...
 *   manifest.json       identity again, event count, and every earlier
 *                       member's name, size and SHA-256
 *   manifest.sig        hex HMAC-SHA256 of manifest.json's bytes, keyed
 *                       with the shared token (present only when signed)
 *
 * Event lines are tab-separated fields in COPY text escaping (\N is NULL):
 *   =  TID SCHEMA TABLE  COL TYPE KEYPOS  COL TYPE KEYPOS ...
 *        defines table TID for the rest of this member (every member
 *        repeats the definitions it uses, so each member stands alone);
 *        KEYPOS is 0 for a non-key column, else the column's position
 *        1..k in the primary key
 *   I  TID  V1 .. Vn            insert, all columns in definition order
 *   U  TID  K1 .. Kk  V1 .. Vn  update: old key values, then the new row
 *   D  TID  K1 .. Kk            delete by old key
 *   T  TID                      truncate
 *   S  KIND FIELD ...           a schema change (teleport-batch.5 lists
 *        the kinds); uses no TID, applied in line order with the rows
 * man/teleport-batch.5 is the reference for people.
 *
 * Memory is bounded by member_cap: the writer buffers one member (tar
 * needs each member's size before its data); the reader streams.
 */
#ifndef TP_BATCH_H
#define TP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"

#define BATCH_FORMAT "teleport-batch/1"
#define BATCH_MEMBER_CAP_DEFAULT (4u << 20)

typedef struct batch_header {
	char *kind;          /* "rows" (row events) or "load" (initial load) */
	char *source;
	char *target;
	uint64_t seq;        /* 1, 2, 3 ... without gaps per (source, target) */
	char *lo;            /* pg_snapshot text: events not visible here ... */
	char *hi;            /* ... and visible here; "" for load batches */
	char *created;       /* ISO 8601 UTC */
	/*
	 * Optional, in header.json only (the manifest covers it by digest);
	 * see man/teleport-batch.5. Load batches (tp-load): */
	char *load;          /* the load's id; NULL for row batches */
	uint64_t part;       /* 1, 2 ... within the load */
	bool last;           /* the load's final part */
	char **tables;       /* part 1: loaded tables, schema and name pairs */
	size_t ntables;      /* pairs in tables */
	bool rebuild_indexes; /* part 1: indexes and foreign keys rebuilt after the rows */
	/* Numbers void_from .. seq-1 belonged to a load that never finished
	 * and are void; 0 when seq follows the previous batch. */
	uint64_t void_from;
} batch_header;

void batch_header_clear(batch_header *h);   /* frees the strings */

typedef struct batch_limits {
	uint64_t max_member;     /* biggest member, bytes */
	uint64_t max_total;      /* sum of uncompressed members, bytes */
	unsigned max_members;
} batch_limits;

/* Limits derived from [node] max_batch_bytes. */
void batch_limits_default(batch_limits *l, uint64_t max_batch_bytes);

/* ---- writing ---- */

typedef struct batch_writer batch_writer;

/*
 * Start a batch on fd (not closed by the writer). key/keylen: the shared
 * token to sign with, or NULL/0 for an unsigned batch. Writes header.json.
 * Returns NULL with err filled on failure.
 */
batch_writer *batch_writer_new(int fd, enum tp_compression comp,
			       const batch_header *h,
			       const unsigned char *key, size_t keylen,
			       size_t member_cap, char *err, size_t errlen);

/* Register table TID's definition line ("=\tTID\t..." without newline). */
int batch_writer_table(batch_writer *w, unsigned tid,
		       const char *defline, size_t len);
/*
 * Append one event line (without newline) that uses table TID; the
 * writer puts TID's definition into the current member first if needed.
 * 0 or -1 (see batch_writer_error).
 */
int batch_writer_event(batch_writer *w, unsigned tid,
		       const char *line, size_t len);
/*
 * Append one schema change line ("S\tKIND\t...", no newline), which
 * uses no table definition. Counted as an event. 0 or -1.
 */
int batch_writer_line(batch_writer *w, const char *line, size_t len);
/* Last member, manifest, signature, archive close. 0 or -1. */
int batch_writer_finish(batch_writer *w);
uint64_t batch_writer_events(const batch_writer *w);
const char *batch_writer_error(const batch_writer *w);
void batch_writer_free(batch_writer *w);

/* ---- reading ---- */

typedef struct batch_reader batch_reader;

/*
 * Open a batch for streaming from fd. Only tar with zstd, gzip or no
 * compression is accepted. key: the token the signature must match, or
 * NULL when none is configured (a present signature is then not checked).
 */
batch_reader *batch_reader_new(int fd, const batch_limits *lim,
			       const unsigned char *key, size_t keylen);
/*
 * Read and check header.json (must be the first member). 0, or -1 with
 * batch_reader_error() saying why (the batch is bad: exit 65).
 */
int batch_reader_header(batch_reader *r, const batch_header **h);
/*
 * Next event line, NUL-terminated, without its newline; *line stays valid
 * until the next call and may be modified in place by the caller.
 * Returns 1 for a line, 0 at the end once the manifest, every digest and
 * the signature (when a key is set) were verified, -1 on a bad batch.
 */
int batch_reader_next(batch_reader *r, char **line, size_t *len);
/* After 0 from batch_reader_next: the events count of the manifest. */
uint64_t batch_reader_events(const batch_reader *r);
/* Hex SHA-256 of manifest.json, a batch's identity for duplicate checks. */
const char *batch_reader_digest(const batch_reader *r);
const char *batch_reader_error(const batch_reader *r);
void batch_reader_free(batch_reader *r);

/*
 * Read a whole batch file and verify it (header, member names, limits,
 * digests, manifest, signature). On success fills *h (caller clears it)
 * and digest (65 bytes, hex) and returns 0; else -1 with err filled.
 */
int batch_verify_file(const char *path, const batch_limits *lim,
		      const unsigned char *key, size_t keylen,
		      batch_header *h, char digest[65],
		      char *err, size_t errlen);

#endif
