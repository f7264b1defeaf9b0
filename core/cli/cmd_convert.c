/* core/cli/cmd_convert.c - `simmimctl convert IN -o OUT`: a PyTorch (torch.save) or MindSpore
 * (.ckpt) checkpoint to a safetensors file with the official names (sm_convert_file,
 * docs/convert.md). Prints what was read, converted and left out. Exit codes: 0 converted,
 * 1 the input could not be read or converted (nothing written), 2 usage. */
#include "cli.h"

#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "usage: simmimctl convert IN -o OUT.safetensors [--prefix PREFIX] [--keep-names] [-q]\n\n"
    "Converts a checkpoint made by PyTorch's torch.save (the official microsoft/SimMIM files\n"
    "{'model': ..., 'optimizer': ..., 'config': ...}, a plain state_dict, or the legacy format\n"
    "of PyTorch < 1.6) or by MindSpore (a RingMo-Framework .ckpt, whose names are mapped to the\n"
    "official ones) into a safetensors file with the official PyTorch names, ready for\n"
    "train_config.resume_ckpt. Only the model's tensors are written: floats (F32, F16, BF16,\n"
    "F64) as F32, integer buffers (relative_position_index) as I64. The optimizer state,\n"
    "schedulers, configs and counters are listed and left out. The pickle is read by a\n"
    "restricted reader that never imports or runs anything; a damaged or hostile file is\n"
    "refused and nothing is written.\n\n"
    "  -o, --output FILE   the safetensors file to write (atomically; required)\n"
    "  --prefix PREFIX     keep only the tensors whose names start with PREFIX, and remove it\n"
    "                      (e.g. 'module.' of a DistributedDataParallel model)\n"
    "  --keep-names        MindSpore files: keep the file's names (no RingMo mapping)\n"
    "  -q, --quiet         print nothing on success\n\n"
    "Exit codes: 0 converted; 1 the input cannot be read or converted; 2 usage error.\n";

static int usage_error(const char *fmt, const char *a)
{
    fputs("simmimctl convert: ", stderr);
    fprintf(stderr, fmt, a);
    fputs("\n(see 'simmimctl convert --help')\n", stderr);
    return SM_EXIT_USAGE;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]: 1 and *value set, 0 if another argument,
 * -1 if the value is missing. */
static int option_value(int argc, char **argv, int *i, const char *shrt, const char *lng,
                        const char **value)
{
    const char *a = argv[*i];
    size_t ll = strlen(lng);
    if (!strncmp(a, lng, ll) && a[ll] == '=') {
        *value = a + ll + 1;
        return 1;
    }
    if (strcmp(a, lng) && (!shrt || strcmp(a, shrt))) return 0;
    if (*i + 1 >= argc) return -1;
    *value = argv[++*i];
    return 1;
}

static void print_report(const char *in, const char *out, const sm_convert_report *r)
{
    printf("%s: %s, tensors from %s\n", in, sm_ckpt_format_name(r->format), r->where);
    printf("  %zu tensors written: %lld float elements (F32), %lld integer/bool elements\n",
           r->tensors, (long long)r->float_elements, (long long)r->other_elements);
    printf("  dtypes in the file:");
    for (int d = 0; d < SM_DTYPE_COUNT; d++)
        if (r->stored[d]) printf(" %s %zu", sm_dtype_name((sm_dtype)d), r->stored[d]);
    printf("\n");
    if (r->mapping.applied)
        printf("  RingMo-Framework names mapped: %zu renamed, %zu q/k/v merged into qkv, %zu "
               "transposed, %zu decoder tensors reordered, %zu k biases dropped\n",
               r->mapping.renamed, r->mapping.merged, r->mapping.transposed, r->mapping.permuted,
               r->mapping.dropped);
    if (r->ignored) printf("  left out (%zu): %s\n", r->ignored, r->ignored_text);
    printf("wrote %s\n", out);
}

int sm_cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *prefix = NULL, *v = NULL;
    bool keep = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int got;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return SM_EXIT_OK;
        } else if ((got = option_value(argc, argv, &i, "-o", "--output", &v)) != 0) {
            if (got < 0) return usage_error("%s needs a file name", a);
            out = v;
        } else if ((got = option_value(argc, argv, &i, NULL, "--prefix", &v)) != 0) {
            if (got < 0) return usage_error("%s needs a value", a);
            prefix = v;
        } else if (!strcmp(a, "--keep-names")) {
            keep = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (in) {
            return usage_error("one input only (also got '%s')", a);
        } else {
            in = a;
        }
    }
    if (!in) return usage_error("%smissing the input checkpoint", "");
    if (!out) return usage_error("%smissing -o OUT.safetensors", "");
    struct stat si, so;
    if (stat(in, &si) == 0 && stat(out, &so) == 0 && si.st_dev == so.st_dev &&
        si.st_ino == so.st_ino)
        return usage_error("refusing to write over the input '%s'", in);
    sm_ckpt_opts opts = {.prefix = prefix, .keep_names = keep};
    sm_convert_report rep;
    sm_error err;
    sm_error_clear(&err);
    if (sm_convert_file(in, out, &opts, &rep, &err) != 0) {
        sm_cli_print_error(&err);
        return SM_EXIT_FAILURE;
    }
    if (!quiet) print_report(in, out, &rep);
    return SM_EXIT_OK;
}
