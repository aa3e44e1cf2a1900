/*
 * tap.h - a tiny TAP producer for the C unit tests.
 *
 *   int main(void) {
 *       ok(1 + 1 == 2, "arithmetic");
 *       is_str(s, "x", "s is x");
 *       return done_testing();
 *   }
 *
 * Output goes to stdout; test/run counts "ok"/"not ok" lines and checks
 * them against the "1..N" plan, which done_testing prints when plan() was
 * not called first. Failures print the location and both values as
 * "# " diagnostics.
 */
#ifndef TP_TAP_H
#define TP_TAP_H

void plan(int n);
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ok_at(const char *file, int line, int pass, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int is_str_at(const char *file, int line, const char *got, const char *want,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int is_int_at(const char *file, int line, long long got, long long want,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Prints the plan if not yet printed; returns the exit code for main. */
int done_testing(void);

#define ok(cond, ...) ok_at(__FILE__, __LINE__, !!(cond), __VA_ARGS__)
#define is_str(got, want, ...) is_str_at(__FILE__, __LINE__, (got), (want), __VA_ARGS__)
#define is_int(got, want, ...) is_int_at(__FILE__, __LINE__, (got), (want), __VA_ARGS__)

#endif
