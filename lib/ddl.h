/*
 * ddl.h - schema changes without event triggers (ddl = diff).
 *
 * A "description" is the text form of the objects a target replicates, as
 * one snapshot sees them: its schemas, its tables that carry the capture
 * trigger, their columns (by attribute number) and primary keys. Objects
 * are identified by oid and attnum, so a rename is told apart from a
 * drop and an add. Lines of COPY text fields, sorted, one object each:
 *
 *   n OID NAME                                  schema
 *   r OID NSPOID SCHEMA NAME NATTS              table (NATTS: relnatts,
 *                                               dropped columns included)
 *   a RELOID ATTNUM NAME TYPE NOTNULL DEFAULT GENERATED IDENTITY IDVALUE
 *   p RELOID CONOID NAME ATTNUM,ATTNUM,...      primary key
 *
 * and the other objects (ddl_obj), each "KIND OID OWNER SCHEMA NAME
 * FIELD...", OWNER being the schema's oid, or the table's for objects of
 * a table; parts of an object follow it as "PART OID SUB NAME DEF":
 *
 *   e ... (enum)                          E TYPOID LABELOID LABEL
 *   c ... (composite type)                C TYPOID ATTNUM NAME TYPE
 *   d ... BASETYPE NOTNULL DEFAULT        D TYPOID CONOID NAME CHECKDEF
 *   s ... TYPE START INC MIN MAX CACHE CYCLE OWNERREL OWNERATT VALUE
 *   k ... CONTYPE DEF                     unique, check constraint
 *   i ... UNIQUE TAIL                     index that backs no constraint;
 *                                         TAIL: its definition after USING
 *   x ... VERSION                         extension
 *   u ... PROKIND ARGS IDENTITY TAIL      function (f) or procedure (p);
 *                                         TAIL: pg_get_functiondef after
 *                                         its head "CREATE ... name(ARGS)"
 *   f ... REFOID KEY REFKEY MATCH UPD DEL DEFERRABLE DEFERRED SETCOLS VALID
 *                                         foreign key (OWNER: the table
 *                                         with it); KEY, REFKEY, SETCOLS:
 *                                         attnums "1,2"; MATCH, UPD, DEL:
 *                                         pg_constraint's letters
 *
 * Types, sequences, extensions (but plpgsql) and functions (prokind f or
 * p, in a trusted language) are described when their schema is one the
 * globs can match (sequences: when the globs match them by name, or they
 * are owned by a replicated table); a replicated column of a type from
 * elsewhere needs that type on the target already. What belongs to an
 * extension is not described: the extension brings it. Foreign keys are
 * described when both their table and the one they reference are.
 *
 * tp-batch's plan (batcher.c) describes the catalog in its REPEATABLE
 * READ transaction, so the description is exactly as of the delta's hi
 * (format_type and pg_get_expr read the syscache, i.e. the latest state:
 * a type renamed after hi shows its new name), diffs it against the one
 * stored for the delta's lo, and stores the resulting "S" lines
 * (teleport-batch(5)) with the batch rows.
 */
#ifndef TP_DDL_H
#define TP_DDL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "strbuf.h"

typedef struct ddl_col {
	int attnum;
	char *name, *type;
	char *def;              /* default or generation expression, or NULL */
	bool notnull, generated;
	char identity;          /* 'a' (ALWAYS), 'd' (BY DEFAULT) or 0 */
	char *idvalue;          /* the identity sequence's last value, or NULL */
} ddl_col;

typedef struct ddl_rel {
	unsigned oid, nsp;
	char *schema, *name;
	int natts;
	ddl_col *cols;          /* by attnum */
	size_t ncols;
	unsigned pk_oid;        /* 0: no primary key */
	char *pk_name;
	int *pk;                /* attnums in key order */
	size_t npk;
} ddl_rel;

typedef struct ddl_nsp {
	unsigned oid;
	char *name;
} ddl_nsp;

/* A part of an object: enum label, composite attribute, domain check. */
typedef struct ddl_part {
	unsigned oid;           /* label, constraint; attnum of an attribute */
	char *name, *def;       /* def: attribute type, check definition */
} ddl_part;

#define DDL_OBJ_MAXF 10

typedef struct ddl_obj {
	char kind;              /* e c d s k i */
	unsigned oid, owner;    /* owner: schema oid, or table oid for k and i */
	char *schema, *name;
	char *f[DDL_OBJ_MAXF];  /* the kind's fields (NULL: \N) */
	int nf;
	ddl_part *parts;        /* in order: labels by sort order, attnums */
	size_t nparts;
} ddl_obj;

typedef struct ddl_cat {
	ddl_nsp *nsps;          /* by oid */
	size_t nnsps;
	ddl_rel *rels;          /* by oid */
	size_t nrels;
	ddl_obj *objs;          /* by kind, then oid */
	size_t nobjs;
} ddl_cat;

/* ---- ddlcat.c ---- */

/*
 * Describe the target's objects as the current transaction sees them.
 * schema: [node] schema (unquoted). *out: malloc'd text. Exit code.
 */
int ddl_describe(PGconn *conn, const tp_config *cfg, const tp_target *t, char **out);
/*
 * The description of target t's objects from raw, the unfiltered text of
 * sql/ddl.sql's describe(). *out: malloc'd. Exit code (malformed: 1).
 */
