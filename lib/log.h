/*
 * log — one line per event, to syslog (mail facility) or to stderr.
 *
 * Lines read "QID: key=value ..." when a queue ID is known, so an operator can
 * grep one message's whole life. Messages below the configured level are
 * dropped before formatting. log_init may be called again (after fork, or on
 * reload) to change the target, the process tag or the level.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };

void log_init(enum log_target target, enum log_level level, const char *proc);
void log_set_level(enum log_level level);
/* log_init again with the same target and level under another process tag (a
   forked helper that closed every descriptor it inherited, syslog's too). */
void log_reopen(const char *proc);
/* Parse "error|warn|info|debug"; -1 when unknown. */
int  log_level_parse(const char *s);
const char *log_level_name(enum log_level level);

/* qid may be NULL or empty. */
void log_msg(enum log_level level, const char *qid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *qid, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_LVL_ERROR, NULL, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, NULL, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, NULL, __VA_ARGS__)

#endif
