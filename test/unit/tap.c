/*
 * tap.c - see tap.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"

static int planned = -1, run, failed;

void plan(int n)
{
	planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static int result(const char *file, int line, int pass, const char *fmt, va_list ap)
{
	run++;
	if (!pass)
		failed++;
	printf("%sok %d - ", pass ? "" : "not ", run);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	if (!pass)
		diag("  failed at %s line %d", file, line);
	fflush(stdout);     /* a crash later must not eat earlier results */
	return pass;
}

int ok_at(const char *file, int line, int pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	result(file, line, pass, fmt, ap);
	va_end(ap);
	return pass;
}

int is_str_at(const char *file, int line, const char *got, const char *want,
	      const char *fmt, ...)
{
	va_list ap;
	int pass = got && want ? strcmp(got, want) == 0 : got == want;

	va_start(ap, fmt);
	result(file, line, pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag("         got: %s%s%s", got ? "\"" : "", got ? got : "NULL", got ? "\"" : "");
		diag("    expected: %s%s%s", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
	}
	return pass;
}

int is_int_at(const char *file, int line, long long got, long long want,
	      const char *fmt, ...)
{
	va_list ap;
	int pass = got == want;

	va_start(ap, fmt);
	result(file, line, pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag("         got: %lld", got);
		diag("    expected: %lld", want);
	}
	return pass;
}

int done_testing(void)
{
	if (planned < 0) {
		planned = run;
		printf("1..%d\n", run);
	}
	if (planned != run)
		diag("planned %d tests but ran %d", planned, run);
	fflush(stdout);
	return failed || planned != run ? 1 : 0;
}
