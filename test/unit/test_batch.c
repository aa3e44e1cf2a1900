/*
 * test_batch.c - batch files: roundtrips, tampering, hostile archives.
 * Hostile archives are built here with libarchive from the members of a
 * good batch, so each test changes exactly one thing.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <archive.h>
#include <archive_entry.h>
#include "batch.h"
#include "copytext.h"
#include "digest.h"
#include "tap.h"

static char dir[64];
static const unsigned char KEY[] = "s3cret token";
#define KEYLEN (sizeof KEY - 1)

static char *path_of(const char *name)
{
	static char p[4][128];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

static const batch_header HDR = {
	.kind = "rows", .source = "billing", .target = "replica", .seq = 42,
	.lo = "100:105:101,103", .hi = "110:110:", .created = "2024-01-02T03:04:05Z",
};

/* ---- writing helpers ---- */

/* Event i of a test batch: tables 1..3 in turn; big adds a long line. */
static void event_line(strbuf *sb, int i, size_t big)
{
	strbuf_reset(sb);
	strbuf_addf(sb, "I\t%d\t", i % 3 + 1);
	char v[64];
	int n = snprintf(v, sizeof v, "row %d\twith\ttabs\\ and\nnewline", i);
	copytext_field(sb, v, (size_t)n);
	strbuf_addc(sb, '\t');
	copytext_field(sb, i % 5 ? "x" : NULL, 1);
	if (big && i == 7) {
		strbuf_addc(sb, '\t');
		for (size_t k = 0; k < big; k++)
			strbuf_addc(sb, (char)('a' + k % 26));
	}
}

static int write_batch(const char *path, enum tp_compression comp, const unsigned char *key,
		       size_t cap, int nevents, size_t big)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char err[256];
	batch_writer *w = batch_writer_new(fd, comp, &HDR, key, key ? KEYLEN : 0, cap, err, sizeof err);
	if (!w) {
		printf("# writer: %s\n", err);
		close(fd);
		return -1;
	}
	int rc = -1;
	strbuf sb = { 0 };
	for (unsigned t = 1; t <= 3; t++) {
		char def[64];
		int n = snprintf(def, sizeof def, "=\t%u\tpublic\tt%u\tid\tint4\t1\tv\ttext\t0\tw\ttext\t0", t, t);
		if (batch_writer_table(w, t, def, (size_t)n) < 0)
			goto out;
	}
	for (int i = 0; i < nevents; i++) {
		event_line(&sb, i, big);
		if (i == nevents / 2) {     /* a changed definition is repeated */
			const char *def = "=\t2\tpublic\tt2\tid\tint4\t1\tv\ttext\t0\tw\ttext\t0\tnew\tint8\t0";
			batch_writer_table(w, 2, def, strlen(def));
		}
		if (batch_writer_event(w, (unsigned)(i % 3 + 1), sb.buf, sb.len) < 0)
			goto out;
	}
	if (batch_writer_finish(w) == 0)
		rc = (int)batch_writer_events(w);
out:
	if (rc < 0)
		printf("# writer: %s\n", batch_writer_error(w));
	strbuf_free(&sb);
	batch_writer_free(w);
	close(fd);
	return rc;
}

/* ---- reading helpers ---- */

/* Read a batch with the reader: 0 and the event lines joined, or -1 and err. */
static int read_batch(const char *path, const batch_limits *lim, const unsigned char *key,
		      strbuf *lines, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY);
	batch_reader *r = batch_reader_new(fd, lim, key, key ? KEYLEN : 0);
	const batch_header *h;
	char *line;
	size_t len;
	int rc = batch_reader_header(r, &h);
	while (rc == 0 && (rc = batch_reader_next(r, &line, &len)) == 1) {
		if (lines && line[0] != '=') {
			strbuf_add(lines, line, len);
			strbuf_addc(lines, '\n');
		}
		rc = 0;
	}
	snprintf(err, errlen, "%s", rc == 0 ? "" : batch_reader_error(r));
	batch_reader_free(r);
	close(fd);
	return rc;
}

