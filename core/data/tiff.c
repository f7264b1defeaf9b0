/* core/data/tiff.c - TIFF decoding with libtiff (first directory): 8- and 16-bit unsigned
 * samples, any number of bands, strips or tiles, contiguous or separate planes, gray
 * (MinIsBlack/MinIsWhite), RGB, palette and YCbCr (JPEG-compressed) photometrics. Errors are
 * per-file (libtiff's per-handle handlers); libtiff warnings (e.g. unknown GeoTIFF tags) are
 * logged at debug level and do not fail the image. */
#include "data/data_internal.h"

#include <tiffio.h>

typedef struct sm__tiff_io {
    const uint8_t *buf;
    size_t len;
    toff_t pos;
    char msg[512];
    const char *name;
} sm__tiff_io;

static tsize_t sm__tiff_read(thandle_t h, tdata_t dst, tsize_t n)
{
    sm__tiff_io *io = h;
    if (n < 0) return -1;
    size_t avail = io->pos < io->len ? io->len - (size_t)io->pos : 0;
    size_t k = (size_t)n < avail ? (size_t)n : avail;
    memcpy(dst, io->buf + io->pos, k);
    io->pos += k;
    return (tsize_t)k;
}

static tsize_t sm__tiff_write(thandle_t h, tdata_t src, tsize_t n) { (void)h; (void)src; (void)n; return -1; }

static toff_t sm__tiff_seek(thandle_t h, toff_t off, int whence)
{
    sm__tiff_io *io = h;
    toff_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? io->pos : io->len;
    io->pos = base + off;
    return io->pos;
}

static int sm__tiff_close(thandle_t h) { (void)h; return 0; }
static toff_t sm__tiff_size(thandle_t h) { return ((sm__tiff_io *)h)->len; }
static int sm__tiff_map(thandle_t h, tdata_t *base, toff_t *size) { (void)h; (void)base; (void)size; return 0; }
static void sm__tiff_unmap(thandle_t h, tdata_t base, toff_t size) { (void)h; (void)base; (void)size; }

static int sm__tiff_on_error(TIFF *t, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)t;
    sm__tiff_io *io = user;
    if (!io->msg[0]) {
        char m[sizeof io->msg];
        sm__vformat_fit(m, sizeof m, fmt, ap);
        /* libtiff's module is often the file name, which the error names already */
        if (module && io->name && strcmp(module, io->name) == 0) module = NULL;
        sm__format_fit(io->msg, sizeof io->msg, "%s%s%s", module ? module : "", module ? ": " : "",
                       m);
    }
    return 1;
}

static int sm__tiff_on_warning(TIFF *t, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)t;
    (void)module;
    sm__tiff_io *io = user;
    char m[sizeof io->msg];
    sm__vformat_fit(m, sizeof m, fmt, ap);
    sm_log(SM_LOG_DEBUG, "%s: libtiff warning: %s", io->name ? io->name : "tiff", m);
    return 1;
}

static int sm__tiff_fail(sm__tiff_io *io, const char *name, sm_error *err, const char *what)
{
    return sm_error_set(err, SM_EFORMAT, name, 0, 0, NULL, "corrupt TIFF: %s%s%s", what,
                        io->msg[0] ? ": " : "", io->msg);
}

/* Stores one decoded buffer of `rows` x `cols` at (x0, y0): sample s of band `plane` (separate
 * planes) or all bands (contiguous). */
static void sm__tiff_put(sm_image *out, const uint8_t *src, int bits, int spp, int x0, int y0,
                         int cols, int rows, int stride_px, int plane, bool invert,
                         const uint16_t *const cmap[3])
{
    int nb = plane < 0 ? spp : 1;  /* samples per pixel in src */
    int oc = out->channels;
    float maxv = out->max_value;
    for (int y = 0; y < rows && y0 + y < out->height; y++) {
        for (int x = 0; x < cols && x0 + x < out->width; x++) {
            size_t si = ((size_t)y * stride_px + x) * nb;
            float *d = out->data + ((size_t)(y0 + y) * out->width + (x0 + x)) * oc;
            for (int b = 0; b < nb; b++) {
                int band = plane < 0 ? b : plane;
                if (band >= oc && !cmap[0]) continue; /* dropped alpha */
                unsigned v = bits == 16 ? ((const uint16_t *)src)[si + b] : src[si + b];
                if (cmap[0]) {
                    for (int c = 0; c < 3; c++) d[c] = (float)(cmap[c][v] >> 8);
                    continue;
                }
                d[band] = invert ? maxv - (float)v : (float)v;
            }
        }
    }
}

/* What the header says about the pixels, as the readers below need it. */
typedef struct {
    uint32_t w, h;
    uint16_t spp, bits, planar, comp, photo;
    bool invert, palette;
    int nc;               /* channels of the decoded image */
    const uint16_t *cm[3]; /* the colormap of a palette image, else NULLs */
} sm__tiff_layout;

