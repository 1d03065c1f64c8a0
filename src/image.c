/* image.c - see image.h. PNG through libpng's progressive-free low-level API (so alpha is
 * dropped exactly like PIL's convert("RGB"), with no compositing or gamma), JPEG through
 * libjpeg-turbo, and PIL's bilinear resampling filter. */
#include "image.h"

#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static size_t max_pixels = IMAGE_MAX_PIXELS_DEFAULT;
void image_set_max_pixels(size_t n) { max_pixels = n ? n : IMAGE_MAX_PIXELS_DEFAULT; }
size_t image_max_pixels(void) { return max_pixels; }

/* The message for an image over the limit, into buf. */
static int too_many_pixels(char *buf, size_t n, unsigned long w, unsigned long h) {
    if ((unsigned long long)w * h <= max_pixels) return 0;
    snprintf(buf, n, "%lux%lu = %llu pixels, more than image.max_pixels %zu (a decompression "
             "bomb?)", w, h, (unsigned long long)w * h, max_pixels);
    return 1;
}

void image_free(ImageU8 *im) {
    free(im->buf);
    memset(im, 0, sizeof *im);
}

uint8_t *image_reserve(ImageU8 *im, size_t n) {
    if (im->cap < n) {
        free(im->buf);
        im->buf = sc_xrealloc(NULL, n);
        im->cap = n;
    }
    im->px = im->buf;
    return im->buf;
}

/* ---- PNG --------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t n, pos;
    char msg[200];
} PngSrc;

static void png_read_mem(png_structp p, png_bytep out, png_size_t len) {
    PngSrc *s = png_get_io_ptr(p);
    if (len > s->n - s->pos) {
        snprintf(s->msg, sizeof s->msg, "truncated PNG data (%zu bytes)", s->n);
        png_error(p, s->msg);
    }
    memcpy(out, s->data + s->pos, len);
    s->pos += len;
}

static void png_err(png_structp p, png_const_charp msg) {
    PngSrc *s = png_get_error_ptr(p);
    if (s->msg != msg) snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}
static void png_warn(png_structp p, png_const_charp msg) { (void)p, (void)msg; }

static int decode_png(const uint8_t *data, size_t n, const char *name, ImageU8 *im) {
    PngSrc src = {data, n, 0, ""};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_err, png_warn);
    if (!p) return sc_error_set("%s: out of memory for PNG decoder", name);
    png_infop info = png_create_info_struct(p);
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(p))) {
        free((void *)rows);
        png_destroy_read_struct(&p, info ? &info : NULL, NULL);
        return sc_error_set("%s: cannot decode PNG: %s", name, src.msg[0] ? src.msg : "error");
    }
    png_set_read_fn(p, &src, png_read_mem);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    int ct = png_get_color_type(p, info), bd = png_get_bit_depth(p, info);
    if (w == 0 || h == 0 || w > 65535 || h > 65535) png_error(p, "image size out of range");
    if (too_many_pixels(src.msg, sizeof src.msg, w, h)) png_error(p, src.msg);
    if (bd == 16) png_set_strip_16(p);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(p);
    if (ct & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    int c = png_get_channels(p, info);
    if (c != 1 && c != 3) png_error(p, "unsupported channel layout");
    uint8_t *px = image_reserve(im, (size_t)w * h * c);
    rows = malloc(sizeof(png_bytep) * h);
    if (!rows) png_error(p, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * w * c;
    png_read_image(p, rows);
    png_read_end(p, NULL);
    free((void *)rows);
    png_destroy_read_struct(&p, &info, NULL);
    im->h = (int)h, im->w = (int)w, im->c = c;
    return 0;
}

/* ---- JPEG -------------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    int truncated;
} JpegErr;

static void jpeg_err_exit(j_common_ptr ci) {
    JpegErr *e = (JpegErr *)ci->err;
    ci->err->format_message(ci, e->msg);
    longjmp(e->jb, 1);
}
static void jpeg_emit(j_common_ptr ci, int level) {
    JpegErr *e = (JpegErr *)ci->err;
    /* A truncated file only raises a warning in libjpeg (it pads with grey); PIL refuses it and
     * so do we. Other warnings (extraneous bytes and the like) are ignored. */
    if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

