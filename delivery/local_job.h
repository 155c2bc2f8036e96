/*
 * local_job — what the queue process and a delivery worker say to each other
 * (queue/delivery_pool.h runs the workers, delivery/local_worker.h is their loop).
 *
 * A job is one message's local delivery for up to LOCAL_JOB_MAX_RCPTS of its
 * recipients, each named by its index in the envelope. The queue sends one
 * request; the worker runs local_deliver_batch (delivery/local.h) on it and
 * answers, per recipient, with zero or more ADD (one expansion target each),
 * then exactly one RESULT or HOME, and ends the job with DONE. Every answer
 * repeats the job's nonce and queue ID, so an answer that belongs to no job
 * the queue gave this worker is refused.
 *
 * Messages (lib/ipc.h types LJOB_*), text in the style of home_delivery.h:
 *   REQUEST  "NONCE\tID\tJUNK\tSENDER\n" then per recipient "INDEX\tRCPT\n"
 *   ADD      "NONCE\tID\tINDEX\tTARGET"   (queued form, local_resolve.h)
 *   RESULT   "NONCE\tID\tINDEX\tR\tTEXT"  (R: 0 ok, 1 defer, 2 fail)
 *   HOME     "NONCE\tID\tINDEX\tUSER\tRCPT" (the parent delivers as USER)
 *   DONE     "NONCE\tID"
 * NONCE is 16 lower-case hex digits; INDEX decimal; JUNK 0 or 1. A recipient
 * string may hold a tab (queued targets do), so it is always the last field of
 * its line; no field may hold CR, LF or NUL. Parsers are pure and refuse
 * anything else, every field length checked.
 */
#ifndef FERRY_LOCAL_JOB_H
#define FERRY_LOCAL_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/delivery.h"
#include "delivery/home_delivery.h"
#include "lib/addr.h"

/* Keeps a request well under IPC_MAX_PAYLOAD (each line < 270 octets). */
#define LOCAL_JOB_MAX_RCPTS 100
#define LOCAL_JOB_ID_MAX    32

enum local_job_msg { LJOB_REQUEST = 1, LJOB_ADD, LJOB_RESULT, LJOB_HOME, LJOB_DONE };

struct local_job_request {
    uint64_t nonce;
    char id[LOCAL_JOB_ID_MAX];
    bool junk;
    char sender[ADDR_PATH_MAX + 1];
    size_t n;
    unsigned index[LOCAL_JOB_MAX_RCPTS];
    char rcpt[LOCAL_JOB_MAX_RCPTS][ADDR_PATH_MAX + 1];
};

/* One worker → queue message; which fields count depends on type. */
struct local_job_reply {
    enum local_job_msg type;        /* ADD, RESULT, HOME or DONE */
    uint64_t nonce;
    char id[LOCAL_JOB_ID_MAX];
    unsigned index;                 /* not DONE */
    char target[ADDR_PATH_MAX + 1]; /* ADD */
    struct delivery_status st;      /* RESULT */
    char user[HOME_USER_MAX];       /* HOME */
    char rcpt[ADDR_PATH_MAX + 1];   /* HOME */
};

/* The largest formatted request. */
#define LOCAL_JOB_REQUEST_MAX (LOCAL_JOB_ID_MAX + ADDR_PATH_MAX + 32 + LOCAL_JOB_MAX_RCPTS * (ADDR_PATH_MAX + 16))
#define LOCAL_JOB_REPLY_MAX   1024

/* Each returns the length written, -1 when a field is bad or it does not fit.
   A result text's tabs and line ends become spaces. */
int local_job_request_format(const struct local_job_request *r, char *out, size_t outsz);
int local_job_reply_format(const struct local_job_reply *r, char *out, size_t outsz);
/* 0 ok, -1 malformed. */
int local_job_request_parse(const char *data, size_t len, struct local_job_request *r);
int local_job_reply_parse(uint32_t type, const char *data, size_t len, struct local_job_reply *r);

#endif