/* Verify and return the error ("" when the batch is good). */
static const char *verify(const char *path, const batch_limits *lim, const unsigned char *key)
{
	static char err[256];
	batch_limits dflt;
	batch_limits_default(&dflt, 0);
	batch_header h = { 0 };
	char digest[65];
	err[0] = '\0';
	if (batch_verify_file(path, lim ? lim : &dflt, key, key ? KEYLEN : 0, &h, digest, err, sizeof err) == 0)
		err[0] = '\0';
	else if (!err[0])
		snprintf(err, sizeof err, "(failed without a message)");
	batch_header_clear(&h);
	return err;
}

/* SHOW_ERRORS=1 in the environment prints every message, to review them. */
static bool contains(const char *s, const char *part)
{
	bool found = strstr(s, part) != NULL;
	if (getenv("SHOW_ERRORS"))
		printf("# %s\n", s);
	if (!found)
		printf("# \"%s\" lacks \"%s\"\n", s, part);
	return found;
}

/* ---- raw archive access, for inspection and for hostile files ---- */

typedef struct member {
	char name[128];
	int type;           /* AE_IFREG, AE_IFLNK, AE_IFDIR */
	const char *hardlink;
	char *data;
	size_t len;
} member;

static int load_members(const char *path, member *m, int max)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	int n = -1;
	if (archive_read_open_filename(a, path, 65536) == ARCHIVE_OK) {
		struct archive_entry *e;
		for (n = 0; n < max && archive_read_next_header(a, &e) == ARCHIVE_OK; n++) {
			memset(&m[n], 0, sizeof m[n]);
			snprintf(m[n].name, sizeof m[n].name, "%s", archive_entry_pathname(e));
			m[n].type = AE_IFREG;
			m[n].len = (size_t)archive_entry_size(e);
			m[n].data = malloc(m[n].len + 1);
			la_ssize_t got = archive_read_data(a, m[n].data, m[n].len);
			m[n].data[got > 0 ? (size_t)got : 0] = '\0';
		}
	}
	archive_read_free(a);
	return n;
}

static void free_members(member *m, int n)
{
	for (int i = 0; i < n; i++)
		free(m[i].data);
}

