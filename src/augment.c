/* augment.c - see augment.h. Every op works on planar float32 (3, H, W) in [0,1]; the loops
 * are written over contiguous planes (or 256-pixel blocks of them) so the compiler vectorises
 * them. Dimension legend: S output side, hw = S*S pixels per plane, k blur kernel size. */
/* The hot loops are written to vectorise; -O2 uses the "very cheap" vectoriser cost model,
 * which gives up on most of them, so this file asks for -O3 (no fast-math: results stay exact). */
#pragma GCC optimize("O3")
#include "augment.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- configuration ------------------------------------------------------------------------ */

void augment_config_default(AugmentConfig *a) {
    memset(a, 0, sizeof *a);
    a->mode = AUGMENT_SIMCLR;
    a->out_size = 0;
    a->views = 2;
    a->crop_min_scale = 0.08f, a->crop_max_scale = 1.0f;
    a->crop_ratio_min = 3.0f / 4.0f, a->crop_ratio_max = 4.0f / 3.0f;
    a->flip_prob = 0.5f;
    a->jitter_strength = 1.0f, a->jitter_prob = 0.8f;
    a->gray_prob = 0.2f;
    a->blur_prob = 0.5f, a->blur_sigma_min = 0.1f, a->blur_sigma_max = 2.0f;
    a->normalize = NORMALIZE_NONE;
    for (int c = 0; c < 3; c++) a->mean[c] = 0.0f, a->std[c] = 1.0f;
}

int augment_blur_kernel(const AugmentConfig *a) {
    int k = a->blur_kernel;
    if (k <= 0) k = (int)(0.1 * a->out_size) / 2 * 2 + 1; /* int(0.1 S), made odd upwards */
    if (a->out_size > 0 && k / 2 > a->out_size - 1) k = 2 * (a->out_size - 1) + 1; /* reflect */
    return k < 1 ? 1 : k;
}

int augment_config_finish(AugmentConfig *a) {
    if (a->out_size < 1 || a->out_size > 4096)
        return sc_error_set("augment.out_size: expected 1..4096, got %d", a->out_size);
    if (a->views < 1 || a->views > 64) return sc_error_set("augment.views: expected 1..64, got %d", a->views);
    if (!(a->crop_min_scale > 0 && a->crop_min_scale <= a->crop_max_scale))
        return sc_error_set("augment.crop_min_scale/augment.crop_max_scale: expected 0 < min <= max, got %g, %g",
                            a->crop_min_scale, a->crop_max_scale);
    if (!(a->crop_ratio_min > 0 && a->crop_ratio_min <= a->crop_ratio_max))
        return sc_error_set("augment.crop_ratio_min/augment.crop_ratio_max: expected 0 < min <= max, got %g, %g",
                            a->crop_ratio_min, a->crop_ratio_max);
    if (!(a->jitter_strength >= 0 && 0.2f * a->jitter_strength <= 0.5f))
        return sc_error_set("augment.jitter_strength: expected 0..2.5 (hue 0.2*s must be <= 0.5), got %g",
                            a->jitter_strength);
    if (!(a->blur_sigma_min > 0 && a->blur_sigma_min <= a->blur_sigma_max))
        return sc_error_set("augment.blur_sigma_min/augment.blur_sigma_max: expected 0 < min <= max, got %g, %g",
                            a->blur_sigma_min, a->blur_sigma_max);
    if (a->blur_kernel < 0 || (a->blur_kernel > 0 && a->blur_kernel % 2 == 0))
        return sc_error_set("blur kernel: expected an odd size, got %d", a->blur_kernel);
    if (a->normalize == NORMALIZE_IMAGENET) {
        const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
        memcpy(a->mean, m, sizeof m), memcpy(a->std, s, sizeof s);
        a->stats_set = 1;
    } else if (a->normalize == NORMALIZE_NONE) {
        for (int c = 0; c < 3; c++) a->mean[c] = 0.0f, a->std[c] = 1.0f;
    } else if (a->normalize == NORMALIZE_DATASET && a->normalize_stats && *a->normalize_stats) {
        float v[6];
        const char *p = a->normalize_stats;
        for (int k = 0; k < 6; k++) {
            char *end;
            v[k] = strtof(p, &end);
            if (end == p || !isfinite(v[k]) || (k >= 3 && !(v[k] > 0)) ||
                (k < 5 && *end != ',') || (k == 5 && *end))
                return sc_error_set("augment.normalize_stats: expected 6 comma-separated numbers "
                                    "m0,m1,m2,s0,s1,s2 with std > 0, got '%s'",
                                    a->normalize_stats);
            p = end + 1;
        }
        memcpy(a->mean, v, sizeof a->mean);
        memcpy(a->std, v + 3, sizeof a->std);
        a->stats_set = 1;
    }
    return 0;
}

