/*
 * strbuf.h - a growable byte buffer, always NUL-terminated.
 * A zeroed struct is an empty buffer; strbuf_free releases it.
 * Allocation failure aborts (the commands cannot go on without memory).
 */
#ifndef TP_STRBUF_H
#define TP_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
} strbuf;

void strbuf_reset(strbuf *sb);                 /* len = 0, keeps memory */
void strbuf_free(strbuf *sb);
void strbuf_grow(strbuf *sb, size_t extra);
void strbuf_add(strbuf *sb, const void *data, size_t len);
void strbuf_adds(strbuf *sb, const char *s);
void strbuf_addc(strbuf *sb, char c);
void strbuf_addf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *strbuf_detach(strbuf *sb);               /* caller frees; sb is reset */

/* xmalloc and friends abort with a message on allocation failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
