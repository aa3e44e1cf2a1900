/*
 * digest.c - SHA-256 and HMAC-SHA256 via EVP.
 *
 * HMAC goes through EVP_MAC: the HMAC_CTX calls are deprecated in
 * OpenSSL 3 and would break the -Werror build.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include "digest.h"
#include "strbuf.h"

struct digest_ctx {
	EVP_MD_CTX *md;      /* plain SHA-256, or */
	EVP_MAC_CTX *mac;    /* HMAC-SHA256 */
};

digest_ctx *digest_sha256(void)
{
	digest_ctx *d = xcalloc(1, sizeof *d);
	d->md = EVP_MD_CTX_new();
	if (!d->md || EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) != 1) {
		digest_free(d);
		return NULL;
	}
	return d;
}

digest_ctx *digest_hmac_sha256(const unsigned char *key, size_t keylen)
{
	digest_ctx *d = xcalloc(1, sizeof *d);
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	char sha[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha, 0),
		OSSL_PARAM_construct_end()
	};
	/* an empty key is legal HMAC, but EVP_MAC_init wants a pointer */
	static const unsigned char nokey[1];
	if (mac)
		d->mac = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);  /* the context holds its own reference */
	if (!d->mac || EVP_MAC_init(d->mac, keylen ? key : nokey, keylen, params) != 1) {
		digest_free(d);
		return NULL;
	}
	return d;
}

int digest_update(digest_ctx *d, const void *data, size_t len)
{
	int ok = d->md ? EVP_DigestUpdate(d->md, data, len) : EVP_MAC_update(d->mac, data, len);
	return ok == 1 ? 0 : -1;
}

int digest_final(digest_ctx *d, unsigned char out[DIGEST_LEN])
{
	if (d->md) {
		unsigned n = 0;
		return EVP_DigestFinal_ex(d->md, out, &n) == 1 && n == DIGEST_LEN ? 0 : -1;
	}
	size_t n = 0;
	return EVP_MAC_final(d->mac, out, &n, DIGEST_LEN) == 1 && n == DIGEST_LEN ? 0 : -1;
}

void digest_free(digest_ctx *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->md);
	EVP_MAC_CTX_free(d->mac);
	free(d);
}

static int one_shot(digest_ctx *d, const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
	int rc = d && digest_update(d, data, len) == 0 && digest_final(d, out) == 0 ? 0 : -1;
	digest_free(d);
	return rc;
}

int sha256_buf(const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
	return one_shot(digest_sha256(), data, len, out);
}

int hmac_sha256_buf(const unsigned char *key, size_t keylen,
		    const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
	return one_shot(digest_hmac_sha256(key, keylen), data, len, out);
}

void digest_hex(const unsigned char *raw, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[raw[i] >> 4];
		hex[2 * i + 1] = digits[raw[i] & 15];
	}
	hex[2 * n] = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int digest_unhex(const char *hex, unsigned char *raw, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		raw[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

bool digest_equal(const unsigned char *a, const unsigned char *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
