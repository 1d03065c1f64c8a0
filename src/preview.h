/* preview.h - the augmentation preview grid (`simclr augment-preview`, and the image a
 * pretraining run shows in TensorBoard): row i holds image i of the dataset resized to S, then
 * V augmented views of it, drawn from the same streams as the loader's epoch 0
 * (rng_derive(seed, RNG_STREAM_AUGMENT, 0, image index, v)), on a white background with 2-pixel
 * gaps. rows (may be NULL: 0, 1, 2, ...) gives the dataset index of each row.
 *
 *     uint8_t *grid; int gw, gh;
 *     if (preview_grid(ds, &aug, 8, NULL, seed, &grid, &gw, &gh, NULL)) error(sc_error());
 *     image_write_png("grid.png", grid, gw, gh, 3);
 *     sc_free(grid);
 */
#ifndef SIMCLR_PREVIEW_H
#define SIMCLR_PREVIEW_H

#include <stdint.h>

#include "augment.h"
#include "dataset.h"

/* images rows (at most dataset_size), cfg->views views of cfg->out_size pixels; the views are
 * shown without normalisation. grid: (gh, gw, 3) uint8 from sc_alloc. views (may be NULL):
 * (images, V, S, S, 3) uint8. Returns 0 or -1 (an unreadable image). */
int preview_grid(const Dataset *ds, const AugmentConfig *cfg, int images, const uint32_t *rows, uint64_t seed,
                 uint8_t **grid, int *gw, int *gh, uint8_t *views);

#endif