static int decode_jpeg(const uint8_t *data, size_t n, const char *name, ImageU8 *im) {
    struct jpeg_decompress_struct ci;
    JpegErr err;
    memset(&err, 0, sizeof err);
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_err_exit;
    err.pub.emit_message = jpeg_emit;
    if (setjmp(err.jb)) {
        jpeg_destroy_decompress(&ci);
        return sc_error_set("%s: cannot decode JPEG: %s", name, err.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    if (too_many_pixels(err.msg, sizeof err.msg, ci.image_width, ci.image_height)) {
        jpeg_destroy_decompress(&ci);
        return sc_error_set("%s: cannot decode JPEG: %s", name, err.msg);
    }
    if (ci.num_components == 1) ci.out_color_space = JCS_GRAYSCALE;
    else if (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&ci);
        return sc_error_set("%s: CMYK JPEG is not supported (convert it to RGB)", name);
    } else ci.out_color_space = JCS_RGB;
    jpeg_start_decompress(&ci);
    int w = (int)ci.output_width, h = (int)ci.output_height, c = ci.output_components;
    uint8_t *px = image_reserve(im, (size_t)w * h * c);
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = px + (size_t)ci.output_scanline * w * c;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    if (err.truncated) {
        jpeg_destroy_decompress(&ci);
        return sc_error_set("%s: cannot decode JPEG: file is truncated", name);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    im->h = h, im->w = w, im->c = c;
    return 0;
}

int image_decode(const uint8_t *data, size_t n, const char *name, ImageU8 *im) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && memcmp(data, png_sig, 8) == 0) return decode_png(data, n, name, im);
    if (n >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return decode_jpeg(data, n, name, im);
    return sc_error_set("%s: not a PNG or JPEG file (unknown signature)", name);
}

int image_read(const char *path, ImageU8 *im) {
    char *data;
    size_t n;
    if (sc_read_file(path, &data, &n)) return -1;
    int rc = image_decode((const uint8_t *)data, n, path, im);
    free(data);
    return rc;
}

/* ---- PNG writing ------------------------------------------------------------------------- */

typedef struct {
    char msg[200];
} PngWErr;
static void png_werr(png_structp p, png_const_charp msg) {
    PngWErr *e = png_get_error_ptr(p);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(p, 1);
}

/* PNG of px into f; what = the name for messages. */
static int png_to_stream(FILE *f, const char *what, const uint8_t *px, int w, int h, int c) {
    PngWErr err = {""};
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_werr, png_warn);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    if (!p || !info || setjmp(png_jmpbuf(p))) {
        if (p) png_destroy_write_struct(&p, info ? &info : NULL);
        return sc_error_set("%s: PNG write failed: %s", what, err.msg[0] ? err.msg : "no memory");
    }
    png_init_io(p, f);
    int ct = c == 1 ? PNG_COLOR_TYPE_GRAY : c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, 8, ct, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (int y = 0; y < h; y++) png_write_row(p, (png_const_bytep)(px + (size_t)y * w * c));
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    return 0;
}

int image_write_png(const char *path, const uint8_t *px, int w, int h, int c) {
    if (w <= 0 || h <= 0 || (c != 1 && c != 3 && c != 4))
        return sc_error_set("%s: cannot write a %dx%dx%d PNG", path, h, w, c);
    AtomicFile af;
    if (sc_atomic_open(&af, path)) return -1;
    if (png_to_stream(af.f, path, px, w, h, c)) {
        sc_atomic_abort(&af);
        return -1;
    }
    return sc_atomic_commit(&af);
}

int image_encode_png(const uint8_t *px, int w, int h, int c, uint8_t **out, size_t *n) {
    *out = NULL, *n = 0;
    if (w <= 0 || h <= 0 || (c != 1 && c != 3 && c != 4))
        return sc_error_set("PNG: cannot encode a %dx%dx%d image", h, w, c);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return sc_error_set("PNG: no memory");
    int rc = png_to_stream(f, "PNG", px, w, h, c);
    if (fclose(f) && !rc) rc = sc_error_set("PNG: no memory");
    if (rc) {
        free(buf);
        return -1;
    }
    *out = (uint8_t *)buf, *n = len;
    return 0;
}

