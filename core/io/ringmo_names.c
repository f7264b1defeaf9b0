/* core/io/ringmo_names.c - RingMo-Framework (MindSpore) parameter names -> the official
 * microsoft/SimMIM PyTorch names, established from RingMo-Framework's source (comeony/RingMo,
 * spec §11.6; docs/convert.md has the table). MindSpore names a Parameter by its attribute path;
 * RingMo's modules differ from the official ones in these ways:
 *
 *   LayerNorm gamma / beta                          -> weight / bias
 *   patch_embed.projection (Conv2d)                 -> patch_embed.proj
 *   ViT: encoder.encoder.blocks.N                   -> encoder.blocks.N (classifier: blocks.N)
 *        layernorm1 / layernorm2                    -> norm1 / norm2
 *        attention.dense1|2|3.weight [C, C] (q|k|v) -> attn.qkv.weight [3C, C] (concatenated)
 *        attention.dense1.bias / dense3.bias        -> attn.q_bias / attn.v_bias
 *        attention.dense2.bias (k bias)             -> dropped: the official ViT has none, and a
 *                                                      k bias adds the same q.b_k to every key of
 *                                                      a query, which softmax ignores
 *        attention.projection.weight [in, out]      -> attn.proj.weight, transposed
 *        attention.relative_position_bias.X        -> attn.X
 *        output.mapping / output.projection [in,out] -> mlp.fc1 / mlp.fc2, weights transposed
 *        cls_tokens                                 -> cls_token
 *   Swin: attn.q|k|v.weight / .bias                 -> attn.qkv.weight / .bias (concatenated)
 *        attn.relative_position_bias.X             -> attn.X
 *        mlp.mapping / mlp.projection [in, out]     -> mlp.fc1 / mlp.fc2, weights transposed
 *   decoder.weight / .bias (before DepthToSpace)    -> decoder.0.weight / .bias (before
 *                                                      PixelShuffle): output channels reordered
 *                                                      from (i*r + j)*3 + c to c*r*r + i*r + j
 *   a classifier (head.weight, no decoder): the "encoder." prefix is removed.
 *
 * Linear layers built with transpose_b=False (MindSpore's _Linear) keep their weight as
 * [in, out]; the others, the convolutions and the head are [out, in] as in PyTorch. The
 * DepthToSpace channel order is the one of MindSpore's CPU kernel (output channel c at block
 * offset (i, j) reads input channel (i*r + j)*C + c). Names that MindSpore would give from an
 * explicit Parameter name instead of the attribute (cls, pos_embedding, ape, gamma1, gamma2,
 * attention_mask) are mapped too. Optimizer state (adam_m.*, adam_v.*) and counters
 * (global_step, epoch_num, ...) are moved to the ignored list. */
#include "base/internal.h"
#include "io/io_internal.h"

enum { F_TRANSPOSE = 1, F_DROP = 2, F_PERMUTE = 4 };

typedef struct rule {
    const char *from, *to;
    unsigned flags;
    int part; /* q, k, v part of a merged tensor (0, 1, 2), or -1 */
} rule;

/* Applied in order to "." + name; each rule at most once. */
static const rule mid_rules[] = {
    {".patch_embed.projection.", ".patch_embed.proj.", 0, -1},
    {".layernorm1.", ".norm1.", 0, -1},
    {".layernorm2.", ".norm2.", 0, -1},
    {".attention.relative_position_bias.", ".attn.", 0, -1},
    {".attn.relative_position_bias.", ".attn.", 0, -1},
    {".attention.projection.weight", ".attn.proj.weight", F_TRANSPOSE, -1},
    {".attention.projection.bias", ".attn.proj.bias", 0, -1},
    {".attention.dense1.weight", ".attn.qkv.weight", 0, 0},
    {".attention.dense2.weight", ".attn.qkv.weight", 0, 1},
    {".attention.dense3.weight", ".attn.qkv.weight", 0, 2},
    {".attention.dense1.bias", ".attn.q_bias", 0, -1},
    {".attention.dense2.bias", ".attn.k_bias", F_DROP, -1},
    {".attention.dense3.bias", ".attn.v_bias", 0, -1},
    {".attn.q.weight", ".attn.qkv.weight", 0, 0},
    {".attn.k.weight", ".attn.qkv.weight", 0, 1},
    {".attn.v.weight", ".attn.qkv.weight", 0, 2},
    {".attn.q.bias", ".attn.qkv.bias", 0, 0},
    {".attn.k.bias", ".attn.qkv.bias", 0, 1},
    {".attn.v.bias", ".attn.qkv.bias", 0, 2},
    {".output.mapping.weight", ".mlp.fc1.weight", F_TRANSPOSE, -1},
    {".output.mapping.bias", ".mlp.fc1.bias", 0, -1},
    {".output.projection.weight", ".mlp.fc2.weight", F_TRANSPOSE, -1},
    {".output.projection.bias", ".mlp.fc2.bias", 0, -1},
    {".mlp.mapping.weight", ".mlp.fc1.weight", F_TRANSPOSE, -1},
    {".mlp.mapping.bias", ".mlp.fc1.bias", 0, -1},
    {".mlp.projection.weight", ".mlp.fc2.weight", F_TRANSPOSE, -1},
    {".mlp.projection.bias", ".mlp.fc2.bias", 0, -1},
};