static void pack(const char *path, const member *m, int n)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_zstd(a);
	archive_write_open_filename(a, path);
	for (int i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, m[i].name);
		archive_entry_set_filetype(e, (unsigned)m[i].type);
		archive_entry_set_perm(e, 0644);
		if (m[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, "/etc/passwd");
		if (m[i].hardlink)
			archive_entry_set_hardlink(e, m[i].hardlink);
		archive_entry_set_size(e, m[i].type == AE_IFREG && !m[i].hardlink ? (la_int64_t)m[i].len : 0);
		archive_write_header(a, e);
		if (m[i].type == AE_IFREG && !m[i].hardlink)
			archive_write_data(a, m[i].data, m[i].len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

/*
 * Every events member stands alone: each event's table is defined
 * earlier in the same member, by the definition current at that event
 * (table 2 changes at event nevents/2); a member is larger than cap only
 * when it holds a single event.
 */
static bool members_stand_alone(const member *m, int n, size_t cap, int nevents)
{
	for (int i = 0; i < n; i++) {
		if (strncmp(m[i].name, "events-", 7) != 0)
			continue;
		int defined[4] = { 0 };     /* 0 none, 1 old, 2 new definition */
		int events = 0;
		char *copy = strndup(m[i].data, m[i].len), *save = NULL;
		for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			int tid = atoi(l + 2);
			if (l[0] == '=') {
				defined[tid] = strstr(l, "\tnew\t") ? 2 : 1;
				continue;
			}
			int row = atoi(strstr(l, "row ") + 4);
			int want = tid == 2 && row >= nevents / 2 ? 2 : 1;
			if (defined[tid] != want) {
				printf("# %s: event %d of table %d lacks its definition\n", m[i].name, row, tid);
				free(copy);
				return false;
			}
			events++;
		}
		free(copy);
		if (m[i].len > cap && events != 1) {
			printf("# %s: %zu bytes, %d events\n", m[i].name, m[i].len, events);
			return false;
		}
	}
	return true;
}

static void test_roundtrip(const char *file, enum tp_compression comp, const unsigned char *key,
			   size_t cap, int nevents, size_t big)
{
	const char *path = path_of(file);
	is_int(write_batch(path, comp, key, cap, nevents, big), nevents, "write");

	strbuf want = { 0 }, got = { 0 }, line = { 0 };
	for (int i = 0; i < nevents; i++) {
		event_line(&line, i, big);
		strbuf_add(&want, line.buf, line.len);
		strbuf_addc(&want, '\n');
	}
	char err[256];
	is_int(read_batch(path, NULL, key, &got, err, sizeof err), 0, "read back");
	is_str(err, "", "no error");
	ok(got.len == want.len && (!got.len || !memcmp(got.buf, want.buf, got.len)), "events come back unchanged");

	member m[64];
	int n = load_members(path, m, 64);
	ok(n >= 3 && !strcmp(m[0].name, "header.json"), "header.json first");
	int sig = key ? 1 : 0;
	ok(!strcmp(m[n - 1 - sig].name, "manifest.json"), "manifest.json last but the signature");
	ok(!key || !strcmp(m[n - 1].name, "manifest.sig"), "manifest.sig when signed");
	for (int i = 1; i < n - 1 - sig; i++) {
		char name[32];
		snprintf(name, sizeof name, "events-%06d.tsv", i);
		ok(!strcmp(m[i].name, name), "member %d is %s", i, name);
	}
	ok(members_stand_alone(m, n, cap ? cap : BATCH_MEMBER_CAP_DEFAULT, nevents), "every member stands alone");

	batch_limits lim;
	batch_limits_default(&lim, 0);
	batch_header h = { 0 };
	char digest[65], hex[65];
	unsigned char raw[DIGEST_LEN];
	is_int(batch_verify_file(path, &lim, key, key ? KEYLEN : 0, &h, digest, err, sizeof err), 0, "verify");
	sha256_buf(m[n - 1 - sig].data, m[n - 1 - sig].len, raw);
	digest_hex(raw, DIGEST_LEN, hex);
	is_str(digest, hex, "batch digest is the manifest's sha256");
	ok(h.seq == 42 && !strcmp(h.source, "billing") && !strcmp(h.lo, HDR.lo), "header fields");
	batch_header_clear(&h);
	if (key) {
		hmac_sha256_buf(KEY, KEYLEN, m[n - 2].data, m[n - 2].len, raw);
		digest_hex(raw, DIGEST_LEN, hex);
		ok(m[n - 1].len == 65 && !memcmp(m[n - 1].data, hex, 64), "signature is hex HMAC of the manifest");
		is_str(verify(path, NULL, NULL), "", "a signed batch reads without a key too");
	}
	free_members(m, n);
	strbuf_free(&want);
	strbuf_free(&got);
	strbuf_free(&line);
}

static void test_roundtrips(void)
{
	test_roundtrip("z.tar.zst", TP_COMPRESS_ZSTD, NULL, 0, 100, 0);
	test_roundtrip("g.tar.gz", TP_COMPRESS_GZIP, KEY, 0, 100, 0);
	test_roundtrip("n.tar", TP_COMPRESS_NONE, NULL, 0, 100, 0);
	test_roundtrip("zs.tar.zst", TP_COMPRESS_ZSTD, KEY, 400, 50, 0);
	test_roundtrip("gs.tar.gz", TP_COMPRESS_GZIP, NULL, 400, 50, 1000);
	test_roundtrip("ns.tar", TP_COMPRESS_NONE, KEY, 300, 30, 5000);
	test_roundtrip("empty.tar.zst", TP_COMPRESS_ZSTD, KEY, 0, 0, 0);
	/* lines larger than the reader's 64 KiB chunks */
	test_roundtrip("huge.tar.zst", TP_COMPRESS_ZSTD, NULL, 1000, 20, 300000);

	member m[64];
	int n = load_members(path_of("zs.tar.zst"), m, 64);
	ok(n > 5, "a small cap makes many members (%d)", n);
	free_members(m, n);

	unsigned char gz[10];
	int fd = open(path_of("g.tar.gz"), O_RDONLY);
	ok(read(fd, gz, 10) == 10 && gz[0] == 0x1f && !gz[4] && !gz[5] && !gz[6] && !gz[7],
	   "gzip header holds no timestamp");
	close(fd);
}

/* ---- tampering ---- */

static void flip_in_file(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r+b");
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf, f);
	char *p = memmem(buf, n, needle, strlen(needle));
	if (p) {
		fseek(f, p - buf + (long)strlen(needle) - 1, SEEK_SET);
		fputc(p[strlen(needle) - 1] ^ 1, f);
	}
	fclose(f);
	ok(p != NULL, "found %s to flip", needle);
}

