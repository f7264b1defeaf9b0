/* plugins/sched/sched.c - learning-rate schedulers (plugin sm_sched.so), RingMo-Framework's
 * lr_type names (ringmo_framework/lr/build_lr.py), per optimizer update step:
 *
 *   T  = epochs * steps_per_epoch,  Tw = int(warmup_epochs * steps_per_epoch)
 *   warmup_cosine_decay_simmim  timm's CosineLRScheduler as SimMIM uses it (warmup_prefix off):
 *       t < Tw: warmup_lr + t * (base_lr - warmup_lr) / Tw
 *       else:   min_lr + 0.5 * (base_lr - min_lr) * (1 + cos(pi * t / T))   (over the FULL run)
 *   warmup_cosine_decay  RingMo's WarmUpCosineDecayV1:
 *       t < Tw: base_lr * t / Tw + warmup_lr
 *       else:   min_lr + 0.5 * (base_lr - min_lr) * (1 + cos(pi * (t - Tw) / (T - Tw)))
 *   cosine_decay  min_lr + 0.5 * (base_lr - min_lr) * (1 + cos(pi * t / (T - Tw)))
 *   warmup        linspace(warmup_lr, base_lr, Tw)[t], then base_lr
 *   warmup_multistep_decay  linspace(warmup_lr, base_lr, Tw + 1)[t] for t < Tw, then
 *       base_lr / factor^(number of multi_epochs m with m * steps_per_epoch <= t)
 * Steps at or past T keep the value of step T - 1 (the cosine schedules end at their minimum).
 * The values are those of the config; scaling by batch size and layer-wise decay are the
 * trainer's. lr_peak evaluates the same formula with the peak base_lr x scale (timm's per-group
 * schedules under the official layer decay: warmup_lr and min_lr are not scaled). */
#include <simmim/simmim.h>
#include <simmim/optim.h>

#include <math.h>
#include <stdlib.h>

typedef enum kind { WARMUP_COSINE_SIMMIM, WARMUP_COSINE, COSINE, WARMUP, WARMUP_MULTISTEP } kind;

typedef struct sched {
    kind k;
    double base, min, warm;
    int64_t T, Tw, spe;
    double factor;
    int64_t milestones[64];
    size_t n_milestones;
} sched;

static int sched_create(kind k, const sm_cfg *section, const sm_schedule_opts *opts, void **self,
                        sm_error *err)
{
    if (opts->steps_per_epoch < 1 || opts->epochs < 1)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, "lr_schedule",
                            "a schedule needs at least one epoch of at least one step");
    sched *s = calloc(1, sizeof *s);
    if (!s) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    s->k = k;
    s->base = sm_cfg_float(section, "base_lr");
    s->min = sm_cfg_float(section, "min_lr");
    s->warm = sm_cfg_float(section, "warmup_lr");
    s->spe = opts->steps_per_epoch;
    s->T = opts->epochs * opts->steps_per_epoch;
    s->Tw = (int64_t)(sm_cfg_float(section, "warmup_epochs") * (double)opts->steps_per_epoch);
    if (s->Tw > s->T) s->Tw = s->T;
    if (k == WARMUP_MULTISTEP) {
        s->factor = sm_cfg_float(section, "factor");
        s->n_milestones = sm_cfg_int_list(section, "multi_epochs", s->milestones, 64);
        if (s->n_milestones > 64) {
            free(s);
            return sm_error_set(err, SM_EINVAL, NULL, 0, 0, "lr_schedule.multi_epochs",
                                "at most 64 milestones");
        }
    }
    *self = s;
    return 0;
}