/* Last name segment. */
static const rule last_rules[] = {
    {".gamma", ".weight", 0, -1},
    {".beta", ".bias", 0, -1},
    {".moving_mean", ".running_mean", 0, -1},
    {".moving_variance", ".running_var", 0, -1},
    {".cls_tokens", ".cls_token", 0, -1},
    {".cls", ".cls_token", 0, -1},
    {".pos_embedding", ".pos_embed", 0, -1},
    {".ape", ".absolute_pos_embed", 0, -1},
    {".gamma1", ".gamma_1", 0, -1},
    {".gamma2", ".gamma_2", 0, -1},
    {".attention_mask", ".attn_mask", 0, -1},
};

bool sm__ringmo_detect(const sm_ckpt *c)
{
    static const char *const marks[] = {"patch_embed.projection.", ".attention.dense1.",
                                        ".attn.q.weight",          "encoder.encoder.blocks.",
                                        ".layernorm1.gamma",       ".mlp.mapping."};
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < SM__ARRAY_LEN(marks); k++)
            if (strstr(c->t[i].name, marks[k])) return true;
    return false;
}

static bool starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* The official name of `in` into out (n bytes), with the flags and q/k/v part. -1 if too long. */
static int map_name(const char *in, bool classifier, char *out, size_t n, unsigned *flags,
                    int *part)
{
    char a[512], b[512];
    *flags = 0;
    *part = -1;
    const char *rest = in;
    if (classifier) {
        if (starts(in, "encoder.encoder.blocks.")) {
            rest = in + strlen("encoder.encoder.");
        } else if (starts(in, "encoder.")) {
            rest = in + strlen("encoder.");
        }
    }
    if (snprintf(a, sizeof a, ".%s", rest) >= (int)sizeof a) return -1;
    if (!classifier && starts(a, ".encoder.encoder.blocks."))
        memmove(a + 1, a + 1 + strlen("encoder."), strlen(a + 1 + strlen("encoder.")) + 1);
    if (!strcmp(a, ".decoder.weight") || !strcmp(a, ".decoder.bias")) {
        snprintf(b, sizeof b, ".decoder.0.%s", a + strlen(".decoder."));
        memcpy(a, b, sizeof a);
        *flags |= F_PERMUTE;
    }
    for (size_t i = 0; i < SM__ARRAY_LEN(mid_rules); i++) {
        const rule *r = &mid_rules[i];
        char *at = strstr(a, r->from);
        if (!at) continue;
        int k = snprintf(b, sizeof b, "%.*s%s%s", (int)(at - a), a, r->to, at + strlen(r->from));
        if (k >= (int)sizeof b) return -1;
        memcpy(a, b, sizeof a);
        *flags |= r->flags;
        if (r->part >= 0) *part = r->part;
    }
    size_t len = strlen(a);
    for (size_t i = 0; i < SM__ARRAY_LEN(last_rules); i++) {
        const rule *r = &last_rules[i];
        size_t fl = strlen(r->from);
        if (len >= fl && !strcmp(a + len - fl, r->from) && len - fl + strlen(r->to) < sizeof a) {
            strcpy(a + len - fl, r->to);
            break;
        }
    }
    if (strlen(a + 1) >= n) return -1;
    strcpy(out, a + 1);
    return 0;
}

/* [R, C] -> [C, R] */
static int transpose(sm_ckpt_tensor *t)
{
    size_t es = sm_dtype_size(t->dtype);
    int64_t R = t->shape[0], C = t->shape[1];
    unsigned char *d = malloc(t->numel ? (size_t)t->numel * es : 1);
    if (!d) return SM_ENOMEM;
    const unsigned char *s = t->data;
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++)
            memcpy(d + ((size_t)(j * R + i)) * es, s + ((size_t)(i * C + j)) * es, es);
    free(t->data);
    t->data = d;
    t->shape[0] = C;
    t->shape[1] = R;
    return 0;
}