static void copy_file(const char *from, const char *to, long cut)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	int c;
	for (long i = 0; (cut < 0 || i < cut) && (c = fgetc(in)) != EOF; i++)
		fputc(c, out);
	fclose(in);
	fclose(out);
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_tamper(void)
{
	const char *p = path_of("t.tar");
	write_batch(p, TP_COMPRESS_NONE, KEY, 300, 30, 0);
	is_str(verify(p, NULL, KEY), "", "untouched batch verifies");
	flip_in_file(p, "row 17");
	ok(contains(verify(p, NULL, KEY), "sha256 mismatch"), "flipped byte: digest error");
	ok(contains(verify(p, NULL, NULL), "member events-0000"), "... naming the member");

	write_batch(p, TP_COMPRESS_NONE, KEY, 300, 30, 0);
	flip_in_file(p, "\"seq\": 4");   /* the manifest's, after the header's */
	flip_in_file(p, "\"seq\": 4");
	ok(contains(verify(p, NULL, KEY), "signature does not match the token"), "edited manifest: bad signature");

	write_batch(p, TP_COMPRESS_NONE, KEY, 300, 30, 0);
	static const unsigned char other[] = "another token";
	char err[256];
	int fd = open(p, O_RDONLY);
	batch_reader *r = batch_reader_new(fd, NULL, other, sizeof other - 1);
	char *line;
	size_t len;
	int rc;
	while ((rc = batch_reader_next(r, &line, &len)) == 1)
		;
	snprintf(err, sizeof err, "%s", batch_reader_error(r));
	batch_reader_free(r);
	close(fd);
	ok(rc == -1 && contains(err, "signature does not match the token"), "wrong key: signature error");

	write_batch(p, TP_COMPRESS_NONE, NULL, 300, 30, 0);
	ok(contains(verify(p, NULL, KEY), "not signed"), "unsigned batch with a key configured");
	is_str(verify(p, NULL, NULL), "", "unsigned batch without a key");
}

