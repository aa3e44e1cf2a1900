/*
 * ddl_int.h - what ddldiff.c (schemas, tables, columns, keys) and
 * ddlobj.c (types, sequences, constraints, indexes, extensions,
 * functions, foreign keys) share: the phases S lines are grouped in, in
 * the order they are applied. See ddldiff.c and ddlobj.c for why this
 * order.
 */
#ifndef TP_DDL_INT_H
#define TP_DDL_INT_H

#include "ddl.h"

enum ddl_phase {
	/* before the delta's rows */
	PH_ENUM_ADD,            /* new labels of existing enums, under lo's names */
	PH_FK_DROP,             /* before the keys and indexes they rest on */
	PH_CON_DROP, PH_IDX_DROP, PH_COL_DROP, PH_TAB_DROP,
	PH_NSP_RENAME, PH_NSP_CREATE,
	PH_EXT_CREATE,          /* and updated: their types may be used below */
	PH_OBJ_MOVE, PH_OBJ_RENAME,     /* types, sequences, functions, labels... */
	PH_TAB_MOVE, PH_TAB_RENAME, PH_COL_RENAME, PH_CON_RENAME,
	PH_SEQ_CREATE, PH_ENUM_CREATE, PH_DOMAIN_CREATE, PH_COMPOSITE_CREATE, PH_TYPE_ALTER,
	PH_FUNC_CREATE,         /* and replaced: over the types, under defaults */
	PH_TAB_CREATE, PH_COL_ADD, PH_COL_TYPE, PH_COL_DEFAULT, PH_NOTNULL_DROP,
	PH_FUNC_DROP,           /* once no default calls them */
	PH_COMPOSITE_DROP, PH_DOMAIN_DROP, PH_ENUM_DROP, PH_SEQ_DROP,
	PH_EXT_DROP,            /* once no column, type or function uses them */
	PH_NSP_DROP,
	PH_ROWS,
	/* after them */
	PH_NOTNULL_SET, PH_PKEY_ADD, PH_CON_ADD, PH_IDX_ADD,
	PH_FK_ADD,              /* rows of both tables in, referenced keys made */
	PH_SEQ_POST,
	PH_N
};

struct ddl_items {
	strbuf ph[PH_N];
};

/* One S line of n fields (NULL: \N) into phase ph. */
void ddl_item(ddl_items *it, enum ddl_phase ph, const char *kind, int n, ...);
/* The same with the fields in an array. */
void ddl_itemv(ddl_items *it, enum ddl_phase ph, const char *kind, int n,
	       const char *const *v);

#endif
