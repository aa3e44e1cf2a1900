/*
 * load_int.h - shared by load.c (connections, catalog, hand-over) and
 * loadpart.c (writing the load's parts). Not for other modules.
 */
#ifndef TP_LOAD_INT_H
#define TP_LOAD_INT_H

#include <libpq-fe.h>
#include <limits.h>
#include <stdint.h>
#include "batch.h"
#include "config.h"
#include "load.h"
#include "strbuf.h"

/* One table being loaded. */
typedef struct load_table {
	char *schema, *name;       /* on the source */
	char *display;             /* schema.name, for logs */
	char *oid;                 /* pg_class oid, text */
	char relkind;              /* 'r' or 'p' */
	char *select;              /* COPY (SELECT cols FROM [ONLY] t) TO STDOUT */
	strbuf defline;            /* "=\tTID\t..." as the target sees it */
	unsigned tid;
	double est_rows;           /* pg_class.reltuples, for progress */
	uint64_t rows, bytes;
} load_table;

/* A part that left tp-load: what B records. */
typedef struct load_done {
	uint64_t seq, events, bytes;
} load_done;

typedef struct load_ctx {
	const tp_config *cfg;
	const load_opts *o;
	const tp_target *target;
	PGconn *a, *b, *c;         /* copy, plan + record, reservations */
	char *schema;              /* quoted capture schema */
	char *snap;                /* S, pg_snapshot text */
	char *load_id;
	char *created;             /* ISO 8601 UTC */
	load_table *t;
	size_t nt;
	char *key;                 /* signing token or NULL */
	char dir[PATH_MAX];        /* outbox/<target> */
	/* parts */
	uint64_t first_seq;        /* seq of part 1 */
	uint64_t void_from;        /* header "void_from" for part 1, or 0 */
	uint64_t part;             /* number of the open part, 0: none */
	int fd;                    /* its file */
	char tmp[PATH_MAX];
	batch_writer *w;
	uint64_t part_bytes;
	strbuf line;
	load_done *done;
	size_t ndone;
	struct archive *out;       /* the stream on out_fd */
	/* the schema part: S lines before part 1's rows, after the last's */
	strbuf schema_pre, schema_post;
	bool progress;             /* stderr is a terminal */
} load_ctx;

/* Add one COPY row (with or without its newline) of table t. TP_OK or code. */
int part_row(load_ctx *lc, load_table *t, const char *row, size_t len);
/* Close the open part, if any, and emit it (not the last). */
int part_cut(load_ctx *lc);
/* Emit the final, empty part flagged "last", closing any open one first. */
int part_finish(load_ctx *lc);
/* After B committed: end the stream. */
int part_stream_close(load_ctx *lc);
/* Drop what a failed run holds (the open part's file, the stream). */
void part_abort(load_ctx *lc);

#endif
