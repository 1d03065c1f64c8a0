/* plot.c - see plot.h. A deliberately small rasteriser: rectangles, thick lines (a square brush
 * stepped along the segment), and a 5x7 bitmap font drawn here by hand. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- font -------------------------------------------------------------------------------- */
/* Each glyph: 7 rows of 5 columns, '#' = ink, read top to bottom, left to right. */
typedef struct {
    char ch;
    const char *rows; /* 35 characters */
} Glyph;

static const Glyph font[] = {
    {' ', "..................................."},
    {'!', "..#....#....#....#....#.........#.."},
    {'"', ".#.#..#.#.........................."},
    {'#', ".#.#..#.#.#####.#.#.#####.#.#..#.#."},
    {'%', "##...##..#...#...#...#...#..##...##"},
    {'\'', "..#....#..........................."},
    {'(', "...#...#...#....#....#.....#.....#."},
    {')', ".#.....#.....#....#....#...#...#..."},
    {'*', ".......#..#.#.#.###.#.#.#..#......."},
    {'+', ".......#....#..#####..#....#......."},
    {',', "....................##....#...#...."},
    {'-', "...............#####..............."},
    {'.', ".........................##...##..."},
    {'/', "..........#...#...#...#...#........"},
    {'0', ".###.#...##..###.#.###..##...#.###."},
    {'1', "..#...##....#....#....#....#...###."},
    {'2', ".###.#...#....#...#...#...#...#####"},
    {'3', "#####...#...#.....#.....##...#.###."},
    {'4', "...#...##..#.#.#..#.#####...#....#."},
    {'5', "######....####.....#....##...#.###."},
    {'6', "..##..#...#....####.#...##...#.###."},
    {'7', "#####....#...#...#...#....#....#..."},
    {'8', ".###.#...##...#.###.#...##...#.###."},
    {'9', ".###.#...##...#.####....#...#..##.."},
    {':', "......##...##.........##...##......"},
    {';', "......##...##.........##....#...#.."},
    {'<', "...#...#...#...#.....#.....#.....#."},
    {'=', "..........#####.....#####.........."},
    {'>', ".#.....#.....#.....#...#...#...#..."},
    {'?', ".###.#...#....#...#...#.........#.."},
    {'A', ".###.#...##...#######...##...##...#"},
    {'B', "####.#...##...#####.#...##...#####."},
    {'C', ".###.#...##....#....#....#...#.###."},
    {'D', "####.#...##...##...##...##...#####."},
    {'E', "######....#....####.#....#....#####"},
    {'F', "######....#....####.#....#....#...."},
    {'G', ".###.#...##....#.####...##...#.####"},
    {'H', "#...##...##...#######...##...##...#"},
    {'I', ".###...#....#....#....#....#...###."},
    {'J', "..###...#....#....#....#.#..#..##.."},
    {'K', "#...##..#.#.#..##...#.#..#..#.#...#"},
    {'L', "#....#....#....#....#....#....#####"},
    {'M', "#...###.###.#.##.#.##...##...##...#"},
    {'N', "#...##...###..##.#.##..###...##...#"},
    {'O', ".###.#...##...##...##...##...#.###."},
    {'P', "####.#...##...#####.#....#....#...."},
    {'Q', ".###.#...##...##...##.#.##..#..##.#"},
    {'R', "####.#...##...#####.#.#..#..#.#...#"},
    {'S', ".#####....#.....###.....#....#####."},
    {'T', "#####..#....#....#....#....#....#.."},
    {'U', "#...##...##...##...##...##...#.###."},
    {'V', "#...##...##...##...##...#.#.#...#.."},
    {'W', "#...##...##...##.#.##.#.##.#.#.#.#."},
    {'X', "#...##...#.#.#...#...#.#.#...##...#"},
    {'Y', "#...##...#.#.#...#....#....#....#.."},
    {'Z', "#####....#...#...#...#...#....#####"},
    {'[', ".###..#....#....#....#....#....###."},
    {']', ".###....#....#....#....#....#..###."},
    {'_', "..............................#####"},
    {'a', "...........###.....#.#####...#.####"},
    {'b', "#....#....#.##.##..##...##...#####."},
    {'c', "...........###.#....#....#...#.###."},
    {'d', "....#....#.##.##..###...##...#.####"},
    {'e', "...........###.#...#######.....###."},
    {'f', "..##..#..#.#...###...#....#....#..."},
    {'g', "......#####...##...#.####....#.###."},
    {'h', "#....#....#.##.##..##...##...##...#"},
    {'i', "..#........##....#....#....#...###."},
    {'j', "...#........##....#....#.#..#..##.."},
    {'k', "#....#....#..#.#.#..##...#.#..#..#."},
    {'l', ".##....#....#....#....#....#...###."},
    {'m', "..........##.#.#.#.##.#.##...##...#"},
    {'n', "..........#.##.##..##...##...##...#"},
    {'o', "...........###.#...##...##...#.###."},
    {'p', "..........####.#...#####.#....#...."},
    {'q', "...........##.##..##.####....#....#"},
    {'r', "..........#.##.##..##....#....#...."},
    {'s', "...........###.#.....###.....#####."},
    {'t', ".#....#...###..#....#....#..#..##.."},
    {'u', "..........#...##...##...##..##.##.#"},
    {'v', "..........#...##...##...#.#.#...#.."},
    {'w', "..........#...##...##.#.##.#.#.#.#."},
    {'x', "..........#...#.#.#...#...#.#.#...#"},
    {'y', "..........#...##...#.####....#.###."},
    {'z', "..........#####...#...#...#...#####"},
    {'|', "..#....#....#....#....#....#....#.."},
};

