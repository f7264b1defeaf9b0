/* tests/check_convert.c - foreign checkpoints to safetensors (sm_convert_file, sm_ckpt_*,
 * `simmimctl convert`; docs/convert.md) on the fixtures of tools/make_convert_fixtures.py:
 *  - every torch.save / MindSpore fixture converts to exactly the tensors the script wrote to
 *    expected.safetensors (names, dtypes, shapes, bit-exact values);
 *  - the official SimMIM layout and the RingMo-Framework .ckpt files carry golden weights: the
 *    converted tensors equal tests/golden's, and a model loading the converted file (fine-tuning
 *    and pretraining, through sm_model_load_weights) ends up with the same parameters as one
 *    loading the golden file;
 *  - hostile and broken files are refused with their message and leave nothing behind, and the
 *    pickles that would run `touch simmim_convert_pwned` under Python do not create it;
 *  - the command's exit codes (0 ok, 1 bad input, 2 usage) and options. */
#include "testutil.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARKER "simmim_convert_pwned"

static const char *fixture(const char *rel)
{
    static char buf[4][4096];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, 4096, "%s", sm_test_src("fixtures/convert/"));
    strncat(b, rel, 4096 - strlen(b) - 1);
    return b;
}

/* Number of entries in dir (besides . and ..). */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* A tensor of a safetensors file as raw 8-byte slots: F32 values are read as float and widened
 * bit-exactly into doubles, integer and bool tensors as int64. */
static void *read_any(const sm_st_file *f, const sm_st_info *t)
{
    void *buf = calloc((size_t)t->numel + 1, 8);
    sm_error err;
    sm_error_clear(&err);
    int rc = t->dtype == SM_DTYPE_F32 ? sm_st_read_f32(f, t->name, buf, t->numel, &err)
                                      : sm_st_read_i64(f, t->name, buf, t->numel, &err);
    ck_assert_msg(rc == 0, "%s: %s", t->name, err.text);
    return buf;
}

/* out's tensor `name` equals ref's tensor `ref_name`: dtype, shape, bit-exact values. */
static void same_tensor(const sm_st_file *out, const char *name, const sm_st_file *ref,
                        const char *ref_name)
{
    const sm_st_info *a = sm_st_find(out, name), *b = sm_st_find(ref, ref_name);
    ck_assert_msg(a != NULL, "converted file lacks '%s'", name);
    ck_assert_msg(b != NULL, "reference lacks '%s'", ref_name);
    ck_assert_msg(a->dtype == b->dtype, "%s: dtype %s, want %s", name, sm_dtype_name(a->dtype),
                  sm_dtype_name(b->dtype));
    ck_assert_msg(a->ndim == b->ndim, "%s: %d dims, want %d", name, a->ndim, b->ndim);
    for (int d = 0; d < a->ndim; d++)
        ck_assert_msg(a->shape[d] == b->shape[d], "%s: shape[%d] %lld, want %lld", name, d,
                      (long long)a->shape[d], (long long)b->shape[d]);
    void *va = read_any(out, a), *vb = read_any(ref, b);
    size_t es = a->dtype == SM_DTYPE_F32 ? 4 : 8;
    for (int64_t i = 0; i < a->numel; i++)
        if (memcmp((char *)va + i * es, (char *)vb + i * es, es)) {
            double x = es == 4 ? ((float *)va)[i] : (double)((int64_t *)va)[i];
            double y = es == 4 ? ((float *)vb)[i] : (double)((int64_t *)vb)[i];
            ck_abort_msg("%s[%lld] = %.9g, want %.9g", name, (long long)i, x, y);
        }
    free(va);
    free(vb);
}

static sm_st_file *open_st(const char *path)
{
    sm_st_file *f = NULL;
    sm_error err;
    sm_error_clear(&err);
    ck_assert_msg(sm_st_open(path, &f, &err) == 0, "%s: %s", path, err.text);
    return f;
}

/* Converts fixture `name` into dir/out.safetensors; returns the output path (static). */
static const char *convert(const char *dir, const char *name, const sm_ckpt_opts *opts,
                           sm_convert_report *rep)
{
    static char out[4200];
    snprintf(out, sizeof out, "%s/out.safetensors", dir);
    sm_error err;
    sm_error_clear(&err);
    int rc = sm_convert_file(fixture(name), out, opts, rep, &err);
    ck_assert_msg(rc == 0, "%s: %s", name, err.text);
    return out;
}

