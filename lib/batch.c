/*
 * batch.c - writing and reading batch files (format: batch.h and
 * man/teleport-batch.5).
 *
 * libarchive does the tar and the compression. Everything read here may
 * come from an attacker, so the reader never extracts anything: it walks
 * the members in the one order the writer uses, refuses any other name,
 * type or size, counts decompressed bytes as they come (compression
 * bombs), and checks every digest against the manifest and the manifest
 * against the signature.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <archive.h>
#include <archive_entry.h>
#include <openssl/crypto.h>
#include "batch.h"
#include "digest.h"
#include "json.h"
#include "strbuf.h"

#define HEADER_NAME "header.json"
#define MANIFEST_NAME "manifest.json"
#define SIG_NAME "manifest.sig"
#define EVENTS_MAX 999999u          /* events-NNNNNN.tsv has six digits */
#define READ_CHUNK 65536
/*
 * The JSON members are small; capping them well below max_member keeps
 * a hostile one from making the JSON parser allocate gigabytes.
 */
#define HEADER_MAX 65536
#define MANIFEST_MAX(nmembers) (65536 + 256 * (uint64_t)(nmembers))
#define SIG_MAX 1024                /* manifest.sig is 65 bytes */

/* A member as the manifest lists it; its name follows from its index. */
typedef struct member_rec {
	uint64_t size;
	unsigned char sha[DIGEST_LEN];
} member_rec;

/* Member i: 0 is header.json, then events-000001.tsv ... */
static void member_name(size_t i, char name[32])
{
	if (i == 0)
		snprintf(name, 32, HEADER_NAME);
	else
		snprintf(name, 32, "events-%06zu.tsv", i);
}

static void recs_push(member_rec **recs, size_t *n, size_t *cap, const member_rec *m)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*recs = xrealloc(*recs, *cap * sizeof **recs);
	}
	(*recs)[(*n)++] = *m;
}

void batch_header_clear(batch_header *h)
{
	free(h->kind);
	free(h->source);
	free(h->target);
	free(h->lo);
	free(h->hi);
	free(h->created);
	free(h->load);
	for (size_t i = 0; i < 2 * h->ntables; i++)
		free(h->tables[i]);
	free(h->tables);
	memset(h, 0, sizeof *h);
}

static void header_copy(batch_header *dst, const batch_header *src)
{
	dst->kind = xstrdup(src->kind ? src->kind : "");
	dst->source = xstrdup(src->source ? src->source : "");
	dst->target = xstrdup(src->target ? src->target : "");
	dst->seq = src->seq;
	dst->lo = xstrdup(src->lo ? src->lo : "");
	dst->hi = xstrdup(src->hi ? src->hi : "");
	dst->created = xstrdup(src->created ? src->created : "");
	dst->load = src->load ? xstrdup(src->load) : NULL;
	dst->part = src->part;
	dst->last = src->last;
	dst->rebuild_indexes = src->rebuild_indexes;
	dst->void_from = src->void_from;
	dst->ntables = src->ntables;
	dst->tables = src->ntables ? xcalloc(2 * src->ntables, sizeof(char *)) : NULL;
	for (size_t i = 0; i < 2 * src->ntables; i++)
		dst->tables[i] = xstrdup(src->tables[i]);
}

void batch_limits_default(batch_limits *l, uint64_t max_batch_bytes)
{
	l->max_total = max_batch_bytes ? max_batch_bytes : (uint64_t)1 << 30;
	l->max_member = l->max_total < ((uint64_t)256 << 20) ? l->max_total : (uint64_t)256 << 20;
	l->max_members = 100000;
}

/*
 * The identity fields, shared by header.json and manifest.json, so the
 * two are written and compared the same way.
 */
static void identity_json(strbuf *out, const batch_header *h)
{
	const char *keys[] = { "format", "kind", "source", "target" };
	const char *vals[] = { BATCH_FORMAT, h->kind, h->source, h->target };
	for (size_t i = 0; i < 4; i++) {
		strbuf_addf(out, "%s\"%s\": ", i ? ",\n  " : "  ", keys[i]);
		json_add_strz(out, vals[i]);
	}
	strbuf_addf(out, ",\n  \"seq\": %" PRIu64 ",\n  \"lo\": ", h->seq);
	json_add_strz(out, h->lo);
	strbuf_adds(out, ",\n  \"hi\": ");
	json_add_strz(out, h->hi);
	strbuf_adds(out, ",\n  \"created\": ");
	json_add_strz(out, h->created);
}

/*
 * The optional fields of header.json (batch.h): a load's id, part, last
 * flag and table list; "void_from". Older readers ignore them.
 */
