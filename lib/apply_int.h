/*
 * apply_int.h - tp-apply's insides, shared by apply.c (ledger, inbox,
 * transactions), applytab.c (table definitions and their statements) and
 * applyeng.c (the engine that turns event lines into COPY and pipelined
 * prepared statements).
 */
#ifndef TP_APPLY_INT_H
#define TP_APPLY_INT_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "strbuf.h"

/* Set by SIGTERM/SIGINT; checked between event lines. */
extern volatile sig_atomic_t apply_stop;

/* ---- applytab.c: table definitions ---- */

enum apply_op { OP_INSERT, OP_UPDATE, OP_DELETE, OP_NOPS };

/*
 * One "=" definition, cached for the whole run by its text after the TID
 * (members and batches repeat it under varying TIDs), together with its
 * prepared statements, which live as long as the session.
 */
typedef struct apply_table {
	char *key;              /* definition text after "=\tTID\t" */
	char *qname;            /* "schema"."table", quoted */
	char *display;          /* qname with control bytes replaced, for logs */
	char *relname;          /* unquoted table name (COPY error context) */
	size_t ncols;
	size_t nkeys;
	char **cols;            /* quoted column names, definition order */
	size_t *keycol;         /* keycol[i]: column index of key part i+1 */
	unsigned serial;        /* names its prepared statements */
	int cascade_child;      /* -1 unknown; 1: an ON DELETE CASCADE foreign key on
				 * the target may delete its rows before their own
				 * captured deletes arrive */
	bool prepared[OP_NOPS];
	char *copy_sql;         /* COPY qname (cols) FROM STDIN */
	struct apply_table *next;   /* hash chain */
} apply_table;

typedef struct apply_tabcache apply_tabcache;

apply_tabcache *tabcache_new(void);
void tabcache_free(apply_tabcache *c);
/*
 * The table of a definition line (NUL-terminated, "=\tTID\t..."), parsed
 * and cached on first sight. *tid receives the TID. NULL when the line is
 * malformed (err says why: the batch is bad).
 */
apply_table *tabcache_define(apply_tabcache *c, PGconn *conn, const char *line,
			     size_t len, unsigned *tid, char *err, size_t errlen);
/* After an error the session's prepared statements are in doubt. */
void tabcache_forget_prepared(apply_tabcache *c);
/* After a schema change (a foreign key added or dropped) cascades are. */
void tabcache_forget_cascades(apply_tabcache *c);

/* Statement text of op for t with $N placeholders, malloc'd. */
char *tab_stmt_sql(const apply_table *t, enum apply_op op);
/*
 * The same text with fn writing each parameter (idx 0-based), so that
 * --dry-run prints literals where the real thing sends parameters. fn
 * returns 0 or -1 to stop; tab_stmt_build returns -1 if fn did.
 */
typedef int (*tab_param_fn)(strbuf *sb, size_t idx, void *arg);
int tab_stmt_build(strbuf *sb, const apply_table *t, enum apply_op op,
		   tab_param_fn fn, void *arg);
/* "tp_<serial>_<op>": the prepared statement's name, into buf. */
void tab_stmt_name(const apply_table *t, enum apply_op op, char *buf, size_t len);
/* Parameters op takes: ncols, nkeys + ncols, nkeys. */
size_t tab_nparams(const apply_table *t, enum apply_op op);

/* ---- applyddl.c: schema changes ---- */

/*
 * Apply (or with dry set, print) one "S" line (NUL-terminated, split in
 * place). TP_OK, TP_EDATA for a malformed line, 75 when it waits for
 * another schema change (missing table, type ...), or the exit code of
 * the failed statement.
 */
int apply_ddl_line(PGconn *conn, FILE *dry, const char *label, char *line, size_t len,
		   uint64_t lineno, strbuf *early);
/*
 * A new enum label that the target lacks is not added by apply_ddl_line
 * but appended to early (NUL-terminated statements): the batch must stop
 * (APPLY_EARLY), and these run, each committed, before it is tried again.
 */