/* ---- resampling --------------------------------------------------------------------------
 * -O3 from here on: -O2's "very cheap" vectoriser cost model skips the row loops below. */
#pragma GCC optimize("O3")

static double tri(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* PIL precompute_coeffs for the bilinear filter (support 1), in double. Calls emit(x, xmin,
 * count, weights) for every output sample. */
static int axis_taps(int in, int out) {
    double scale = (double)in / out, fs = scale < 1.0 ? 1.0 : scale;
    int k = (int)ceil(fs) * 2 + 1;
    return k > in ? in : k;
}

void resample_axis_init(ResampleAxis *a, int in, int off, int out, int flip) {
    SC_ASSERT(in >= 1 && out >= 1);
    int taps = axis_taps(in, out);
    if (a->cap_out < out || a->cap_taps < taps) {
        free(a->first);
        free(a->w);
        free(a->wt);
        int co = out > a->cap_out ? out : a->cap_out, ct = taps > a->cap_taps ? taps : a->cap_taps;
        a->first = sc_xrealloc(NULL, sizeof(int) * co);
        a->w = sc_xrealloc(NULL, sizeof(float) * (size_t)co * ct);
        a->wt = sc_xrealloc(NULL, sizeof(float) * (size_t)co * ct);
        a->cap_out = co, a->cap_taps = ct;
    }
    a->out = out, a->taps = taps;
    double scale = (double)in / out, fs = scale < 1.0 ? 1.0 : scale, support = fs, ss = 1.0 / fs;
    double k[256];
    double *kk = taps <= 256 ? k : sc_xrealloc(NULL, sizeof(double) * taps);
    for (int x = 0; x < out; x++) {
        double center = (x + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        if (xmax > taps) xmax = taps; /* cannot happen: ceil(2*support) taps suffice */
        double ww = 0;
        for (int t = 0; t < xmax; t++) ww += kk[t] = tri((t + xmin - center + 0.5) * ss);
        /* shift the window left when it would run past the source, so reads stay in range */
        int first = xmin, lead = 0;
        if (first + taps > in) lead = first + taps - in, first = in - taps;
        int dst = flip ? out - 1 - x : x;
        float *w = a->w + (size_t)dst * taps;
        for (int t = 0; t < taps; t++) {
            int s = t - lead;
            w[t] = (s >= 0 && s < xmax && ww != 0) ? (float)(kk[s] / ww) : 0.0f;
        }
        a->first[dst] = first + off;
    }
    if (kk != k) free(kk);
    a->lo = a->first[0], a->hi = a->first[0] + taps;
    for (int x = 0; x < out; x++) {
        if (a->first[x] < a->lo) a->lo = a->first[x];
        if (a->first[x] + taps > a->hi) a->hi = a->first[x] + taps;
        for (int t = 0; t < taps; t++) a->wt[(size_t)t * out + x] = a->w[(size_t)x * taps + t];
    }
}

void resample_axis_free(ResampleAxis *a) {
    free(a->first);
    free(a->w);
    free(a->wt);
    memset(a, 0, sizeof *a);
}

static void row_span(const ResampleAxis *ay, int *r0, int *r1) { *r0 = ay->lo, *r1 = ay->hi; }

size_t image_resample_tmp_size(const ResampleAxis *ax_y, const ResampleAxis *ax_x, int c) {
    /* horizontal result (c, rows, out) + one deinterleaved source row (c, columns) + x offsets */
    return (size_t)c * (ax_y->hi - ax_y->lo) * ax_x->out + (size_t)c * (ax_x->hi - ax_x->lo) + ax_x->out;
}

/* dst (c, oh, ow) <- src (sh, sw, c) uint8. Horizontal pass into tmp (c, rows, ow), then a
 * vertical pass that runs along contiguous rows (vectorises over x). */
/* o[x] = sum_t wt[t][x] * l[fx[x] + t] / 255 (restrict: the buffers share one scratch block) */
static void gather_taps(float *restrict o, const float *restrict l, const float *restrict wt,
                        const int *restrict fx, int ow, int tx) {
    for (int x = 0; x < ow; x++) o[x] = wt[x] * l[fx[x]];
    for (int t = 1; t < tx; t++) {
        const float *restrict w = wt + (size_t)t * ow, *restrict lt = l + t;
        for (int x = 0; x < ow; x++) o[x] += w[x] * lt[fx[x]];
    }
    for (int x = 0; x < ow; x++) o[x] /= 255.0f; /* exact for one tap of weight 1 */
}

void image_resample_u8(float *dst, const uint8_t *src, int sh, int sw, int c,
                       const ResampleAxis *ay, const ResampleAxis *ax, float *tmp) {
    int r0, r1;
    row_span(ay, &r0, &r1);
    SC_ASSERT(r0 >= 0 && r1 <= sh);
    int rows = r1 - r0, ow = ax->out, oh = ay->out, tx = ax->taps, ty = ay->taps;
    /* horizontal: each source row is deinterleaved into float planes lf (c, ncol), then every
     * tap is one loop along x with gathered loads lf[fx[x] + t] (vectorises with gathers) */
    int ncol = ax->hi - ax->lo;
    float *lf = tmp + (size_t)c * rows * ow;
    int *fx = (int *)(lf + (size_t)c * ncol);
    for (int x = 0; x < ow; x++) fx[x] = ax->first[x] - ax->lo;
    for (int r = 0; r < rows; r++) {
        const uint8_t *line = src + ((size_t)(r0 + r) * sw + ax->lo) * c;
        if (c == 3)
            for (int i = 0; i < ncol; i++)
                lf[i] = line[3 * i], lf[ncol + i] = line[3 * i + 1], lf[2 * ncol + i] = line[3 * i + 2];
        else
            for (int i = 0; i < ncol; i++) lf[i] = line[i];
        for (int ch = 0; ch < c; ch++) {
            gather_taps(tmp + ((size_t)ch * rows + r) * ow, lf + (size_t)ch * ncol, ax->wt, fx, ow, tx);
        }
    }
    for (int ch = 0; ch < c; ch++) {
        const float *tp = tmp + (size_t)ch * rows * ow;
        float *dp = dst + (size_t)ch * oh * ow;
        for (int y = 0; y < oh; y++) {
            const float *w = ay->w + (size_t)y * ty;
            const float *base = tp + (size_t)(ay->first[y] - r0) * ow;
            float *o = dp + (size_t)y * ow;
            for (int x = 0; x < ow; x++) o[x] = w[0] * base[x];
            for (int t = 1; t < ty; t++) {
                float wt = w[t];
                if (wt == 0.0f) continue;
                const float *b = base + (size_t)t * ow;
                for (int x = 0; x < ow; x++) o[x] += wt * b[x];
            }
        }
    }
}

/* Reference: the filter definition evaluated per output pixel in double, 2-D at once. */
static void ref_weights(double *k, int *xmin_out, int *n_out, int in, int out, int x) {
    double scale = (double)in / out, fs = scale < 1.0 ? 1.0 : scale;
    double center = (x + 0.5) * scale;
    int xmin = (int)(center - fs + 0.5), xmax = (int)(center + fs + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmax > in) xmax = in;
    double ww = 0;
    for (int t = xmin; t < xmax; t++) ww += k[t - xmin] = tri((t - center + 0.5) / fs);
    for (int t = xmin; t < xmax; t++) k[t - xmin] /= ww;
    *xmin_out = xmin, *n_out = xmax - xmin;
}

void image_resample_ref(float *dst, int dh, int dw, const float *src, int sh, int sw, int y0,
                        int x0, int ch, int cw) {
    (void)sh;
    double *ky = sc_xrealloc(NULL, sizeof(double) * (ch + 2) * 2 + 64);
    double *kx = sc_xrealloc(NULL, sizeof(double) * (cw + 2) * 2 + 64);
    for (int y = 0; y < dh; y++) {
        int ymin, ny;
        ref_weights(ky, &ymin, &ny, ch, dh, y);
        for (int x = 0; x < dw; x++) {
            int xmin, nx;
            ref_weights(kx, &xmin, &nx, cw, dw, x);
            double s = 0;
            for (int a = 0; a < ny; a++)
                for (int b = 0; b < nx; b++)
                    s += ky[a] * kx[b] * src[(size_t)(y0 + ymin + a) * sw + x0 + xmin + b];
            dst[(size_t)y * dw + x] = (float)s;
        }
    }
    free(ky);
    free(kx);
}
