/*
 * test_spool.c - unit tests of lib/spool.c and lib/lock.c, plus the small
 * helpers everything leans on (tp_exit_worse, strbuf).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "lock.h"
#include "log.h"
#include "spool.h"
#include "strbuf.h"
#include "tap.h"
#include "tp.h"

static char dir[] = "/tmp/tp-test-spool-XXXXXX";

static const char *at(const char *rel)
{
	static char buf[4][PATH_MAX];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], PATH_MAX, "%s/%s", dir, rel);
	return buf[i];
}

static void touch(const char *rel)
{
	int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || close(fd) < 0) {
		perror(rel);
		exit(2);
	}
}

static char *slurp(const char *path)
{
	strbuf sb = { 0 };
	char buf[256];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	return strbuf_detach(&sb);
}

static void test_mkdirs(void)
{
	struct stat st;

	is_int(spool_mkdirs(at("a/b/c")), 0, "mkdir -p a/b/c");
	ok(stat(at("a/b/c"), &st) == 0 && S_ISDIR(st.st_mode), "a/b/c is a folder");
	is_int(st.st_mode & 0777, 0750, "mode 0750");
	is_int(spool_mkdirs(at("a/b/c/")), 0, "again, with a trailing slash");
	touch("a/file");
	ok(spool_mkdirs(at("a/file/x")) < 0 && errno == ENOTDIR, "a file in the way: ENOTDIR");
	is_int(spool_fsync_dir(at("a")), 0, "fsync a folder");
	ok(spool_fsync_dir(at("nope")) < 0 && errno == ENOENT, "fsync a missing folder fails");
}

static void test_commit(void)
{
	char tmp[PATH_MAX];
	struct stat st;

	spool_mkdirs(at("out"));
	int fd = spool_tmpfile(at("out"), tmp);
	ok(fd >= 0, "tmpfile");
	ok(strncmp(tmp, at("out/.tmp-"), strlen(at("out/.tmp-"))) == 0, "tmp name in the folder");
	ok(fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0640, "tmpfile mode 0640");
	ok((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "tmpfile is close-on-exec");
	ok(write(fd, "hello\n", 6) == 6, "write");
	is_int(spool_commit(fd, tmp, at("out/final")), 0, "commit");
	ok(access(tmp, F_OK) < 0, "tmp name gone");
	char *s = slurp(at("out/final"));
	is_str(s, "hello\n", "final content");
	free(s);

	fd = spool_tmpfile(at("out"), tmp);
	ok(spool_commit(fd, tmp, at("missing/final")) < 0 && errno == ENOENT,
	   "commit into a missing folder fails");
	ok(access(tmp, F_OK) < 0, "failed commit removes the tmp file");

	spool_mkdirs(at("other"));
	is_int(spool_move(at("out/final"), at("other/moved")), 0, "move");
	ok(access(at("other/moved"), F_OK) == 0 && access(at("out/final"), F_OK) < 0, "moved");
	ok(spool_move(at("out/none"), at("other/x")) < 0 && errno == ENOENT, "move a missing file");
}

static void test_list(void)
{
	spool_entry *l;
	size_t n;
	char name[64];

	is_int(spool_list(at("absent"), false, &l, &n), 0, "missing folder lists fine");
	ok(n == 0 && l == NULL, "and empty");

	spool_mkdirs(at("box"));
	touch("box/0000000000000010.tar.zst");
	touch("box/0000000000000002.tar.gz");
	touch("box/0000000000000009.tar");
	touch("box/0000000000000001.tar.zst.why");  /* wrong extension */
	touch("box/000000000000003.tar.zst");       /* 15 digits */
	touch("box/00000000000000003.tar.zst");     /* 17 digits */
	touch("box/.tmp-abcdef");
	touch("box/.0000000000000004.tar");
	touch("box/src.0000000000000005.tar");      /* a source prefix */
	touch("box/README");
	spool_mkdirs(at("box/0000000000000007.tar"));      /* a folder */
	if (symlink("0000000000000009.tar", at("box/0000000000000008.tar")) < 0)
		perror("symlink");
	is_int(spool_list(at("box"), false, &l, &n), 0, "list");
	is_int((long long)n, 3, "three batches");
	if (n == 3) {
		is_str(l[0].name, "0000000000000002.tar.gz", "sorted: 2");
		is_str(l[1].name, "0000000000000009.tar", "sorted: 9");
		is_str(l[2].name, "0000000000000010.tar.zst", "sorted: 10");
		is_int((long long)l[2].seq, 10, "seq parsed");
		ok(l[0].source == NULL, "no source without prefix");
	}
	spool_list_free(l, n);

	spool_mkdirs(at("drop"));
	touch("drop/b.0000000000000001.tar.zst");
	touch("drop/a.0000000000000001.tar.zst");
	touch("drop/a.0000000000000000.tar");
	touch("drop/0000000000000003.tar");         /* no source */
	touch("drop/bad name.0000000000000004.tar");
	touch("drop/a.b.0000000000000004.tar");
	touch("drop/.0000000000000004.tar");
	is_int(spool_list(at("drop"), true, &l, &n), 0, "list with sources");
	is_int((long long)n, 3, "three batches with sources");
	if (n == 3) {
		is_str(l[0].name, "a.0000000000000000.tar", "seq first");
		is_str(l[1].source, "a", "then source a");
		is_str(l[2].source, "b", "then source b");
		is_int((long long)l[2].seq, 1, "seq after the prefix");
	}
	spool_list_free(l, n);

	is_str(spool_batch_ext(TP_COMPRESS_ZSTD), ".tar.zst", "zstd ext");
	is_str(spool_batch_ext(TP_COMPRESS_GZIP), ".tar.gz", "gzip ext");
	is_str(spool_batch_ext(TP_COMPRESS_NONE), ".tar", "none ext");
	spool_batch_name(name, sizeof name, 42, ".tar.zst");
	is_str(name, "0000000000000042.tar.zst", "batch name");
	spool_batch_name(name, sizeof name, 9999999999999999ULL, ".tar");
	is_str(name, "9999999999999999.tar", "largest batch name");
}

