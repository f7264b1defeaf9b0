/* simmim/rng.h - deterministic, counter-keyed random numbers.
 *
 * Every random choice in simmim (crops, flips, augmentations, masks, mixup, drop path, init) is
 * drawn from a stream keyed by a tuple such as (seed, epoch, sample index, purpose). The same
 * key always gives the same stream, whatever thread draws it and in whatever order, so a batch
 * is identical with 1 or 4 loader workers and after a resume.
 *
 *     sm_rng r;
 *     sm_rng_init(&r, seed, epoch, index, SM_RNG_PURPOSE_CROP);
 *     double u = sm_rng_uniform(&r);
 */
#ifndef SIMMIM_RNG_H
#define SIMMIM_RNG_H

#include "simmim/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_rng {
    uint64_t s[4];     /* xoshiro256** state derived from the key */
    double spare;      /* cached second normal deviate             */
    int has_spare;
} sm_rng;

/* Keys the stream by (seed, a, b, c): distinct keys give independent streams. */
SM_API void sm_rng_init(sm_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
SM_API uint64_t sm_rng_u64(sm_rng *r);
SM_API uint32_t sm_rng_u32(sm_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
SM_API double sm_rng_uniform(sm_rng *r);
/* Uniform integer in [0, n) without modulo bias; n >= 1. */
SM_API uint64_t sm_rng_below(sm_rng *r, uint64_t n);
/* Standard normal (Box-Muller, both deviates used). */
SM_API double sm_rng_normal(sm_rng *r);
/* A well-mixed 64-bit hash of (seed, a, b, c): stateless counter-based draws. */
SM_API uint64_t sm_rng_hash(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_RNG_H */