static const Glyph *glyph_of(int ch) {
    for (size_t i = 0; i < sizeof font / sizeof *font; i++)
        if (font[i].ch == ch) return &font[i];
    return NULL;
}

int font_has_glyph(int ch) { return glyph_of(ch) != NULL; }

/* ---- canvas ------------------------------------------------------------------------------ */

void canvas_init(Canvas *c, int w, int h, Color bg) {
    c->w = w;
    c->h = h;
    c->px = sc_alloc((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        c->px[3 * i] = bg.r;
        c->px[3 * i + 1] = bg.g;
        c->px[3 * i + 2] = bg.b;
    }
}

void canvas_free(Canvas *c) {
    sc_free(c->px);
    c->px = NULL;
}

void canvas_rect(Canvas *c, int x0, int y0, int x1, int y1, Color col) {
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 >= c->w) x1 = c->w - 1;
    if (y1 >= c->h) y1 = c->h - 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            uint8_t *p = c->px + 3 * ((size_t)y * c->w + x);
            p[0] = col.r;
            p[1] = col.g;
            p[2] = col.b;
        }
}

void canvas_line(Canvas *c, double x0, double y0, double x1, double y1, int thick, Color col) {
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1)) return;
    double dx = x1 - x0, dy = y1 - y0;
    int n = (int)ceil(fmax(fabs(dx), fabs(dy)));
    if (n > 100000) n = 100000; /* far off-canvas points: a bounded amount of work */
    int lo = (thick - 1) / 2, hi = thick / 2;
    for (int i = 0; i <= n; i++) {
        double t = n ? (double)i / n : 0;
        int x = (int)lround(x0 + t * dx), y = (int)lround(y0 + t * dy);
        canvas_rect(c, x - lo, y - lo, x + hi, y + hi, col);
    }
}

int text_width(const char *s, int scale) {
    int n = (int)strlen(s);
    return n ? (n * 6 - 1) * scale : 0;
}

int canvas_text(Canvas *c, int x, int y, const char *s, int scale, Color col) {
    int x_start = x;
    for (; *s; s++) {
        const Glyph *g = glyph_of((unsigned char)*s);
        int dy = *s && strchr("gjpqy", *s) ? scale : 0; /* descenders sit below the baseline */
        for (int r = 0; r < 7; r++)
            for (int k = 0; k < 5; k++) {
                int ink = g ? g->rows[r * 5 + k] == '#' : (r == 0 || r == 6 || k == 0 || k == 4);
                if (ink)
                    canvas_rect(c, x + k * scale, y + dy + r * scale, x + (k + 1) * scale - 1,
                                y + dy + (r + 1) * scale - 1, col);
            }
        x += 6 * scale;
    }
    return x - x_start - (x > x_start ? scale : 0);
}

/* ---- charts ------------------------------------------------------------------------------ */

int nice_ticks(double lo, double hi, int want, double *ticks, int max) {
    if (!(hi > lo) || want < 1) {
        if (max > 0 && isfinite(lo)) {
            ticks[0] = lo;
            return 1;
        }
        return 0;
    }
    double raw = (hi - lo) / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
    int n = 0;
    for (double t = ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9 && n < max; t += step)
        ticks[n++] = fabs(t) < step * 1e-9 ? 0 : t;
    return n;
}

static void format_tick(char *buf, size_t n, double v, double step) {
    double a = fabs(v);
    if (v == 0) snprintf(buf, n, "0");
    else if (a >= 1e5 || step < 1e-2) {
        /* scientific, short: 2.5e-4 */
        int e = (int)floor(log10(a) + 1e-9);
        double mant = v / pow(10, e);
        char m[32];
        snprintf(m, sizeof m, "%.2g", mant);
        snprintf(buf, n, "%se%d", m, e);
    } else {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        if (dec > 6) dec = 6;
        snprintf(buf, n, "%.*f", dec, v);
    }
}