static void extra_json(strbuf *out, const batch_header *h)
{
	if (h->load) {
		strbuf_adds(out, ",\n  \"load\": ");
		json_add_strz(out, h->load);
		strbuf_addf(out, ",\n  \"part\": %" PRIu64 ",\n  \"last\": %s",
			    h->part, h->last ? "true" : "false");
	}
	if (h->ntables) {
		strbuf_adds(out, ",\n  \"tables\": [");
		for (size_t i = 0; i < h->ntables; i++) {
			strbuf_adds(out, i ? ",\n    [" : "\n    [");
			json_add_strz(out, h->tables[2 * i]);
			strbuf_adds(out, ", ");
			json_add_strz(out, h->tables[2 * i + 1]);
			strbuf_adds(out, "]");
		}
		strbuf_adds(out, "\n  ]");
	}
	if (h->rebuild_indexes)
		strbuf_adds(out, ",\n  \"rebuild_indexes\": true");
	if (h->void_from)
		strbuf_addf(out, ",\n  \"void_from\": %" PRIu64, h->void_from);
}

/* "tables": [[schema, name], ...] into h (allocated). NULL or what is wrong. */
static const char *tables_parse(const json_doc *d, int arr, batch_header *h)
{
	size_t n = json_array_len(d, arr), i = 0;

	if (json_type(d, arr) != JSON_ARRAY || n == 0)
		return "bad \"tables\"";
	h->tables = xcalloc(2 * n, sizeof(char *));
	for (int e = json_first(d, arr); e >= 0; e = json_next(d, arr, e), i++) {
		if (json_array_len(d, e) != 2)
			return "bad \"tables\" entry";
		int s = json_first(d, e), t = json_next(d, e, s);
		if (!json_string(d, s) || !json_string(d, t))
			return "bad \"tables\" entry";
		h->tables[2 * i] = xstrdup(json_string(d, s));
		h->tables[2 * i + 1] = xstrdup(json_string(d, t));
		h->ntables = i + 1;
	}
	return NULL;
}

/* The optional fields of header.json into h. NULL or what is wrong. */
static const char *extra_parse(const json_doc *d, batch_header *h)
{
	int o = json_root(d), tables = json_get(d, o, "tables");
	bool is_load = strcmp(h->kind, "load") == 0;
	const char *load = json_str(d, o, "load");

	if (is_load != (load != NULL) || (load && !*load))
		return "\"load\" missing, empty or on a row batch";
	if (load) {
		h->load = xstrdup(load);
		if (!json_u64(d, o, "part", &h->part) || h->part == 0 ||
		    !json_bool(d, o, "last", &h->last))
			return "bad or missing \"part\" or \"last\"";
	}
	if (tables >= 0 && (!is_load || h->part != 1))
		return "\"tables\" outside a load's first part";
	const char *bad = tables >= 0 ? tables_parse(d, tables, h) : NULL;
	if (bad)
		return bad;
	if (json_get(d, o, "rebuild_indexes") >= 0 &&
	    (tables < 0 || !json_bool(d, o, "rebuild_indexes", &h->rebuild_indexes)))
		return "bad \"rebuild_indexes\"";
	if (json_get(d, o, "void_from") >= 0 &&
	    (!json_u64(d, o, "void_from", &h->void_from) || h->void_from == 0 ||
	     h->void_from >= h->seq))
		return "bad \"void_from\"";
	return NULL;
}

/* ================= writing ================= */

/* A table definition; member says which member already holds it. */
typedef struct table_def {
	bool used;
	unsigned tid;
	unsigned member;     /* 0: in no member yet */
	char *line;
	size_t len;
} table_def;

struct batch_writer {
	struct archive *a;
	batch_header h;
	unsigned char *key;
	size_t keylen;
	size_t cap;            /* member_cap */
	strbuf member;         /* the events member being filled */
	table_def *defs;       /* open addressing on tid; ndefs < defcap / 2 */
	size_t ndefs, defcap;
	member_rec *recs;      /* members written so far, for the manifest */
	size_t nrecs, reccap;
	uint64_t events;
	bool failed, finished;
	char err[256];
};

static int werr(batch_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int werr(batch_writer *w, const char *fmt, ...)
{
	if (!w->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->err, sizeof w->err, fmt, ap);
		va_end(ap);
	}
	w->failed = true;
	return -1;
}

static table_def *def_slot(table_def *defs, size_t cap, unsigned tid)
{
	size_t i = (tid * 2654435761u) & (cap - 1);
	while (defs[i].used && defs[i].tid != tid)
		i = (i + 1) & (cap - 1);
	return &defs[i];
}

static table_def *def_find(batch_writer *w, unsigned tid)
{
	if (!w->defcap)
		return NULL;
	table_def *d = def_slot(w->defs, w->defcap, tid);
	return d->used ? d : NULL;
}

