/*
 * hold.h - a source's stream held until a schema change arrives.
 *
 * When the next batch of a source fails on the target for want of a
 * table, column or type (SQLSTATE 42P01, 42703, 42704), tp-apply rolls it
 * back and leaves it in the inbox for the next run. So that tp-status,
 * which reads files and takes no lock, can say so, tp-apply keeps one
 * record per held stream in <spool>/inbox/<source>/held.json:
 *
 *   {"source": "billing", "seq": 42, "since": "2024-05-01T12:00:00Z",
 *    "last_try": "2024-05-01T12:05:00Z", "sqlstate": "42703",
 *    "reason": "batch billing/42 line 3: COPY ...: 42703: column ..."}
 *
 * "since" is when a run first found batch seq held; later runs that find
 * it held again keep it. The record goes once the batch is applied, or
 * once it fails for another reason. Written durably (temp, fsync,
 * rename), so a reader never sees half a record.
 */
#ifndef TP_HOLD_H
#define TP_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct tp_hold {
	uint64_t seq;           /* the held batch; 0: none */
	time_t since;           /* first run that found it held */
	time_t last_try;        /* latest run that did */
	char sqlstate[6];
	char *reason;           /* the error line tp-apply logged, malloc'd or NULL */
} tp_hold;

/*
 * Read the record of source into h. 1 when there is one, 0 when there is
 * none (h zeroed), -1 with errno set when it cannot be read (EINVAL: not
 * such a record).
 */
int hold_read(const char *spool, const char *source, tp_hold *h);
/* Write it (h->reason may be NULL). 0 or -1/errno. */
int hold_write(const char *spool, const char *source, const tp_hold *h);
/* Remove it; none is fine. 0 or -1/errno. */
int hold_remove(const char *spool, const char *source);
void hold_clear(tp_hold *h);

/* Its path into buf; false when it does not fit. */
bool hold_path(const char *spool, const char *source, char *buf, size_t len);

#endif