static const Color INK = {40, 40, 40}, GRID = {225, 225, 225}, FRAME = {120, 120, 120};

void plot_panel(Canvas *c, int x0, int y0, int w, int h, const char *title, const char *xlabel,
                const PlotSeries *s, int ns, const char *empty_note) {
    const int S = 2; /* font scale */
    int ml = 84, mr = 26, mt = 34, mb = 46;
    int px0 = x0 + ml, px1 = x0 + w - mr, py0 = y0 + mt, py1 = y0 + h - mb;
    if (title) canvas_text(c, x0 + (w - text_width(title, S)) / 2, y0 + 8, title, S, INK);
    if (xlabel) canvas_text(c, px0 + (px1 - px0 - text_width(xlabel, S)) / 2, py1 + 28, xlabel, S, INK);
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (long i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            xlo = fmin(xlo, s[k].x[i]);
            xhi = fmax(xhi, s[k].x[i]);
            ylo = fmin(ylo, s[k].y[i]);
            yhi = fmax(yhi, s[k].y[i]);
        }
    canvas_rect(c, px0, py0, px1, py1, (Color){255, 255, 255});
    if (!(xhi >= xlo)) {
        const char *note = empty_note ? empty_note : "no data";
        canvas_text(c, px0 + (px1 - px0 - text_width(note, S)) / 2, (py0 + py1) / 2 - 7, note, S, FRAME);
        canvas_rect(c, px0, py0, px1, py0, FRAME);
        canvas_rect(c, px0, py1, px1, py1, FRAME);
        canvas_rect(c, px0, py0, px0, py1, FRAME);
        canvas_rect(c, px1, py0, px1, py1, FRAME);
        return;
    }
    if (xhi == xlo) { xlo -= 1; xhi += 1; }
    if (yhi == ylo) {
        double d = fabs(ylo) > 0 ? fabs(ylo) * 0.1 : 1;
        ylo -= d;
        yhi += d;
    } else {
        double pad = (yhi - ylo) * 0.05;
        ylo -= pad;
        yhi += pad;
    }
    double xt[32], yt[32];
    int nx = nice_ticks(xlo, xhi, 5, xt, 32), ny = nice_ticks(ylo, yhi, 5, yt, 32);
    char buf[64];
    double ystep = ny > 1 ? yt[1] - yt[0] : 1, xstep = nx > 1 ? xt[1] - xt[0] : 1;
#define MAPX(v) (px0 + ((v) - xlo) / (xhi - xlo) * (px1 - px0))
#define MAPY(v) (py1 - ((v) - ylo) / (yhi - ylo) * (py1 - py0))
    for (int i = 0; i < ny; i++) {
        int y = (int)lround(MAPY(yt[i]));
        canvas_rect(c, px0, y, px1, y, GRID);
        canvas_rect(c, px0 - 5, y, px0, y, FRAME);
        format_tick(buf, sizeof buf, yt[i], ystep);
        canvas_text(c, px0 - 8 - text_width(buf, S), y - 7, buf, S, INK);
    }
    for (int i = 0; i < nx; i++) {
        int x = (int)lround(MAPX(xt[i]));
        canvas_rect(c, x, py0, x, py1, GRID);
        canvas_rect(c, x, py1, x, py1 + 5, FRAME);
        format_tick(buf, sizeof buf, xt[i], xstep);
        canvas_text(c, x - text_width(buf, S) / 2, py1 + 9, buf, S, INK);
    }
    for (int k = 0; k < ns; k++) {
        const PlotSeries *q = &s[k];
        int have = 0;
        double lx = 0, ly = 0;
        for (long i = 0; i < q->n; i++) {
            if (!isfinite(q->x[i]) || !isfinite(q->y[i])) {
                have = 0;
                continue;
            }
            double X = MAPX(q->x[i]), Y = MAPY(q->y[i]);
            if (have) canvas_line(c, lx, ly, X, Y, q->thick > 0 ? q->thick : 2, q->col);
            if (q->markers)
                canvas_rect(c, (int)lround(X) - 3, (int)lround(Y) - 3, (int)lround(X) + 3,
                            (int)lround(Y) + 3, q->col);
            lx = X;
            ly = Y;
            have = 1;
        }
    }
#undef MAPX
#undef MAPY
    canvas_rect(c, px0, py0, px1, py0, FRAME);
    canvas_rect(c, px0, py1, px1, py1, FRAME);
    canvas_rect(c, px0, py0, px0, py1, FRAME);
    canvas_rect(c, px1, py0, px1, py1, FRAME);
    /* legend, top right inside the frame */
    int ly = py0 + 8;
    for (int k = 0; k < ns; k++) {
        if (!s[k].label) continue;
        int tw = text_width(s[k].label, S);
        int lx = px1 - 10 - tw;
        canvas_rect(c, lx - 30, ly - 2, px1 - 4, ly + 16, (Color){255, 255, 255});
        canvas_rect(c, lx - 26, ly + 6, lx - 8, ly + 8, s[k].col);
        canvas_text(c, lx, ly, s[k].label, S, INK);
        ly += 20;
    }
}