static void defs_grow(batch_writer *w)
{
	size_t ncap = w->defcap ? w->defcap * 2 : 16;
	table_def *nd = xcalloc(ncap, sizeof *nd);
	for (size_t i = 0; i < w->defcap; i++)
		if (w->defs[i].used)
			*def_slot(nd, ncap, w->defs[i].tid) = w->defs[i];
	free(w->defs);
	w->defs = nd;
	w->defcap = ncap;
}

/* One tar member: fixed owner, mode and time, so output is reproducible. */
static int write_member(batch_writer *w, const char *name, const char *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)len);  /* before the header: tar stores it first */
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	int rc = archive_write_header(w->a, e);
	archive_entry_free(e);
	if (rc != ARCHIVE_OK)
		return werr(w, "writing %s: %s", name, archive_error_string(w->a));
	for (size_t off = 0; off < len;) {
		la_ssize_t n = archive_write_data(w->a, data + off, len - off);
		if (n <= 0)
			return werr(w, "writing %s: %s", name, archive_error_string(w->a));
		off += (size_t)n;
	}
	return 0;
}

/* A member the manifest lists: written and its digest recorded. */
static int write_listed(batch_writer *w, const char *data, size_t len)
{
	char name[32];
	member_rec m = { .size = len };
	member_name(w->nrecs, name);
	if (sha256_buf(data, len, m.sha) < 0)
		return werr(w, "%s: sha256 failed", name);
	if (write_member(w, name, data, len) < 0)
		return -1;
	recs_push(&w->recs, &w->nrecs, &w->reccap, &m);
	return 0;
}

static int flush_events(batch_writer *w)
{
	if (w->nrecs > EVENTS_MAX)
		return werr(w, "batch would need more than %u event members", EVENTS_MAX);
	int rc = write_listed(w, w->member.buf, w->member.len);
	strbuf_reset(&w->member);
	return rc;
}

static int open_archive(batch_writer *w, int fd, enum tp_compression comp)
{
	struct archive *a = w->a = archive_write_new();
	if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK)
		return werr(w, "libarchive cannot write tar");
	int rc = ARCHIVE_OK;
	if (comp == TP_COMPRESS_ZSTD) {
		rc = archive_write_add_filter_zstd(a);
		if (rc == ARCHIVE_OK)
			rc = archive_write_set_filter_option(a, "zstd", "compression-level", "3");
	} else if (comp == TP_COMPRESS_GZIP) {
		rc = archive_write_add_filter_gzip(a);
		/* no timestamp in the gzip header, where the library allows */
		if (rc == ARCHIVE_OK)
			(void)archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
	}
	if (rc != ARCHIVE_OK)
		return werr(w, "libarchive: %s", archive_error_string(a));
	/* no zero padding after the compressed stream: gzip calls it garbage */
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
		return werr(w, "opening batch output: %s", archive_error_string(a));
	return 0;
}

batch_writer *batch_writer_new(int fd, enum tp_compression comp,
			       const batch_header *h,
			       const unsigned char *key, size_t keylen,
			       size_t member_cap, char *err, size_t errlen)
{
	if (!h->kind || !*h->kind || !h->source || !*h->source || !h->target || !*h->target) {
		snprintf(err, errlen, "batch header lacks kind, source or target");
		return NULL;
	}
	batch_writer *w = xcalloc(1, sizeof *w);
	header_copy(&w->h, h);
	if (key && keylen) {
		w->key = xmalloc(keylen);
		memcpy(w->key, key, keylen);
		w->keylen = keylen;
	}
	w->cap = member_cap ? member_cap : BATCH_MEMBER_CAP_DEFAULT;
	strbuf hdr = { 0 };
	strbuf_adds(&hdr, "{\n");
	identity_json(&hdr, &w->h);
	extra_json(&hdr, &w->h);
	strbuf_adds(&hdr, "\n}\n");
	if (open_archive(w, fd, comp) < 0 || write_listed(w, hdr.buf, hdr.len) < 0) {
		snprintf(err, errlen, "%s", w->err);
		batch_writer_free(w);
		w = NULL;
	}
	strbuf_free(&hdr);
	return w;
}

/* Refuse use after an error, or after finish. */
static bool writer_usable(batch_writer *w)
{
	if (w->finished && !w->failed)
		werr(w, "batch already finished");
	return !w->failed;
}

int batch_writer_table(batch_writer *w, unsigned tid, const char *defline, size_t len)
{
	if (!writer_usable(w))
		return -1;
	if (len < 2 || defline[0] != '=' || defline[1] != '\t' ||
	    memchr(defline, '\n', len) || memchr(defline, '\0', len))
		return werr(w, "bad definition line for table %u", tid);
	table_def *d = def_find(w, tid);
	if (d && d->len == len && memcmp(d->line, defline, len) == 0)
		return 0;
	if (!d) {
		if (2 * (w->ndefs + 1) > w->defcap)
			defs_grow(w);
		d = def_slot(w->defs, w->defcap, tid);
		d->used = true;
		d->tid = tid;
		w->ndefs++;
	}
	/* new or changed: the next event of the table repeats it */
	free(d->line);
	d->line = xstrndup(defline, len);
	d->len = len;
	d->member = 0;
	return 0;
}

