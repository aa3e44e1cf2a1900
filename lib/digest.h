/*
 * digest.h - SHA-256 and HMAC-SHA256 on OpenSSL's libcrypto, streaming,
 * behind one small type; hex helpers and a constant-time compare.
 *
 *   digest_ctx *d = digest_sha256();          (or digest_hmac_sha256(key, n))
 *   digest_update(d, buf, n); ...
 *   digest_final(d, raw);                 raw: DIGEST_LEN bytes
 *   digest_free(d);
 */
#ifndef TP_DIGEST_H
#define TP_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#define DIGEST_LEN 32                     /* SHA-256 and its HMAC */
#define DIGEST_HEX_LEN (2 * DIGEST_LEN)   /* without the NUL */

typedef struct digest_ctx digest_ctx;

/* NULL only if libcrypto cannot provide SHA-256 (or HMAC). */
digest_ctx *digest_sha256(void);
digest_ctx *digest_hmac_sha256(const unsigned char *key, size_t keylen);
/* 0, or -1 on a libcrypto failure. After final, only free is allowed. */
int digest_update(digest_ctx *d, const void *data, size_t len);
int digest_final(digest_ctx *d, unsigned char out[DIGEST_LEN]);
void digest_free(digest_ctx *d);

/* One shot; 0 or -1. */
int sha256_buf(const void *data, size_t len, unsigned char out[DIGEST_LEN]);
int hmac_sha256_buf(const unsigned char *key, size_t keylen,
		    const void *data, size_t len, unsigned char out[DIGEST_LEN]);

/* Lowercase hex of n bytes into hex (2n+1 bytes, NUL-terminated). */
void digest_hex(const unsigned char *raw, size_t n, char *hex);
/* Exactly 2n hex digits (either case) into raw; 0 or -1. */
int digest_unhex(const char *hex, unsigned char *raw, size_t n);
/* Constant time (CRYPTO_memcmp): use it for signatures and tokens. */
bool digest_equal(const unsigned char *a, const unsigned char *b, size_t n);

#endif
