/*
 * lock.c - one run per stage per node (see lock.h).
 *
 * The lock is an flock on an open file description, so it goes away with
 * the process however it dies; no stale lock files to clean up. The fd is
 * kept open on purpose until exit. The file holds the pid of the last
 * holder, for the admin who wonders who has it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"
#include "log.h"
#include "spool.h"
#include "tp.h"

/* flock, retrying every 50 ms for up to wait_s seconds; 0 or -1/errno. */
static int lock_poll(int fd, unsigned wait_s)
{
	const struct timespec nap = { 0, 50 * 1000 * 1000 };
	unsigned long naps = wait_s * 20UL;

	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK || naps-- == 0)
			return -1;
		nanosleep(&nap, NULL);
	}
}

int lock_stage(const char *spool, const char *stage)
{
	return lock_stage_wait(spool, stage, 0);
}

int lock_stage_wait(const char *spool, const char *stage, unsigned wait_s)
{
	char dir[PATH_MAX], file[PATH_MAX];

	if (snprintf(dir, sizeof dir, "%s/lock", spool) >= (int)sizeof dir ||
	    snprintf(file, sizeof file, "%s/%s.lock", dir, stage) >= (int)sizeof file) {
		log_error("lock path too long under %s", spool);
		return TP_EFAIL;
	}
	if (spool_mkdirs(dir) < 0) {
		log_error("cannot create %s: %m", dir);
		return TP_EFAIL;
	}
	int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0) {
		log_error("cannot open lock %s: %m", file);
		return TP_EFAIL;
	}
	if (lock_poll(fd, wait_s) < 0) {
		int busy = errno == EWOULDBLOCK;
		if (busy)
			log_error("another %s is running (lock %s)", stage, file);
		else
			log_error("cannot lock %s: %m", file);
		close(fd);
		return busy ? TP_ETEMP : TP_EFAIL;
	}
	/* Best effort: the pid is for people, the flock is the lock. */
	if (ftruncate(fd, 0) == 0)
		dprintf(fd, "%ld\n", (long)getpid());
	return TP_OK;           /* fd stays open: that is the lock */
}
