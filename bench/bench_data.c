/* bench/bench_data.c - decode + augment throughput of the input pipeline, images/s per core,
 * for 256x256 JPEGs (generated here) at 192 and 224 crops, pretraining and fine-tuning
 * pipelines, next to the training-step throughput of ViT-B/16 and their ratio (target >= 5x).
 *
 * usage: bench_data [seconds_per_case (default 2)] [step_img_per_s]
 * step_img_per_s: the ViT-B/16 training step to compare with, as measured on this machine by
 * `simmimctl model` (batch 8) on a ViT-B/16 config; default: the PyTorch peer's 3.02 img/s from
 * docs/performance.md (a faster step than simmim's or PyTorch's on slower BLIS kernels, so the
 * stricter comparison).
 * Times are CPU time of the measuring thread (per core), so other load on the machine does not
 * lower the figure. */
#include "../tests/imgutil.h"

#include <simmim/simmim.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The PyTorch peer's ViT-B/16 SimMIM training step, batch 8, 2 threads (docs/performance.md). */
#define PEER_VIT_IMG_S 3.02

#define N_IMAGES 32

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A photo-like 256x256 image: smooth gradients, a few edges, mild noise. */
static void synth(uint8_t *px, int k)
{
    uint32_t s = 2463534242u + (uint32_t)k * 747796405u;
    for (int y = 0; y < 256; y++)
        for (int x = 0; x < 256; x++) {
            s ^= s << 13, s ^= s >> 17, s ^= s << 5;
            int noise = (int)(s % 17) - 8;
            int edge = ((x / 37 + y / 53 + k) % 3) * 40;
            for (int c = 0; c < 3; c++) {
                int v = (x * (c + 1) + y * (3 - c) + k * 29) / 3 + edge + noise;
                px[(y * 256 + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

typedef struct bench_case {
    const char *name;
    sm_pipeline_mode mode;
    int size;
} bench_case;

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    double step = argc > 2 ? atof(argv[2]) : PEER_VIT_IMG_S;
    if (!(secs > 0) || !(step > 0)) {
        fprintf(stderr, "usage: bench_data [seconds_per_case] [step_img_per_s]\n");
        return 2;
    }
    if (!(secs > 0)) secs = 2.0;
    uint8_t *jpg[N_IMAGES];
    size_t len[N_IMAGES];
    uint8_t *px = malloc(256 * 256 * 3);
    for (int i = 0; i < N_IMAGES; i++) {
        synth(px, i);
        sm_img_encode_jpeg(px, 256, 256, 3, 90, &jpg[i], &len[i]);
    }
    free(px);
    sm_image im, tmp;
    sm_image_init(&im);
    sm_image_init(&tmp);
    float *out = malloc(sizeof(float) * 3 * 224 * 224), mask[56 * 56];
    sm_error e;
    sm_error_clear(&e);

    printf("simmim data pipeline: 256x256 JPEG (q90) -> decode + augment, images/s per core\n");
    /* decode only */
    long n = 0;
    double t0 = cpu_now();
    while (cpu_now() - t0 < secs / 2) {
        int i = (int)(n++ % N_IMAGES);
        if (sm_image_decode(jpg[i], len[i], "bench", NULL, &im, NULL, &e)) return 1;
    }
    double decode_rate = n / (cpu_now() - t0);
    printf("  %-34s %8.1f img/s\n", "decode only", decode_rate);

    bench_case cases[4] = {{"pretrain 192 (bilinear, mask p4)", SM_PIPELINE_PRETRAIN, 192},
                           {"pretrain 224 (bilinear, mask p16)", SM_PIPELINE_PRETRAIN, 224},
                           {"finetune 192 (bicubic, RandAugment)", SM_PIPELINE_FINETUNE, 192},
                           {"finetune 224 (bicubic, RandAugment)", SM_PIPELINE_FINETUNE, 224}};
    double worst = 1e30;
    for (int c = 0; c < 4; c++) {
        sm_pipeline p;
        sm_pipeline_defaults(&p, cases[c].mode, cases[c].size);
        if (cases[c].size == 192) p.mask.model_patch_size = 4;
        n = 0;
        t0 = cpu_now();
        while (cpu_now() - t0 < secs) {
            int i = (int)(n % N_IMAGES);
            if (sm_image_decode(jpg[i], len[i], "bench", NULL, &im, NULL, &e) ||
                sm_pipeline_apply(&p, &im, "bench", 1, 0, n, out, mask, &tmp, &e)) {
                fprintf(stderr, "bench: %s\n", e.text);
                return 1;
            }
            n++;
        }
        double rate = n / (cpu_now() - t0);
        worst = fmin(worst, rate);
        printf("  %-34s %8.1f img/s   %5.1fx the ViT-B/16 step\n", cases[c].name, rate,
               rate / step);
    }
    if (argc > 2)
        printf("ViT-B/16 SimMIM training step: %.2f img/s (given: simmimctl model, b8)\n", step);
    else
        printf("ViT-B/16 SimMIM training step: %.2f img/s (PyTorch peer, b8, 2 threads, "
               "docs/performance.md)\n", step);
    printf("ratio (slowest pipeline per core / training step): %.1fx (target >= 5x): %s\n",
           worst / step, worst / step >= 5.0 ? "met" : "NOT met");
    for (int i = 0; i < N_IMAGES; i++) free(jpg[i]);
    free(out);
    sm_image_deinit(&im);
    sm_image_deinit(&tmp);
    return 0;
}
