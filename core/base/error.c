/* core/base/error.c - the fixed-size error record (first error wins) and small string helpers. */
#include "base/internal.h"

#include <ctype.h>

size_t sm__strlcpy(char *dst, const char *src, size_t n)
{
    size_t len = src ? strlen(src) : 0;
    if (n == 0) return len;
    size_t k = len < n - 1 ? len : n - 1;
    if (k) memcpy(dst, src, k);
    dst[k] = '\0';
    return len;
}

void sm__path_copy(char *dst, size_t n, const char *path)
{
    if (n == 0) return;
    if (!path) {
        dst[0] = '\0';
        return;
    }
    size_t len = strlen(path);
    if (len < n) {
        memcpy(dst, path, len + 1);
        return;
    }
    /* keep the tail: "..." + last n-4 bytes */
    if (n < 8) {
        sm__strlcpy(dst, path + len - (n - 1), n);
        return;
    }
    memcpy(dst, "...", 3);
    memcpy(dst + 3, path + len - (n - 4), n - 4);
    dst[n - 1] = '\0';
}

/* Bytes of s[0..k) that end on a UTF-8 character boundary (k itself, or less when s[k] is a
 * continuation byte of a character that starts before k). */
static size_t sm__utf8_head(const char *s, size_t k)
{
    size_t j = k;
    while (j > 0 && j + 4 > k && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
    return ((unsigned char)s[j] & 0xC0) == 0x80 ? k : j;
}

void sm__text_fit(char *dst, size_t n, const char *src)
{
    if (n == 0) return;
    size_t len = src ? strlen(src) : 0;
    if (len < n) {
        if (len) memmove(dst, src, len);
        dst[len] = '\0';
        return;
    }
    static const char mid[] = " ... ";
    size_t m = sizeof mid - 1;
    if (n < m + 3) { /* no room for both ends: the head, its end marked */
        sm__strlcpy(dst, src, n);
        sm__mark_cut(dst, n);
        return;
    }
    size_t room = n - 1 - m, head = sm__utf8_head(src, room / 2);
    size_t tail = room - room / 2, from = len - tail;
    while (tail > 0 && ((unsigned char)src[from] & 0xC0) == 0x80) from++, tail--;
    if (dst != src) memmove(dst, src, head);
    memmove(dst + head + m, src + from, tail);
    memcpy(dst + head, mid, m);
    dst[head + m + tail] = '\0';
}

void sm__mark_cut(char *buf, size_t n)
{
    if (n >= 4) memcpy(buf + sm__utf8_head(buf, n - 4), "...", 4);
}

size_t sm__vformat_fit(char *dst, size_t n, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int r = vsnprintf(dst, n, fmt, ap);
    if (r < 0) {
        va_end(again);
        return sm__strlcpy(dst, "(message could not be formatted)", n);
    }
    if ((size_t)r >= n && n > 0) {
        char *full = malloc((size_t)r + 1);
        if (full) {
            vsnprintf(full, (size_t)r + 1, fmt, again);
            sm__text_fit(dst, n, full);
            free(full);
        } else { /* out of memory: keep what vsnprintf wrote, its end marked */
            sm__mark_cut(dst, n);
        }
    }
    va_end(again);
    return (size_t)r;
}

size_t sm__format_fit(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t r = sm__vformat_fit(dst, n, fmt, ap);
    va_end(ap);
    return r;
}

char *sm__strdup(const char *s)
{
    if (!s) return NULL;
    size_t len = strlen(s) + 1;
    char *d = malloc(len);
    if (d) memcpy(d, s, len);
    return d;
}

int sm__strcasecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = tolower((unsigned char)*a), cb = tolower((unsigned char)*b);
        if (ca != cb || ca == 0) return ca - cb;
    }
}

int sm__edit_distance(const char *a, const char *b, int cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if ((la > lb ? la - lb : lb - la) > (size_t)cap) return cap + 1;
    if (lb > 255) return cap + 1;
    int row[256];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0], best = row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int v = SM__MIN(SM__MIN(row[j] + 1, row[j - 1] + 1), prev + cost);
            prev = row[j];
            row[j] = v;
            if (v < best) best = v;
        }
        if (best > cap) return cap + 1;
    }
    return row[lb] > cap ? cap + 1 : row[lb];
}

char *sm__dirname(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (!slash) return sm__strdup(".");
    if (slash == path) return sm__strdup("/");
    size_t len = (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, path, len);
    d[len] = '\0';
    return d;
}

char *sm__path_join(const char *dir, const char *rel)
{
    if (!rel) return NULL;
    if (rel[0] == '/' || !dir || !dir[0] || strcmp(dir, ".") == 0) return sm__strdup(rel);
    size_t ld = strlen(dir), lr = strlen(rel);
    char *p = malloc(ld + lr + 2);
    if (!p) return NULL;
    memcpy(p, dir, ld);
    size_t k = ld;
    if (dir[ld - 1] != '/') p[k++] = '/';
    memcpy(p + k, rel, lr + 1);
    return p;
}

_Noreturn void sm__abort(const char *file, int line, const char *what)
{
    sm_log(SM_LOG_ERROR, "internal error at %s:%d: assertion failed: %s", file, line, what);
    abort();
}

_Static_assert(SM_ERROR_LINE_MAX >= sizeof((sm_error *)0)->file + sizeof((sm_error *)0)->path +
                                        sizeof((sm_error *)0)->text + 24,
               "SM_ERROR_LINE_MAX must hold a formatted error");

void sm_error_clear(sm_error *err)
{
    if (!err) return;
    err->code = 0;
    err->line = err->column = 0;
    err->file[0] = err->path[0] = err->text[0] = '\0';
}

int sm_error_setv(sm_error *err, int code, const char *file, int line, int column,
                  const char *path, const char *fmt, va_list ap)
{
    if (!err || err->code != 0) return code;
    err->code = code;
    err->line = line > 0 ? line : 0;
    err->column = column > 0 ? column : 0;
    sm__path_copy(err->file, sizeof err->file, file);
    sm__text_fit(err->path, sizeof err->path, path);
    if (fmt)
        sm__vformat_fit(err->text, sizeof err->text, fmt, ap);
    else
        sm__strlcpy(err->text, sm_status_str(code), sizeof err->text);
    return code;
}

int sm_error_set(sm_error *err, int code, const char *file, int line, int column,
                 const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = sm_error_setv(err, code, file, line, column, path, fmt, ap);
    va_end(ap);
    return r;
}

size_t sm_error_format(const sm_error *err, char *buf, size_t n)
{
    if (!err) return sm__strlcpy(buf, "", n);
    char loc[320] = "";
    int k = 0;
    if (err->file[0]) {
        if (err->line > 0 && err->column > 0)
            k = snprintf(loc, sizeof loc, "%s:%d:%d: ", err->file, err->line, err->column);
        else if (err->line > 0)
            k = snprintf(loc, sizeof loc, "%s:%d: ", err->file, err->line);
        else
            k = snprintf(loc, sizeof loc, "%s: ", err->file);
    }
    (void)k;
    const char *text = err->text[0] ? err->text : sm_status_str(err->code);
    int r;
    if (err->path[0])
        r = snprintf(buf, n, "%s%s: %s", loc, err->path, text);
    else
        r = snprintf(buf, n, "%s%s", loc, text);
    return r < 0 ? 0 : (size_t)r;
}
