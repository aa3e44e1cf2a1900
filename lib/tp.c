/*
 * tp.c - exit code helpers.
 */
#include "tp.h"

/*
 * How serious an exit code is, for tp_exit_worse. The order, least to most:
 *
 *   0 done < 75 temporary < 1 other failure < 69 unavailable
 *     < 65 bad data < 78 configuration < 64 usage
 *
 * A retry-later (75) hides behind any real failure: cron retries anyway,
 * and the real failure is what a human must see. Bad data, configuration
 * and usage errors will not go away by themselves, so they win over
 * "unavailable", which may. Codes outside the table rank as 1.
 */
static int rank(int code)
{
	switch (code) {
	case TP_OK:       return 0;
	case TP_ETEMP:    return 1;
	case TP_EFAIL:    return 2;
	case TP_EUNAVAIL: return 3;
	case TP_EDATA:    return 4;
	case TP_ECONFIG:  return 5;
	case TP_EUSAGE:   return 6;
	default:          return 2;
	}
}

int tp_exit_worse(int a, int b)
{
	return rank(b) > rank(a) ? b : a;
}
