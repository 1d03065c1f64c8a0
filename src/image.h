/* image.h - decoding (PNG via libpng, JPEG via libjpeg-turbo), PNG writing, and the float
 * resampling kernel the augmentations use.
 *
 *     ImageU8 im = {0};
 *     if (image_read("cat.jpg", &im)) sc_fatal("%s", sc_error());   // im.c is 1 or 3
 *     image_write_png("out.png", im.px, im.w, im.h, im.c);          // atomic
 *     image_free(&im);
 *
 * Decoding: 8-bit gray, gray+alpha, RGB, RGBA, palette, 16-bit PNG and gray/RGB/CMYK-less JPEG.
 * Alpha is dropped (as PIL's convert("RGB") does), 16-bit samples keep their high byte, palette
 * and low-bit-depth PNGs are expanded. Output is HWC uint8 with c = 1 (gray) or 3 (RGB).
 *
 * Resampling (image_resample_*): PIL's BILINEAR "resample" algorithm (ImagingResample), which
 * antialiases when downscaling: triangle filter with support max(1, scale), centres at
 * (x + 0.5) * scale, taps clipped to the source and renormalised. Upscaling reduces to plain
 * bilinear with align_corners=False and edge clamping. torch's
 * interpolate(mode="bilinear", antialias=True) implements the same algorithm on floats, which
 * is what the fixtures compare against (see doc/data.md).
 */
#ifndef SIMCLR_IMAGE_H
#define SIMCLR_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* HWC uint8 image, c = 1 or 3. px either points into storage owned by someone else (a dataset's
 * memory map) or into buf, which this struct owns (grown as needed, freed by image_free).
 * Zero-initialise before first use. */
typedef struct {
    int h, w, c;
    uint8_t *px;
    uint8_t *buf;
    size_t cap;
} ImageU8;

void image_free(ImageU8 *im);
/* Makes im->buf at least n bytes and points im->px at it. */
uint8_t *image_reserve(ImageU8 *im, size_t n);

/* Decoding refuses images declaring more than this many pixels (width x height) before any
 * pixel memory is allocated: a 4 MB PNG or a 700-byte JPEG can declare 40000 x 40000. The
 * default is PIL's Image.MAX_IMAGE_PIXELS (89478485, about 0.25 GiB of RGB). Process-wide: set
 * it before decoding starts (dataset_open does, from --max-image-pixels). */
#define IMAGE_MAX_PIXELS_DEFAULT 89478485
void image_set_max_pixels(size_t n);
size_t image_max_pixels(void);

/* Decodes a PNG or JPEG file (detected by content, not by name) into im (im->buf). */
int image_read(const char *path, ImageU8 *im);
/* Decodes from memory; `name` is only used in error messages. */
int image_decode(const uint8_t *data, size_t n, const char *name, ImageU8 *im);

/* Writes 8-bit PNG (c = 1 gray, 3 RGB, 4 RGBA) atomically. px is (h, w, c) row-major. */
int image_write_png(const char *path, const uint8_t *px, int w, int h, int c);
/* The same PNG in memory: *out (malloc'ed, the caller frees) of *n bytes. */
int image_encode_png(const uint8_t *px, int w, int h, int c, uint8_t **out, size_t *n);

/* ---- resampling --------------------------------------------------------------------------
 * One axis of a resize from `in` source samples (starting at source offset `off`) to `out`
 * samples: out[x] = sum_k w[x*taps + k] * in[off + first[x] + k]. first[] is relative to the
 * whole source line (off already added). flip != 0 mirrors the output (out[x] <- out[out-1-x]),
 * which lets a horizontal flip ride along for free. */
typedef struct {
    int out, taps;
    int *first;  /* (out) */
    float *w;    /* (out, taps) */
    float *wt;   /* (taps, out): the same weights transposed, for loops that run along x */
    int lo, hi;  /* source range read: [lo, hi) (offset included) */
    int cap_out, cap_taps;
} ResampleAxis;

void resample_axis_init(ResampleAxis *a, int in, int off, int out, int flip);
void resample_axis_free(ResampleAxis *a);

/* Crop + resize straight from uint8: src is an HWC image (c = 1 or 3); dst gets float planes
 * (c, ax_y->out, ax_x->out) scaled to [0,1]. ax_y/ax_x were built with the crop offsets. tmp
 * must hold image_resample_tmp_size floats. Horizontal pass first, as PIL does. */
size_t image_resample_tmp_size(const ResampleAxis *ax_y, const ResampleAxis *ax_x, int c);
void image_resample_u8(float *dst, const uint8_t *src, int sh, int sw, int c,
                       const ResampleAxis *ax_y, const ResampleAxis *ax_x, float *tmp);
/* Naive reference: resize one float plane directly from the filter definition (no tables). */
void image_resample_ref(float *dst, int dh, int dw, const float *src, int sh, int sw, int y0,
                        int x0, int ch, int cw);

#endif