int batch_writer_event(batch_writer *w, unsigned tid, const char *line, size_t len)
{
	if (!writer_usable(w))
		return -1;
	if (len < 2 || line[0] == '\0' || !strchr("IUDT", line[0]) || line[1] != '\t' ||
	    memchr(line, '\n', len) || memchr(line, '\0', len))
		return werr(w, "bad event line for table %u", tid);
	table_def *d = def_find(w, tid);
	if (!d)
		return werr(w, "event for table %u before its definition", tid);
	unsigned cur = (unsigned)w->nrecs;  /* number of the member being filled */
	size_t need = len + 1 + (d->member == cur ? 0 : d->len + 1);
	/* full: start a new member; a line bigger than the cap goes alone */
	if (w->member.len && w->member.len + need > w->cap) {
		if (flush_events(w) < 0)
			return -1;
		cur = (unsigned)w->nrecs;
	}
	if (d->member != cur) {
		strbuf_add(&w->member, d->line, d->len);
		strbuf_addc(&w->member, '\n');
		d->member = cur;
	}
	strbuf_add(&w->member, line, len);
	strbuf_addc(&w->member, '\n');
	w->events++;
	return 0;
}

int batch_writer_line(batch_writer *w, const char *line, size_t len)
{
	if (!writer_usable(w))
		return -1;
	if (len < 3 || line[0] != 'S' || line[1] != '\t' ||
	    memchr(line, '\n', len) || memchr(line, '\0', len))
		return werr(w, "bad schema change line");
	if (w->member.len && w->member.len + len + 1 > w->cap && flush_events(w) < 0)
		return -1;
	strbuf_add(&w->member, line, len);
	strbuf_addc(&w->member, '\n');
	w->events++;
	return 0;
}

static void manifest_json(const batch_writer *w, strbuf *out)
{
	strbuf_adds(out, "{\n");
	identity_json(out, &w->h);
	strbuf_addf(out, ",\n  \"events\": %" PRIu64 ",\n  \"members\": [", w->events);
	for (size_t i = 0; i < w->nrecs; i++) {
		char name[32], hex[DIGEST_HEX_LEN + 1];
		member_name(i, name);
		digest_hex(w->recs[i].sha, DIGEST_LEN, hex);
		strbuf_addf(out, "%s\n    {\"name\": \"%s\", \"size\": %" PRIu64 ", \"sha256\": \"%s\"}",
			    i ? "," : "", name, w->recs[i].size, hex);
	}
	strbuf_adds(out, "\n  ]\n}\n");
}

static int write_signature(batch_writer *w, const strbuf *manifest)
{
	unsigned char mac[DIGEST_LEN];
	char sig[DIGEST_HEX_LEN + 2];
	if (hmac_sha256_buf(w->key, w->keylen, manifest->buf, manifest->len, mac) < 0)
		return werr(w, "HMAC-SHA256 failed");
	digest_hex(mac, DIGEST_LEN, sig);
	sig[DIGEST_HEX_LEN] = '\n';
	sig[DIGEST_HEX_LEN + 1] = '\0';
	return write_member(w, SIG_NAME, sig, DIGEST_HEX_LEN + 1);
}

int batch_writer_finish(batch_writer *w)
{
	if (!writer_usable(w))
		return -1;
	if (w->member.len && flush_events(w) < 0)
		return -1;
	strbuf m = { 0 };
	manifest_json(w, &m);
	int rc = write_member(w, MANIFEST_NAME, m.buf, m.len);
	if (rc == 0 && w->key)
		rc = write_signature(w, &m);
	strbuf_free(&m);
	/* the final flush, and so ENOSPC, surfaces only here */
	if (rc == 0 && archive_write_close(w->a) != ARCHIVE_OK)
		rc = werr(w, "writing batch: %s", archive_error_string(w->a));
	w->finished = true;
	return rc;
}

uint64_t batch_writer_events(const batch_writer *w)
{
	return w->events;
}

const char *batch_writer_error(const batch_writer *w)
{
	return w->err[0] ? w->err : "no error";
}

void batch_writer_free(batch_writer *w)
{
	if (!w)
		return;
	if (w->a)
		archive_write_free(w->a);
	batch_header_clear(&w->h);
	if (w->key) {
		OPENSSL_cleanse(w->key, w->keylen);
		free(w->key);
	}
	strbuf_free(&w->member);
	for (size_t i = 0; i < w->defcap; i++)
		free(w->defs[i].line);
	free(w->defs);
	free(w->recs);
	free(w);
}

