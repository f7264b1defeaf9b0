/* core/io/torch_ckpt.c - PyTorch checkpoints written by torch.save.
 *
 * Zip archive (PyTorch >= 1.6): "<root>/data.pkl" (the pickled object), "<root>/data/<key>" (one
 * entry per storage, raw little-endian), optionally "<root>/byteorder" and "<root>/version".
 * Legacy stream (_use_new_zipfile_serialization=False): five pickles (magic number, protocol
 * version, sys_info, the object, the list of storage keys), then each listed storage as an
 * int64 element count and its bytes.
 *
 * The object is run through the restricted pickle machine (pickle.c). Its persistent ids
 * ('storage', <type>, key, location, numel[, view]) become storage records; the state dict is
 * the top-level dict's 'model' (microsoft/SimMIM), 'state_dict', 'model_state_dict' or 'module'
 * entry, or the top-level dict itself. Each of its tensors is copied out of its storage through
 * its strides and converted (io_internal.h: sm__ckpt_add); everything else is listed as
 * ignored. Storages are read only when a tensor of the state dict needs them, once each. */
#include "base/internal.h"
#include "io/io_internal.h"

#define MAX_PICKLE (256u << 20)
#define MAX_KEY 128

/* ---- storages ------------------------------------------------------------------------------- */

typedef struct storage_data {
    char *key;
    unsigned char *bytes; /* NULL until read */
    uint64_t len;
    size_t uses; /* tensors of the state dict still to copy from it */
} storage_data;

typedef struct reader {
    sm_ckpt *c;
    /* zip */
    sm__zip *zip;
    const char *prefix; /* "<root>/" */
    /* legacy: where each storage's bytes are */
    int fd;
    uint64_t size;
    struct legacy_slot {
        char *key;
        uint64_t offset, len;
    } * slots;
    size_t n_slots;
    /* element types seen per key, to check the records agree and to size legacy storages */
    struct record {
        char *key;
        sm_dtype dtype;
        char *type;
        int64_t numel; /* of the root storage */
    } * records;
    size_t n_records, cap_records;
    bool legacy;
    storage_data *data;
    size_t n_data, cap_data;
} reader;

static void reader_free(reader *r)
{
    for (size_t i = 0; i < r->n_slots; i++) free(r->slots[i].key);
    free(r->slots);
    for (size_t i = 0; i < r->n_records; i++) {
        free(r->records[i].key);
        free(r->records[i].type);
    }
    free(r->records);
    for (size_t i = 0; i < r->n_data; i++) {
        free(r->data[i].key);
        free(r->data[i].bytes);
    }
    free(r->data);
}

static const struct record *find_record(const reader *r, const char *key)
{
    for (size_t i = 0; i < r->n_records; i++)
        if (!strcmp(r->records[i].key, key)) return &r->records[i];
    return NULL;
}

static bool is_str(const sm__pv *v, const char *s)
{
    return v->kind == SM__PK_STR && !strcmp(v->u.str.s, s);
}

