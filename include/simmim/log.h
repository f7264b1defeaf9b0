/* simmim/log.h - the library's only output channel.
 *
 * libsimmim never writes to stdout. Everything it wants to say goes through one process-wide
 * callback (default: one line on stderr, "simmim: warning: ..."). simmimctl installs its own to
 * add timestamps; an embedding program can route messages anywhere, or silence them.
 *
 *     static void my_log(sm_log_level lvl, const char *msg, void *user) { ... }
 *     sm_log_set(my_log, NULL);
 */
#ifndef SIMMIM_LOG_H
#define SIMMIM_LOG_H

#include "simmim/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sm_log_level {
    SM_LOG_DEBUG = 0,
    SM_LOG_INFO = 1,
    SM_LOG_WARN = 2,
    SM_LOG_ERROR = 3,
    SM_LOG_COUNT
} sm_log_level;

/* msg has no trailing newline. Called from any thread; must be thread-safe. */
typedef void (*sm_log_fn)(sm_log_level level, const char *msg, void *user);

/* Installs fn (NULL restores the stderr default). Not thread-safe with concurrent sm_log. */
SM_API void sm_log_set(sm_log_fn fn, void *user);
/* Messages below `level` are dropped (default SM_LOG_INFO). */
SM_API void sm_log_set_level(sm_log_level level);
SM_API sm_log_level sm_log_get_level(void);
/* "debug", "info", "warning", "error". */
SM_API const char *sm_log_level_name(sm_log_level level);

SM_API void sm_log(sm_log_level level, const char *fmt, ...) SM_PRINTF(2, 3);
SM_API void sm_logv(sm_log_level level, const char *fmt, va_list ap);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_LOG_H */