void augment_format_stats(char *buf, size_t n, const float mean[3], const float std[3]) {
    snprintf(buf, n, "%.9g,%.9g,%.9g,%.9g,%.9g,%.9g", mean[0], mean[1], mean[2], std[0], std[1],
             std[2]);
}

/* ---- random resized crop parameters ------------------------------------------------------- */

void augment_crop_fallback(int h, int w, float rmin, float rmax, int *top, int *left, int *ch,
                           int *cw) {
    double in_ratio = (double)w / h;
    int cw_ = w, ch_ = h;
    if (in_ratio < rmin) cw_ = w, ch_ = (int)nearbyint(cw_ / (double)rmin);
    else if (in_ratio > rmax) ch_ = h, cw_ = (int)nearbyint(ch_ * (double)rmax);
    if (ch_ < 1) ch_ = 1;
    if (cw_ < 1) cw_ = 1;
    if (ch_ > h) ch_ = h;
    if (cw_ > w) cw_ = w;
    *ch = ch_, *cw = cw_, *top = (h - ch_) / 2, *left = (w - cw_) / 2;
}

void augment_crop_params(int h, int w, float smin, float smax, float rmin, float rmax, Rng *r,
                         int *top, int *left, int *ch, int *cw) {
    double area = (double)h * w, lr0 = log((double)rmin), lr1 = log((double)rmax);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * rng_range(r, smin, smax);
        double aspect = exp(lr0 + (lr1 - lr0) * rng_uniform_d(r));
        /* Python's round() is round-half-even: nearbyint under the default rounding mode. */
        int cw_ = (int)nearbyint(sqrt(target * aspect));
        int ch_ = (int)nearbyint(sqrt(target / aspect));
        if (cw_ > 0 && cw_ <= w && ch_ > 0 && ch_ <= h) {
            *top = (int)rng_below(r, (uint64_t)(h - ch_ + 1));
            *left = (int)rng_below(r, (uint64_t)(w - cw_ + 1));
            *ch = ch_, *cw = cw_;
            return;
        }
    }
    augment_crop_fallback(h, w, rmin, rmax, top, left, ch, cw);
}

