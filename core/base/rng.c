/* core/base/rng.c - keyed random streams: SplitMix64 hashing of the key into xoshiro256** state. */
#include "base/internal.h"
#include "simmim/rng.h"

#include <math.h>

static uint64_t sm__mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t sm_rng_hash(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    const uint64_t g = 0x9e3779b97f4a7c15ULL;
    uint64_t h = sm__mix64(seed + g);
    h = sm__mix64(h ^ (a + 2 * g));
    h = sm__mix64(h ^ (b + 3 * g));
    h = sm__mix64(h ^ (c + 4 * g));
    return h;
}

void sm_rng_init(sm_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t x = sm_rng_hash(seed, a, b, c);
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ULL;
        r->s[i] = sm__mix64(x);
    }
    r->has_spare = 0;
    r->spare = 0.0;
}

static inline uint64_t sm__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sm_rng_u64(sm_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = sm__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sm__rotl(s[3], 45);
    return result;
}

uint32_t sm_rng_u32(sm_rng *r) { return (uint32_t)(sm_rng_u64(r) >> 32); }

double sm_rng_uniform(sm_rng *r) { return (double)(sm_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t sm_rng_below(sm_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = sm_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double sm_rng_normal(sm_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do u1 = sm_rng_uniform(r);
    while (u1 <= 0.0);
    u2 = sm_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}