/* Decoder rows (dim 0, O = 3 r^2): PixelShuffle row c*r*r + i*r + j <- DepthToSpace row
 * (i*r + j)*3 + c. */
static int permute_decoder(sm_ckpt *c, sm_ckpt_tensor *t, sm_error *err)
{
    int64_t O = t->ndim ? t->shape[0] : 0, r = 1;
    while (r * r * 3 < O) r++;
    if (O == 0 || r * r * 3 != O)
        return sm_error_set(err, SM_EDATA, c->path, 0, 0, t->source,
                            "decoder with %lld output channels, not 3 x r^2", (long long)O);
    size_t row = (size_t)(t->numel / O) * sm_dtype_size(t->dtype);
    unsigned char *d = malloc(t->numel ? (size_t)t->numel * sm_dtype_size(t->dtype) : 1);
    if (!d) return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
    const unsigned char *s = t->data;
    for (int64_t ch = 0; ch < 3; ch++)
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < r; j++)
                memcpy(d + (size_t)(ch * r * r + i * r + j) * row,
                       s + (size_t)((i * r + j) * 3 + ch) * row, row);
    free(t->data);
    t->data = d;
    return 0;
}

/* q, k, v parts (same shape) -> one tensor, concatenated along dimension 0. */
static int merge(sm_ckpt *c, sm_ckpt_tensor *const p[3], sm_ckpt_tensor *out, sm_error *err)
{
    for (int k = 1; k < 3; k++)
        if (p[k]->ndim != p[0]->ndim || p[k]->dtype != p[0]->dtype ||
            memcmp(p[k]->shape, p[0]->shape, sizeof p[0]->shape) || p[0]->ndim < 1)
            return sm_error_set(err, SM_EDATA, c->path, 0, 0, p[k]->source,
                                "q, k and v tensors of '%s' differ in shape", p[0]->name);
    size_t part = (size_t)p[0]->numel * sm_dtype_size(p[0]->dtype);
    unsigned char *d = malloc(part ? 3 * part : 1);
    if (!d) return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
    for (int k = 0; k < 3; k++) memcpy(d + (size_t)k * part, p[k]->data, part);
    *out = *p[0];
    out->data = d;
    out->shape[0] *= 3;
    out->numel *= 3;
    free(p[0]->data);
    free(p[1]->data);
    free(p[2]->data);
    free(p[1]->name);
    free(p[2]->name);
    free(p[1]->source);
    free(p[2]->source);
    return 0;
}

typedef struct plan {
    char *name;
    unsigned flags;
    int part;
    bool model; /* encoder./decoder./head.: part of the model */
} plan;

/* Training state goes to the ignored list: "adam_m.*" (N tensors), or single names. */
static void ignore_state(sm_ckpt *c, const plan *pl)
{
    for (size_t i = 0; i < c->n; i++) {
        if (pl[i].model) continue;
        const char *name = c->t[i].name, *dot = strchr(name, '.');
        if (!dot) {
            sm__ckpt_ignore(c, "'%s' (MindSpore training state)", name);
            continue;
        }
        size_t len = (size_t)(dot - name), count = 0;
        bool first = true;
        for (size_t k = 0; k < c->n; k++) {
            if (pl[k].model || strncmp(c->t[k].name, name, len + 1)) continue;
            if (k < i) first = false;
            count++;
        }
        if (first)
            sm__ckpt_ignore(c, "'%.*s.*' (%zu tensors: MindSpore optimizer or training state)",
                            (int)len, name, count);
    }
}

/* The official name, the flags and the q/k/v part of every tensor. */
static int make_plan(sm_ckpt *c, plan *pl, bool classifier, sm_error *err)
{
    for (size_t i = 0; i < c->n; i++) {
        const char *n = c->t[i].name;
        pl[i].model = starts(n, "encoder.") || starts(n, "decoder.") || starts(n, "head.");
        char name[512];
        if (pl[i].model && map_name(n, classifier, name, sizeof name, &pl[i].flags, &pl[i].part))
            return sm_error_set(err, SM_EDATA, c->path, 0, 0, NULL, "name '%.100s' is too long", n);
        if (pl[i].model && !(pl[i].name = sm__strdup(name)))
            return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
        if ((pl[i].flags & F_TRANSPOSE) && c->t[i].ndim != 2)
            return sm_error_set(err, SM_EDATA, c->path, 0, 0, n,
                                "a Linear weight with %d dimensions (2 expected)", c->t[i].ndim);
    }
    return 0;
}