static void test_truncated(void)
{
	const enum tp_compression comps[] = { TP_COMPRESS_ZSTD, TP_COMPRESS_GZIP, TP_COMPRESS_NONE };
	for (int c = 0; c < 3; c++) {
		const char *p = path_of("full"), *q = path_of("cut");
		write_batch(p, comps[c], c == 1 ? KEY : NULL, 2000, 200, 0);
		long size = file_size(p);
		/* an uncompressed tar may lose its zero end blocks harmlessly */
		long last = comps[c] == TP_COMPRESS_NONE ? size - 1024 - 512 : size - 1;
		int fails = 0, tried = 0;
		for (long cut = 0; cut < last; cut += cut < 2048 ? 97 : 1009, tried++) {
			copy_file(p, q, cut);
			const char *e = verify(q, NULL, c == 1 ? KEY : NULL);
			if (e[0] && getenv("SHOW_ERRORS"))
				printf("# %s\n", e);
			if (e[0])
				fails++;
			else
				printf("# compression %d, cut at %ld of %ld verified\n", c, cut, size);
		}
		copy_file(p, q, last);
		fails += verify(q, NULL, c == 1 ? KEY : NULL)[0] != 0;
		is_int(fails, tried + 1, "every truncation is refused");
	}
}

static void test_garbage(void)
{
	const char *p = path_of("garbage");
	FILE *f = fopen(p, "wb");
	srand(7);
	for (int i = 0; i < 100000; i++)
		fputc(rand() & 0xff, f);
	fclose(f);
	ok(contains(verify(p, NULL, NULL), "not a teleport batch"), "random bytes");
	f = fopen(p, "wb");
	fclose(f);
	ok(contains(verify(p, NULL, NULL), "not a teleport batch"), "empty file");
	f = fopen(p, "wb");
	fputs("\x28\xb5\x2f\xfd garbage after a zstd magic", f);
	fclose(f);
	ok(verify(p, NULL, NULL)[0] != 0, "zstd magic then garbage");
	ok(contains(verify(path_of("does-not-exist"), NULL, NULL), "cannot open"), "missing file");
}

static void test_limits(void)
{
	const char *p = path_of("l.tar.zst");
	write_batch(p, TP_COMPRESS_ZSTD, NULL, 1000, 100, 0);
	batch_limits lim;
	batch_limits_default(&lim, 0);
	ok(lim.max_total == 1u << 30 && lim.max_member == 256u << 20 && lim.max_members == 100000, "defaults");
	batch_limits_default(&lim, 1000);
	ok(lim.max_total == 1000 && lim.max_member == 1000, "member limit at most the total");

	batch_limits_default(&lim, 0);
	lim.max_member = 500;
	ok(contains(verify(p, &lim, NULL), "exceeds 500 bytes"), "oversize member");
	batch_limits_default(&lim, 3000);
	ok(contains(verify(p, &lim, NULL), "batch exceeds 3000 bytes"), "oversize batch");
	batch_limits_default(&lim, 0);
	lim.max_members = 4;
	ok(contains(verify(p, &lim, NULL), "more than 4 members"), "too many members");

	/* a compression bomb: 200 MB of zeros in a few hundred KB */
	member m[64];
	int n = load_members(p, m, 64);
	free(m[1].data);
	m[1].len = 200u << 20;
	m[1].data = calloc(1, m[1].len);
	pack(path_of("bomb"), m, n);
	free_members(m, n);
	batch_limits_default(&lim, 64u << 20);
	ok(file_size(path_of("bomb")) < (1 << 20), "bomb is small");
	ok(contains(verify(path_of("bomb"), &lim, NULL), "exceeds"), "bomb refused by size");
}

/* ---- hostile archives ---- */

static member good[64];
static int ngood;

/* Pack good[] with one change made by edit(), verify, return the error. */
static const char *hostile(void (*edit)(member *m, int *n), const unsigned char *key)
{
	member m[66];
	int n = ngood;
	memcpy(m, good, sizeof good);
	edit(m, &n);
	pack(path_of("hostile"), m, n);
	return verify(path_of("hostile"), NULL, key);
}

static void insert(member *m, int *n, int at, const char *name, int type, const char *data)
{
	memmove(&m[at + 1], &m[at], (size_t)(*n - at) * sizeof *m);
	memset(&m[at], 0, sizeof *m);
	snprintf(m[at].name, sizeof m[at].name, "%s", name);
	m[at].type = type;
	m[at].data = (char *)data;
	m[at].len = strlen(data);
	(*n)++;
}

