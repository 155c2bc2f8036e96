/* log — see log.h. */
#include "lib/log.h"
#include "lib/buf.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_target cur_target = LOG_TO_STDERR;
static enum log_level cur_level = LOG_LVL_INFO;
static char cur_proc[32] = "ferry";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_init(enum log_target target, enum log_level level, const char *proc)
{
    if (cur_target == LOG_TO_SYSLOG)
        closelog();
    cur_target = target;
    cur_level = level;
    str_copy(cur_proc, proc ? proc : "ferry", sizeof cur_proc);
    if (target == LOG_TO_SYSLOG)
        openlog("ferryd", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_reopen(const char *proc)
{
    log_init(cur_target, cur_level, proc);
}

void log_set_level(enum log_level level)
{
    cur_level = level;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (str_ieq(s, level_names[i]))
            return i;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "?";
}

void log_vmsg(enum log_level level, const char *qid, const char *fmt, va_list ap)
{
    if (level > cur_level)
        return;
    char line[2048];
    int off = 0;
    if (qid && *qid)
        off = snprintf(line, sizeof line, "%s: ", qid);
    vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
    /* One event, one line: never let a value from outside break the line. */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (cur_target == LOG_TO_SYSLOG) {
        static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
        syslog(prio[level], "%s: %s", cur_proc, line);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld ferryd[%ld] %s %s: %s\n", when, ts.tv_nsec / 1000000L,
            (long)getpid(), cur_proc, level_names[level], line);
}

void log_msg(enum log_level level, const char *qid, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, qid, fmt, ap);
    va_end(ap);
}
