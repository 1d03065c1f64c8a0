/* preview.c - see preview.h. */
#include "preview.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "rng.h"

static uint8_t to_u8(float v) {
    v = v * 255.0f;
    return v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)nearbyintf(v);
}

/* one (3, S, S) float tile into the HWC grid at (row r, column c) */
static void put_tile(uint8_t *grid, int gw, const float *t, int S, int r, int c, int gap) {
    int y0 = gap + r * (S + gap), x0 = gap + c * (S + gap);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            for (int ch = 0; ch < 3; ch++)
                grid[((size_t)(y0 + y) * gw + x0 + x) * 3 + ch] = to_u8(t[(size_t)ch * S * S + y * S + x]);
}

int preview_grid(const Dataset *ds, const AugmentConfig *cfg, int images, const uint32_t *rows, uint64_t seed,
                 uint8_t **grid_out, int *gw_out, int *gh_out, uint8_t *views) {
    if ((size_t)images > dataset_size(ds)) images = (int)dataset_size(ds);
    AugmentConfig ac = *cfg;
    ac.normalize = NORMALIZE_NONE; /* a picture shows [0,1] colours */
    for (int c = 0; c < 3; c++) ac.mean[c] = 0, ac.std[c] = 1;
    AugmentConfig plain = ac;
    plain.mode = AUGMENT_NONE;
    int V = ac.views, S = ac.out_size, gap = 2, cols = 1 + V;
    int gw = gap + cols * (S + gap), gh = gap + images * (S + gap);
    uint8_t *grid = sc_alloc((size_t)gw * gh * 3);
    memset(grid, 255, (size_t)gw * gh * 3);
    float *tile = sc_alloc(sizeof(float) * 3 * S * S);
    ImageU8 im = {0};
    int rc = 0;
    for (int i = 0; i < images && !rc; i++) {
        size_t idx = rows ? rows[i] : (size_t)i;
        if ((rc = dataset_image(ds, idx, &im))) break;
        Rng r0 = rng_derive(seed, RNG_STREAM_AUGMENT, 0, (uint64_t)idx, 0);
        augment_view(&im, &plain, &r0, tile);
        put_tile(grid, gw, tile, S, i, 0, gap);
        for (int v = 0; v < V; v++) {
            Rng r = rng_derive(seed, RNG_STREAM_AUGMENT, 0, (uint64_t)idx, (uint64_t)v);
            augment_view(&im, &ac, &r, tile);
            put_tile(grid, gw, tile, S, i, 1 + v, gap);
            if (views) {
                uint8_t *o = views + (((size_t)i * V + v) * S * S) * 3;
                for (int p = 0; p < S * S; p++)
                    for (int ch = 0; ch < 3; ch++) o[p * 3 + ch] = to_u8(tile[(size_t)ch * S * S + p]);
            }
        }
    }
    image_free(&im);
    sc_free(tile);
    if (rc) {
        sc_free(grid);
        return -1;
    }
    *grid_out = grid, *gw_out = gw, *gh_out = gh;
    return 0;
}