static void swap(member *m, int a, int b)
{
	member t = m[a];
	m[a] = m[b];
	m[b] = t;
}

static void e_none(member *m, int *n) { (void)m; (void)n; }
static void e_dotdot(member *m, int *n) { insert(m, n, 1, "../x", AE_IFREG, "I\tx\n"); }
static void e_abs(member *m, int *n) { insert(m, n, 2, "/abs", AE_IFREG, "x"); }
static void e_subdir(member *m, int *n) { insert(m, n, 1, "a/b", AE_IFREG, "x"); }
static void e_dotslash(member *m, int *n) { snprintf(m[1].name, sizeof m[1].name, "./events-000001.tsv"); (void)n; }
static void e_symlink(member *m, int *n) { m[1].type = AE_IFLNK; (void)n; }
static void e_hardlink(member *m, int *n) { m[1].hardlink = "header.json"; (void)n; }
static void e_dir(member *m, int *n) { m[1].type = AE_IFDIR; (void)n; }
static void e_extra(member *m, int *n) { insert(m, n, *n, "extra.txt", AE_IFREG, "x"); }
static void e_extra_mid(member *m, int *n) { insert(m, n, 2, "notes.txt", AE_IFREG, "x"); }
static void e_swap(member *m, int *n) { swap(m, 1, 2); (void)n; }
static void e_header_late(member *m, int *n) { swap(m, 0, 1); (void)n; }
static void e_dup(member *m, int *n) { insert(m, n, 2, m[1].name, AE_IFREG, "I\t1\n"); }
static void e_no_manifest(member *m, int *n) { (*n)--; (void)m; }
static void e_gap(member *m, int *n) { memmove(&m[2], &m[3], (size_t)(*n - 3) * sizeof *m); (*n)--; }
static void e_control(member *m, int *n) { insert(m, n, 1, "\033[2J\x01name", AE_IFREG, "x"); }
static void e_no_newline(member *m, int *n) { m[1].len--; (void)n; }

/* Rewrite a JSON member with one substring replaced. */
static char edited[4][4096];
static void replace_in(member *m, int slot, const char *from, const char *to)
{
	char *p = strstr(m->data, from);
	if (!p) {
		printf("# %s not found\n", from);
		return;
	}
	snprintf(edited[slot], sizeof edited[slot], "%.*s%s%s", (int)(p - m->data), m->data, to, p + strlen(from));
	m->data = edited[slot];
	m->len = strlen(edited[slot]);
}
static void e_bad_line(member *m, int *n) { replace_in(&m[1], 2, "=", "X"); (void)n; }
static void e_seq(member *m, int *n) { replace_in(&m[0], 0, "\"seq\": 42", "\"seq\": 43"); (void)n; }
static void e_format(member *m, int *n) { replace_in(&m[0], 0, "batch/1", "batch/2"); (void)n; }
static void e_events(member *m, int *n)
{
	int i = !strcmp(m[*n - 1].name, "manifest.json") ? *n - 1 : *n - 2;
	replace_in(&m[i], 1, "\"events\": ", "\"events\": 1");
}
static void e_dupkey(member *m, int *n) { replace_in(&m[0], 0, "{", "{\"seq\": 1, "); (void)n; }

/* JSON members are capped far below max_member: the parser's memory. */
static char bloat[200000];
static void e_big_header(member *m, int *n)
{
	memset(bloat, ' ', sizeof bloat);
	memcpy(bloat, m[0].data, m[0].len);
	m[0].data = bloat;
	m[0].len = 70000;
	(void)n;
}
static void e_big_manifest(member *m, int *n)
{
	int i = *n - 1;
	memset(bloat, '[', sizeof bloat);
	memcpy(bloat, m[i].data, m[i].len);
	m[i].data = bloat;
	m[i].len = sizeof bloat;
}

