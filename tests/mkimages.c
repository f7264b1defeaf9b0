/* tests/mkimages.c - writes small JPEG datasets for the end-to-end tests (a helper program of
 * make check, not a test):
 *   mkimages DIR
 *     DIR/aircas/img0.jpg .. img5.jpg and DIR/aircas/train_ids.json (RingMo's image list)
 *     DIR/cls/{train,val}/{airport,beach,church}/<class>_{0,1}.jpg (class folders) and
 *     DIR/cls/train/train_ids.json listing the training images
 * 256 x 256 RGB, smooth colour gradients that differ per image. */
#include "imgutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static uint8_t px[256 * 256 * 3];

static int image(const char *path, int seed)
{
    for (int y = 0; y < 256; y++)
        for (int x = 0; x < 256; x++)
            for (int c = 0; c < 3; c++)
                px[(y * 256 + x) * 3 + c] = (uint8_t)((x * (c + 1) + y * (seed % 5 + 1) + 37 * seed) & 255);
    if (sm_img_write_jpeg(path, px, 256, 256, 3, 90, false, false) != 0) {
        fprintf(stderr, "mkimages: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkimages DIR\n");
        return 2;
    }
    static const char *classes[3] = {"airport", "beach", "church"}, *splits[2] = {"train", "val"};
    char p[4096];
    int seed = 1;
    snprintf(p, sizeof p, "%s/aircas", argv[1]);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/aircas/train_ids.json", argv[1]);
    FILE *ids = fopen(p, "w");
    if (!ids) return 1;
    fputc('[', ids);
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/aircas/img%d.jpg", argv[1], i);
        if (image(p, seed++)) return 1;
        fprintf(ids, "%s\"img%d.jpg\"", i ? ", " : "", i);
    }
    fputs("]\n", ids);
    if (fclose(ids) != 0) return 1;
    snprintf(p, sizeof p, "%s/cls", argv[1]);
    mkdir(p, 0755);
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/cls/%s", argv[1], splits[s]);
        mkdir(p, 0755);
        for (int c = 0; c < 3; c++) {
            snprintf(p, sizeof p, "%s/cls/%s/%s", argv[1], splits[s], classes[c]);
            mkdir(p, 0755);
            for (int i = 0; i < 2; i++) {
                snprintf(p, sizeof p, "%s/cls/%s/%s/%s_%d.jpg", argv[1], splits[s], classes[c],
                         classes[c], i);
                if (image(p, seed++)) return 1;
            }
        }
    }
    snprintf(p, sizeof p, "%s/cls/train/train_ids.json", argv[1]);
    if (!(ids = fopen(p, "w"))) return 1;
    fputc('[', ids);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 2; i++)
            fprintf(ids, "%s\"%s/%s_%d.jpg\"", c || i ? ", " : "", classes[c], classes[c], i);
    fputs("]\n", ids);
    return fclose(ids) != 0;
}
