/* simmim/params.h - the named parameter store, and initialisers.
 *
 * A model declares its parameters by official PyTorch state_dict name and shape; finalize then
 * makes ONE allocation for all values and one for all gradients, laid out identically (llm.c
 * style), so zero_grad is one memset, an optimizer step is a flat loop and a checkpoint is one
 * write. Optimizer state (AdamW's m and v) are further blocks of the same layout.
 *
 *     sm_params *p = sm_params_new();
 *     sm_tensor *w = sm_params_add(p, "encoder.norm.weight", 1, SM_SHAPE(768), err);
 *     ...
 *     sm_params_finalize(p, err);           // w->data, w->grad now valid (zeroed)
 */
#ifndef SIMMIM_PARAMS_H
#define SIMMIM_PARAMS_H

#include "simmim/common.h"
#include "simmim/rng.h"
#include "simmim/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_params sm_params;

SM_API sm_params *sm_params_new(void);
SM_API void sm_params_free(sm_params *p);

/* Declares a parameter (name copied). Returns its tensor (owned by the store; data and grad
 * are NULL until finalize; flags PARAM | REQUIRES_GRAD). NULL with err on a duplicate name
 * (SM_EEXIST), a bad shape (SM_EINVAL), after finalize (SM_EINVAL) or ENOMEM. */
SM_API sm_tensor *sm_params_add(sm_params *p, const char *name, int ndim, const int64_t *shape,
                                sm_error *err);
/* Allocates the value and gradient blocks (zeroed, 64-byte aligned). */
SM_API int sm_params_finalize(sm_params *p, sm_error *err);

SM_API size_t sm_params_count(const sm_params *p);
/* i-th parameter in declaration order. */
SM_API sm_tensor *sm_params_at(const sm_params *p, size_t i);
/* By exact name; NULL if absent. */
SM_API sm_tensor *sm_params_find(const sm_params *p, const char *name);
/* Total number of elements. */
SM_API int64_t sm_params_numel(const sm_params *p);
/* The contiguous blocks (NULL before finalize). */
SM_API float *sm_params_data(const sm_params *p);
SM_API float *sm_params_grads(const sm_params *p);
SM_API void sm_params_zero_grad(sm_params *p);
/* Extra state block `slot` (0, 1, ...; e.g. Adam m and v), same layout, zeroed on first use.
 * NULL with err on ENOMEM or before finalize. */
SM_API float *sm_params_state(sm_params *p, int slot, sm_error *err);

/* ---- initialisers (deterministic given the rng) ---------------------------------------- */

/* Truncated normal N(mean, std²) restricted to [a, b] (absolute bounds, as timm's
 * trunc_normal_), by inverse-CDF sampling. */
SM_API void sm_init_trunc_normal(sm_tensor *t, double mean, double std, double a, double b,
                                 sm_rng *rng);
/* Uniform in [lo, hi). */
SM_API void sm_init_uniform(sm_tensor *t, double lo, double hi, sm_rng *rng);
/* Every element = v. */
SM_API void sm_init_const(sm_tensor *t, float v);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_PARAMS_H */