void augment_sample_params(const AugmentConfig *cfg, int h, int w, Rng *r, AugmentParams *p) {
    memset(p, 0, sizeof *p);
    p->brightness = p->contrast = p->saturation = 1.0f;
    p->hue = 0.0f;
    for (int i = 0; i < 4; i++) p->order[i] = i;
    p->kernel = augment_blur_kernel(cfg);
    if (cfg->mode == AUGMENT_NONE) {
        p->crop_h = h, p->crop_w = w;
        return;
    }
    augment_crop_params(h, w, cfg->crop_min_scale, cfg->crop_max_scale, cfg->crop_ratio_min,
                        cfg->crop_ratio_max, r, &p->crop_y, &p->crop_x, &p->crop_h, &p->crop_w);
    p->flip = rng_uniform(r) < cfg->flip_prob;
    p->jitter = rng_uniform(r) < cfg->jitter_prob;
    float s = cfg->jitter_strength;
    if (p->jitter && s > 0) {
        uint32_t perm[4];
        rng_permutation(r, perm, 4, 1);
        for (int i = 0; i < 4; i++) p->order[i] = (int)perm[i];
        float v = 0.8f * s, lo = 1.0f - v < 0 ? 0 : 1.0f - v, hv = 0.2f * s;
        p->brightness = rng_range(r, lo, 1.0f + v);
        p->contrast = rng_range(r, lo, 1.0f + v);
        p->saturation = rng_range(r, lo, 1.0f + v);
        p->hue = rng_range(r, -hv, hv);
    } else p->jitter = 0;
    p->gray = rng_uniform(r) < cfg->gray_prob;
    p->blur = rng_uniform(r) < cfg->blur_prob;
    if (p->blur) p->sigma = rng_range(r, cfg->blur_sigma_min, cfg->blur_sigma_max);
    if (p->blur && cfg->blur_sigma_min == cfg->blur_sigma_max) p->sigma = cfg->blur_sigma_min;
}

