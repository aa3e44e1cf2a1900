/*
 * lock.h - one run per stage per node.
 *
 * flock(LOCK_EX|LOCK_NB) on <spool>/lock/<stage>.lock, held until the
 * process exits and never unlinked (unlinking races the next run).
 */
#ifndef TP_LOCK_H
#define TP_LOCK_H

/*
 * Take the lock. Returns TP_OK (fd kept open, O_CLOEXEC), TP_ETEMP when
 * another run holds it (logged: "another tp-batch is running (lock FILE)"),
 * or TP_EFAIL when the lock file cannot be opened (logged).
 */
int lock_stage(const char *spool, const char *stage);

#endif
