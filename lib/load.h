/*
 * load.h - tp-load: the initial load of a target, handed over exactly to
 * the change stream.
 *
 * Three connections to the source:
 *
 *   B  BEGIN (READ COMMITTED); lock the target's row FOR UPDATE, as
 *      tp-batch does (so no tp-batch runs for the target meanwhile).
 *   A  BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; S = the snapshot.
 *   B  plans the target's pending events up to S as ordinary row batches
 *      (the same code as tp-batch), leaving out the loaded tables: every
 *      change to them that S holds is in the copy. The target moves to S.
 *   A  COPYs every loaded table into load batches ("parts") numbered after
 *      those row batches, each at most --batch-size of rows, plus a final
 *      empty part flagged "last".
 *   C  (autocommit) before each part leaves tp-load: records its number in
 *      <schema>.load_reserve, so a crash never lets a number be used twice.
 *   B  records the parts as batches of kind 'load' and the tables in
 *      <schema>.loaded, and commits.
 *
 * Events visible in S are in the copy or in the row batches before it;
 * later events land in batches after it: nothing lost, nothing twice, with
 * no per-event filter. If tp-load dies before B commits, nothing is
 * recorded; parts that got out are void, and the next batch says so in its
 * header ("after"), so the target skips them.
 *
 * B is READ COMMITTED on purpose: it must see every transaction that S
 * sees, and S is taken after B's first statement.
 */
#ifndef TP_LOAD_H
#define TP_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"

#define LOAD_BATCH_SIZE_DEFAULT ((uint64_t)256 << 20)

typedef struct load_opts {
	const char *target;       /* [target NAME] */
	char **tables;            /* "schema.table" names; none: every matched one */
	size_t ntables;
	bool outbox;              /* into the outbox, not to out_fd */
	bool fresh;               /* load tables loaded before, too */
	bool no_schema;           /* leave out the schema part (tables, types...) */
	bool rebuild_indexes;     /* the target drops and rebuilds indexes and
				     foreign keys around the rows */
	uint64_t batch_size;      /* bytes of rows per part */
	int out_fd;               /* the batch stream (a tar), when !outbox */
} load_opts;

/* Lock the stage, connect, load. Returns the exit code (tp.h). */
int load_run(const tp_config *cfg, const load_opts *o);

#endif