int ddl_filter(const char *raw, const tp_target *t, char **out);
/* Parse a description; NULL when malformed. */
ddl_cat *ddl_cat_parse(const char *descr);
void ddl_cat_free(ddl_cat *c);
const ddl_rel *ddl_rel_find(const ddl_cat *c, unsigned oid);
const ddl_col *ddl_col_find(const ddl_rel *r, int attnum);
const ddl_obj *ddl_obj_find(const ddl_cat *c, char kind, unsigned oid);
const ddl_nsp *ddl_nsp_find(const ddl_cat *c, unsigned oid);

/* ---- ddldiff.c ---- */

/*
 * The "S" lines that turn lo's objects into hi's, each ending in '\n':
 * pre (drops, renames, creates, loosened constraints: before the delta's
 * rows) and post (tightened constraints: after them).
 */
void ddl_diff(const ddl_cat *lo, const ddl_cat *hi, strbuf *pre, strbuf *post);
/*
 * The event names (ev_schema, ev_table) whose rows a delta ships: the
 * tables in both lo and hi, under both names. New tables are copied as of
 * hi instead; dropped ones are gone. Two text[] literals.
 */
void ddl_event_names(const ddl_cat *lo, const ddl_cat *hi, strbuf *schemas, strbuf *names);
/*
 * Rewrite one stored S line (no newline) for target t's batch: with
 * apply_schema set, every schema becomes it, so do the schemas of type
 * names (format_type text) from schemas the target matches, and
 * schema-level items are left out (returns false). out receives the line.
 */
bool ddl_remap(const char *line, size_t len, const tp_target *t, strbuf *out);
/* ---- ddlobj.c: the other objects' diff (types, sequences, constraints, indexes) ---- */
typedef struct ddl_items ddl_items;
void ddl_diff_objs(const ddl_cat *lo, const ddl_cat *hi, ddl_items *it);

/* ---- ddlplan.c ---- */

/* The schema side of one delta, computed in the plan transaction. */
typedef struct ddl_delta {
	bool on;                /* ddl = diff and a description is stored */
	char *cat_lo, *cat_hi;  /* catalog ids, decimal */
	ddl_cat *lo, *hi;       /* event-triggers: lo is the last marker's */
	strbuf pre, post;
	/* ddl = event-triggers (ddlmark.c) */
	bool events;
	bool inline_ddl;        /* some marker changes the target's objects */
	strbuf ev_schemas, ev_names;    /* text[] literals: every name in the delta */
} ddl_delta;

/*
 * In the plan transaction (REPEATABLE READ, snapshot hi): describe, diff
 * against the target's stored description, store a new version when it
 * changed and point the target at it. schema_q: quoted [node] schema.
 */
int ddl_plan(PGconn *conn, const tp_config *cfg, const tp_target *t,
	     const char *schema_q, ddl_delta *d);
/*
 * ddl = event-triggers, after ddl_plan in the same transaction: walk the
 * markers (sql/ddlevent.sql) of the delta (lo_snap, hi_snap]: collect
 * every table name they know, note whether they change the target's
 * objects, and make d->post the changes from the last of them to hi
 * (whatever no event trigger recorded: sequence values, mostly).
 */
int ddl_plan_markers(PGconn *conn, const tp_target *t, const char *schema_q,
		     const char *lo_snap, const char *hi_snap, ddl_delta *d);

/*
 * Walk the markers of the delta (lo_snap, hi_snap) whose transactions
 * end in (ev_lo, ev_hi], in order, from description *text (filtered for
 * t): *text becomes the description after the last of them (malloc'd,
 * the old one freed); when schemas/names are given, every table of every
 * description seen is added to them (db_array_add; the caller closes
 * them); *changed is set when one differs from its predecessor.
 */
int ddl_walk_markers(PGconn *conn, const tp_target *t, const char *schema_q,
		     const char *lo_snap, const char *hi_snap, int64_t ev_lo, int64_t ev_hi,
		     char **text, bool *changed, strbuf *schemas, strbuf *names);
/* The stored text of catalog version id into *out (malloc'd). Exit code. */
int ddl_load_text(PGconn *conn, const char *schema_q, const char *id, char **out);
/* Add the tables of c to two text[] literals being built (db_array_add). */
void ddl_names_add(const ddl_cat *c, strbuf *schemas, strbuf *names);

/* Copy the rows of the delta's new tables as of hi, for batch seq. */
int ddl_copy_new(PGconn *conn, const tp_target *t, const char *schema_q,
		 const ddl_delta *d, int64_t seq);
void ddl_delta_free(ddl_delta *d);
/* tp-install: store the first description of a target just added. */
int ddl_baseline(PGconn *conn, const tp_config *cfg, const tp_target *t,
		 const char *schema_q);
/* Load catalog version id (decimal) into *out. Exit code. */
int ddl_load(PGconn *conn, const char *schema_q, const char *id, ddl_cat **out);

/*
 * True when a table was renamed away from a name that another table holds
 * at hi: the delta's events under that name are ambiguous. what gets it.
 */
bool ddl_names_ambiguous(const ddl_cat *lo, const ddl_cat *hi, char *what, size_t len);

#endif
