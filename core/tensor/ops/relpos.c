/* core/tensor/ops/relpos.c - relative position bias gathered from a table through an index
 * (Swin's and BEiT-style ViT's relative_position_bias_table[relative_position_index]).
 *   table (R, H) [any strides], index n·n int64 in [0, R) (borrowed until backward)
 *   -> out (H, n, n), out[h][i][j] = table[index[i·n + j]][h]
 *   backward: table[index[ij]][h] += dout[h][ij] (scatter-add; per h in ij order) */
#include "tensor/tensor_internal.h"

typedef struct rp_saved {
    const int64_t *index;
} rp_saved;

sm_tensor *sm_relpos_bias(sm_ctx *ctx, sm_tensor *table, const int64_t *index, int64_t n)
{
    if (!SM__OK(ctx, table)) return NULL;
    if (table->ndim != 2 || n <= 0 || !index)
        return sm__shape_error(ctx, "relpos_bias", "table must be (R, heads), n > 0, index set",
                               "table", table, NULL);
    int64_t R = table->shape[0], H = table->shape[1], nn = n * n;
    for (int64_t i = 0; i < nn; i++)
        if (index[i] < 0 || index[i] >= R) {
            sm_ctx_fail(ctx, SM_EINVAL, "relpos_bias: index[%lld] = %lld is outside [0, %lld)",
                        (long long)i, (long long)index[i], (long long)R);
            return NULL;
        }
    sm_tensor *out = sm__empty(ctx, 3, SM_SHAPE(H, n, n));
    if (!out) return NULL;
    int64_t s0 = table->stride[0], s1 = table->stride[1];
    for (int64_t h = 0; h < H; h++)
        for (int64_t ij = 0; ij < nn; ij++)
            out->data[h * nn + ij] = table->data[index[ij] * s0 + h * s1];
    rp_saved sv = {index};
    return sm__track(ctx, SM__OP_RELPOS_BIAS, out, 1, &table, &sv, sizeof sv);
}

void sm__relpos_bias_backward(sm_ctx *ctx, sm__node *node)
{
    sm_tensor *table = node->in[0];
    const int64_t *index = ((const rp_saved *)node->saved)->index;
    float *gt = sm__grad(ctx, table);
    if (!gt) return;
    int64_t H = table->shape[1], nn = node->out->shape[1] * node->out->shape[2];
    int64_t s0 = table->stride[0], s1 = table->stride[1];
    const float *g = node->out->grad;
    for (int64_t h = 0; h < H; h++)
        for (int64_t ij = 0; ij < nn; ij++) gt[index[ij] * s0 + h * s1] += g[h * nn + ij];
}