/* BINPERSID: ('storage', <storage type>, key, location, numel[, view_metadata]). */
static sm__pv *persid(sm__pickle *pk, const sm__pv *pid, void *arg, sm_error *err)
{
    reader *r = arg;
    size_t want = r->legacy ? 6 : 5;
    if (pid->kind != SM__PK_TUPLE || pid->u.seq.n < want || !is_str(pid->u.seq.v[0], "storage")) {
        sm__pk_fail(pk, err, SM_EFORMAT, "persistent id is not a storage record");
        return NULL;
    }
    sm__pv *const *a = pid->u.seq.v;
    const sm__pv *type = a[1], *key = a[2], *numel = a[4];
    if (type->kind != SM__PK_GLOBAL || type->u.global.what != SM__G_STORAGE_TYPE ||
        key->kind != SM__PK_STR || !key->u.str.n || key->u.str.n > MAX_KEY ||
        strlen(key->u.str.s) != key->u.str.n || strchr(key->u.str.s, '/') ||
        numel->kind != SM__PK_INT || numel->u.i < 0) {
        sm__pk_fail(pk, err, SM_EFORMAT, "malformed storage record (type, key or size)");
        return NULL;
    }
    sm_dtype dt = type->u.global.dtype;
    int64_t view_off = 0, view_n = numel->u.i;
    if (r->legacy && a[5]->kind != SM__PK_NONE) { /* (view key, offset, size) */
        const sm__pv *vm = a[5];
        if (vm->kind != SM__PK_TUPLE || vm->u.seq.n != 3 || vm->u.seq.v[1]->kind != SM__PK_INT ||
            vm->u.seq.v[2]->kind != SM__PK_INT || vm->u.seq.v[1]->u.i < 0 ||
            vm->u.seq.v[2]->u.i < 0 || vm->u.seq.v[1]->u.i > numel->u.i ||
            vm->u.seq.v[2]->u.i > numel->u.i - vm->u.seq.v[1]->u.i) {
            sm__pk_fail(pk, err, SM_EFORMAT, "storage view outside its storage '%s'", key->u.str.s);
            return NULL;
        }
        view_off = vm->u.seq.v[1]->u.i;
        view_n = vm->u.seq.v[2]->u.i;
    }
    char tname[160];
    snprintf(tname, sizeof tname, "%s.%s", type->u.global.module, type->u.global.name);
    const struct record *old = find_record(r, key->u.str.s);
    if (old && (old->dtype != dt || old->numel != numel->u.i)) {
        sm__pk_fail(pk, err, SM_EFORMAT,
                    "storage '%s' recorded twice with different types or "
                    "sizes",
                    key->u.str.s);
        return NULL;
    }
    if (!old) {
        if (sm__grow(&r->records, &r->cap_records, r->n_records + 1, sizeof *r->records))
            goto oom;
        struct record *rec = &r->records[r->n_records];
        rec->key = sm__strdup(key->u.str.s);
        rec->type = sm__strdup(tname);
        if (!rec->key || !rec->type) {
            free(rec->key);
            free(rec->type);
            goto oom;
        }
        rec->dtype = dt;
        rec->numel = numel->u.i;
        r->n_records++;
    }
    sm__pv *s = sm__pk_alloc(pk, SM__PK_STORAGE);
    if (!s || !(s->u.storage.key = sm__strdup(key->u.str.s)) ||
        !(s->u.storage.type = sm__strdup(tname)))
        goto oom;
    s->u.storage.dtype = dt;
    s->u.storage.numel = view_n;
    s->u.storage.view_offset = view_off;
    return s;
oom:
    sm__pk_fail(pk, err, SM_ENOMEM, "out of memory");
    return NULL;
}

/* The bytes of storage `key`, read once. */
static int fetch(reader *r, storage_data *d, const struct record *rec, sm_error *err)
{
    if (d->bytes) return 0;
    size_t es = sm_dtype_size(rec->dtype);
    uint64_t want = (uint64_t)rec->numel * es; /* numel < 2^63 / 16: no overflow */
    sm_ckpt *c = r->c;
    if (!r->legacy) {
        char name[MAX_KEY + 300];
        snprintf(name, sizeof name, "%sdata/%s", r->prefix, d->key);
        const sm__zip_entry *e = sm__zip_find(r->zip, name);
        if (!e)
            return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                                "storage '%s': the archive has no entry '%s'", d->key, name);
        if (e->usize != want)
            return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                                "storage '%s' (%s) holds %llu bytes, its record says %lld "
                                "elements of %s (%llu bytes)",
                                d->key, name, (unsigned long long)e->usize, (long long)rec->numel,
                                sm_dtype_name(rec->dtype), (unsigned long long)want);
        d->len = want;
        return sm__zip_read(r->zip, e, want, &d->bytes, err);
    }
    const struct legacy_slot *slot = NULL;
    for (size_t i = 0; i < r->n_slots && !slot; i++)
        if (!strcmp(r->slots[i].key, d->key)) slot = &r->slots[i];
    if (!slot)
        return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                            "storage '%s' is not in the file's list of storages", d->key);
    if (slot->len != want)
        return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                            "storage '%s' holds %llu bytes, its record says %llu", d->key,
                            (unsigned long long)slot->len, (unsigned long long)want);
    if (!(d->bytes = malloc(want ? (size_t)want : 1)))
        return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
    d->len = want;
    int rc = sm__read_at(r->fd, d->bytes, (size_t)want, slot->offset);
    if (rc)
        return sm_error_set(err, SM_EIO, c->path, 0, 0, NULL, "storage '%s': cannot read: %s",
                            d->key, strerror(-rc));
    return 0;
}

