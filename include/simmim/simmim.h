/* simmim/simmim.h - umbrella header of libsimmim.
 *
 * libsimmim: SimMIM masked image modeling (Xie et al. 2021) in C. Tensors and reverse-mode
 * autograd (tensor.h, ops.h), GEMM backends (backend.h), named parameters (params.h),
 * configuration with RingMo-Framework semantics (config.h), a registry of components and a
 * dlopen plugin loader (registry.h, plugin.h), safetensors (io.h), models (model.h), datasets
 * (data.h), images and the input pipeline (image.h, loader.h). Errors: common.h; messages: log.h.
 *
 * Build against it with `pkg-config --cflags --libs simmim`.
 */
#ifndef SIMMIM_SIMMIM_H
#define SIMMIM_SIMMIM_H

#include "simmim/version.h"
#include "simmim/common.h"
#include "simmim/comm.h"
#include "simmim/log.h"
#include "simmim/config.h"
#include "simmim/registry.h"
#include "simmim/plugin.h"
#include "simmim/rng.h"
#include "simmim/tensor.h"
#include "simmim/ops.h"
#include "simmim/backend.h"
#include "simmim/params.h"
#include "simmim/io.h"
#include "simmim/model.h"
#include "simmim/data.h"
#include "simmim/image.h"
#include "simmim/loader.h"
#include "simmim/optim.h"
#include "simmim/train.h"

#endif /* SIMMIM_SIMMIM_H */
