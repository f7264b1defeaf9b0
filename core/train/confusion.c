/* core/train/confusion.c - per-class results of an evaluation, from its confusion matrix: the
 * accuracy of each class, their mean (the "average accuracy" remote-sensing papers report beside
 * the overall accuracy), the weakest classes for the log, and the matrix as CSV. */
#include "base/internal.h"
#include "train/train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sm__confusion_init(sm__confusion *c, int classes)
{
    c->classes = classes > 0 ? classes : 0;
    c->m = calloc((size_t)c->classes * (size_t)c->classes + 1, sizeof *c->m);
    return c->m ? 0 : SM_ENOMEM;
}

void sm__confusion_deinit(sm__confusion *c)
{
    free(c->m);
    c->m = NULL;
}

void sm__confusion_add(sm__confusion *c, int truth, int predicted)
{
    if (truth >= 0 && truth < c->classes && predicted >= 0 && predicted < c->classes)
        c->m[(size_t)truth * c->classes + predicted]++;
}

double sm__confusion_class_acc(const sm__confusion *c, int k)
{
    int64_t n = 0;
    for (int j = 0; j < c->classes; j++) n += c->m[(size_t)k * c->classes + j];
    return n ? 100.0 * (double)c->m[(size_t)k * c->classes + k] / (double)n : NAN;
}

double sm__confusion_mean_acc(const sm__confusion *c)
{
    double sum = 0;
    int n = 0;
    for (int k = 0; k < c->classes; k++) {
        double a = sm__confusion_class_acc(c, k);
        if (!isnan(a)) sum += a, n++;
    }
    return n ? sum / n : NAN;
}

/* "name" of class k, or its index when the reader has no names */
static const char *sm__class_label(const sm_dataset_vtbl *vt, const void *self, int k, char *buf,
                                   size_t n)
{
    /* the model may have more classes than the data (RingMo's NWPU configs: 46 for 45) */
    bool named = vt && vt->class_name && k < vt->num_classes(self);
    const char *s = named ? vt->class_name(self, k) : NULL;
    if (s && *s) return s;
    snprintf(buf, n, "%d", k);
    return buf;
}

void sm__confusion_lowest(const sm__confusion *c, int count, const sm_dataset_vtbl *vt,
                          const void *self, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    bool *used = calloc((size_t)c->classes + 1, sizeof *used);
    if (!used) return;
    for (int r = 0; r < count; r++) {
        int worst = -1;
        double wa = INFINITY;
        for (int k = 0; k < c->classes; k++) {
            double a = sm__confusion_class_acc(c, k);
            if (!used[k] && !isnan(a) && a < wa) worst = k, wa = a;
        }
        if (worst < 0) break;
        used[worst] = true;
        char buf[24];
        int w = snprintf(out + len, n - len, "%s%s %.1f %%", r ? ", " : "",
                         sm__class_label(vt, self, worst, buf, sizeof buf), wa);
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
    free(used);
}

/* A CSV field: quoted (with doubled quotes) when it holds a comma, quote or line break. */
static size_t sm__csv_field(char *out, const char *s)
{
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    size_t len = 0;
    if (quote) out[len++] = '"';
    for (; *s; s++) {
        if (*s == '"') out[len++] = '"';
        out[len++] = *s;
    }
    if (quote) out[len++] = '"';
    return len;
}

char *sm__confusion_csv(const sm__confusion *c, const sm_dataset_vtbl *vt, const void *self)
{
    int K = c->classes;
    /* per cell at most 20 digits and a comma; per label at most twice its length + 3 */
    size_t cap = (size_t)(K + 1) * ((size_t)(K + 1) * 21 + 2) + 64;
    for (int k = 0; k < K; k++) {
        char buf[24];
        cap += 2 * (2 * strlen(sm__class_label(vt, self, k, buf, sizeof buf)) + 3);
    }
    char *t = malloc(cap), buf[24];
    if (!t) return NULL;
    size_t len = (size_t)sprintf(t, "true\\predicted");
    for (int k = 0; k < K; k++) {
        t[len++] = ',';
        len += sm__csv_field(t + len, sm__class_label(vt, self, k, buf, sizeof buf));
    }
    t[len++] = '\n';
    for (int y = 0; y < K; y++) {
        len += sm__csv_field(t + len, sm__class_label(vt, self, y, buf, sizeof buf));
        for (int k = 0; k < K; k++)
            len += (size_t)sprintf(t + len, ",%lld", (long long)c->m[(size_t)y * K + k]);
        t[len++] = '\n';
    }
    t[len] = '\0';
    return t;
}
