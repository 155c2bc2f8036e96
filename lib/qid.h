/*
 * qid — queue IDs: fixed length, time-ordered, unique across processes and restarts.
 *
 * An ID is QID_LEN characters of the alphabet 0-9 A-V (base 32, ASCII order equals
 * numeric order): 7 for the seconds since 1970, 4 for the microseconds, 5 for the
 * process ID. Within one process IDs strictly increase even if the clock stalls or
 * steps back; across processes the PID part keeps them apart; the spool creates
 * files with O_EXCL as the last guard (a reused PID after a clock step) and asks
 * for another ID on a clash.
 */
#ifndef FERRY_QID_H
#define FERRY_QID_H

#include <stdbool.h>
#include <time.h>

#define QID_LEN 16

void qid_new(char out[QID_LEN + 1]);
bool qid_valid(const char *s);
/* The arrival second encoded in an ID. */
time_t qid_time(const char *qid);

#endif