int apply_ddl_early(PGconn *conn, const char *label, const strbuf *early);
#define APPLY_EARLY 1000        /* not an exit code: never leaves tp-apply */

/* ---- applyload.c: initial loads (tp-load) ---- */

typedef struct apply_engine apply_engine;

/* What the load code needs of a tp-apply run. */
typedef struct load_apply {
	PGconn *conn;
	apply_engine *eng;
	const struct batch_limits *lim;
	const char *key;            /* the source's token, or NULL */
	const char *schema;         /* quoted bookkeeping schema */
	const char *source;
	const char *node;           /* this node: the parts' target */
	FILE *dry;                  /* --dry-run output, or NULL */
	const char *path;           /* part 1 in the inbox ... */
	const struct batch_header *h;   /* ... and its header */
	uint64_t last;              /* out: seq of the load's last part */
	char bad_path[4200];        /* out: the part to quarantine after 65 */
} load_apply;

/*
 * Apply the load that starts with la->path, once all its parts are in
 * the inbox (75 until then), in one transaction with the ledger.
 */
int load_apply_inbox(load_apply *la);

/*
 * applyrebuild.c, tp-load --rebuild-indexes: drop the loaded tables'
 * foreign keys and the indexes no constraint owns, keeping in *saved how
 * to build them again; rebuild_create builds them (PQclear saved after).
 */
int rebuild_drop(load_apply *la, PGresult **saved);
int rebuild_create(load_apply *la, PGresult *saved);

/*
 * e[0..n): a source's inbox entries from the one that cannot be applied
 * yet. If a batch there says that the numbers from *last + 1 on are void
 * (a load that never finished), record that in the ledger, move *last to
 * just before it and return 1; else 0.
 */
struct spool_entry;
int load_void_skip(load_apply *la, const char *dir, const struct spool_entry *e, size_t n,
		   uint64_t *last);

/* ---- applyeng.c: the engine ---- */

typedef struct apply_engine apply_engine;

/* dry: print SQL there instead of running anything; NULL runs it. */
apply_engine *engine_new(PGconn *conn, FILE *dry);
void engine_free(apply_engine *e);

/* Start a batch; label ("source/seq") prefixes every error line. */
void engine_begin(apply_engine *e, const char *label);
/*
 * One event line (NUL-terminated, may be modified) and its line number in
 * the batch. TP_OK, TP_EDATA for a malformed line, or the exit code of a
 * failed statement (logged, without row values).
 */
int engine_line(apply_engine *e, char *line, size_t len, uint64_t lineno);
/* The enum labels the batch stopped for (APPLY_EARLY); see apply_ddl_early. */
const strbuf *engine_early(const apply_engine *e);
/* Flush what is queued, leave pipeline mode. TP_OK or exit code. */
int engine_finish(apply_engine *e);
/*
 * After a failure: drop what is queued, ROLLBACK, forget the prepared
 * statements (a failed pipeline may have skipped some), so the session
 * is usable again.
 */
void engine_abort(apply_engine *e);
/* Event and schema change lines seen since engine_begin. */
uint64_t engine_events(const apply_engine *e);
/* Of them, the row changes (I, U, D, T lines): what the apply log counts. */
uint64_t engine_rows(const apply_engine *e);

/*
 * Exit code for a failed statement's result, and one log line naming
 * what failed but never a row value: DETAIL is left out, and for data
 * exceptions (class 22) so is the message, which quotes the bad value.
 */
int apply_report(const PGresult *res, PGconn *conn, const char *what);

/*
 * What apply_report last said when it made a batch wait for a schema
 * change (75), so that tp-apply can record the wait for tp-status
 * (hold.h). Reset before a batch; take copies it out and resets.
 */
typedef struct apply_wait {
	char sqlstate[6];
	char reason[1024];      /* the error line: what failed, SQLSTATE, message */
} apply_wait;
void apply_wait_reset(void);
bool apply_wait_take(apply_wait *out);

#endif