/* ---- per-pixel colour ops ----------------------------------------------------------------- */

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }
static inline float gray_of(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

/* The blocks below are the fast path; aug_brightness etc. run them over the whole plane. */
#define BLK 256

static void blk_brightness(float *r, float *g, float *b, int n, float f) {
    for (int i = 0; i < n; i++) {
        r[i] = clamp01(f * r[i]);
        g[i] = clamp01(f * g[i]);
        b[i] = clamp01(f * b[i]);
    }
}

/* torchvision _blend(img, mean, f) = clamp(f*img + (1-f)*mean) */
static void blk_contrast(float *r, float *g, float *b, int n, float f, float mean) {
    float m = (1.0f - f) * mean;
    for (int i = 0; i < n; i++) {
        r[i] = clamp01(f * r[i] + m);
        g[i] = clamp01(f * g[i] + m);
        b[i] = clamp01(f * b[i] + m);
    }
}

static void blk_saturation(float *r, float *g, float *b, int n, float f) {
    float f1 = 1.0f - f;
    for (int i = 0; i < n; i++) {
        float l = f1 * gray_of(r[i], g[i], b[i]);
        r[i] = clamp01(f * r[i] + l);
        g[i] = clamp01(f * g[i] + l);
        b[i] = clamp01(f * b[i] + l);
    }
}

/* torchvision _rgb2hsv -> (h + f) mod 1 -> _hsv2rgb, branch-free so it vectorises. */
static void blk_hue(float *R, float *G, float *B, int n, float hf) {
    for (int i = 0; i < n; i++) {
        float r = R[i], g = G[i], b = B[i];
        float maxc = r > g ? r : g, minc = r < g ? r : g; /* not fmaxf: that one branches */
        maxc = maxc > b ? maxc : b, minc = minc < b ? minc : b;
        int eqc = maxc == minc, isr = maxc == r, isg = maxc == g;
        float cr = maxc - minc;
        float s = cr / (eqc ? 1.0f : maxc);
        float crd = eqc ? 1.0f : cr;
        float icr = 1.0f / crd; /* one division instead of three (torch divides: ~1 ulp) */
        float rc = (maxc - r) * icr, gc = (maxc - g) * icr, bc = (maxc - b) * icr;
        /* bitwise & and | (not && ||): no branches, so the loop vectorises */
        float hr = isr ? bc - gc : 0.0f;
        float hg = (isg & !isr) ? 2.0f + rc - bc : 0.0f;
        float hb = (!isg & !isr) ? 4.0f + gc - rc : 0.0f;
        float h = hr + hg + hb;
        h = h / 6.0f + 1.0f;
        /* floorf/truncf written as int conversions (exact here, |h| < 2): gcc does not
         * vectorise the library calls */
        h = h - (float)(int)h;        /* torch.fmod(h, 1.0) for h >= 0 */
        h = h + hf;
        float fl = (float)(int)h;
        fl -= h < fl ? 1.0f : 0.0f;
        h = h - fl;                   /* torch.remainder(h, 1.0) */
        float v = maxc;
        float h6 = h * 6.0f;
        int ii = (int)h6;             /* h6 >= 0: truncation is floor */
        float fr = h6 - (float)ii;
        ii = ii >= 6 ? ii - 6 : ii; /* i % 6 for i in [0, 6] */
        float p = clamp01(v * (1.0f - s)), q = clamp01(v * (1.0f - s * fr));
        float t = clamp01(v * (1.0f - s * (1.0f - fr)));
        /* (r,g,b) by i: 0 (v,t,p), 1 (q,v,p), 2 (p,v,t), 3 (p,q,v), 4 (t,p,v), 5 (v,p,q) */
        /* 0/1 masks instead of a 6-way select (gcc cannot if-convert that); exact, since
         * x*1 + y*0 == x for finite values */
        float m0 = ii == 0, m1 = ii == 1, m2 = ii == 2, m3 = ii == 3, m4 = ii == 4, m5 = ii == 5;
        float ro = v * (m0 + m5) + q * m1 + t * m4 + p * (m2 + m3);
        float go = v * (m1 + m2) + t * m0 + q * m3 + p * (m4 + m5);
        float bo = v * (m3 + m4) + t * m2 + q * m5 + p * (m0 + m1);
        R[i] = ro, G[i] = go, B[i] = bo;
    }
}

/* Sum of the grey values of a block: 16 float lanes (vectorises; a single running sum would be
 * one long dependency chain), lanes added in a fixed order, blocks accumulated in double. */
static double blk_graysum(const float *r, const float *g, const float *b, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += gray_of(r[i + j], g[i + j], b[i + j]);
    double s = 0;
    for (; i < n; i++) s += gray_of(r[i], g[i], b[i]);
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

typedef struct {
    int op;
    float f, mean;
} JOp;

static void run_ops(float *x, int hw, const JOp *ops, int nops, double *graysum) {
    float *R = x, *G = x + hw, *B = x + 2 * (size_t)hw;
    double sum = 0;
    for (int i0 = 0; i0 < hw; i0 += BLK) {
        int n = hw - i0 < BLK ? hw - i0 : BLK;
        float *r = R + i0, *g = G + i0, *b = B + i0;
        for (int k = 0; k < nops; k++) {
            switch (ops[k].op) {
            case 0: blk_brightness(r, g, b, n, ops[k].f); break;
            case 1: blk_contrast(r, g, b, n, ops[k].f, ops[k].mean); break;
            case 2: blk_saturation(r, g, b, n, ops[k].f); break;
            case 3: blk_hue(r, g, b, n, ops[k].f); break;
            }
        }
        if (graysum) sum += blk_graysum(r, g, b, n);
    }
    if (graysum) *graysum = sum;
}

void aug_brightness(float *x, int hw, float f) { JOp o = {0, f, 0}; run_ops(x, hw, &o, 1, NULL); }
void aug_saturation(float *x, int hw, float f) { JOp o = {2, f, 0}; run_ops(x, hw, &o, 1, NULL); }
void aug_hue(float *x, int hw, float f) { JOp o = {3, f, 0}; run_ops(x, hw, &o, 1, NULL); }
void aug_contrast(float *x, int hw, float f) {
    double s;
    run_ops(x, hw, NULL, 0, &s);
    JOp o = {1, f, (float)(s / hw)};
    run_ops(x, hw, &o, 1, NULL);
}

/* Ops that are the identity for the drawn factor are skipped (exact for inputs in [0,1]).
 * Contrast needs the grey mean of the image as it is at that point: the pending ops are run
 * in a pass that also sums the grey values, and contrast joins the next pass. */
void aug_jitter(float *x, int hw, const int order[4], float b, float c, float s, float h) {
    JOp pend[4] = {{0}};
    int np = 0;
    for (int k = 0; k < 4; k++) {
        int op = order[k];
        float f = op == 0 ? b : op == 1 ? c : op == 2 ? s : h;
        if (op == 3 ? f == 0.0f : f == 1.0f) continue;
        if (op == 1) {
            double sum;
            run_ops(x, hw, pend, np, &sum);
            np = 0;
            pend[np++] = (JOp){1, f, (float)(sum / hw)};
        } else pend[np++] = (JOp){op, f, 0};
    }
    if (np) run_ops(x, hw, pend, np, NULL);
}

void aug_grayscale(float *x, int hw) {
    float *R = x, *G = x + hw, *B = x + 2 * (size_t)hw;
    for (int i = 0; i < hw; i++) {
        float l = gray_of(R[i], G[i], B[i]);
        R[i] = G[i] = B[i] = l;
    }
}

void aug_flip(float *x, int c, int h, int w) {
    for (int p = 0; p < c * h; p++) {
        float *row = x + (size_t)p * w;
        for (int i = 0, j = w - 1; i < j; i++, j--) {
            float t = row[i];
            row[i] = row[j], row[j] = t;
        }
    }
}

void aug_normalize(float *x, int hw, const float mean[3], const float std[3]) {
    for (int c = 0; c < 3; c++) {
        float m = mean[c], is = 1.0f / std[c];
        float *p = x + (size_t)c * hw;
        for (int i = 0; i < hw; i++) p[i] = (p[i] - m) * is;
    }
}

/* ---- Gaussian blur ------------------------------------------------------------------------ */

/* torchvision _get_gaussian_kernel1d: x = linspace(-(k-1)/2, (k-1)/2, k), exp(-x^2/(2 s^2)),
 * normalised to sum 1. */
static void gauss_kernel(float *kern, int k, float sigma) {
    double half = (k - 1) * 0.5, sum = 0, tmp[k];
    for (int i = 0; i < k; i++) {
        double x = -half + i, t = x / sigma;
        sum += tmp[i] = exp(-0.5 * t * t);
    }
    for (int i = 0; i < k; i++) kern[i] = (float)(tmp[i] / sum);
}

static inline int reflect(int i, int n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * n - 2 - i;
    return i;
}

void aug_gaussian_blur(float *x, int c, int h, int w, int k, float sigma, float *tmp) {
    if (k <= 1) return;
    int r = k / 2;
    SC_ASSERT(r < h && r < w);
    float kern[k], pad[w + 2 * r];
    gauss_kernel(kern, k, sigma);
    for (int ch = 0; ch < c; ch++) {
        float *plane = x + (size_t)ch * h * w;
        /* horizontal: plane -> tmp, through a reflect-padded copy of the row so the tap loops
         * run over contiguous memory (vectorised) with no border cases. (Keeping 16-32 outputs
         * in registers across the taps measured no faster than these streaming loops.) */
        for (int y = 0; y < h; y++) {
            const float *row = plane + (size_t)y * w;
            for (int i = 0; i < w; i++) pad[r + i] = row[i];
            for (int j = 1; j <= r; j++) pad[r - j] = row[j], pad[r + w - 1 + j] = row[w - 1 - j];
            float *o = tmp + (size_t)y * w;
            for (int i = 0; i < w; i++) o[i] = kern[0] * pad[i];
            for (int t = 1; t < k; t++) {
                float kt = kern[t];
                const float *src = pad + t;
                for (int i = 0; i < w; i++) o[i] += kt * src[i];
            }
        }
        /* vertical: tmp -> plane, rows combined with reflect indexing, vectorised along x */
        for (int y = 0; y < h; y++) {
            float *o = plane + (size_t)y * w;
            const float *src0 = tmp + (size_t)reflect(y - r, h) * w;
            for (int i = 0; i < w; i++) o[i] = kern[0] * src0[i];
            for (int t = 1; t < k; t++) {
                float kt = kern[t];
                const float *src = tmp + (size_t)reflect(y - r + t, h) * w;
                for (int i = 0; i < w; i++) o[i] += kt * src[i];
            }
        }
    }
}

void aug_gaussian_blur_ref(float *out, const float *x, int c, int h, int w, int k, float sigma) {
    float kern[k > 0 ? k : 1];
    gauss_kernel(kern, k, sigma);
    int r = k / 2;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                double s = 0;
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++)
                        s += (double)kern[a] * kern[b] *
                             x[((size_t)ch * h + reflect(y - r + a, h)) * w + reflect(xx - r + b, w)];
                out[((size_t)ch * h + y) * w + xx] = (float)s;
            }
}

