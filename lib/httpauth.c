/*
 * httpauth.c - the header credential of teleport's HTTP protocol (see
 * httpauth.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "httpauth.h"
#include "strbuf.h"

static int mac(const char *token, const char *method, const char *route,
	       const char *source, const char *date,
	       unsigned char out[DIGEST_LEN])
{
	strbuf msg = { 0 };

	strbuf_addf(&msg, "%s\n%s\n%s\n%s", method, route, source, date);
	int rc = hmac_sha256_buf((const unsigned char *)token, strlen(token),
				 msg.buf, msg.len, out);
	strbuf_free(&msg);
	return rc;
}

int httpauth_sign(const char *token, const char *method, const char *route,
		  const char *source, const char *date, char hex[65])
{
	unsigned char raw[DIGEST_LEN];

	if (mac(token, method, route, source, date, raw) < 0)
		return -1;
	digest_hex(raw, DIGEST_LEN, hex);
	return 0;
}

/* Decimal seconds, nothing else; -1 when not. */
static long long parse_date(const char *s)
{
	char *end;

	if (!s || *s < '0' || *s > '9' || strlen(s) > 18)
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	return errno || *end ? -1 : v;
}

int httpauth_check(const char *token, const char *method, const char *route,
		   const char *source, const char *date, const char *auth,
		   time_t now, char *why, size_t len)
{
	unsigned char want[DIGEST_LEN], got[DIGEST_LEN];

	if (!date || !auth) {
		snprintf(why, len, "missing credential (%s and %s headers)",
			 HTTPAUTH_HDR_DATE, HTTPAUTH_HDR_AUTH);
		return -1;
	}
	long long d = parse_date(date);
	if (d < 0) {
		snprintf(why, len, "%s is not unix seconds", HTTPAUTH_HDR_DATE);
		return -1;
	}
	long long skew = d - (long long)now;
	if (skew > HTTPAUTH_SKEW || skew < -HTTPAUTH_SKEW) {
		snprintf(why, len, "%s is %lld s off this receiver's clock "
			 "(at most %d allowed)", HTTPAUTH_HDR_DATE, skew,
			 HTTPAUTH_SKEW);
		return -1;
	}
	if (strlen(auth) != 2 * DIGEST_LEN ||
	    digest_unhex(auth, got, DIGEST_LEN) < 0) {
		snprintf(why, len, "%s is not a hex HMAC-SHA256", HTTPAUTH_HDR_AUTH);
		return -1;
	}
	if (mac(token, method, route, source, date, want) < 0) {
		snprintf(why, len, "HMAC computation failed");
		return -1;
	}
	if (!digest_equal(want, got, DIGEST_LEN)) {
		snprintf(why, len, "wrong credential for source %s (token mismatch?)",
			 source);
		return -1;
	}
	return 0;
}
