/*
 * httpauth.h - what tp-send and tp-recv agree on over HTTP: the routes,
 * the media type, and the header credential.
 *
 * A batch goes as POST <endpoint>/v1/batches/<source>/<seq16><ext> with
 * the batch file as the body; GET <endpoint>/v1/status reports what the
 * receiver holds. The route is the request path from "/v1/" on: an
 * endpoint may sit below a prefix (a CGI script, a reverse proxy), and
 * only the route is signed, so the prefix may differ on the two sides.
 *
 * The batch carries its own HMAC (manifest.sig), but a receiver must say
 * 401 before it stores any body, so each request also carries
 *   X-Teleport-Source: NAME
 *   X-Teleport-Date:   unix seconds
 *   X-Teleport-Auth:   hex HMAC-SHA256(token,
 *                        METHOD "\n" ROUTE "\n" SOURCE "\n" DATE)
 * accepted within HTTPAUTH_SKEW seconds of the receiver's clock. Custom
 * X- headers, not Authorization: web servers pass them to CGI programs
 * (Apache withholds Authorization without CGIPassAuth).
 */
#ifndef TP_HTTPAUTH_H
#define TP_HTTPAUTH_H

#include <stddef.h>
#include <time.h>

#define HTTPAUTH_ROUTE_BATCHES "/v1/batches/"
#define HTTPAUTH_ROUTE_STATUS "/v1/status"
#define HTTPAUTH_MEDIA_TYPE "application/x-teleport-batch"

#define HTTPAUTH_HDR_SOURCE "X-Teleport-Source"
#define HTTPAUTH_HDR_DATE "X-Teleport-Date"
#define HTTPAUTH_HDR_AUTH "X-Teleport-Auth"

#define HTTPAUTH_SKEW 300       /* seconds either way */

/*
 * The credential for one request: hex[65] gets the lowercase hex HMAC.
 * 0, or -1 when libcrypto fails.
 */
int httpauth_sign(const char *token, const char *method, const char *route,
		  const char *source, const char *date, char hex[65]);

/*
 * Check a request's credential (date and auth as received, either may be
 * NULL) against token at time now. 0, or -1 with why filled.
 * The comparison is constant-time.
 */
int httpauth_check(const char *token, const char *method, const char *route,
		   const char *source, const char *date, const char *auth,
		   time_t now, char *why, size_t len);

#endif