/* Centred moving average over +-half points (no lag), skipping NaN; a smooth curve over noisy
 * steps. */
static double *smooth(const double *y, long n, long half) {
    double *o = sc_xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *o);
    for (long i = 0; i < n; i++) {
        double sum = 0;
        long cnt = 0;
        for (long j = i - half; j <= i + half; j++)
            if (j >= 0 && j < n && isfinite(y[j])) {
                sum += y[j];
                cnt++;
            }
        o[i] = isfinite(y[i]) && cnt ? sum / cnt : NAN;
    }
    return o;
}

int plot_metrics(const Metrics *m, const char *title, Canvas *out) {
    if (m->n == 0) return sc_error_set("no training steps in the metrics");
    const int W = 1280, H = 880, top = title ? 40 : 0;
    canvas_init(out, W, H + top, (Color){246, 246, 246});
    if (title) canvas_text(out, (W - text_width(title, 3)) / 2, 10, title, 3, INK);
    long half = m->n > 40 ? m->n / 80 + 1 : 0;
    double *loss_s = smooth(m->loss, m->n, half), *t1 = smooth(m->top1, m->n, half),
           *t5 = smooth(m->top5, m->n, half);
    int sm = half > 0;
    Color blue = {31, 100, 200}, light = {170, 195, 235}, orange = {230, 120, 20},
          green = {40, 150, 60}, red = {200, 40, 40};
    PlotSeries loss[2] = {{m->step, m->loss, m->n, light, sm ? "per step" : NULL, 1, 0},
                          {m->step, loss_s, m->n, blue, sm ? "smoothed" : NULL, 2, 0}};
    plot_panel(out, 0, top, W / 2, H / 2, "NT-Xent loss", "step", sm ? loss : loss + 1, sm ? 2 : 1,
               NULL);
    double *p1 = sc_xrealloc(NULL, (size_t)m->n * sizeof(double) + 8),
           *p5 = sc_xrealloc(NULL, (size_t)m->n * sizeof(double) + 8);
    for (long i = 0; i < m->n; i++) {
        p1[i] = 100 * t1[i];
        p5[i] = 100 * t5[i];
    }
    PlotSeries acc[2] = {{m->step, p1, m->n, blue, "top-1", 2, 0},
                         {m->step, p5, m->n, orange, "top-5", 2, 0}};
    plot_panel(out, W / 2, top, W / 2, H / 2, "contrastive accuracy (%)", "step", acc, 2, NULL);
    PlotSeries lr = {m->step, m->lr, m->n, green, NULL, 2, 0};
    plot_panel(out, 0, top + H / 2, W / 2, H / 2, "learning rate", "step", &lr, 1, NULL);
    double *k1 = sc_xrealloc(NULL, (size_t)m->ne * sizeof(double) + 8),
           *k5 = sc_xrealloc(NULL, (size_t)m->ne * sizeof(double) + 8);
    for (long i = 0; i < m->ne; i++) {
        k1[i] = 100 * m->e_top1[i];
        k5[i] = 100 * m->e_top5[i];
    }
    /* the online probe (--online-probe), smoothed like the contrastive accuracy */
    double *pr = m->probe ? smooth(m->probe, m->n, half) : NULL;
    int has_probe = 0;
    for (long i = 0; pr && i < m->n; i++) {
        has_probe |= isfinite(pr[i]);
        pr[i] *= 100;
    }
    PlotSeries knn[3] = {{m->e_step, k1, m->ne, red, has_probe ? "kNN top-1" : "top-1", 2, 1},
                         {m->e_step, k5, m->ne, orange, has_probe ? "kNN top-5" : "top-5", 2, 1},
                         {m->step, pr, m->n, blue, "online probe", 2, 0}};
    plot_panel(out, W / 2, top + H / 2, W / 2, H / 2,
               has_probe ? "kNN and online probe accuracy (%)" : "kNN accuracy (%)", "step", knn,
               has_probe ? 3 : 2, "no kNN evaluation in this run");
    free(pr);
    free(loss_s);
    free(t1);
    free(t5);
    free(p1);
    free(p5);
    free(k1);
    free(k5);
    return 0;
}
