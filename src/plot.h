/* plot.h - line charts of a run's metrics, rasterised in C into an RGB buffer.
 *
 * A tiny rasteriser (filled rectangles, thick lines, a built-in 5x7 bitmap font scaled by an
 * integer) is enough for training curves: no dependency beyond the PNG writer (image_write_png
 * of src/image.h), which cmd_plot calls on the buffer.
 *
 *     Metrics m; metrics_read(&m, "runs/x/metrics.jsonl");
 *     Canvas c; plot_metrics(&m, "runs/x", &c);          // 2x2 panels: loss, contrastive
 *     image_write_png("curves.png", c.px, c.w, c.h, 3);  // accuracy, lr, kNN accuracy
 *     canvas_free(&c);
 *
 * Not supported: log axes, anti-aliasing, Unicode (characters outside printable ASCII draw as a
 * box).
 */
#ifndef SIMCLR_PLOT_H
#define SIMCLR_PLOT_H

#include <stdint.h>

#include "runlog.h"

typedef struct {
    uint8_t *px; /* (h, w, 3) row-major RGB */
    int w, h;
} Canvas;

typedef struct {
    uint8_t r, g, b;
} Color;

void canvas_init(Canvas *c, int w, int h, Color bg);
void canvas_free(Canvas *c);
void canvas_rect(Canvas *c, int x0, int y0, int x1, int y1, Color col); /* inclusive, clipped */
void canvas_line(Canvas *c, double x0, double y0, double x1, double y1, int thick, Color col);
/* Draws printable ASCII with the 5x7 font at (x, y) = top-left; each font pixel is scale x
 * scale. Returns the width drawn in pixels. */
int canvas_text(Canvas *c, int x, int y, const char *s, int scale, Color col);
int text_width(const char *s, int scale);
/* 1 when the font has a glyph for ch (printable ASCII). */
int font_has_glyph(int ch);

typedef struct {
    const double *x, *y; /* n points; NaN y values break the line */
    long n;
    Color col;
    const char *label; /* legend text, NULL for none */
    int thick;
    int markers; /* draw a small square at each point (sparse series such as eval points) */
} PlotSeries;

/* One chart in the rectangle (x0, y0, w, h) of the canvas: frame, nice ticks with labels on
 * both axes, the series, a legend, title and x-axis label. An empty chart shows `empty_note`. */
void plot_panel(Canvas *c, int x0, int y0, int w, int h, const char *title, const char *xlabel,
                const PlotSeries *s, int ns, const char *empty_note);

/* Nice tick values for [lo, hi]: about `want` multiples of 1, 2 or 5 x 10^k. Returns the count
 * (at most max) written into ticks. */
int nice_ticks(double lo, double hi, int want, double *ticks, int max);

/* The figure of a run: loss (raw and smoothed), contrastive top-1/top-5, learning rate, kNN
 * accuracy. title may be NULL. Returns 0, or -1 when the metrics hold no training line. */
int plot_metrics(const Metrics *m, const char *title, Canvas *out);

#endif
