/*
 * json.h - the little JSON that batch manifests need.
 *
 * Writing: string escaping into a strbuf (RFC 8259). Reading: jsmn
 * tokenizes, json.c validates what jsmn does not (one top-level object
 * and nothing after it, separators, primitive grammar, duplicate keys,
 * string escapes and UTF-8) and unescapes every string once at parse.
 * Numbers stay text, so 64-bit values are exact.
 *
 * A value is named by its token index: json_root() is the top object;
 * -1 means "absent" and every getter accepts it, so lookups chain.
 */
#ifndef TP_JSON_H
#define TP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "strbuf.h"

/* ---- writing ---- */

/*
 * Append s as a quoted JSON string. Valid UTF-8 passes through; invalid
 * bytes become U+FFFD and make the call return -1 (the output is still
 * valid JSON). 0 otherwise.
 */
int json_add_str(strbuf *out, const char *s, size_t len);
int json_add_strz(strbuf *out, const char *s);  /* NUL-terminated s */

/* ---- reading ---- */

typedef struct json_doc json_doc;
enum json_type { JSON_NONE, JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_PRIMITIVE };

/*
 * Parse one JSON object (s need not be NUL-terminated). NULL with err
 * filled when s is not exactly one valid object. json_free releases.
 */
json_doc *json_parse(const char *s, size_t len, char *err, size_t errlen);
void json_free(json_doc *d);

int json_root(const json_doc *d);                        /* 0 */
enum json_type json_type(const json_doc *d, int tok);   /* JSON_NONE for -1 */
/* The value of key in object obj, or -1. */
int json_get(const json_doc *d, int obj, const char *key);
/*
 * Arrays: element count (0 if arr is not an array), and iteration:
 *   for (int e = json_first(d, arr); e >= 0; e = json_next(d, arr, e))
 */
size_t json_array_len(const json_doc *d, int arr);
int json_first(const json_doc *d, int arr);
int json_next(const json_doc *d, int arr, int elem);

/*
 * A string value, unescaped and NUL-terminated (no string holds a NUL:
 * \u0000 is refused); owned by d. NULL if tok is not a string.
 */
const char *json_string(const json_doc *d, int tok);
/* The string value of key in obj, or NULL. */
const char *json_str(const json_doc *d, int obj, const char *key);
/* Key's value as a non-negative integer without sign, fraction or exponent. */
bool json_u64(const json_doc *d, int obj, const char *key, uint64_t *out);
/* Key's value as true or false (the literals only). */
bool json_bool(const json_doc *d, int obj, const char *key, bool *out);

#endif
