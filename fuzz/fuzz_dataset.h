/* fuzz_dataset.h - what the dataset harnesses do with a dataset they could open: read images
 * (the first few and the last) and the channel statistics, as training and --normalize do. */
#ifndef SIMCLR_FUZZ_DATASET_H
#define SIMCLR_FUZZ_DATASET_H

#include "dataset.h"
#include "fuzz.h"

static inline void fuzz_dataset_use(const DatasetConfig *dc) {
    Dataset *ds;
    int rc = dataset_open(&ds, dc);
    fuzz_check(rc);
    if (rc) return;
    size_t n = dataset_size(ds);
    int K = dataset_num_classes(ds);
    ImageU8 im = {0};
    for (size_t i = 0; i < n; i += i < 4 ? 1 : n) {
        size_t j = i < 4 ? i : n - 1;
        fuzz_check(dataset_image(ds, j, &im));
        int l = dataset_label(ds, j);
        if (l < -1 || (K > 0 && l >= K)) abort(); /* labels inside the class count */
    }
    for (int k = 0; k < K && k < 16; k++) (void)dataset_class_name(ds, k);
    float mean[3], std[3];
    fuzz_check(dataset_channel_stats(ds, 4, mean, std));
    image_free(&im);
    dataset_close(ds);
}

#endif