/* Colour interpretation: fills invert/palette/nc/cm and info->color, or fails naming what is not
 * supported. */
static int sm__tiff_color(TIFF *t, sm__tiff_layout *l, const char *name, sm_image_info *info,
                          sm_error *err)
{
    l->nc = l->spp;
    switch (l->photo) {
    case PHOTOMETRIC_MINISWHITE: l->invert = true; /* fall through */
    case PHOTOMETRIC_MINISBLACK: info->color = l->spp == 1 ? "gray" : "multiband"; return 0;
    case PHOTOMETRIC_RGB:
    case PHOTOMETRIC_YCBCR: {
        if (l->spp < 3)
            return sm_error_set(err, SM_EFORMAT, name, 0, 0, NULL, "RGB TIFF with %u samples",
                                l->spp);
        uint16_t nextra = 0, *extra = NULL;
        TIFFGetField(t, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
        bool alpha = l->spp == 4 && nextra == 1 && extra &&
                     (extra[0] == EXTRASAMPLE_ASSOCALPHA || extra[0] == EXTRASAMPLE_UNASSALPHA);
        l->nc = alpha ? 3 : l->spp;
        info->color = alpha ? "rgba" : l->spp == 3 ? "rgb" : "multiband";
        if (l->photo != PHOTOMETRIC_YCBCR) return 0;
        if (l->comp != COMPRESSION_JPEG)
            return sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL,
                                "YCbCr TIFF is supported only with JPEG compression");
        TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
        return 0;
    }
    case PHOTOMETRIC_PALETTE: {
        uint16_t *cmap[3] = {NULL, NULL, NULL};
        if (l->spp != 1 || l->bits != 8 ||
            !TIFFGetField(t, TIFFTAG_COLORMAP, &cmap[0], &cmap[1], &cmap[2]))
            return sm_error_set(err, SM_EFORMAT, name, 0, 0, NULL,
                                "palette TIFF without an 8-bit colormap");
        for (int c = 0; c < 3; c++) l->cm[c] = cmap[c];
        l->palette = true;
        l->nc = 3;
        info->color = "palette";
        return 0;
    }
    default:
        return sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL,
                            "TIFF photometric interpretation %u is not supported (gray, RGB, "
                            "palette, YCbCr/JPEG and multi-band MinIsBlack are)",
                            l->photo);
    }
}

/* Reads the header fields into l and info; refuses sample formats and counts we do not decode. */
static int sm__tiff_header(TIFF *t, sm__tiff_io *io, sm__tiff_layout *l, const char *name,
                           sm_image_info *info, sm_error *err)
{
    uint16_t fmt = SAMPLEFORMAT_UINT;
    *l = (sm__tiff_layout){.spp = 1, .bits = 1, .planar = PLANARCONFIG_CONTIG,
                           .comp = COMPRESSION_NONE};
    if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &l->w) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &l->h))
        return sm__tiff_fail(io, name, err, "no image size");
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &l->spp);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &l->bits);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &l->planar);
    TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &l->comp);
    if (!TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &l->photo))
        l->photo = l->spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    info->format = SM_IMAGE_FORMAT_TIFF;
    info->width = (int)(l->w > INT32_MAX ? INT32_MAX : l->w);
    info->height = (int)(l->h > INT32_MAX ? INT32_MAX : l->h);
    info->bits = l->bits;
    if (fmt != SAMPLEFORMAT_UINT || (l->bits != 8 && l->bits != 16))
        return sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL,
                            "TIFF with %u-bit %s samples (supported: 8- and 16-bit unsigned)",
                            l->bits,
                            fmt == SAMPLEFORMAT_IEEEFP ? "floating-point"
                            : fmt == SAMPLEFORMAT_INT  ? "signed"
                                                       : "unsigned");
    if (l->spp < 1 || l->spp > SM_MAX_BANDS)
        return sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL,
                            "TIFF with %u samples per pixel (supported: 1..%d)", l->spp,
                            SM_MAX_BANDS);
    int rc = sm__tiff_color(t, l, name, info, err);
    if (!rc) info->channels = l->nc;
    return rc;
}

/* Decodes a tiled image through the buffer tb of bsize bytes. */
static int sm__tiff_tiles(TIFF *t, sm__tiff_io *io, const sm__tiff_layout *l, uint8_t *tb,
                          tmsize_t bsize, sm_image *out, const char *name, sm_error *err)
{
    int nplanes = l->planar == PLANARCONFIG_SEPARATE ? l->spp : 1;
    uint32_t tw = 0, th = 0;
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
    if (tw == 0 || th == 0) return sm__tiff_fail(io, name, err, "zero tile size");
    for (int p = 0; p < nplanes; p++)
        for (uint32_t y = 0; y < l->h; y += th)
            for (uint32_t x = 0; x < l->w; x += tw) {
                ttile_t tile = TIFFComputeTile(t, x, y, 0, (uint16_t)p);
                if (TIFFReadEncodedTile(t, tile, tb, bsize) < 0)
                    return sm__tiff_fail(io, name, err, "cannot read a tile");
                sm__tiff_put(out, tb, l->bits, l->spp, (int)x, (int)y, (int)tw, (int)th, (int)tw,
                             nplanes > 1 ? p : -1, l->invert, l->cm);
            }
    return 0;
}