static void test_quarantine(void)
{
	spool_entry *l;
	size_t n;
	char p[PATH_MAX];

	spool_mkdirs(at("sp/inbox/s"));
	for (int i = 0; i < 2; i++) {
		touch("sp/inbox/s/0000000000000001.tar.zst");
		is_int(spool_quarantine(at("sp"), at("sp/inbox/s/0000000000000001.tar.zst"),
					"bad checksum"), 0, "quarantine #%d", i + 1);
	}
	ok(access(at("sp/inbox/s/0000000000000001.tar.zst"), F_OK) < 0, "gone from the inbox");
	is_int(spool_list(at("sp/quarantine"), false, &l, &n), 0, "list quarantine");
	is_int((long long)n, 0, "quarantined names are not batch names");
	spool_list_free(l, n);

	/* Both copies and both reasons are kept: nothing is overwritten. */
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof cmd, "ls '%s' > '%s'", at("sp/quarantine"), at("ls.out"));
	if (system(cmd) != 0)
		diag("ls failed");
	char *ls = slurp(at("ls.out"));
	int files = 0, whys = 0;
	for (char *q = ls; q && (q = strstr(q, "0000000000000001.tar.zst")); q++) {
		files++;
		if (!strncmp(q + 24, ".why", 4))
			whys++;
	}
	is_int(files, 4, "two files and two reasons");
	is_int(whys, 2, "two .why files");
	if (!ok(ls && ls[8] == 'T' && ls[15] == 'Z' && ls[16] == '-', "UTC stamp prefix"))
		diag("ls: %s", ls ? ls : "(null)");
	free(ls);

	/* The .why of the first one holds the reason line. */
	snprintf(cmd, sizeof cmd, "cat '%s'/*Z-0000000000000001.tar.zst.why > '%s'",
		 at("sp/quarantine"), at("why.out"));
	if (system(cmd) != 0)
		diag("cat failed");
	char *why = slurp(at("why.out"));
	is_str(why, "bad checksum\n", "reason line");
	free(why);

	snprintf(p, sizeof p, "%s", at("sp/inbox/s/none"));
	ok(spool_quarantine(at("sp"), p, "x") < 0 && errno == ENOENT, "missing file: ENOENT");
}

static void test_lock(void)
{
	int pipefd[2];

	is_int(lock_stage(at("lk"), "tp-batch"), TP_OK, "take a free lock");
	ok(access(at("lk/lock/tp-batch.lock"), F_OK) == 0, "lock file under lock/");
	if (pipe(pipefd) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		/* The child's stderr is the pipe: capture the message. */
		dup2(pipefd[1], 2);
		int rc = lock_stage(at("lk"), "tp-batch");
		int rc2 = lock_stage(at("lk"), "tp-send");
		_exit(rc == TP_ETEMP && rc2 == TP_OK ? 0 : 1);
	}
	close(pipefd[1]);
	char msg[512] = "";
	ssize_t r = read(pipefd[0], msg, sizeof msg - 1);
	msg[r > 0 ? r : 0] = '\0';
	close(pipefd[0]);
	int status;
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "busy lock: 75; other stage free");
	char want[PATH_MAX + 128];
	snprintf(want, sizeof want, "test_spool: error: another tp-batch is running (lock %s)\n",
		 at("lk/lock/tp-batch.lock"));
	is_str(msg, want, "busy message");
	int saved = dup(2), null = open("/dev/null", O_WRONLY);
	dup2(null, 2);          /* the expected error line is noise here */
	int rc = lock_stage("/proc/nope", "x");
	dup2(saved, 2);
	close(saved);
	close(null);
	is_int(rc, TP_EFAIL, "unusable spool: failure");
}

static void test_helpers(void)
{
	is_int(tp_exit_worse(0, 75), 75, "75 over 0");
	is_int(tp_exit_worse(75, 1), 1, "1 over 75");
	is_int(tp_exit_worse(1, 69), 69, "69 over 1");
	is_int(tp_exit_worse(65, 69), 65, "65 over 69");
	is_int(tp_exit_worse(78, 65), 78, "78 over 65");
	is_int(tp_exit_worse(78, 64), 64, "64 over 78");
	is_int(tp_exit_worse(64, 0), 64, "64 over 0");
	is_int(tp_exit_worse(3, 75), 3, "unknown ranks as 1");

	strbuf sb = { 0 };
	strbuf_reset(&sb);
	is_str(sb.buf, "", "reset gives an empty string");
	strbuf_adds(&sb, "ab");
	strbuf_addc(&sb, 'c');
	strbuf_add(&sb, "de", 2);
	for (int i = 0; i < 100; i++)
		strbuf_addf(&sb, "%03d", i);
	is_int((long long)sb.len, 305, "length after 305 bytes");
	ok(!strncmp(sb.buf, "abcde000001", 11) && !strcmp(sb.buf + sb.len - 3, "099"), "content");
	char *s = strbuf_detach(&sb);
	ok(sb.buf == NULL && sb.len == 0, "detach resets");
	free(s);
	s = strbuf_detach(&sb);
	is_str(s, "", "detach of an empty buffer gives \"\"");
	free(s);
	char *d = xstrndup("abcdef", 3);
	is_str(d, "abc", "xstrndup");
	free(d);
}

int main(void)
{
	log_init("/some/where/test_spool");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	test_mkdirs();
	test_commit();
	test_list();
	test_quarantine();
	test_lock();
	test_helpers();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