/* ---- fixtures against expected.safetensors ------------------------------------------------ */

static const char *const expected_files[] = {
    "plain_sd.pth", "deflated.pth", "zip64.pth",     "half_bf16.pth",
    "views.pth",    "legacy.pth",   "ms_small.ckpt",
};

START_TEST(test_expected)
{
    const char *name = expected_files[_i];
    char *tmp = sm_test_tmpdir();
    sm_convert_report rep;
    sm_st_file *out = open_st(convert(tmp, name, NULL, &rep));
    sm_st_file *exp = open_st(fixture("expected.safetensors"));
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s/", name);
    size_t want = 0;
    for (size_t i = 0; i < sm_st_count(exp); i++) {
        const char *en = sm_st_at(exp, i)->name;
        if (strncmp(en, prefix, strlen(prefix))) continue;
        want++;
        same_tensor(out, en + strlen(prefix), exp, en);
    }
    ck_assert_msg(want > 0, "no expected tensors for %s", name);
    ck_assert_msg(sm_st_count(out) == want, "%s: %zu tensors written, %zu expected", name,
                  sm_st_count(out), want);
    ck_assert_uint_eq(rep.tensors, want);
    ck_assert_str_eq(sm_st_meta(out, "format"), "simmim-converted-1");
    ck_assert_str_eq(sm_st_meta(out, "source"), name);
    sm_st_close(out);
    sm_st_close(exp);
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* The dtypes found and the reading path of a few fixtures. */
START_TEST(test_report)
{
    char *tmp = sm_test_tmpdir();
    sm_convert_report r;
    convert(tmp, "plain_sd.pth", NULL, &r);
    ck_assert_int_eq(r.format, SM_CKPT_TORCH);
    ck_assert_str_eq(r.where, "the top level");
    ck_assert_uint_eq(r.stored[SM_DTYPE_F32], 5);
    ck_assert_uint_eq(r.stored[SM_DTYPE_F64], 1);
    ck_assert_uint_eq(r.stored[SM_DTYPE_I32], 1);
    ck_assert_uint_eq(r.stored[SM_DTYPE_BOOL], 1);
    convert(tmp, "half_bf16.pth", NULL, &r);
    ck_assert_uint_eq(r.stored[SM_DTYPE_F16], 3);
    ck_assert_uint_eq(r.stored[SM_DTYPE_BF16], 2);
    convert(tmp, "legacy.pth", NULL, &r);
    ck_assert_int_eq(r.format, SM_CKPT_TORCH_LEGACY);
    ck_assert_str_eq(r.where, "['model']");
    ck_assert_msg(strstr(r.ignored_text, "'epoch'"), "%s", r.ignored_text);
    convert(tmp, "views.pth", NULL, &r);
    ck_assert_str_eq(r.where, "['state_dict']");
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* ---- golden weights in the official and RingMo layouts ------------------------------------ */

static const struct golden_case {
    const char *file, *golden;
    size_t tensors;
    const char *left_out; /* golden model tensors the fixture does not carry (prefix match) */
} golden_cases[] = {
    {"official_vit.pth", "simmim_vit_shared_rpb", 40, NULL},
    {"ringmo_vit.ckpt", "simmim_vit_shared_rpb", 40, NULL},
    {"ringmo_swin.ckpt", "simmim_swin", 68, "attn_mask"},
    {"ringmo_cls_vit.ckpt", "cls_vit_meanpool", 19, NULL},
};

static bool is_model_tensor(const char *n)
{
    return strncmp(n, "input.", 6) && strncmp(n, "output.", 7) && strncmp(n, "grad.", 5);
}

START_TEST(test_golden_layouts)
{
    const struct golden_case *c = &golden_cases[_i];
    char *tmp = sm_test_tmpdir(), gpath[256];
    sm_convert_report rep;
    sm_st_file *out = open_st(convert(tmp, c->file, NULL, &rep));
    snprintf(gpath, sizeof gpath, "golden/%s.safetensors", c->golden);
    sm_st_file *g = open_st(sm_test_src(gpath));
    ck_assert_msg(sm_st_count(out) == c->tensors, "%s: %zu tensors, want %zu", c->file,
                  sm_st_count(out), c->tensors);
    for (size_t i = 0; i < sm_st_count(out); i++) {
        const char *n = sm_st_at(out, i)->name;
        same_tensor(out, n, g, n);
    }
    /* the whole model is there (the classifier fixture is a subset: block 0 without its MLP) */
    if (strcmp(c->file, "ringmo_cls_vit.ckpt"))
        for (size_t i = 0; i < sm_st_count(g); i++) {
            const char *n = sm_st_at(g, i)->name;
            if (!is_model_tensor(n) || (c->left_out && strstr(n, c->left_out))) continue;
            ck_assert_msg(sm_st_find(out, n) != NULL, "%s: '%s' is missing", c->file, n);
        }
    if (!strcmp(c->file, "official_vit.pth")) {
        ck_assert_str_eq(rep.where, "['model']");
        static const char *const left[] = {"'optimizer' (a dict)",
                                           "'lr_scheduler'",
                                           "'config' (an object of class yacs.config.CfgNode)",
                                           "'epoch'",
                                           "'max_accuracy'",
                                           "'amp'"};
        for (size_t k = 0; k < sizeof left / sizeof left[0]; k++)
            ck_assert_msg(strstr(rep.ignored_text, left[k]), "no %s in: %s", left[k],
                          rep.ignored_text);
        ck_assert(!rep.mapping.applied);
    } else {
        ck_assert(rep.mapping.applied);
        ck_assert_int_eq(rep.format, SM_CKPT_MINDSPORE);
        ck_assert_str_eq(sm_st_meta(out, "name_mapping"), "RingMo-Framework -> official PyTorch");
    }
    if (!strcmp(c->file, "ringmo_vit.ckpt")) {
        /* 2 blocks: q/k/v merged twice; proj, fc1, fc2 transposed per block; decoder w and b */
        ck_assert_uint_eq(rep.mapping.merged, 2);
        ck_assert_uint_eq(rep.mapping.transposed, 6);
        ck_assert_uint_eq(rep.mapping.permuted, 2);
        ck_assert_uint_eq(rep.mapping.dropped, 2);
        ck_assert_msg(strstr(rep.ignored_text, "'adam_m.*' (2 tensors") &&
                          strstr(rep.ignored_text, "'global_step'") &&
                          strstr(rep.ignored_text, "'note' (MindSpore type 'str'"),
                      "%s", rep.ignored_text);
    }
    if (!strcmp(c->file, "ringmo_swin.ckpt")) {
        ck_assert_uint_eq(rep.mapping.merged, 8); /* 4 blocks x (weight, bias) */
        ck_assert_uint_eq(rep.mapping.dropped, 0);
    }
    sm_st_close(out);
    sm_st_close(g);
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* ---- the converted files load like the golden ones ---------------------------------------- */

static sm_registry *reg;

static void setup_reg(void) { reg = sm_test_registry(); }

static void teardown_reg(void)
{
    sm_registry_free(reg);
    reg = NULL;
}

/* A model from YAML, initialised (seed 1) and then loaded from path. */
static sm_model *load(const char *yaml, sm_task task, const char *path)
{
    sm_config *cfg = sm_test_config(reg, yaml, NULL, true);
    sm_model *m = NULL;
    sm_error err;
    sm_error_clear(&err);
    ck_assert_msg(sm_model_new(reg, sm_config_root(cfg), task, &m, &err) == 0, "%s", err.text);
    ck_assert_int_eq(sm_model_init(m, 1, &err), 0);
    char note[SM_ERROR_LINE_MAX];
    ck_assert_msg(sm_model_load_weights(m, path, note, sizeof note, &err) == 0, "%s: %s", path,
                  err.text);
    sm_config_free(cfg);
    return m;
}

/* Every parameter of a equals b's, bit for bit; returns how many differ from init. */
static void same_params(sm_model *a, sm_model *b, const char *what)
{
    sm_params *pa = sm_model_params(a), *pb = sm_model_params(b);
    ck_assert_uint_eq(sm_params_count(pa), sm_params_count(pb));
    for (size_t i = 0; i < sm_params_count(pa); i++) {
        sm_tensor *x = sm_params_at(pa, i), *y = sm_params_find(pb, x->name);
        ck_assert_ptr_nonnull(y);
        int64_t n = sm_tensor_numel(x);
        ck_assert_int_eq(n, sm_tensor_numel(y));
        ck_assert_msg(!memcmp(x->data, y->data, (size_t)n * sizeof(float)),
                      "%s: parameter '%s' differs from the golden load", what, x->name);
    }
}

#define VIT_FINETUNE                                                                               \
    "model: {backbone: vit, patch_size: 4, embed_dim: 32, depth: 2, num_heads: 2,\n"               \
    "  init_values: 0.1, use_abs_pos_emb: false, use_rel_pos_bias: true,\n"                        \
    "  use_shared_rel_pos_bias: false, use_mean_pooling: true}\n"                                  \
    "train_config: {image_size: 32, num_classes: 10}\n"
#define VIT_PRETRAIN                                                                               \
    "model: {backbone: vit, patch_size: 4, embed_dim: 32, depth: 2, num_heads: 2,\n"               \
    "  init_values: 0.1, use_abs_pos_emb: false, use_rel_pos_bias: false,\n"                       \
    "  use_shared_rel_pos_bias: true, use_mean_pooling: false}\n"                                  \
    "train_config: {image_size: 32}\n"
#define SWIN_PRETRAIN                                                                              \
    "model: {backbone: swin, patch_size: 2, embed_dim: 16, depth: [2, 2], num_heads: [2, 4],\n"    \
    "  window_size: 4, ape: false, patch_norm: true}\n"                                            \
    "train_config: {image_size: 32}\n"

START_TEST(test_load_like_golden)
{
    char *tmp = sm_test_tmpdir(), off[4200], rm[4200];
    snprintf(off, sizeof off, "%s/official.safetensors", tmp);
    snprintf(rm, sizeof rm, "%s/ringmo.safetensors", tmp);
    sm_error err;
    sm_error_clear(&err);
    ck_assert_int_eq(sm_convert_file(fixture("official_vit.pth"), off, NULL, NULL, &err), 0);
    ck_assert_int_eq(sm_convert_file(fixture("ringmo_vit.ckpt"), rm, NULL, NULL, &err), 0);
    const char *golden = sm_test_src("golden/simmim_vit_shared_rpb.safetensors");

    /* fine-tuning: the encoder. weights, the shared table copied into each block */
    sm_model *g = load(VIT_FINETUNE, SM_TASK_CLASSIFY, golden);
    sm_model *a = load(VIT_FINETUNE, SM_TASK_CLASSIFY, off);
    sm_model *b = load(VIT_FINETUNE, SM_TASK_CLASSIFY, rm);
    same_params(a, g, "official layout, fine-tuning");
    same_params(b, g, "RingMo layout, fine-tuning");
    /* and the load did something: a block table is the golden shared table, not its init */
    sm_st_file *gf = open_st(golden);
    const sm_st_info *ti = sm_st_find(gf, "encoder.rel_pos_bias.relative_position_bias_table");
    float *table = malloc((size_t)ti->numel * sizeof *table);
    ck_assert_int_eq(sm_st_read_f32(gf, ti->name, table, ti->numel, &err), 0);
    sm_tensor *t = sm_params_find(sm_model_params(b), "blocks.1.attn.relative_position_bias_table");
    ck_assert_ptr_nonnull(t);
    ck_assert(!memcmp(t->data, table, (size_t)ti->numel * sizeof *table));
    free(table);
    sm_st_close(gf);
    sm_model_free(g);
    sm_model_free(a);
    sm_model_free(b);

    /* pretraining from the converted files (weights only: not a simmim training checkpoint) */
    g = load(VIT_PRETRAIN, SM_TASK_SIMMIM, golden);
    a = load(VIT_PRETRAIN, SM_TASK_SIMMIM, off);
    b = load(VIT_PRETRAIN, SM_TASK_SIMMIM, rm);
    same_params(a, g, "official layout, pretraining");
    same_params(b, g, "RingMo layout, pretraining");
    sm_model_free(g);
    sm_model_free(a);
    sm_model_free(b);

    ck_assert_int_eq(sm_convert_file(fixture("ringmo_swin.ckpt"), rm, NULL, NULL, &err), 0);
    g = load(SWIN_PRETRAIN, SM_TASK_SIMMIM, sm_test_src("golden/simmim_swin.safetensors"));
    b = load(SWIN_PRETRAIN, SM_TASK_SIMMIM, rm);
    same_params(b, g, "RingMo Swin, pretraining");
    sm_model_free(g);
    sm_model_free(b);
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* ---- options ----------------------------------------------------------------------------------
 */

START_TEST(test_options)
{
    char *tmp = sm_test_tmpdir();
    sm_convert_report r;
    sm_ckpt_opts o = {.prefix = "encoder."};
    sm_st_file *f = open_st(convert(tmp, "official_vit.pth", &o, &r));
    ck_assert_uint_eq(sm_st_count(f), 38); /* the two decoder tensors are left out */
    ck_assert_ptr_nonnull(sm_st_find(f, "blocks.0.attn.qkv.weight"));
    ck_assert_ptr_null(sm_st_find(f, "decoder.0.weight"));
    ck_assert_msg(strstr(r.ignored_text, "2 tensors whose names do not start with 'encoder.'"),
                  "%s", r.ignored_text);
    sm_st_close(f);

    o = (sm_ckpt_opts){.keep_names = true};
    f = open_st(convert(tmp, "ringmo_vit.ckpt", &o, &r));
    ck_assert(!r.mapping.applied);
    ck_assert_ptr_nonnull(sm_st_find(f, "encoder.encoder.blocks.0.attention.dense1.weight"));
    ck_assert_ptr_nonnull(sm_st_find(f, "adam_m.encoder.encoder.blocks.0.gamma_1"));
    ck_assert_ptr_null(sm_st_find(f, "encoder.blocks.0.attn.qkv.weight"));
    sm_st_close(f);

    /* a prefix nothing has: refused, nothing written */
    sm_test_rmtree(tmp);
    free(tmp);
    tmp = sm_test_tmpdir();
    char out[4200];
    snprintf(out, sizeof out, "%s/out.safetensors", tmp);
    sm_error err;
    sm_error_clear(&err);
    o = (sm_ckpt_opts){.prefix = "module."};
    ck_assert_int_eq(sm_convert_file(fixture("plain_sd.pth"), out, &o, NULL, &err), SM_EDATA);
    ck_assert_msg(strstr(err.text, "no tensor name starts with 'module.'"), "%s", err.text);
    ck_assert_int_eq(dir_entries(tmp), 0);

    /* the sm_ckpt API */
    sm_ckpt *c = NULL;
    ck_assert_int_eq(sm_ckpt_open(fixture("views.pth"), NULL, &c, &err), 0);
    ck_assert_int_eq(sm_ckpt_format_of(c), SM_CKPT_TORCH);
    ck_assert_str_eq(sm_ckpt_where(c), "['state_dict']");
    ck_assert_uint_eq(sm_ckpt_count(c), 11);
    const sm_ckpt_tensor *t = sm_ckpt_find(c, "t");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 8);
    ck_assert_int_eq(t->shape[1], 6);
    /* t = base.t(), base[i][j] = (8 i + j) / 2 - 3: t[j][i] */
    ck_assert(((float *)t->data)[1 * 6 + 2] == (8 * 2 + 1) * 0.5f - 3);
    ck_assert_uint_eq(sm_ckpt_ignored_count(c), 1);
    ck_assert_str_eq(sm_ckpt_ignored(c, 0), "'step' (an int)");
    ck_assert_str_eq(sm_ckpt_format_name(SM_CKPT_MINDSPORE), "MindSpore checkpoint (.ckpt)");
    sm_ckpt_free(c);
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* ---- refusals ---------------------------------------------------------------------------------
 */

static const struct bad_case {
    const char *file, *message;
} bad_cases[] = {
    {"bad/evil_system.pth", "refusing the name os.system"},
    {"bad/evil_eval.pth", "refusing the name __builtin__.eval"},
    {"bad/evil_stack_global.pth", "refusing the name posix.system"},
    {"bad/size_overflow.pth", "tensor size overflows"},
    {"bad/stride_overflow.pth", "tensor strides overflow"},
    {"bad/storage_short.pth", "storage '0' is too short for its tensor"},
    {"bad/offset_past_end.pth", "storage '0' is too short for its tensor"},
    {"bad/record_bytes.pth", "holds 16 bytes, its record says 8 elements"},
    {"bad/missing_storage.pth", "the archive has no entry 'archive/data/7'"},
    {"bad/complex_storage.pth", "torch.ComplexFloatStorage is not supported"},
    {"bad/deep_lists.pth", "nested deeper than 100 levels"},
    {"bad/deep_tuples.pth", "nested deeper than 100 levels"},
    {"bad/memo_unset.pth", "memo index 5 was never set"},
    {"bad/memo_far.pth", "memo index 4294967295 is far beyond"},
    {"bad/unknown_opcode.pth", "unknown opcode 0xff"},
    {"bad/truncated_pickle.pth", "truncated"},
    {"bad/stack_underflow.pth", "stack underflow"},
    {"bad/bzip2.pth", "compressed with method 12"},
    {"bad/no_data_pkl.pth", "without '<name>/data.pkl'"},
    {"bad/truncated_zip.pth", "no end of central directory record"},
    {"bad/bad_crc.pth", "CRC-32 mismatch"},
    {"bad/legacy_tar.pth", "legacy tar format"},
    {"bad/plain_pickle.pkl", "a plain Python pickle"},
    {"bad/empty.pth", "the file is empty"},
    {"bad/no_state_dict.pth", "no state dict: the pickled object is a list"},
    {"bad/whole_module.pth", "torch.nn.modules.linear.Linear"},
    {"bad/torchscript.pt", "a TorchScript archive"},
    {"bad/ms_truncated.ckpt", "runs past the end of the file"},
    {"bad/ms_bad_length.ckpt", "12 bytes of data for dims [4] of Float32"},
    {"bad/ms_bad_crc.ckpt", "CRC-32 mismatch"},
    {"bad/ms_deep_dims.ckpt", "more than 8 dimensions"},
    {"bad/ms_no_type.ckpt", "tensor without a tensor_type"},
    {"../../golden/cls_swin.safetensors", "already a safetensors file"},
    {"no_such_file.pth", "cannot open"},
};

START_TEST(test_refused)
{
    const struct bad_case *c = &bad_cases[_i];
    char *tmp = sm_test_tmpdir(), out[4200];
    snprintf(out, sizeof out, "%s/out.safetensors", tmp);
    sm_error err;
    sm_error_clear(&err);
    sm_convert_report rep;
    int rc = sm_convert_file(fixture(c->file), out, NULL, &rep, &err);
    ck_assert_msg(rc != 0, "%s was converted", c->file);
    ck_assert_int_eq(rc, err.code);
    ck_assert_msg(strstr(err.text, c->message), "%s: '%s' not in: %s", c->file, c->message,
                  err.text);
    const char *base = strrchr(c->file, '/');
    ck_assert_msg(strstr(err.file, base ? base + 1 : c->file), "%s: the error names '%s'", c->file,
                  err.file);
    ck_assert_msg(dir_entries(tmp) == 0, "%s: something was written", c->file);
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* The pickles that run `touch simmim_convert_pwned` under Python (the script checks they do)
 * create nothing here, through the library and through the command. */
START_TEST(test_never_executes)
{
    char *tmp = sm_test_tmpdir(), cwd[4096], cmd[9000];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    static const char *const evil[] = {"bad/evil_system.pth", "bad/evil_eval.pth",
                                       "bad/evil_stack_global.pth"};
    ck_assert_int_eq(chdir(tmp), 0);
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        sm_error err;
        sm_error_clear(&err);
        ck_assert_int_ne(sm_convert_file(fixture(evil[i]), "out.safetensors", NULL, NULL, &err), 0);
        ck_assert_msg(access(MARKER, F_OK) != 0, "%s ran its command", evil[i]);
        snprintf(cmd, sizeof cmd, "'%s' convert '%s' -o out.safetensors 2>/dev/null",
                 getenv("SIMMIMCTL"), fixture(evil[i]));
        int st = system(cmd);
        ck_assert_int_eq(WEXITSTATUS(st), 1);
        ck_assert_msg(access(MARKER, F_OK) != 0, "%s ran its command (simmimctl)", evil[i]);
    }
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(dir_entries(tmp), 0);
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* ---- the command ------------------------------------------------------------------------------
 */

static int run(const char *args, const char *dir, char **out)
{
    char cmd[9000], path[4200];
    snprintf(path, sizeof path, "%s.log", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > '%s' 2>&1", dir, getenv("SIMMIMCTL"), args,
             path);
    int st = system(cmd);
    *out = sm_test_read_file(path, NULL);
    unlink(path);
    ck_assert_ptr_nonnull(*out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_cli)
{
    char *tmp = sm_test_tmpdir(), args[9000], path[4200], *out;
    struct stat sb;
    snprintf(args, sizeof args, "convert '%s' -o w.safetensors", fixture("official_vit.pth"));
    ck_assert_int_eq(run(args, tmp, &out), 0);
    ck_assert_msg(strstr(out, "40 tensors written") && strstr(out, "tensors from ['model']") &&
                      strstr(out, "left out (6)") && strstr(out, "wrote w.safetensors"),
                  "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/w.safetensors", tmp);
    ck_assert_int_eq(stat(path, &sb), 0);

    snprintf(args, sizeof args, "convert -q --output=q.safetensors --prefix encoder. '%s'",
             fixture("ringmo_vit.ckpt"));
    ck_assert_int_eq(run(args, tmp, &out), 0);
    ck_assert_str_eq(out, "");
    free(out);
    snprintf(path, sizeof path, "%s/q.safetensors", tmp);
    sm_st_file *f = open_st(path);
    ck_assert_uint_eq(sm_st_count(f), 38);
    ck_assert_ptr_nonnull(sm_st_find(f, "blocks.1.attn.qkv.weight"));
    sm_st_close(f);

    snprintf(args, sizeof args, "convert '%s' -o bad.safetensors", fixture("bad/memo_unset.pth"));
    ck_assert_int_eq(run(args, tmp, &out), 1);
    ck_assert_msg(strstr(out, "memo_unset.pth") && strstr(out, "memo index 5 was never set"), "%s",
                  out);
    free(out);
    snprintf(path, sizeof path, "%s/bad.safetensors", tmp);
    ck_assert_int_ne(stat(path, &sb), 0);

    static const char *const usage[] = {
        "convert",
        "convert x.pth",
        "convert -o",
        "convert --frob x.pth -o y.safetensors",
        "convert a.pth b.pth -o y.safetensors",
        "convert x.pth --prefix",
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        ck_assert_msg(run(usage[i], tmp, &out) == 2, "'%s' did not exit 2:\n%s", usage[i], out);
        ck_assert_msg(strstr(out, "simmimctl convert --help"), "%s", out);
        free(out);
    }
    ck_assert_int_eq(run("convert --help", tmp, &out), 0);
    ck_assert_msg(strstr(out, "usage: simmimctl convert IN -o OUT.safetensors"), "%s", out);
    free(out);
    ck_assert_int_eq(run("--help", tmp, &out), 0);
    ck_assert_msg(strstr(out, "  convert "), "%s", out);
    free(out);

    /* the output may not be the input */
    size_t len;
    char *data = sm_test_read_file(fixture("plain_sd.pth"), &len);
    snprintf(path, sizeof path, "%s/same.pth", tmp);
    ck_assert_int_eq(sm_test_write_file(path, data, len), 0);
    free(data);
    ck_assert_int_eq(run("convert same.pth -o ./same.pth", tmp, &out), 2);
    ck_assert_msg(strstr(out, "refusing to write over the input"), "%s", out);
    free(out);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq((long long)sb.st_size, (long long)len);
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

static Suite *convert_suite(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("files");
    tcase_add_loop_test(tc, test_expected, 0,
                        (int)(sizeof expected_files / sizeof *expected_files));
    tcase_add_test(tc, test_report);
    tcase_add_loop_test(tc, test_golden_layouts, 0,
                        (int)(sizeof golden_cases / sizeof golden_cases[0]));
    tcase_add_test(tc, test_options);
    tcase_add_loop_test(tc, test_refused, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, test_never_executes);
    tcase_add_test(tc, test_cli);
    suite_add_tcase(s, tc);
    TCase *ld = tcase_create("load");
    tcase_add_checked_fixture(ld, setup_reg, teardown_reg);
    tcase_set_timeout(ld, 300);
    tcase_add_test(ld, test_load_like_golden);
    suite_add_tcase(s, ld);
    return s;
}

int main(void) { return sm_test_run(convert_suite()); }
