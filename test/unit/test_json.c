/* test_json.c - the JSON writer and the validating reader. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "digest.h"
#include "json.h"
#include "tap.h"

static bool parses(const char *s)
{
	char err[128];
	json_doc *d = json_parse(s, strlen(s), err, sizeof err);
	json_free(d);
	return d != NULL;
}

static void test_writer(void)
{
	strbuf sb = { 0 };
	is_int(json_add_strz(&sb, "a\"b\\c\n\t\x01\x1f/é€😀"), 0, "valid UTF-8 accepted");
	is_str(sb.buf, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f/é€😀\"", "escaped per RFC 8259");
	strbuf_reset(&sb);
	is_int(json_add_str(&sb, "a\xff" "b\xc0\xaf", 5), -1, "invalid UTF-8 reported");
	is_str(sb.buf, "\"a\\ufffdb\\ufffd\\ufffd\"", "invalid bytes replaced");

	/* what the writer writes, the reader reads back */
	strbuf doc = { 0 };
	const char *v = "tab\there \"q\" \\ \x02 é 😀";
	strbuf_adds(&doc, "{\"k\": ");
	json_add_strz(&doc, v);
	strbuf_adds(&doc, "}");
	char err[128];
	json_doc *d = json_parse(doc.buf, doc.len, err, sizeof err);
	ok(d != NULL, "writer output parses");
	is_str(json_str(d, json_root(d), "k"), v, "string roundtrip");
	json_free(d);
	strbuf_free(&doc);
	strbuf_free(&sb);
}

static void test_valid(void)
{
	const char *s = " {\"s\": \"x\\u00e9\\ud83d\\ude00\\n\\/\", \"n\": 18446744073709551615,"
			" \"z\": 0, \"f\": -1.5e+3, \"b\": [true, false, null, {}, []],"
			" \"o\": {\"a\": [1, {\"b\": \"c\"}]}} \n";
	char err[128];
	json_doc *d = json_parse(s, strlen(s), err, sizeof err);
	ok(d != NULL, "valid document parses");
	int root = json_root(d);
	is_str(json_str(d, root, "s"), "x\xc3\xa9\xf0\x9f\x98\x80\n/", "\\u and surrogate pair unescaped");
	uint64_t u = 0;
	ok(json_u64(d, root, "n", &u) && u == UINT64_MAX, "u64 max exact");
	ok(json_u64(d, root, "z", &u) && u == 0, "zero");
	ok(!json_u64(d, root, "f", &u), "a fraction is no u64");
	ok(!json_u64(d, root, "s", &u), "a string is no u64");
	ok(!json_u64(d, root, "missing", &u), "missing key");
	ok(json_str(d, root, "n") == NULL, "a number is no string");
	int b = json_get(d, root, "b");
	is_int((long)json_array_len(d, b), 5, "array length");
	int count = 0;
	for (int e = json_first(d, b); e >= 0; e = json_next(d, b, e))
		count++;
	is_int(count, 5, "iteration skips nested values");
	int o = json_get(d, root, "o");
	int a = json_get(d, o, "a");
	int second = json_next(d, a, json_first(d, a));
	is_str(json_str(d, second, "b"), "c", "nested lookup");
	is_int(json_next(d, a, second), -1, "end of array");
	is_int(json_type(d, -1), JSON_NONE, "absent is JSON_NONE");
	json_free(d);
	is_int(json_get(NULL, 0, "x"), -1, "NULL doc is harmless");

	char big[64];
	snprintf(big, sizeof big, "{\"n\": 18446744073709551616}");
	d = json_parse(big, strlen(big), err, sizeof err);
	ok(d && !json_u64(d, json_root(d), "n", &u), "u64 overflow refused");
	json_free(d);
}