static storage_data *data_slot(reader *r, const char *key)
{
    for (size_t i = 0; i < r->n_data; i++)
        if (!strcmp(r->data[i].key, key)) return &r->data[i];
    if (sm__grow(&r->data, &r->cap_data, r->n_data + 1, sizeof *r->data)) return NULL;
    storage_data *d = &r->data[r->n_data];
    memset(d, 0, sizeof *d);
    if (!(d->key = sm__strdup(key))) return NULL;
    r->n_data++;
    return d;
}

/* ---- tensors -------------------------------------------------------------------------------- */

/* Copies tensor tt (shape, strides, offset over the storage bytes) into a new list entry,
 * converted: out[i] = storage[view_offset + offset + sum_d idx_d * stride_d]. */
static int copy_tensor(reader *r, const char *name, size_t name_len, const sm__pk_tensor *tt,
                       sm_error *err)
{
    sm_ckpt *c = r->c;
    const sm__pk_storage *st = &tt->storage->u.storage;
    if (tt->dtype >= SM_DTYPE_COUNT)
        return sm_error_set(err, SM_EUNSUPPORTED, c->path, 0, 0, NULL,
                            "tensor '%.*s': storage type %s is not supported (float, integer "
                            "and bool tensors are)",
                            (int)SM__MIN(name_len, (size_t)100), name, st->type);
    const struct record *rec = find_record(r, st->key);
    storage_data *d = data_slot(r, st->key);
    if (!rec || !d) return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
    int rc = fetch(r, d, rec, err);
    if (rc) return rc;
    /* bounds again, in bytes of this tensor's dtype (a v3 tensor may view a byte storage) */
    size_t es = sm_dtype_size(tt->dtype), ses = sm_dtype_size(rec->dtype);
    uint64_t base = (uint64_t)st->view_offset * ses, last = 0;
    if (tt->numel > 0) {
        last = (uint64_t)tt->offset;
        for (int k = 0; k < tt->ndim; k++)
            last += (uint64_t)(tt->shape[k] - 1) * (uint64_t)tt->stride[k];
        if (last > (d->len - base) / es || (last + 1) * es > d->len - base)
            return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                                "tensor '%.*s' reaches past the end of storage '%s'",
                                (int)SM__MIN(name_len, (size_t)100), name, st->key);
    }
    sm_ckpt_tensor *t = sm__ckpt_add(c, name, name_len, NULL, tt->dtype, tt->ndim, tt->shape, err);
    if (!t) return err && err->code ? err->code : SM_ENOMEM;
    const unsigned char *src = d->bytes + base;
    int64_t idx[SM_ST_MAX_DIMS] = {0};
    int64_t off = tt->offset;
    for (int64_t i = 0; i < t->numel; i++) {
        const unsigned char *p = src + (uint64_t)off * es;
        if (t->dtype == SM_DTYPE_F32)
            ((float *)t->data)[i] = (float)sm__elem_as_double(tt->dtype, p);
        else if (t->dtype == SM_DTYPE_I64)
            ((int64_t *)t->data)[i] = sm__elem_as_i64(tt->dtype, p);
        else
            ((unsigned char *)t->data)[i] = p[0] != 0;
        for (int k = tt->ndim - 1; k >= 0; k--) { /* next index, row-major */
            off += tt->stride[k];
            if (++idx[k] < tt->shape[k]) break;
            off -= tt->stride[k] * tt->shape[k];
            idx[k] = 0;
        }
    }
    if (d->uses && --d->uses == 0) { /* no other tensor needs this storage */
        free(d->bytes);
        d->bytes = NULL;
    }
    return 0;
}