/* The schedule at step t with peak learning rate `base`. */
static double sched_eval(const sched *s, int64_t t, double base)
{
    if (t >= s->T) t = s->T - 1;
    if (t < 0) t = 0;
    double T = (double)s->T, Tw = (double)s->Tw, td = (double)t;
    switch (s->k) {
    case WARMUP_COSINE_SIMMIM:
        if (t < s->Tw) return s->warm + td * (base - s->warm) / Tw;
        return s->min + 0.5 * (base - s->min) * (1.0 + cos(M_PI * td / T));
    case WARMUP_COSINE:
        if (t < s->Tw) return base * td / Tw + s->warm;
        return s->min + 0.5 * (base - s->min) * (1.0 + cos(M_PI * (td - Tw) / (T - Tw)));
    case COSINE:
        return s->min + 0.5 * (base - s->min) * (1.0 + cos(M_PI * td / (T - Tw > 0 ? T - Tw : T)));
    case WARMUP:
        if (t < s->Tw && s->Tw > 1) return s->warm + td * (base - s->warm) / (Tw - 1.0);
        return base;
    case WARMUP_MULTISTEP: {
        if (t < s->Tw) return s->warm + td * (base - s->warm) / Tw;
        int passed = 0;
        for (size_t i = 0; i < s->n_milestones; i++)
            if (s->milestones[i] * s->spe <= t) passed++;
        return base / pow(s->factor, passed);
    }
    }
    return base;
}

static double sched_lr(const void *self, int64_t t)
{
    const sched *s = self;
    return sched_eval(s, t, s->base);
}

static double sched_lr_peak(const void *self, int64_t t, double peak_scale)
{
    const sched *s = self;
    return sched_eval(s, t, s->base * peak_scale);
}

static void sched_destroy(void *self) { free(self); }

#define SCHED_CREATE(fn, k)                                                                        \
    static int fn(const sm_cfg *section, const sm_schedule_opts *opts, void **self, sm_error *err) \
    {                                                                                              \
        return sched_create(k, section, opts, self, err);                                          \
    }
SCHED_CREATE(create_cosine_simmim, WARMUP_COSINE_SIMMIM)
SCHED_CREATE(create_warmup_cosine, WARMUP_COSINE)
SCHED_CREATE(create_cosine, COSINE)
SCHED_CREATE(create_warmup, WARMUP)
SCHED_CREATE(create_multistep, WARMUP_MULTISTEP)

static const sm_key multistep_keys[] = {
    {"multi_epochs", SM_KEY_INT_LIST, "[700]", "[0,)", 0,
     "epochs at which the learning rate is divided by factor"},
    {"factor", SM_KEY_FLOAT, "10", "(0,)", 0, "divisor applied at each milestone"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

#define SCHED_VTBL(var, name, desc, keys, fn)                                                      \
    static const sm_scheduler_vtbl var = {                                                         \
        .hdr = SM_COMPONENT_INIT(sm_scheduler_vtbl, SM_KIND_SCHEDULER, name, desc, keys, NULL),    \
        .create = fn,                                                                              \
        .destroy = sched_destroy,                                                                  \
        .lr = sched_lr,                                                                            \
        .lr_peak = sched_lr_peak,                                                                  \
    };
SCHED_VTBL(v_cosine_simmim, "warmup_cosine_decay_simmim",
           "linear warmup, then cosine over the whole run (timm/SimMIM)", NULL,
           create_cosine_simmim)
SCHED_VTBL(v_warmup_cosine, "warmup_cosine_decay",
           "linear warmup, then cosine over the remaining steps (RingMo V1)", NULL,
           create_warmup_cosine)
SCHED_VTBL(v_cosine, "cosine_decay", "cosine from base_lr to min_lr", NULL, create_cosine)
SCHED_VTBL(v_warmup, "warmup", "linear warmup to base_lr, then constant", NULL, create_warmup)
SCHED_VTBL(v_multistep, "warmup_multistep_decay",
           "linear warmup, then divided by factor at each milestone epoch", multistep_keys,
           create_multistep)

static int sched_register(sm_registry *reg, sm_error *err)
{
    const sm_scheduler_vtbl *all[] = {&v_cosine_simmim, &v_warmup_cosine, &v_cosine, &v_warmup,
                                      &v_multistep};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        int rc = sm_registry_add(reg, &all[i]->hdr, err);
        if (rc) return rc;
    }
    return 0;
}

SM_PLUGIN_DEFINE(sched, "0.1.0", "Learning-rate schedulers (RingMo-Framework names)", "MIT",
                 sched_register)