/* The q part t with its k and v parts, merged into *out (qkv); all three are consumed. */
static int join_qkv(sm_ckpt *c, plan *pl, sm_ckpt_tensor *t, sm_ckpt_tensor *out, sm_error *err)
{
    sm_ckpt_tensor *p[3] = {t, NULL, NULL};
    for (size_t j = 0; j < c->n; j++)
        if (pl[j].part > 0 && pl[j].name && !strcmp(pl[j].name, t->name)) p[pl[j].part] = &c->t[j];
    if (!p[1] || !p[2])
        return sm_error_set(err, SM_EDATA, c->path, 0, 0, t->source,
                            "the %s part of '%s' is missing", p[1] ? "v" : "k", t->name);
    for (size_t j = 0; j < c->n; j++) /* the k and v parts are consumed */
        if (&c->t[j] == p[1] || &c->t[j] == p[2]) {
            free(pl[j].name);
            pl[j].name = NULL;
            c->from[c->t[j].stored]--;
        }
    int rc = merge(c, p, out, err);
    if (rc) return rc;
    p[1]->name = p[1]->source = p[1]->data = NULL;
    p[2]->name = p[2]->source = p[2]->data = NULL;
    t->name = t->source = t->data = NULL;
    c->map.merged++;
    return 0;
}

int sm__ringmo_map(sm_ckpt *c, sm_error *err)
{
    bool has_head = false, has_decoder = false;
    for (size_t i = 0; i < c->n; i++) {
        has_head |= !strcmp(c->t[i].name, "head.weight");
        has_decoder |= !strcmp(c->t[i].name, "decoder.weight");
    }
    bool classifier = has_head && !has_decoder;
    plan *pl = calloc(c->n ? c->n : 1, sizeof *pl);
    sm_ckpt_tensor *out = calloc(c->n ? c->n : 1, sizeof *out);
    int rc = !pl || !out ? sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory")
                         : make_plan(c, pl, classifier, err);
    if (!rc) ignore_state(c, pl);
    size_t k = 0, dropped = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        sm_ckpt_tensor *t = &c->t[i];
        if (!pl[i].model || (pl[i].flags & F_DROP)) {
            dropped += pl[i].model;
            c->from[t->stored]--;
            free(t->name), free(t->source), free(t->data);
            t->name = t->source = t->data = NULL;
            continue;
        }
        if (pl[i].flags & F_TRANSPOSE) {
            if ((rc = transpose(t))) {
                rc = sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
                break;
            }
            c->map.transposed++;
        }
        if ((pl[i].flags & F_PERMUTE) && (rc = permute_decoder(c, t, err))) break;
        c->map.permuted += (pl[i].flags & F_PERMUTE) != 0;
        if (pl[i].part > 0) continue; /* joined to its q part below */
        free(t->name);
        t->name = pl[i].name;
        pl[i].name = NULL;
        if (strcmp(t->name, t->source)) c->map.renamed++;
        if (pl[i].part < 0) {
            out[k++] = *t;
            t->name = t->source = t->data = NULL;
            continue;
        }
        if ((rc = join_qkv(c, pl, t, &out[k], err))) break;
        k++;
    }
    /* k and v parts whose q part never came */
    for (size_t i = 0; i < c->n && !rc; i++)
        if (pl[i].part > 0 && pl[i].name)
            rc = sm_error_set(err, SM_EDATA, c->path, 0, 0, c->t[i].source,
                              "the q part of '%s' is missing", pl[i].name);
    for (size_t i = 0; pl && i < c->n; i++) free(pl[i].name);
    free(pl);
    if (!out) return rc;
    if (rc) { /* keep every buffer owned by c, so sm__ckpt_clear frees it once */
        for (size_t i = 0; i < k; i++) {
            free(out[i].name), free(out[i].source), free(out[i].data);
        }
        free(out);
        return rc;
    }
    sm__ckpt_clear(c);
    c->t = out;
    c->n = k;
    c->cap = c->n ? c->n : 1;
    c->map.applied = true;
    c->map.dropped = dropped;
    if (dropped)
        sm__ckpt_ignore(c,
                        "%zu ViT attention k biases (attention.dense2.bias): the official ViT "
                        "has none, and softmax is unchanged without them",
                        dropped);
    return 0;
}