static void test_hostile(void)
{
	const char *p = path_of("good.tar.zst");
	write_batch(p, TP_COMPRESS_ZSTD, NULL, 300, 30, 0);
	ngood = load_members(p, good, 60);
	ok(ngood > 4, "good batch has %d members", ngood);

	is_str(hostile(e_none, NULL), "", "repacked unchanged: still good");
	ok(contains(hostile(e_dotdot, NULL), "unexpected member \"../x\""), "../x");
	ok(contains(hostile(e_abs, NULL), "unexpected member \"/abs\""), "/abs");
	ok(contains(hostile(e_subdir, NULL), "unexpected member \"a/b\""), "a/b");
	ok(contains(hostile(e_dotslash, NULL), "unexpected member \"./events-000001.tsv\""), "./name");
	ok(contains(hostile(e_symlink, NULL), "not a regular file"), "symlink");
	ok(contains(hostile(e_hardlink, NULL), "not a regular file"), "hardlink");
	ok(contains(hostile(e_dir, NULL), "events-000001.tsv"), "directory");
	ok(contains(hostile(e_extra, NULL), "unexpected member \"extra.txt\" after manifest.json"), "extra member at the end");
	ok(contains(hostile(e_extra_mid, NULL), "unexpected member \"notes.txt\""), "extra member inside");
	ok(contains(hostile(e_swap, NULL), "unexpected member \"events-000002.tsv\""), "out of order");
	ok(contains(hostile(e_header_late, NULL), "not a teleport batch"), "header.json not first");
	ok(contains(hostile(e_dup, NULL), "unexpected member \"events-000001.tsv\""), "member twice");
	ok(contains(hostile(e_no_manifest, NULL), "batch ends before manifest.json"), "no manifest");
	ok(contains(hostile(e_gap, NULL), "unexpected member \"events-000003.tsv\""), "a member left out");
	ok(contains(hostile(e_control, NULL), "unexpected member \"?[2J?name\""), "control characters not echoed");
	ok(contains(hostile(e_no_newline, NULL), "lacks its newline"), "partial last line");
	ok(contains(hostile(e_bad_line, NULL), "bad event line"), "bad event line");
	ok(contains(hostile(e_seq, NULL), "identity differs"), "header and manifest disagree");
	ok(contains(hostile(e_format, NULL), "unsupported format"), "unknown format version");
	ok(contains(hostile(e_events, NULL), "events count"), "wrong events count");
	ok(contains(hostile(e_dupkey, NULL), "duplicate key"), "duplicate key in header.json");
	ok(contains(hostile(e_events, KEY), "not signed"), "unsigned with a key");
	ok(contains(hostile(e_big_header, NULL), "member header.json exceeds 65536 bytes"), "huge header.json");
	ok(contains(hostile(e_big_manifest, NULL), "member manifest.json exceeds"), "huge manifest.json");
	free_members(good, ngood);

	/* signed: anything after the signature is refused too */
	write_batch(p, TP_COMPRESS_ZSTD, KEY, 300, 30, 0);
	ngood = load_members(p, good, 60);
	is_str(hostile(e_none, KEY), "", "signed repack still good");
	ok(contains(hostile(e_extra, KEY), "after manifest.sig"), "member after the signature");
	ok(contains(hostile(e_events, KEY), "signature does not match"), "edited manifest, signed");
	free_members(good, ngood);
}

/* ---- writer misuse ---- */

