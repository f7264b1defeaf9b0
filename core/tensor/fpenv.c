/* core/tensor/fpenv.c - subnormal floats flushed to zero, for the calling thread and every thread
 * it creates afterwards (docs/performance.md, "Subnormal floats").
 *
 * Why: Swin's shifted-window mask adds -100 to the scores of tokens from other windows, so
 * their softmax weights are e^-100 or less: subnormal floats (below 2^-126). On Intel cores every
 * multiply or add that reads or makes a subnormal takes a microcode assist of ~100 cycles; the
 * window-attention GEMMs on P, dS and their inputs ran 3.5x slower than on normal numbers
 * (Swin-B step 2.03 -> 1.60 s in bf16 on a Xeon with AMX). FTZ writes 0 for a subnormal result,
 * DAZ reads a subnormal input as 0: they change values only below 2^-126 in magnitude, far under
 * any tolerance of the golden files; TensorFlow and XLA run their CPU threads this way.
 *
 * The mode is per thread (x86: MXCSR; AArch64: FPCR.FZ) and a new thread starts with its
 * creator's, so a program calls this first, before its OpenMP, BLIS or oneDNN threads exist
 * (simmimctl does). The library never calls it by itself: the floating-point environment
 * belongs to the program. */
#include "tensor/tensor_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FLUSH_BITS 0x8040u /* MXCSR: FTZ (bit 15) | DAZ (bit 6) */
#endif

int sm_fpenv_flush_subnormals(bool on)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? csr | FLUSH_BITS : csr & ~FLUSH_BITS);
    return 0;
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = on ? fpcr | (1u << 24) : fpcr & ~(uint64_t)(1u << 24); /* FZ */
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
    return 0;
#else
    return on ? SM_EUNSUPPORTED : 0;
#endif
}

bool sm_fpenv_flushing(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return (_mm_getcsr() & FLUSH_BITS) == FLUSH_BITS;
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (fpcr >> 24) & 1u;
#else
    return false;
#endif
}
