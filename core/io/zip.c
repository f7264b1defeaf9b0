/* core/io/zip.c - a zip archive reader for torch.save files (PKWARE APPNOTE 6.3: end of central
 * directory, zip64 records, central directory, local headers). torch.save stores its entries
 * uncompressed; deflated entries (an archive re-packed by another tool) are inflated with zlib.
 * Every size and offset read from the file is checked against the file before it is used, the
 * CRC-32 of every entry read is verified, and an entry is read only when asked for. */
#include "base/internal.h"
#include "io/io_internal.h"

#include <zlib.h>

#define EOCD_SIG 0x06054b50u
#define EOCD64_SIG 0x06064b50u
#define LOC64_SIG 0x07064b50u
#define CDIR_SIG 0x02014b50u
#define LOCAL_SIG 0x04034b50u
#define MAX_ENTRIES (1u << 20)
#define MAX_CDIR (256u << 20)

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p) { return le16(p) | le16(p + 2) << 16; }
static uint64_t le64(const unsigned char *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

static int zfail(const sm__zip *z, sm_error *err, const char *fmt, ...) SM_PRINTF(3, 4);
static int zfail(const sm__zip *z, sm_error *err, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sm_error_set(err, SM_EFORMAT, z->path, 0, 0, NULL, "zip archive: %s", msg);
}

static int zread(const sm__zip *z, void *buf, size_t n, uint64_t off, sm_error *err)
{
    if (off > z->size || n > z->size - off)
        return zfail(z, err, "record at byte %llu runs past the end of the file (truncated?)",
                     (unsigned long long)off);
    int rc = sm__read_at(z->fd, buf, n, off);
    if (rc) return sm_error_set(err, SM_EIO, z->path, 0, 0, NULL, "cannot read: %s", strerror(-rc));
    return 0;
}

/* Finds the end of central directory record: its offset, entry count, directory size and
 * offset (zip64 values when the 32-bit fields are saturated). */
static int find_eocd(sm__zip *z, uint64_t *count, uint64_t *cd_size, uint64_t *cd_off,
                     sm_error *err)
{
    if (z->size < 22)
        return zfail(z, err, "file of %llu bytes has no end record", (unsigned long long)z->size);
    size_t tail = (size_t)SM__MIN(z->size, (uint64_t)(22 + 65535));
    unsigned char *buf = malloc(tail);
    if (!buf) return sm_error_set(err, SM_ENOMEM, z->path, 0, 0, NULL, "out of memory");
    int rc = zread(z, buf, tail, z->size - tail, err);
    size_t at = tail;
    for (size_t i = tail - 22 + 1; !rc && i-- > 0;)
        if (le32(buf + i) == EOCD_SIG && i + 22 + le16(buf + i + 20) == tail) {
            at = i;
            break;
        }
    if (!rc && at == tail)
        rc = zfail(z, err, "no end of central directory record (not a zip file, or truncated)");
    if (rc) {
        free(buf);
        return rc;
    }
    const unsigned char *e = buf + at;
    uint64_t eocd = z->size - tail + at;
    *count = le16(e + 10);
    *cd_size = le32(e + 12);
    *cd_off = le32(e + 16);
    bool multi = le16(e + 4) != 0 || le16(e + 6) != 0;
    bool zip64 = *count == 0xFFFF || *cd_size == 0xFFFFFFFFu || *cd_off == 0xFFFFFFFFu;
    free(buf);
    if (multi) return zfail(z, err, "multi-disk archives are not supported");
    if (!zip64) return 0;
    unsigned char loc[20], rec[56];
    if (eocd < 20 || (rc = zread(z, loc, 20, eocd - 20, err)))
        return rc ? rc : zfail(z, err, "zip64 locator missing");
    if (le32(loc) != LOC64_SIG) return zfail(z, err, "zip64 end record locator missing");
    uint64_t r = le64(loc + 8);
    if ((rc = zread(z, rec, 56, r, err))) return rc;
    if (le32(rec) != EOCD64_SIG)
        return zfail(z, err, "zip64 end record missing at byte %llu", (unsigned long long)r);
    *count = le64(rec + 32);
    *cd_size = le64(rec + 40);
    *cd_off = le64(rec + 48);
    return 0;
}

/* The zip64 extra field of a central directory entry replaces the saturated 32-bit values. */
static int zip64_extra(const sm__zip *z, const unsigned char *x, size_t n, sm__zip_entry *e,
                       bool need_u, bool need_c, bool need_o, sm_error *err)
{
    for (size_t i = 0; i + 4 <= n;) {
        size_t id = le16(x + i), len = le16(x + i + 2);
        if (i + 4 + len > n) break;
        if (id == 1) {
            const unsigned char *p = x + i + 4;
            size_t k = 0;
            if (need_u) {
                if (k + 8 > len) break;
                e->usize = le64(p + k), k += 8;
            }
            if (need_c) {
                if (k + 8 > len) break;
                e->csize = le64(p + k), k += 8;
            }
            if (need_o) {
                if (k + 8 > len) break;
                e->local = le64(p + k);
            }
            return 0;
        }
        i += 4 + len;
    }
    return zfail(z, err, "entry '%s': zip64 sizes missing", e->name);
}

int sm__zip_open(sm__zip *z, const char *path, int fd, uint64_t size, sm_error *err)
{
    memset(z, 0, sizeof *z);
    z->path = path;
    z->fd = fd;
    z->size = size;
    uint64_t count = 0, cd_size = 0, cd_off = 0;
    int rc = find_eocd(z, &count, &cd_size, &cd_off, err);
    if (rc) return rc;
    if (count > MAX_ENTRIES)
        return zfail(z, err, "%llu entries (at most %u)", (unsigned long long)count, MAX_ENTRIES);
    if (cd_size > MAX_CDIR || cd_off > size || cd_size > size - cd_off)
        return zfail(z, err, "central directory (%llu bytes at %llu) outside the file (truncated?)",
                     (unsigned long long)cd_size, (unsigned long long)cd_off);
    unsigned char *cd = malloc(cd_size ? (size_t)cd_size : 1);
    z->e = calloc(count ? (size_t)count : 1, sizeof *z->e);
    if (!cd || !z->e) {
        free(cd);
        return sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
    }
    rc = zread(z, cd, (size_t)cd_size, cd_off, err);
    size_t at = 0;
    for (uint64_t i = 0; !rc && i < count; i++) {
        const unsigned char *p = cd + at;
        if (cd_size - at < 46 || le32(p) != CDIR_SIG) {
            rc = zfail(z, err, "central directory entry %llu is damaged", (unsigned long long)i);
            break;
        }
        size_t nl = le16(p + 28), xl = le16(p + 30), cl = le16(p + 32);
        if (46 + nl + xl + cl > cd_size - at) {
            rc = zfail(z, err, "central directory entry %llu runs past the directory",
                       (unsigned long long)i);
            break;
        }
        sm__zip_entry *e = &z->e[z->n];
        if (memchr(p + 46, 0, nl) || !(e->name = malloc(nl + 1))) {
            rc = e->name ? zfail(z, err, "entry name with a NUL byte")
                         : sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
            break;
        }
        z->n++;
        memcpy(e->name, p + 46, nl);
        e->name[nl] = 0;
        e->flags = le16(p + 8);
        e->method = (int)le16(p + 10);
        e->crc = le32(p + 16);
        e->csize = le32(p + 20);
        e->usize = le32(p + 24);
        e->local = le32(p + 42);
        bool nu = e->usize == 0xFFFFFFFFu, nc = e->csize == 0xFFFFFFFFu,
             no = e->local == 0xFFFFFFFFu;
        if ((nu || nc || no) && (rc = zip64_extra(z, p + 46 + nl, xl, e, nu, nc, no, err))) break;
        if (e->local > size || e->csize > size - e->local)
            rc = zfail(z, err, "entry '%s' (%llu bytes at %llu) lies outside the file (truncated?)",
                       e->name, (unsigned long long)e->csize, (unsigned long long)e->local);
        at += 46 + nl + xl + cl;
    }
    free(cd);
    if (rc) sm__zip_close(z);
    return rc;
}

void sm__zip_close(sm__zip *z)
{
    for (size_t i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

const sm__zip_entry *sm__zip_find(const sm__zip *z, const char *name)
{
    for (size_t i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].name, name)) return &z->e[i];
    return NULL;
}

/* Raw deflate (no zlib header) of src into exactly dst_len bytes. */
static int inflate_all(const unsigned char *src, uint64_t src_len, unsigned char *dst,
                       uint64_t dst_len)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return -1;
    int zr = Z_OK;
    uint64_t in_done = 0, out_done = 0;
    while (zr == Z_OK) {
        uInt in_chunk = (uInt)SM__MIN(src_len - in_done, (uint64_t)(1u << 30));
        uInt out_chunk = (uInt)SM__MIN(dst_len - out_done, (uint64_t)(1u << 30));
        s.next_in = (Bytef *)(src + in_done);
        s.avail_in = in_chunk;
        s.next_out = dst + out_done;
        s.avail_out = out_chunk;
        zr = inflate(&s, Z_NO_FLUSH);
        in_done += in_chunk - s.avail_in;
        out_done += out_chunk - s.avail_out;
        if (zr == Z_OK && in_chunk == s.avail_in && out_chunk == s.avail_out) break; /* stuck */
        if (zr == Z_BUF_ERROR) break;
    }
    inflateEnd(&s);
    return zr == Z_STREAM_END && out_done == dst_len ? 0 : -1;
}