static bool has_tensor(const sm__pv *d)
{
    for (size_t i = 0; d && d->kind == SM__PK_DICT && i < d->u.dict.n; i++)
        if (d->u.dict.v[i]->kind == SM__PK_TENSOR) return true;
    return false;
}

static void describe_key(const sm__pv *k, char *buf, size_t n)
{
    if (k->kind == SM__PK_STR)
        snprintf(buf, n, "'%.80s'", k->u.str.s);
    else if (k->kind == SM__PK_INT)
        snprintf(buf, n, "%lld", (long long)k->u.i);
    else
        sm__pk_describe(k, buf, n);
}

/* Picks the state dict from the unpickled object and copies its tensors. */
static int take_state_dict(reader *r, const sm__pv *root, sm_error *err)
{
    static const char *const sd_keys[] = {"model", "state_dict", "model_state_dict", "module"};
    sm_ckpt *c = r->c;
    const sm__pv *top = root, *sd = NULL;
    if (top->kind == SM__PK_OBJECT && top->u.obj.items) top = top->u.obj.items; /* dict subclass */
    for (size_t i = 0; i < SM__ARRAY_LEN(sd_keys) && !sd; i++) {
        const sm__pv *v = sm__pk_dict_get(top, sd_keys[i]);
        if (has_tensor(v)) {
            sd = v;
            snprintf(c->where, sizeof c->where, "['%s']", sd_keys[i]);
        }
    }
    if (!sd && has_tensor(top)) {
        sd = top;
        snprintf(c->where, sizeof c->where, "the top level");
    }
    if (!sd) {
        char what[160], keys[400] = "";
        sm__pk_describe(root, what, sizeof what);
        for (size_t i = 0; top->kind == SM__PK_DICT && i < top->u.dict.n && strlen(keys) < 300;
             i++) {
            char k[100];
            describe_key(top->u.dict.k[i], k, sizeof k);
            snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s",
                     i ? ", " : " with keys ", k);
        }
        return sm_error_set(err, SM_EDATA, c->path, 0, 0, NULL,
                            "no state dict: the pickled object is %s%s, and no dict of tensors "
                            "was found in it or under 'model', 'state_dict', 'model_state_dict', "
                            "'module'%s",
                            what, keys,
                            root->kind == SM__PK_OBJECT ? " (a pickled module? save its "
                                                          "state_dict() instead)"
                                                        : "");
    }
    /* what is left out */
    for (size_t i = 0; sd != top && i < top->u.dict.n; i++) {
        if (top->u.dict.v[i] == sd) continue;
        char k[100], v[160];
        describe_key(top->u.dict.k[i], k, sizeof k);
        sm__pk_describe(top->u.dict.v[i], v, sizeof v);
        sm__ckpt_ignore(c, "%s (%s)", k, v);
    }
    /* how many tensors use each storage, so a storage is freed after its last tensor */
    for (size_t i = 0; i < sd->u.dict.n; i++) {
        const sm__pv *v = sd->u.dict.v[i];
        if (v->kind != SM__PK_TENSOR || sd->u.dict.k[i]->kind != SM__PK_STR) continue;
        storage_data *d = data_slot(r, v->u.tensor.storage->u.storage.key);
        if (!d) return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
        d->uses++;
    }
    for (size_t i = 0; i < sd->u.dict.n; i++) {
        const sm__pv *k = sd->u.dict.k[i], *v = sd->u.dict.v[i];
        char kd[100], vd[160];
        describe_key(k, kd, sizeof kd);
        if (k->kind != SM__PK_STR || v->kind != SM__PK_TENSOR) {
            sm__pk_describe(v, vd, sizeof vd);
            sm__ckpt_ignore(c, "%s in the state dict (%s)", kd, vd);
            continue;
        }
        int rc = copy_tensor(r, k->u.str.s, k->u.str.n, &v->u.tensor, err);
        if (rc) return rc;
    }
    return 0;
}

