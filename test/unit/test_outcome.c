/*
 * test_outcome.c - unit tests of lib/outcome.c (the run record: times,
 * error streaks, the last error line from log.c), lib/hold.c (the record
 * of a stream held for a schema change) and lib/spoolstat.c.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "hold.h"
#include "log.h"
#include "outcome.h"
#include "spoolstat.h"
#include "tap.h"

static char dir[] = "/tmp/tp-test-outcome-XXXXXX";

static void times(void)
{
	char buf[32];

	tp_time_iso(0, buf, sizeof buf);
	is_str(buf, "", "time 0 is empty");
	tp_time_iso(981173106, buf, sizeof buf);
	is_str(buf, "2001-02-03T04:05:06Z", "ISO 8601 UTC");
	is_int(tp_time_parse("2001-02-03T04:05:06Z"), 981173106, "parsed back");
	is_int(tp_time_parse("2001-02-03T04:05:06.123456Z"), 981173106, "microseconds dropped");
	is_int(tp_time_parse("2001-02-03T04:05:06"), 0, "no zone: refused");
	is_int(tp_time_parse("2001-02-03T04:05:06Zx"), 0, "trailing text: refused");
	is_int(tp_time_parse(NULL), 0, "NULL");
}

static void records(tp_config *cfg)
{
	char path[PATH_MAX];
	outcome o;

	snprintf(path, sizeof path, "%s/state/test_outcome.json", dir);
	outcome_note("did %d things", 3);
	outcome_record(cfg, 0);
	ok(outcome_read(path, &o) == 0, "record written and read");
	is_str(o.command, "test_outcome", "command is the program name");
	is_int(o.exit, 0, "exit 0");
	is_str(o.summary, "did 3 things", "summary");
	ok(!o.error && !o.error_since && o.last_ok, "success: no error, last_ok set");
	outcome_clear(&o);

	log_error("could not \"frob\" %s", "x");
	outcome_record(cfg, 69);
	ok(outcome_read(path, &o) == 0 && o.exit == 69, "failure recorded");
	is_str(o.error, "could not \"frob\" x", "the last error line, quotes intact");
	ok(o.error_since && o.last_ok, "error since set, last_ok kept");
	outcome_clear(&o);
	ok(outcome_read("/nonexistent/x.json", &o) < 0, "missing record: -1");
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp) {
		fputs(text, fp);
		fclose(fp);
	}
}

static void holds(void)
{
	char path[PATH_MAX];
	tp_hold h = { 42, 981173106, 981173166, "42703", "COPY: 42703: column \"b\" \xc3\xa9" };
	tp_hold back;

	is_int(hold_read(dir, "src", &back), 0, "no record: 0");
	ok(back.seq == 0 && !back.reason, "... and nothing in it");
	ok(hold_write(dir, "src", &h) == 0, "record written (its folder made)");
	is_int(hold_read(dir, "src", &back), 1, "and read back");
	ok(back.seq == 42 && back.since == 981173106 && back.last_try == 981173166,
	   "seq, since, last try");
	is_str(back.sqlstate, "42703", "sqlstate");
	is_str(back.reason, h.reason, "reason, quotes and UTF-8 intact");
	hold_clear(&back);
	is_int(hold_read(dir, "other", &back), 0, "another source has none");
	ok(hold_path(dir, "src", path, sizeof path), "its path");
	write_file(path, "{\"source\": \"elsewhere\", \"seq\": 3}");
	ok(hold_read(dir, "src", &back) < 0 && back.seq == 0, "another source's record: refused");
	write_file(path, "{\"source\": \"src\", \"seq\": 0}");
	ok(hold_read(dir, "src", &back) < 0, "seq 0: refused");
	write_file(path, "not json");
	ok(hold_read(dir, "src", &back) < 0, "garbage: refused");
	ok(hold_remove(dir, "src") == 0 && access(path, F_OK) < 0, "removed");
	ok(hold_remove(dir, "src") == 0, "removing none is fine");
}

static void stats(void)
{
	char sub[256], f[512];
	spool_stat st;
	uint64_t n = 0;

	snprintf(sub, sizeof sub, "%s/box", dir);
	mkdir(sub, 0700);
	const char *names[] = { "0000000000000007.tar.zst", "0000000000000003.tar", "notes.txt" };
	for (int i = 0; i < 3; i++) {
		snprintf(f, sizeof f, "%s/%s", sub, names[i]);
		FILE *fp = fopen(f, "w");
		fputs("abc", fp);
		fclose(fp);
	}
	ok(spool_stat_dir(sub, &st) == 0, "stat a folder");
	ok(st.n == 2 && st.min == 3 && st.max == 7 && st.bytes == 6, "batch files only: 2, 3..7, 6 bytes");
	struct timeval old[2] = { { 1000, 0 }, { 1000, 0 } };
	snprintf(f, sizeof f, "%s/%s", sub, names[1]);
	utimes(f, old);
	ok(spool_prune(sub, PRUNE_BATCHES, 2000, &n) == 0 && n == 1, "prune the old batch only");
	ok(access(f, F_OK) < 0, "it is gone");
	ok(spool_stat_dir("/nonexistent/box", &st) == 0 && st.n == 0, "missing folder is empty");
}

int main(void)
{
	tp_config cfg = { 0 };
	char cmd[PATH_MAX + 16];

	log_init("test_outcome");
	log_set_level(-1);
	if (!mkdtemp(dir))
		return 1;
	cfg.spool = dir;
	times();
	records(&cfg);
	holds();
	stats();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
