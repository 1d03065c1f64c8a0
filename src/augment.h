/* augment.h - the SimCLR augmentations (Chen et al. 2020, Appendix A) on one float image.
 *
 *     AugmentConfig a;
 *     augment_config_default(&a);          // paper defaults, views 2, blur p 0.5
 *     a.out_size = 96;                     // from --image-size (model options)
 *     Rng r = rng_derive(seed, RNG_STREAM_AUGMENT, epoch, image_index, view);
 *     float out[3 * 96 * 96];
 *     augment_view(&img, &a, &r, out);     // (3, S, S) float, [0,1] unless normalised
 *
 * Pipeline (torchvision's order): RandomResizedCrop(S, scale, ratio) with PIL-style antialiased
 * bilinear resampling -> RandomHorizontalFlip(p) -> RandomApply(ColorJitter(0.8s, 0.8s, 0.8s,
 * 0.2s), p) with a new random op order per view -> RandomGrayscale(p) -> RandomApply(
 * GaussianBlur(k = 10% of S made odd, sigma U[min,max]), p) -> Normalize (optional).
 * The whole chain runs on one float32 image in [0,1]; nothing is rounded to uint8 in between.
 * The ops follow torchvision's *tensor* formulas (functional_tensor.py), see doc/data.md for
 * how far that is from its uint8 PIL path.
 *
 * Random draws, in this order, all from the view's Rng: crop (per attempt: area, log-aspect,
 * then top, left when it fits), flip, jitter apply, jitter order (Fisher-Yates of 4), brightness,
 * contrast, saturation, hue factors (only those enabled), grayscale, blur apply, sigma.
 */
#ifndef SIMCLR_AUGMENT_H
#define SIMCLR_AUGMENT_H

#include "image.h"
#include "rng.h"

enum { AUGMENT_SIMCLR = 0, AUGMENT_NONE = 1 };
enum { NORMALIZE_NONE = 0, NORMALIZE_IMAGENET = 1, NORMALIZE_DATASET = 2 };

typedef struct {
    int mode;          /* --augment simclr|none */
    int out_size;      /* S: set by the caller from --image-size */
    int views;         /* --views, V views per image (loader and preview) */
    float crop_min_scale, crop_max_scale, crop_ratio_min, crop_ratio_max;
    float flip_prob;
    float jitter_strength, jitter_prob;
    float gray_prob;
    float blur_prob, blur_sigma_min, blur_sigma_max;
    int blur_kernel;   /* 0: int(0.1 * S) made odd (SimCLR); else this odd size */
    int normalize;     /* NORMALIZE_* */
    float mean[3], std[3]; /* per channel; filled for imagenet by augment_config_finish, for
                              dataset from normalize_stats or by the loader
                              (dataset_channel_stats) unless stats_set */
    int stats_set;
    const char *normalize_stats; /* --normalize-stats "m0,m1,m2,s0,s1,s2" or NULL */
} AugmentConfig;

void augment_config_default(AugmentConfig *a);
/* Checks ranges (names the option on error) and fills derived fields. Call after parsing. */
int augment_config_finish(AugmentConfig *a);
/* Formats mean/std as the --normalize-stats value ("m0,m1,m2,s0,s1,s2", round-trip exact). */
void augment_format_stats(char *buf, size_t n, const float mean[3], const float std[3]);
/* The Gaussian kernel size used for output size S. */
int augment_blur_kernel(const AugmentConfig *a);


/* One view: src (any size, c = 1 or 3) -> out (3, S, S) float. Thread-safe (per-thread scratch,
 * allocated once per thread and size). */
void augment_view(const ImageU8 *src, const AugmentConfig *cfg, Rng *r, float *out);

/* ---- the pieces, with explicit parameters (tests, preview, benchmarks) ---------------------- */
typedef struct {
    int crop_y, crop_x, crop_h, crop_w; /* region of the source */
    int flip;
    int jitter;                          /* colour jitter applied */
    int order[4];                        /* 0 brightness, 1 contrast, 2 saturation, 3 hue */
    float brightness, contrast, saturation, hue; /* factors; 1,1,1,0 = identity */
    int gray;
    int blur;
    float sigma;
    int kernel;
} AugmentParams;

/* Draws every random decision of one view (simclr mode) from r. */
void augment_sample_params(const AugmentConfig *cfg, int h, int w, Rng *r, AugmentParams *p);
/* Applies explicit parameters: the deterministic half of augment_view. */
void augment_apply(const ImageU8 *src, const AugmentConfig *cfg, const AugmentParams *p,
                   float *out);

/* torchvision RandomResizedCrop.get_params: 10 attempts, then the centre-crop fallback. */
void augment_crop_params(int h, int w, float smin, float smax, float rmin, float rmax, Rng *r,
                         int *top, int *left, int *ch, int *cw);
/* The fallback alone (deterministic), used when all attempts fail. */
void augment_crop_fallback(int h, int w, float rmin, float rmax, int *top, int *left, int *ch,
                           int *cw);

/* In-place ops on float planes x (3, H, W) with hw = H*W pixels per plane. */
void aug_flip(float *x, int c, int h, int w);
void aug_brightness(float *x, int hw, float f);
void aug_contrast(float *x, int hw, float f);
void aug_saturation(float *x, int hw, float f);
void aug_hue(float *x, int hw, float f);
/* Colour jitter in the given order, fused block-wise (at most two passes over the image). */
void aug_jitter(float *x, int hw, const int order[4], float b, float c, float s, float h);
void aug_grayscale(float *x, int hw);
/* Separable Gaussian blur, kernel k (odd), reflect padding; tmp holds h*w floats. */
void aug_gaussian_blur(float *x, int c, int h, int w, int k, float sigma, float *tmp);
/* Naive reference: the 2-D kernel ky (x) kx applied directly with reflect indexing. */
void aug_gaussian_blur_ref(float *out, const float *x, int c, int h, int w, int k, float sigma);
void aug_normalize(float *x, int hw, const float mean[3], const float std[3]);

#endif
