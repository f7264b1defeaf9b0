/* core/base/log.c - the process-wide log callback (default: stderr). */
#include "base/internal.h"

static void sm__log_stderr(sm_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level >= SM_LOG_WARN)
        fprintf(stderr, "simmim: %s: %s\n", sm_log_level_name(level), msg);
    else
        fprintf(stderr, "simmim: %s\n", msg);
}

static sm_log_fn sm__log_fn = sm__log_stderr;
static void *sm__log_user;
static sm_log_level sm__log_min = SM_LOG_INFO;

void sm_log_set(sm_log_fn fn, void *user)
{
    sm__log_fn = fn ? fn : sm__log_stderr;
    sm__log_user = fn ? user : NULL;
}

void sm_log_set_level(sm_log_level level) { sm__log_min = level; }
sm_log_level sm_log_get_level(void) { return sm__log_min; }

const char *sm_log_level_name(sm_log_level level)
{
    static const char *const names[SM_LOG_COUNT] = {"debug", "info", "warning", "error"};
    return (unsigned)level < SM_LOG_COUNT ? names[level] : "log";
}

void sm_logv(sm_log_level level, const char *fmt, va_list ap)
{
    if (level < sm__log_min) return;
    /* whole, however long (paths can be 4096 bytes); shortened visibly only without memory */
    char small[2048], *msg = small;
    va_list again;
    va_copy(again, ap);
    size_t need = sm__vformat_fit(small, sizeof small, fmt, ap);
    if (need >= sizeof small && (msg = malloc(need + 1)) != NULL)
        vsnprintf(msg, need + 1, fmt, again);
    else
        msg = small;
    va_end(again);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') msg[--n] = '\0';
    sm__log_fn(level, msg, sm__log_user);
    if (msg != small) free(msg);
}

void sm_log(sm_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sm_logv(level, fmt, ap);
    va_end(ap);
}
