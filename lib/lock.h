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

/*
 * The same, but while another run holds the lock, wait for it up to
 * wait_s seconds (polling) before giving up with TP_ETEMP. For runs that
 * serve one request and should queue behind a sibling, not fail
 * (tp-recv --inetd and --cgi).
 */
int lock_stage_wait(const char *spool, const char *stage, unsigned wait_s);

#endif