/* Decodes an image in strips through the buffer tb of bsize bytes; a strip shorter than its rows
 * is an error, not zeros. */
static int sm__tiff_strips(TIFF *t, sm__tiff_io *io, const sm__tiff_layout *l, uint8_t *tb,
                           tmsize_t bsize, sm_image *out, const char *name, sm_error *err)
{
    int nplanes = l->planar == PLANARCONFIG_SEPARATE ? l->spp : 1;
    uint32_t rps = 0, h = l->h, w = l->w;
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rps);
    if (rps == 0 || rps > h) rps = h;
    for (int p = 0; p < nplanes; p++)
        for (uint32_t y = 0; y < h; y += rps) {
            tstrip_t s = TIFFComputeStrip(t, y, (uint16_t)p);
            uint32_t nrows = rps < h - y ? rps : h - y;
            tmsize_t need =
                (tmsize_t)nrows * (tmsize_t)w * (nplanes > 1 ? 1 : l->spp) * (l->bits / 8);
            tmsize_t got = TIFFReadEncodedStrip(t, s, tb, bsize);
            if (got < need)
                return sm__tiff_fail(io, name, err,
                                     got < 0 ? "cannot read a strip" : "truncated strip");
            sm__tiff_put(out, tb, l->bits, l->spp, 0, (int)y, (int)w, (int)nrows, (int)w,
                         nplanes > 1 ? p : -1, l->invert, l->cm);
        }
    return 0;
}

/* The header, then (when out is set) the pixels of an open TIFF. */
static int sm__tiff_load(TIFF *t, sm__tiff_io *io, const char *name, const sm_decode_opts *o,
                         sm_image *out, sm_image_info *info, sm_error *err)
{
    sm__tiff_layout l;
    int rc = sm__tiff_header(t, io, &l, name, info, err);
    if (!rc) rc = sm__pixels_check(l.w, l.h, o->max_pixels, name, err);
    if (rc || !out) return rc;
    rc = sm_image_reserve(out, (int)l.w, (int)l.h, l.nc,
                          l.palette || l.bits == 8 ? 255.0f : 65535.0f, o->max_pixels, err);
    if (rc) return rc;
    bool tiled = TIFFIsTiled(t);
    tmsize_t bsize = tiled ? TIFFTileSize(t) : TIFFStripSize(t);
    if (bsize <= 0) return sm__tiff_fail(io, name, err, "bad strip/tile size");
    /* a strip holds at most the whole image; a tile (padded to its grid) may be larger than a
     * small image but not larger than both the image and 256 MiB (a hostile TileWidth asks
     * for gigabytes) */
    uint64_t img = (uint64_t)l.w * l.h * l.spp * (uint64_t)((l.bits + 7) / 8);
    if ((uint64_t)bsize > img && (uint64_t)bsize > ((uint64_t)256 << 20))
        return sm__tiff_fail(io, name, err, "strip/tile size larger than the image");
    uint8_t *tb = malloc((size_t)bsize);
    if (!tb) return sm_error_set(err, SM_ENOMEM, name, 0, 0, NULL, "out of memory");
    rc = tiled ? sm__tiff_tiles(t, io, &l, tb, bsize, out, name, err)
               : sm__tiff_strips(t, io, &l, tb, bsize, out, name, err);
    free(tb);
    return rc;
}

int sm__tiff_decode(const uint8_t *buf, size_t len, const char *name, const sm_decode_opts *o,
                    sm_image *out, sm_image_info *info, sm_error *err)
{
    sm__tiff_io io = {buf, len, 0, "", name};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return sm_error_set(err, SM_ENOMEM, name, 0, 0, NULL, "out of memory");
    TIFFOpenOptionsSetErrorHandlerExtR(opts, sm__tiff_on_error, &io);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, sm__tiff_on_warning, &io);
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)256 << 20);
    TIFF *t = TIFFClientOpenExt(name ? name : "tiff", "rm", &io, sm__tiff_read, sm__tiff_write,
                                sm__tiff_seek, sm__tiff_close, sm__tiff_size, sm__tiff_map,
                                sm__tiff_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!t) return sm__tiff_fail(&io, name, err, "cannot read the header");
    int rc = sm__tiff_load(t, &io, name, o, out, info, err);
    TIFFClose(t);
    return rc;
}