/* ================= reading ================= */

enum rstate { R_START, R_BETWEEN, R_EVENTS, R_END, R_FAIL };

struct batch_reader {
	struct archive *a;
	batch_limits lim;
	unsigned char *key;
	size_t keylen;
	enum rstate state;
	batch_header h;
	unsigned nentries;      /* tar entries seen, for max_members */
	uint64_t total;         /* decompressed bytes read so far */
	member_rec *recs;       /* header.json and events members read */
	size_t nrecs, reccap;
	char name[32];          /* current member, for messages */
	uint64_t esize;         /* size the tar header gave the current member */
	uint64_t msize;         /* bytes of it read so far */
	digest_ctx *md;
	strbuf buf;             /* current member's unread bytes ... */
	size_t pos, scan;       /* ... from pos; no newline before scan */
	uint64_t events;        /* event lines seen (definitions excluded) */
	char digest_hex[DIGEST_HEX_LEN + 1];   /* of manifest.json */
	char err[256];
};

static int rerr(batch_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rerr(batch_reader *r, const char *fmt, ...)
{
	if (r->state != R_FAIL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->err, sizeof r->err, fmt, ap);
		va_end(ap);
	}
	r->state = R_FAIL;
	return -1;
}

/* A hostile name made safe to print: printable ASCII, at most 60 bytes. */
static const char *printable(const char *s, char out[64])
{
	size_t i = 0;
	for (; s && s[i] && i < 60; i++)
		out[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
	if (s && s[i])
		snprintf(out + i, 4, "...");
	return out;
}

batch_reader *batch_reader_new(int fd, const batch_limits *lim,
			       const unsigned char *key, size_t keylen)
{
	batch_reader *r = xcalloc(1, sizeof *r);
	if (lim)
		r->lim = *lim;
	else
		batch_limits_default(&r->lim, 0);
	if (key) {
		r->key = xmalloc(keylen ? keylen : 1);
		memcpy(r->key, key, keylen);
		r->keylen = keylen;
	}
	/* only tar and the two filters we write: less attack surface */
	struct archive *a = r->a = archive_read_new();
	if (!a || archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
	    archive_read_support_filter_gzip(a) != ARCHIVE_OK) {
		rerr(r, "libarchive lacks tar, zstd or gzip support");
		return r;
	}
	if (archive_read_open_fd(a, fd, READ_CHUNK) != ARCHIVE_OK)
		rerr(r, "not a teleport batch (%s)", archive_error_string(a));
	return r;
}

/*
 * Next tar entry: 1 with *name set, 0 at the end of the archive, -1.
 * Checks what every member must satisfy: the count, the type, the size.
 */
static int next_entry(batch_reader *r, const char **name)
{
	struct archive_entry *e;
	int rc = archive_read_next_header(r->a, &e);
	if (rc == ARCHIVE_EOF)
		return 0;
	if (rc != ARCHIVE_OK) {
		if (r->nentries == 0)
			return rerr(r, "not a teleport batch (%s)", archive_error_string(r->a));
		return rerr(r, "bad archive after member %s: %s", r->name,
			    archive_error_string(r->a));
	}
	if (++r->nentries > r->lim.max_members)
		return rerr(r, "batch has more than %u members", r->lim.max_members);
	*name = archive_entry_pathname(e);
	char shown[64];
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) ||
	    archive_entry_symlink(e) || !*name)
		return rerr(r, "member \"%s\" is not a regular file", printable(*name, shown));
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
		return rerr(r, "member \"%s\" has no size", printable(*name, shown));
	uint64_t size = r->esize = (uint64_t)archive_entry_size(e);
	if (size > r->lim.max_member)
		return rerr(r, "member %s exceeds %" PRIu64 " bytes", printable(*name, shown),
			    r->lim.max_member);
	if (size > r->lim.max_total - r->total)
		return rerr(r, "batch exceeds %" PRIu64 " bytes", r->lim.max_total);
	return 1;
}

static int begin_member(batch_reader *r, const char *name)
{
	snprintf(r->name, sizeof r->name, "%s", name);
	r->msize = 0;
	strbuf_reset(&r->buf);
	r->pos = r->scan = 0;
	digest_free(r->md);
	r->md = digest_sha256();
	return r->md ? 0 : rerr(r, "sha256 unavailable");
}

/*
 * Append the next chunk of the member to buf, hashing and counting it
 * before anyone sees it. Returns bytes read, 0 at the member's end, -1.
 */
