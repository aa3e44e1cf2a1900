/* test_copytext.c - COPY text fields and record_out text. */
#include <stdlib.h>
#include <string.h>
#include "copytext.h"
#include "tap.h"

/* Split a copy of s; returns the count, fields into f/l (pointing into buf). */
static int split(const char *s, char *buf, char **f, size_t *l, size_t max)
{
	size_t n = strlen(s);
	memcpy(buf, s, n + 1);
	return copytext_split(buf, n, f, l, max);
}

static void test_escape(void)
{
	strbuf sb = { 0 };
	copytext_field(&sb, "a\\b\tc\nd\re\bf\fg\vh", 15);
	is_str(sb.buf, "a\\\\b\\tc\\nd\\re\\bf\\fg\\vh", "escape every special byte");
	strbuf_reset(&sb);
	copytext_field(&sb, NULL, 0);
	strbuf_addc(&sb, '\t');
	copytext_field(&sb, "", 0);
	strbuf_addc(&sb, '\t');
	copytext_field(&sb, "\\N", 2);
	is_str(sb.buf, "\\N\t\t\\\\N", "NULL, empty and the text \\N differ");

	char buf[64], *f[8];
	size_t l[8];
	is_int(split(sb.buf, buf, f, l, 8), 3, "three fields");
	ok(f[0] == NULL, "\\N is NULL");
	ok(f[1] && l[1] == 0 && f[1][0] == '\0', "empty is empty");
	ok(f[2] && l[2] == 2 && !strcmp(f[2], "\\N"), "escaped \\N is text");
	strbuf_free(&sb);
}

/* Every byte 1..255 survives escape then split. */
static void test_roundtrip(void)
{
	char raw[256];
	for (int i = 1; i < 256; i++)
		raw[i - 1] = (char)i;
	strbuf sb = { 0 };
	copytext_field(&sb, raw, 255);
	strbuf_addc(&sb, '\t');
	copytext_field(&sb, "x", 1);
	ok(!memchr(sb.buf, '\n', sb.len) && !memchr(sb.buf, '\r', sb.len), "no raw newline");
	char *f[4];
	size_t l[4];
	int n = copytext_split(sb.buf, sb.len, f, l, 4);
	is_int(n, 2, "two fields after roundtrip");
	ok(n == 2 && l[0] == 255 && !memcmp(f[0], raw, 255), "all bytes roundtrip");
	ok(n == 2 && !strcmp(f[1], "x"), "second field");
	strbuf_free(&sb);
}

static void test_split_input(void)
{
	char buf[128], *f[8];
	size_t l[8];
	is_int(split("\\101\\x42\\x4a\\7\\101x", buf, f, l, 8), 1, "octal and hex escapes");
	is_str(f[0], "ABJ\aAx", "octal and hex decoded");
	is_int(split("", buf, f, l, 8), 1, "empty line is one empty field");
	is_int(split("a\t\tb\t", buf, f, l, 8), 4, "empty fields");
	ok(l[1] == 0 && l[3] == 0 && f[3] && !strcmp(f[2], "b"), "empty fields are empty, not NULL");
	is_int(split("a\tb\tc", buf, f, l, 2), -1, "too many fields");
	is_int(split("a\\", buf, f, l, 8), -1, "trailing backslash");
	is_int(split("a\\q", buf, f, l, 8), -1, "unknown escape");
	is_int(split("\\0", buf, f, l, 8), -1, "escaped NUL refused");
	is_int(split("\\x00", buf, f, l, 8), -1, "hex NUL refused");
	is_int(split("a\\Nb", buf, f, l, 8), -1, "\\N inside a field refused");
	is_int(split("\\N\t\\N", buf, f, l, 8), 2, "two NULLs");
	ok(!f[0] && !f[1], "both NULL");
}

/* Parse text; return count and a "|"-joined rendering, NULL shown as ~. */
static int rec(const char *text, char *shown)
{
	strbuf store = { 0 };
	record_field *fs = NULL;
	size_t cap = 0;
	int n = record_parse(text, strlen(text), &store, &fs, &cap);
	shown[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(shown, "|");
		if (fs[i].null)
			strcat(shown, "~");
		else
			strncat(shown, store.buf + fs[i].off, fs[i].len);
	}
	free(fs);
	strbuf_free(&store);
	return n;
}

static void test_record(void)
{
	char s[512];
	/* literal record_out outputs */
	is_int(rec("(1,\"a b\",,\"\",\"x\"\"y\",\"{1,2}\",\"(1,\\\"\\\"\\\"q\\\"\\\"\\\")\")", s), 7,
	       "record_out with nested composite");
	is_str(s, "1|a b|~||x\"y|{1,2}|(1,\"\"\"q\"\"\")", "fields unescaped");
	/* what record_out really writes for ROW(1, ROW(1, '"q"')) */
	is_int(rec("(1,\"(1,\"\"\"\"\"\"q\"\"\"\"\"\")\")", s), 2, "doubled quotes nested");
	is_str(s, "1|(1,\"\"\"q\"\"\")", "inner record text recovered");
	is_int(rec("(\"a\\\\b\",c)", s), 2, "backslash in quotes");
	is_str(s, "a\\b|c", "backslash unescaped");
	is_int(rec("(a\\,b,\"\")", s), 2, "backslash outside quotes");
	is_str(s, "a,b|", "escaped comma");
	is_int(rec("()", s), 1, "() is one NULL field");
	is_str(s, "~", "() is NULL");
	is_int(rec("(,)", s), 2, "two NULLs");
	is_str(s, "~|~", "(,) fields");
	is_int(rec(" (a\"b c\"d) ", s), 1, "mixed quoting, outer spaces");
	is_str(s, "ab cd", "mixed quoting value");
	is_int(rec("(\"{\"\"a b\"\",NULL}\",\"[1,5)\")", s), 2, "array and range");
	is_str(s, "{\"a b\",NULL}|[1,5)", "array and range values");
	/* malformed */
	is_int(rec("", s), -1, "empty text");
	is_int(rec("1,2", s), -1, "no parentheses");
	is_int(rec("(1,2", s), -1, "unterminated");
	is_int(rec("(\"1,2)", s), -1, "unterminated quote");
	is_int(rec("(1)x", s), -1, "junk after");
	is_int(rec("(1\\", s), -1, "trailing backslash");
}

int main(void)
{
	test_escape();
	test_roundtrip();
	test_split_input();
	test_record();
	return done_testing();
}