static void test_invalid(void)
{
	const char *bad[] = {
		"", " ", "[]", "\"s\"", "1", "{", "{}}", "{} {}", "{}x", "{}\0",
		"{\"a\" \"b\"}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{\"a\"::1}", "{,\"a\":1}",
		"{\"a\":[1,]}", "{\"a\":[1 2]}", "{\"a\":[,1]}", "{\"a\":tru}", "{\"a\":nul}",
		"{\"a\":01}", "{\"a\":-}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":+1}",
		"{\"a\":1,\"a\":2}", "{\"a\":1,\"\\u0061\":2}", "{\"a\":\"\\u0000\"}",
		"{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}",
		"{\"a\":\"\\x41\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"tab\there\"}",
		"{\"a\":\"\xff\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xc0\xaf\"}",
		"{1:2}", "{\"a\":{\"b\":1,\"b\":1}}", "{\"a\":1}]", "{\"a\":\"x\":1}",
		"{\"a\":[1}", "{\"a\":{]}", "{'a':1}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char err[128] = "";
		size_t len = i == 9 ? 3 : strlen(bad[i]);  /* "{}\0": the NUL counts */
		json_doc *d = json_parse(bad[i], len, err, sizeof err);
		ok(d == NULL && err[0], "refused #%zu %s (%s)", i, bad[i], err);
		json_free(d);
	}
	ok(parses("{\"a\":1,\"b\":{\"a\":2}}"), "same key in different objects is fine");
	ok(parses("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}"), "all simple escapes");
}

/* Many keys: sorted duplicate check, and jsmn's parent links, stay fast. */
static void test_large(void)
{
	strbuf sb = { 0 };
	strbuf_adds(&sb, "{\"members\":[");
	for (int i = 0; i < 100000; i++)
		strbuf_addf(&sb, "%s{\"name\":\"m%d\",\"size\":%d}", i ? "," : "", i, i);
	strbuf_adds(&sb, "],\"x\":{");
	for (int i = 0; i < 50000; i++)
		strbuf_addf(&sb, "%s\"k%d\":%d", i ? "," : "", i, i);
	strbuf_adds(&sb, "}}");
	char err[128];
	json_doc *d = json_parse(sb.buf, sb.len, err, sizeof err);
	ok(d != NULL, "large document parses");
	int arr = json_get(d, json_root(d), "members");
	uint64_t sum = 0, v;
	for (int e = json_first(d, arr); e >= 0; e = json_next(d, arr, e))
		if (json_u64(d, e, "size", &v))
			sum += v;
	ok(sum == (uint64_t)99999 * 100000 / 2, "sum of sizes");
	json_free(d);
	strbuf_free(&sb);
}

static void test_digest(void)
{
	unsigned char raw[DIGEST_LEN], back[DIGEST_LEN];
	char hex[DIGEST_HEX_LEN + 1];
	sha256_buf("abc", 3, raw);
	digest_hex(raw, DIGEST_LEN, hex);
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256(abc)");
	/* RFC 4231 test case 2 */
	hmac_sha256_buf((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28, raw);
	digest_hex(raw, DIGEST_LEN, hex);
	is_str(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "hmac-sha256");
	ok(digest_unhex(hex, back, DIGEST_LEN) == 0 && digest_equal(raw, back, DIGEST_LEN), "unhex");
	back[31] ^= 1;
	ok(!digest_equal(raw, back, DIGEST_LEN), "one bit differs");
	ok(digest_unhex("abc", back, DIGEST_LEN) < 0, "short hex refused");
	/* streaming equals one shot */
	digest_ctx *d = digest_hmac_sha256((const unsigned char *)"Jefe", 4);
	digest_update(d, "what do ya ", 11);
	digest_update(d, "want for nothing?", 17);
	digest_final(d, back);
	digest_free(d);
	ok(digest_equal(raw, back, DIGEST_LEN), "streamed hmac equals one shot");
	ok(hmac_sha256_buf(NULL, 0, "", 0, raw) == 0, "empty key works");
}

int main(void)
{
	test_writer();
	test_valid();
	test_invalid();
	test_large();
	test_digest();
	return done_testing();
}