static la_ssize_t read_chunk(batch_reader *r)
{
	strbuf_grow(&r->buf, READ_CHUNK);
	la_ssize_t n = archive_read_data(r->a, r->buf.buf + r->buf.len, READ_CHUNK);
	if (n < 0)
		return rerr(r, "member %s: %s", r->name, archive_error_string(r->a));
	if (n == 0)
		return 0;
	r->msize += (uint64_t)n;
	r->total += (uint64_t)n;
	if (r->msize > r->lim.max_member)
		return rerr(r, "member %s exceeds %" PRIu64 " bytes", r->name, r->lim.max_member);
	if (r->total > r->lim.max_total)
		return rerr(r, "batch exceeds %" PRIu64 " bytes", r->lim.max_total);
	if (digest_update(r->md, r->buf.buf + r->buf.len, (size_t)n) < 0)
		return rerr(r, "member %s: sha256 failed", r->name);
	r->buf.len += (size_t)n;
	r->buf.buf[r->buf.len] = '\0';
	return n;
}

/* Read a small member whole into buf; max: its size limit. */
static int read_whole(batch_reader *r, uint64_t max)
{
	if (r->esize > max)
		return rerr(r, "member %s exceeds %" PRIu64 " bytes", r->name, max);
	la_ssize_t n;
	while ((n = read_chunk(r)) > 0)
		;
	return n < 0 ? -1 : 0;
}

/* Finish the member's digest; listed members go into recs. */
static int end_member(batch_reader *r, bool listed, unsigned char sha[DIGEST_LEN])
{
	member_rec m = { .size = r->msize };
	if (digest_final(r->md, m.sha) < 0)
		return rerr(r, "member %s: sha256 failed", r->name);
	digest_free(r->md);
	r->md = NULL;
	if (sha)
		memcpy(sha, m.sha, DIGEST_LEN);
	if (listed)
		recs_push(&r->recs, &r->nrecs, &r->reccap, &m);
	return 0;
}

/*
 * The identity fields of header.json or manifest.json into h (strings
 * owned by the doc). Returns NULL or what is wrong.
 */
static const char *identity_parse(const json_doc *d, batch_header *h)
{
	int o = json_root(d);
	const char *format = json_str(d, o, "format");
	if (!format)
		return "no \"format\"";
	if (strcmp(format, BATCH_FORMAT) != 0)
		return "unsupported format (not " BATCH_FORMAT ")";
	h->kind = (char *)json_str(d, o, "kind");
	h->source = (char *)json_str(d, o, "source");
	h->target = (char *)json_str(d, o, "target");
	h->lo = (char *)json_str(d, o, "lo");
	h->hi = (char *)json_str(d, o, "hi");
	h->created = (char *)json_str(d, o, "created");
	if (!h->kind || (strcmp(h->kind, "rows") && strcmp(h->kind, "load")))
		return "bad or missing \"kind\"";
	if (!h->source || !*h->source || !h->target || !*h->target)
		return "bad or missing \"source\" or \"target\"";
	if (!json_u64(d, o, "seq", &h->seq) || h->seq == 0)
		return "bad or missing \"seq\"";
	if (!h->lo || !h->hi || !h->created)
		return "bad or missing \"lo\", \"hi\" or \"created\"";
	return NULL;
}

static bool identity_equal(const batch_header *a, const batch_header *b)
{
	return a->seq == b->seq && !strcmp(a->kind, b->kind) && !strcmp(a->source, b->source) &&
	       !strcmp(a->target, b->target) && !strcmp(a->lo, b->lo) &&
	       !strcmp(a->hi, b->hi) && !strcmp(a->created, b->created);
}

int batch_reader_header(batch_reader *r, const batch_header **h)
{
	if (r->state == R_FAIL)
		return -1;
	if (r->state != R_START) {
		if (h)
			*h = &r->h;
		return 0;
	}
	const char *name = NULL;
	int rc = next_entry(r, &name);
	if (rc == 0)
		return rerr(r, "not a teleport batch (empty archive)");
	if (rc < 0)
		return -1;
	if (strcmp(name, HEADER_NAME) != 0) {
		char shown[64];
		return rerr(r, "not a teleport batch (first member is \"%s\", not " HEADER_NAME ")",
			    printable(name, shown));
	}
	if (begin_member(r, name) < 0 || read_whole(r, HEADER_MAX) < 0 || end_member(r, true, NULL) < 0)
		return -1;
	char jerr[128];
	json_doc *d = json_parse(r->buf.buf, r->buf.len, jerr, sizeof jerr);
	if (!d)
		return rerr(r, "member " HEADER_NAME ": %s", jerr);
	batch_header tmp = { 0 };
	const char *bad = identity_parse(d, &tmp);
	if (!bad) {
		header_copy(&r->h, &tmp);
		bad = extra_parse(d, &r->h);
	}
	json_free(d);
	if (bad)
		return rerr(r, "member " HEADER_NAME ": %s", bad);
	r->state = R_BETWEEN;
	if (h)
		*h = &r->h;
	return 0;
}