int sm__zip_read(const sm__zip *z, const sm__zip_entry *e, uint64_t max, unsigned char **out,
                 sm_error *err)
{
    *out = NULL;
    if (e->flags & 1) return zfail(z, err, "entry '%s' is encrypted", e->name);
    if (e->method != 0 && e->method != 8)
        return zfail(z, err,
                     "entry '%s' is compressed with method %d (only stored and deflate "
                     "are supported; torch.save stores entries uncompressed)",
                     e->name, e->method);
    if (e->usize > max)
        return zfail(z, err, "entry '%s' is %llu bytes (at most %llu expected)", e->name,
                     (unsigned long long)e->usize, (unsigned long long)max);
    if (e->method == 0 && e->csize != e->usize)
        return zfail(z, err, "stored entry '%s' has different sizes (%llu and %llu)", e->name,
                     (unsigned long long)e->csize, (unsigned long long)e->usize);
    /* deflate expands at most about 1032:1 */
    if (e->method == 8 && e->usize / 1032 > e->csize + 1)
        return zfail(z, err, "entry '%s' claims %llu bytes from %llu compressed bytes", e->name,
                     (unsigned long long)e->usize, (unsigned long long)e->csize);
    unsigned char lh[30];
    int rc = zread(z, lh, 30, e->local, err);
    if (rc) return rc;
    if (le32(lh) != LOCAL_SIG) return zfail(z, err, "entry '%s': local header missing", e->name);
    uint64_t data = e->local + 30 + le16(lh + 26) + le16(lh + 28);
    if (data > z->size || e->csize > z->size - data)
        return zfail(z, err, "entry '%s' runs past the end of the file (truncated?)", e->name);
    unsigned char *raw = malloc(e->csize ? (size_t)e->csize : 1);
    if (!raw)
        return sm_error_set(err, SM_ENOMEM, z->path, 0, 0, NULL,
                            "out of memory (entry '%s', %llu bytes)", e->name,
                            (unsigned long long)e->csize);
    if ((rc = zread(z, raw, (size_t)e->csize, data, err))) {
        free(raw);
        return rc;
    }
    unsigned char *buf = raw;
    if (e->method == 8) {
        buf = malloc(e->usize ? (size_t)e->usize : 1);
        if (!buf || inflate_all(raw, e->csize, buf, e->usize)) {
            free(raw);
            free(buf);
            return buf ? zfail(z, err, "entry '%s': deflate data is damaged", e->name)
                       : sm_error_set(err, SM_ENOMEM, z->path, 0, 0, NULL, "out of memory");
        }
        free(raw);
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t i = 0; i < e->usize; i += 1u << 30)
        crc = crc32(crc, buf + i, (uInt)SM__MIN(e->usize - i, (uint64_t)(1u << 30)));
    if ((uint32_t)crc != e->crc) {
        free(buf);
        return zfail(z, err, "entry '%s': CRC-32 mismatch (the file is damaged)", e->name);
    }
    *out = buf;
    return 0;
}