/* ---- the zip archive ------------------------------------------------------------------------ */

int sm__torch_zip_read(sm_ckpt *c, int fd, uint64_t size, sm_error *err)
{
    sm__zip z;
    int rc = sm__zip_open(&z, c->path, fd, size, err);
    if (rc) return rc;
    reader r = {.c = c, .zip = &z, .fd = fd, .size = size};
    char prefix[512] = "";
    const sm__zip_entry *pkl = NULL;
    for (size_t i = 0; i < z.n && !pkl; i++) {
        const char *n = z.e[i].name, *slash = strchr(n, '/');
        if (slash && !strcmp(slash, "/data.pkl") && (size_t)(slash - n) < sizeof prefix - 1) {
            pkl = &z.e[i];
            memcpy(prefix, n, (size_t)(slash - n) + 1);
            prefix[slash - n + 1] = 0;
        }
    }
    char name[600];
    snprintf(name, sizeof name, "%sconstants.pkl", prefix);
    bool script = pkl && sm__zip_find(&z, name);
    unsigned char *bytes = NULL;
    sm__pickle *pk = NULL;
    sm__pv *root = NULL;
    if (!pkl) {
        rc = sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                          "a zip archive without '<name>/data.pkl': not a torch.save file");
    } else if (script) {
        rc = sm_error_set(err, SM_EUNSUPPORTED, c->path, 0, 0, NULL,
                          "a TorchScript archive (torch.jit.save): load it in PyTorch and "
                          "torch.save its state_dict() instead");
    }
    snprintf(name, sizeof name, "%sbyteorder", prefix);
    const sm__zip_entry *bo = rc ? NULL : sm__zip_find(&z, name);
    if (bo && !(rc = sm__zip_read(&z, bo, 64, &bytes, err))) {
        if (bo->usize != 6 || memcmp(bytes, "little", 6))
            rc = sm_error_set(err, SM_EUNSUPPORTED, c->path, 0, 0, NULL,
                              "a big-endian checkpoint ('%s' is not 'little')", name);
        free(bytes);
        bytes = NULL;
    }
    r.prefix = prefix;
    if (!rc) rc = sm__zip_read(&z, pkl, MAX_PICKLE, &bytes, err);
    if (!rc && !(pk = sm__pk_new(c->path, pkl->name)))
        rc = sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
    if (!rc) rc = sm__pk_run(pk, bytes, (size_t)pkl->usize, persid, &r, &root, NULL, err);
    if (!rc) rc = take_state_dict(&r, root, err);
    sm__pk_free(pk);
    free(bytes);
    reader_free(&r);
    sm__zip_close(&z);
    return rc;
}

/* ---- the legacy stream ---------------------------------------------------------------------- */

