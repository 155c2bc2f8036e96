/*
 * mail_date — the RFC 5322 §3.3 date-time used in Date:, Received: and DSN fields,
 * e.g. "Mon, 23 Nov 2026 01:02:03 +0100", in local time with its numeric offset.
 * Day and month names are English whatever the locale. Pure apart from the
 * time-zone database.
 */
#ifndef FERRY_MAIL_DATE_H
#define FERRY_MAIL_DATE_H

#include <stddef.h>
#include <time.h>

#define MAIL_DATE_MAX 40

void mail_date(time_t t, char *out, size_t outsz);

#endif