/* ---- the view ----------------------------------------------------------------------------- */

/* Per-thread scratch (resampling tables, a float buffer), freed when its thread exits through a
 * pthread key destructor: the loader's worker threads come and go with each loader. */
typedef struct {
    ResampleAxis ay, ax;
    float *tmp;
    size_t tmp_cap;
    int registered;
} Scratch;
static __thread Scratch tls;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *p) {
    Scratch *s = p;
    resample_axis_free(&s->ay);
    resample_axis_free(&s->ax);
    sc_free(s->tmp);
    memset(s, 0, sizeof *s);
}
static void scratch_key_init(void) { SC_ASSERT(pthread_key_create(&scratch_key, scratch_release) == 0); }
static void scratch_register(void) {
    if (tls.registered) return;
    pthread_once(&scratch_once, scratch_key_init);
    pthread_setspecific(scratch_key, &tls);
    tls.registered = 1;
}

static float *scratch_tmp(size_t n) {
    if (tls.tmp_cap < n) {
        free(tls.tmp);
        tls.tmp = sc_alloc(n * sizeof(float));
        tls.tmp_cap = n;
    }
    return tls.tmp;
}

void augment_apply(const ImageU8 *src, const AugmentConfig *cfg, const AugmentParams *p,
                   float *out) {
    int S = cfg->out_size, hw = S * S, c = src->c;
    SC_ASSERT(S >= 1 && (c == 1 || c == 3));
    SC_ASSERT(p->crop_y >= 0 && p->crop_x >= 0 && p->crop_h >= 1 && p->crop_w >= 1 &&
              p->crop_y + p->crop_h <= src->h && p->crop_x + p->crop_w <= src->w);
    scratch_register();
    resample_axis_init(&tls.ay, p->crop_h, p->crop_y, S, 0);
    resample_axis_init(&tls.ax, p->crop_w, p->crop_x, S, p->flip);
    size_t need = image_resample_tmp_size(&tls.ay, &tls.ax, c);
    if (need < (size_t)hw) need = hw;
    float *tmp = scratch_tmp(need);
    image_resample_u8(out, src->px, src->h, src->w, c, &tls.ay, &tls.ax, tmp);
    if (c == 1) {
        memcpy(out + hw, out, sizeof(float) * hw);
        memcpy(out + 2 * (size_t)hw, out, sizeof(float) * hw);
    }
    if (p->jitter) aug_jitter(out, hw, p->order, p->brightness, p->contrast, p->saturation, p->hue);
    if (p->gray) aug_grayscale(out, hw);
    if (p->blur) aug_gaussian_blur(out, 3, S, S, p->kernel, p->sigma, tmp);
    if (cfg->normalize != NORMALIZE_NONE) aug_normalize(out, hw, cfg->mean, cfg->std);
}

void augment_view(const ImageU8 *src, const AugmentConfig *cfg, Rng *r, float *out) {
    AugmentParams p;
    augment_sample_params(cfg, src->h, src->w, r, &p);
    augment_apply(src, cfg, &p, out);
}