/* Runs the five pickles from buf, and finds each listed storage's bytes after them. */
static int legacy_pickles(reader *r, sm__pickle *pk, const unsigned char *buf, size_t len,
                          sm__pv **object, sm_error *err)
{
    sm_ckpt *c = r->c;
    size_t at = 0, used = 0;
    sm__pv *v[5];
    for (int i = 0; i < 5; i++) {
        r->legacy = true;
        int rc = sm__pk_run(pk, buf + at, len - at, i == 3 ? persid : NULL, r, &v[i], &used, err);
        if (rc) return rc;
        at += used;
    }
    if (v[1]->kind != SM__PK_INT || v[1]->u.i != 1001)
        return sm_error_set(err, SM_EUNSUPPORTED, c->path, 0, 0, NULL,
                            "legacy torch.save protocol version is not 1001");
    const sm__pv *le = sm__pk_dict_get(v[2], "little_endian");
    if (!le || le->kind != SM__PK_BOOL || !le->u.b)
        return sm_error_set(err, SM_EUNSUPPORTED, c->path, 0, 0, NULL,
                            "a big-endian checkpoint (sys_info little_endian is not True)");
    if (v[4]->kind != SM__PK_LIST)
        return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                            "legacy torch.save: the storage key list is missing");
    *object = v[3];
    /* storage key list -> where each storage's bytes are */
    const sm__pv *keys = v[4];
    uint64_t off = at;
    if (!(r->slots = calloc(keys->u.seq.n ? keys->u.seq.n : 1, sizeof *r->slots)))
        return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
    for (size_t i = 0; i < keys->u.seq.n; i++) {
        const sm__pv *k = keys->u.seq.v[i];
        const struct record *rec = k->kind == SM__PK_STR ? find_record(r, k->u.str.s) : NULL;
        if (!rec)
            return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                                "legacy torch.save: storage list entry %zu has no record", i);
        unsigned char cnt[8];
        if (off > r->size || r->size - off < 8)
            return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                                "legacy torch.save: storage '%s' is missing (truncated file)",
                                k->u.str.s);
        int rc = sm__read_at(r->fd, cnt, 8, off);
        if (rc)
            return sm_error_set(err, SM_EIO, c->path, 0, 0, NULL, "cannot read: %s", strerror(-rc));
        uint64_t n = 0;
        for (int b = 7; b >= 0; b--) n = n << 8 | cnt[b];
        size_t es = rec->dtype < SM_DTYPE_COUNT ? sm_dtype_size(rec->dtype) : 0;
        if (!es)
            return sm_error_set(err, SM_EUNSUPPORTED, c->path, 0, 0, NULL,
                                "legacy torch.save: storage '%s' has type %s, whose element "
                                "size is not known",
                                k->u.str.s, rec->type);
        if (n > (r->size - off - 8) / es)
            return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                                "legacy torch.save: storage '%s' of %llu elements runs past the "
                                "end of the file (truncated?)",
                                k->u.str.s, (unsigned long long)n);
        r->slots[i].key = sm__strdup(k->u.str.s);
        if (!r->slots[i].key)
            return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
        r->slots[i].offset = off + 8;
        r->slots[i].len = n * es;
        r->n_slots = i + 1;
        off += 8 + n * es;
    }
    return 0;
}

int sm__torch_legacy_read(sm_ckpt *c, int fd, uint64_t size, sm_error *err)
{
    reader r = {.c = c, .fd = fd, .size = size, .legacy = true};
    size_t len = (size_t)SM__MIN(size, (uint64_t)(1u << 20));
    int rc;
    for (;;) {
        unsigned char *buf = malloc(len ? len : 1);
        sm__pickle *pk = sm__pk_new(c->path, "pickle");
        sm_error local;
        sm_error_clear(&local);
        sm__pv *object = NULL;
        if (!buf || !pk) {
            rc = sm_error_set(&local, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
        } else if ((rc = sm__read_at(fd, buf, len, 0))) {
            rc =
                sm_error_set(&local, SM_EIO, c->path, 0, 0, NULL, "cannot read: %s", strerror(-rc));
        } else {
            rc = legacy_pickles(&r, pk, buf, len, &object, &local);
            if (!rc) rc = take_state_dict(&r, object, &local);
        }
        bool more = rc && pk && sm__pk_hit_end(pk) && len < size && len < MAX_PICKLE;
        sm__pk_free(pk);
        free(buf);
        if (!more) {
            if (rc && err && !err->code) *err = local;
            break;
        }
        reader_free(&r);
        r = (reader){.c = c, .fd = fd, .size = size, .legacy = true};
        sm__ckpt_clear(c);
        len = (size_t)SM__MIN(SM__MIN(size, (uint64_t)2 * len), (uint64_t)MAX_PICKLE);
    }
    reader_free(&r);
    return rc;
}