static void test_writer_errors(void)
{
	int fd = open(path_of("w.tar"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char err[256];
	batch_header h = HDR;
	h.source = NULL;
	ok(!batch_writer_new(fd, TP_COMPRESS_NONE, &h, NULL, 0, 0, err, sizeof err) && err[0],
	   "header without source refused");
	batch_writer *w = batch_writer_new(fd, TP_COMPRESS_NONE, &HDR, NULL, 0, 0, err, sizeof err);
	is_int(batch_writer_event(w, 9, "I\t9", 3), -1, "event before its definition");
	ok(contains(batch_writer_error(w), "before its definition"), "says so");
	batch_writer_free(w);
	w = batch_writer_new(fd, TP_COMPRESS_NONE, &HDR, NULL, 0, 0, err, sizeof err);
	is_int(batch_writer_table(w, 1, "x\t1", 3), -1, "bad definition line");
	batch_writer_free(w);
	w = batch_writer_new(fd, TP_COMPRESS_NONE, &HDR, NULL, 0, 0, err, sizeof err);
	batch_writer_table(w, 1, "=\t1", 3);
	is_int(batch_writer_event(w, 1, "I\t1\nI\t1", 7), -1, "raw newline in an event refused");
	batch_writer_free(w);
	w = batch_writer_new(fd, TP_COMPRESS_NONE, &HDR, NULL, 0, 0, err, sizeof err);
	batch_writer_table(w, 1, "=\t1", 3);
	is_int(batch_writer_finish(w), 0, "finish");
	is_int(batch_writer_event(w, 1, "I\t1", 3), -1, "no events after finish");
	batch_writer_free(w);
	close(fd);
	fd = open("/dev/full", O_WRONLY);
	w = batch_writer_new(fd, TP_COMPRESS_NONE, &HDR, NULL, 0, 0, err, sizeof err);
	if (w) {
		batch_writer_table(w, 1, "=\t1", 3);
		batch_writer_event(w, 1, "I\t1", 3);
		ok(batch_writer_finish(w) == -1 && batch_writer_error(w)[0], "ENOSPC reported (%s)", batch_writer_error(w));
	} else {
		ok(err[0], "ENOSPC reported (%s)", err);
	}
	batch_writer_free(w);
	close(fd);
}

/* ---- a load's first part: its optional header keys ---- */

/* Write an empty load part 1 with rebuild set as given; read it back. */
static void load_header(bool rebuild, batch_header *back)
{
	char *tables[] = { "public", "t", "s p", "Odd \"x\"" };
	batch_header h = { .kind = "load", .source = "billing", .target = "replica", .seq = 7,
			   .lo = "", .hi = "110:110:", .created = "2024-01-02T03:04:05Z",
			   .load = "110-20240102T030405", .part = 1, .tables = tables,
			   .ntables = 2, .rebuild_indexes = rebuild };
	int fd = open(path_of("load.tar"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char err[256] = "", digest[65];
	batch_limits lim;
	batch_writer *w = batch_writer_new(fd, TP_COMPRESS_NONE, &h, KEY, KEYLEN, 0, err, sizeof err);

	batch_limits_default(&lim, 0);
	ok(w && batch_writer_line(w, "S\tschema\tpublic", 15) == 0 && batch_writer_finish(w) == 0,
	   "load part with a schema line written (rebuild %d)", rebuild);
	batch_writer_free(w);
	close(fd);
	is_int(batch_verify_file(path_of("load.tar"), &lim, KEY, KEYLEN, back, digest, err, sizeof err),
	       0, "and verified (%s)", err);
}

static void test_load_header(void)
{
	batch_header h = { 0 };

	load_header(true, &h);
	ok(h.rebuild_indexes && h.ntables == 2 && h.part == 1, "rebuild_indexes read back");
	is_str(h.ntables == 2 ? h.tables[3] : "", "Odd \"x\"", "tables read back");
	batch_header_clear(&h);
	memset(&h, 0, sizeof h);
	load_header(false, &h);
	ok(!h.rebuild_indexes, "no rebuild_indexes: false");
	batch_header_clear(&h);
}

int main(void)
{
	snprintf(dir, sizeof dir, "%s/tp-batch-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	test_roundtrips();
	test_tamper();
	test_truncated();
	test_garbage();
	test_limits();
	test_hostile();
	test_writer_errors();
	test_load_header();
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		ok(0, "clean up %s", dir);
	return done_testing();
}
