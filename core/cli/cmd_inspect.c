/* core/cli/cmd_inspect.c - `simmimctl inspect FILE`: the tensors of a safetensors file (name,
 * dtype, shape, min/max/mean) and its metadata. The file is validated completely before
 * anything else happens (sm_st_open); a bad file gets one message naming the file and the
 * problem, and exit code 1. Statistics are computed in bounded chunks, so a file of any size
 * needs little memory. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: simmimctl inspect [--full] FILE\n\n"
    "Lists the tensors of a safetensors file (checkpoint, golden file, export): name, dtype,\n"
    "shape, and the min/max/mean of the finite values (with a count of NaN/Inf if any), then\n"
    "the __metadata__ entries. The file is fully validated first; a malformed file is refused\n"
    "with a message saying what is wrong and where.\n\n"
    "  --full   print metadata values in full (default: long values are cut at 120 bytes)\n";

/* Prints s with control characters escaped, at most `max` bytes (0: all). */
static void print_escaped(const char *s, size_t max)
{
    size_t n = strlen(s), shown = max && n > max ? max : n;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    if (shown < n) printf(" ... (%zu bytes)", n);
}

static void shape_str(const sm_st_info *t, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (len < n) snprintf(buf + len, n - len, "]");
}

static void human_bytes(uint64_t b, char *buf, size_t n)
{
    if (b < 1024)
        snprintf(buf, n, "%llu B", (unsigned long long)b);
    else if (b < 1024 * 1024)
        snprintf(buf, n, "%.1f KiB", (double)b / 1024.0);
    else if (b < 1024ull * 1024 * 1024)
        snprintf(buf, n, "%.1f MiB", (double)b / (1024.0 * 1024.0));
    else
        snprintf(buf, n, "%.2f GiB", (double)b / (1024.0 * 1024.0 * 1024.0));
}

int sm_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool full = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return SM_EXIT_OK;
        } else if (strcmp(argv[i], "--full") == 0) {
            full = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "simmimctl inspect: unknown option '%s'\n\n%s", argv[i], usage_text);
            return SM_EXIT_USAGE;
        } else if (path) {
            fprintf(stderr, "simmimctl inspect: one FILE only (got '%s' and '%s')\n", path,
                    argv[i]);
            return SM_EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "simmimctl inspect: missing FILE\n\n%s", usage_text);
        return SM_EXIT_USAGE;
    }
    sm_st_file *f = NULL;
    sm_error err = {0};
    if (sm_st_open(path, &f, &err) != 0) {
        sm_cli_print_error(&err);
        return SM_EXIT_FAILURE;
    }
    size_t n = sm_st_count(f);
    uint64_t bytes = n ? sm_st_at(f, n - 1)->end : 0;
    int w = 4;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(sm_st_at(f, i)->name);
        if (l > w) w = l;
    }
    if (w > 60) w = 60;
    char hb[32];
    human_bytes(bytes, hb, sizeof hb);
    printf("%s: %zu tensor%s, %s of data\n", path, n, n == 1 ? "" : "s", hb);
    if (n) printf("%-*s  %-5s %-18s %13s %13s %13s\n", w, "name", "dtype", "shape", "min", "max",
                  "mean");
    int rc = SM_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        const sm_st_info *t = sm_st_at(f, i);
        char shape[192]; /* "[" + 8 dims of up to 20 digits, ", " between, "]" */
        shape_str(t, shape, sizeof shape);
        sm_st_stats s;
        if (sm_st_read_stats(f, t->name, &s, &err) != 0) {
            sm_cli_print_error(&err);
            rc = SM_EXIT_FAILURE;
            break;
        }
        print_escaped(t->name, 0);
        printf("%*s  %-5s %-18s", w - (int)strlen(t->name) > 0 ? w - (int)strlen(t->name) : 0,
               "", sm_dtype_name(t->dtype), shape);
        if (s.count)
            printf(" %13.6g %13.6g %13.6g", s.min, s.max, s.mean);
        else
            printf(" %13s %13s %13s", "-", "-", "-");
        if (s.nonfinite) printf("  (%lld NaN/Inf)", (long long)s.nonfinite);
        putchar('\n');
    }
    size_t nm = sm_st_meta_count(f);
    if (rc == SM_EXIT_OK && nm) {
        printf("metadata (%zu entr%s):\n", nm, nm == 1 ? "y" : "ies");
        for (size_t i = 0; i < nm; i++) {
            fputs("  ", stdout);
            print_escaped(sm_st_meta_key(f, i), 0);
            fputs(": ", stdout);
            print_escaped(sm_st_meta_value(f, i), full ? 0 : 120);
            putchar('\n');
        }
    }
    sm_st_close(f);
    return rc;
}
