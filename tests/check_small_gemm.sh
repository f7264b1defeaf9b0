#!/bin/sh
# tests/check_small_gemm.sh - the window-attention cases of check_ops with both layouts of the
# small-matrix kernel (core/tensor/ops/small_gemm.c): 16-lane blocks (AVX-512 machines) and
# 8-lane blocks (AVX2 machines), whichever this CPU would pick by itself.
set -e
for lanes in 8 16; do
    echo "small GEMM with $lanes lanes"
    SIMMIM_SMALL_GEMM_LANES=$lanes ./tests/check_ops
done