/*
 * The next complete line in buf: 1 with it NUL-terminated in place, 0
 * if more data is needed (buf compacted first), -1 on a bad line.
 */
static int take_line(batch_reader *r, char **line, size_t *len)
{
	char *start = r->buf.buf + r->pos;
	char *nl = memchr(r->buf.buf + r->scan, '\n', r->buf.len - r->scan);
	if (!nl) {
		/* keep the partial line; move it once, not per chunk */
		size_t keep = r->buf.len - r->pos;
		if (r->pos) {
			memmove(r->buf.buf, start, keep);
			r->buf.len = keep;
			r->buf.buf[keep] = '\0';
			r->pos = 0;
		}
		r->scan = r->buf.len;
		return 0;
	}
	*nl = '\0';
	*line = start;
	*len = (size_t)(nl - start);
	r->pos = r->scan = (size_t)(nl - r->buf.buf) + 1;
	if (*len < 2 || !memchr("=IUDTS", start[0], 6) || start[1] != '\t' ||
	    strlen(start) != *len)   /* text never holds a NUL byte */
		return rerr(r, "member %s: bad event line", r->name);
	if (start[0] != '=')
		r->events++;
	return 1;
}

static int end_events_member(batch_reader *r)
{
	if (r->buf.len > r->pos)
		return rerr(r, "member %s: last line lacks its newline", r->name);
	if (r->msize == 0)
		return rerr(r, "member %s is empty", r->name);
	if (end_member(r, true, NULL) < 0)
		return -1;
	r->state = R_BETWEEN;
	return 0;
}

/* The members list of the manifest against what was read. */
static int check_members(batch_reader *r, const json_doc *d)
{
	int arr = json_get(d, json_root(d), "members");
	if (json_array_len(d, arr) != r->nrecs)
		return rerr(r, "member " MANIFEST_NAME ": lists %zu members, the batch has %zu",
			    json_array_len(d, arr), r->nrecs);
	size_t i = 0;
	for (int e = json_first(d, arr); e >= 0; e = json_next(d, arr, e), i++) {
		char name[32];
		uint64_t size;
		unsigned char sha[DIGEST_LEN];
		const char *mname = json_str(d, e, "name"), *hex = json_str(d, e, "sha256");
		member_name(i, name);
		if (!mname || strcmp(mname, name) != 0)
			return rerr(r, "member " MANIFEST_NAME ": entry %zu is not %s", i + 1, name);
		if (!json_u64(d, e, "size", &size) || !hex || digest_unhex(hex, sha, DIGEST_LEN) < 0)
			return rerr(r, "member " MANIFEST_NAME ": bad entry for %s", name);
		if (size != r->recs[i].size)
			return rerr(r, "member %s: size does not match the manifest", name);
		if (!digest_equal(sha, r->recs[i].sha, DIGEST_LEN))
			return rerr(r, "member %s: sha256 mismatch", name);
	}
	return 0;
}

static int check_manifest(batch_reader *r, const strbuf *m)
{
	char jerr[128];
	json_doc *d = json_parse(m->buf, m->len, jerr, sizeof jerr);
	if (!d)
		return rerr(r, "member " MANIFEST_NAME ": %s", jerr);
	batch_header id = { 0 };
	uint64_t events = 0;
	const char *bad = identity_parse(d, &id);
	int rc = -1;
	if (bad)
		rerr(r, "member " MANIFEST_NAME ": %s", bad);
	else if (!identity_equal(&id, &r->h))
		rerr(r, "member " MANIFEST_NAME ": identity differs from " HEADER_NAME);
	else if (!json_u64(d, json_root(d), "events", &events) || events != r->events)
		rerr(r, "member " MANIFEST_NAME ": events count does not match the batch");
	else
		rc = check_members(r, d);
	json_free(d);
	return rc;
}

/*
 * The optional manifest.sig, then the end of the archive. With a key
 * the signature must be there and match; without one it is not read.
 */
static int read_signature(batch_reader *r, const strbuf *manifest)
{
	const char *name = NULL;
	char shown[64];
	int rc = next_entry(r, &name);
	if (rc < 0)
		return -1;
	bool sig = rc == 1 && strcmp(name, SIG_NAME) == 0;
	if (rc == 1 && !sig)
		return rerr(r, "unexpected member \"%s\" after " MANIFEST_NAME, printable(name, shown));
	if (sig) {
		if (begin_member(r, name) < 0 || read_whole(r, SIG_MAX) < 0 || end_member(r, false, NULL) < 0)
			return -1;
		rc = next_entry(r, &name);
		if (rc < 0)
			return -1;
		if (rc == 1)
			return rerr(r, "unexpected member \"%s\" after " SIG_NAME, printable(name, shown));
	}
	if (!r->key)
		return 0;
	if (!sig)
		return rerr(r, "batch is not signed but a token is configured");
	unsigned char want[DIGEST_LEN], got[DIGEST_LEN];
	if (r->buf.len != DIGEST_HEX_LEN + 1 || r->buf.buf[DIGEST_HEX_LEN] != '\n')
		return rerr(r, "member " SIG_NAME ": malformed");
	r->buf.buf[DIGEST_HEX_LEN] = '\0';
	if (digest_unhex(r->buf.buf, got, DIGEST_LEN) < 0)
		return rerr(r, "member " SIG_NAME ": malformed");
	if (hmac_sha256_buf(r->key, r->keylen, manifest->buf, manifest->len, want) < 0)
		return rerr(r, "HMAC-SHA256 failed");
	if (!digest_equal(want, got, DIGEST_LEN))
		return rerr(r, "signature does not match the token");
	return 0;
}

/* manifest.json was just opened: read it, the signature, then verify. */
static int finish_batch(batch_reader *r, const char *name)
{
	unsigned char sha[DIGEST_LEN];
	if (begin_member(r, name) < 0 || read_whole(r, MANIFEST_MAX(r->nrecs)) < 0 ||
	    end_member(r, false, sha) < 0)
		return -1;
	digest_hex(sha, DIGEST_LEN, r->digest_hex);
	strbuf manifest = { 0 };
	strbuf_add(&manifest, r->buf.buf, r->buf.len);
	/* the signature first: nothing unauthenticated is parsed further */
	int rc = read_signature(r, &manifest);
	if (rc == 0)
		rc = check_manifest(r, &manifest);
	strbuf_free(&manifest);
	if (rc < 0) {
		r->digest_hex[0] = '\0';
		return -1;
	}
	r->state = R_END;
	return 0;
}

/* Between members: the next events member, or the manifest. */
static int open_next(batch_reader *r)
{
	const char *name = NULL;
	char want[32], shown[64];
	int rc = next_entry(r, &name);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return rerr(r, "batch ends before " MANIFEST_NAME);
	member_name(r->nrecs, want);
	if (strcmp(name, want) == 0) {
		if (begin_member(r, name) < 0)
			return -1;
		r->state = R_EVENTS;
		return 0;
	}
	if (strcmp(name, MANIFEST_NAME) == 0)
		return finish_batch(r, name);
	return rerr(r, "unexpected member \"%s\" (expected %s or " MANIFEST_NAME ")",
		    printable(name, shown), want);
}

int batch_reader_next(batch_reader *r, char **line, size_t *len)
{
	if (r->state == R_START && batch_reader_header(r, NULL) < 0)
		return -1;
	for (;;) {
		la_ssize_t n;
		int rc;
		switch (r->state) {
		case R_END:
			return 0;
		case R_BETWEEN:
			if (open_next(r) < 0)
				return -1;
			break;
		case R_EVENTS:
			rc = take_line(r, line, len);
			if (rc != 0)
				return rc;
			n = read_chunk(r);
			if (n < 0 || (n == 0 && end_events_member(r) < 0))
				return -1;
			break;
		default:
			return -1;
		}
	}
}

uint64_t batch_reader_events(const batch_reader *r)
{
	return r->events;
}

const char *batch_reader_digest(const batch_reader *r)
{
	return r->digest_hex;
}

const char *batch_reader_error(const batch_reader *r)
{
	return r->err[0] ? r->err : "no error";
}

void batch_reader_free(batch_reader *r)
{
	if (!r)
		return;
	if (r->a)
		archive_read_free(r->a);
	if (r->key) {
		OPENSSL_cleanse(r->key, r->keylen);
		free(r->key);
	}
	batch_header_clear(&r->h);
	digest_free(r->md);
	strbuf_free(&r->buf);
	free(r->recs);
	free(r);
}

int batch_verify_file(const char *path, const batch_limits *lim,
		      const unsigned char *key, size_t keylen,
		      batch_header *h, char digest[65],
		      char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	batch_reader *r = batch_reader_new(fd, lim, key, keylen);
	const batch_header *rh;
	char *line;
	size_t len;
	int rc = batch_reader_header(r, &rh);
	if (rc == 0)
		while ((rc = batch_reader_next(r, &line, &len)) == 1)
			;
	if (rc == 0) {
		header_copy(h, rh);
		memcpy(digest, batch_reader_digest(r), DIGEST_HEX_LEN + 1);
	} else {
		snprintf(err, errlen, "%s", batch_reader_error(r));
	}
	batch_reader_free(r);
	close(fd);
	return rc;
}
