/* fuzz_idx.c - IDX files (MNIST / Fashion-MNIST), raw or gzip: the input is the image file,
 * optionally followed by "\n##\n" and the label file; both are written to disk and opened as
 * `--dataset idx --data IMAGES --labels LABELS` does. */
#include "fuzz_dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *lab;
    size_t nlab, nimg = fuzz_split(data, size, &lab, &nlab);
    DatasetConfig dc;
    dataset_config_default(&dc);
    dc.kind = DATASET_IDX;
    dc.path = fuzz_write("images-idx3-ubyte", data, nimg);
    dc.labels = lab ? fuzz_write("labels-idx1-ubyte", lab, nlab) : NULL;
    fuzz_dataset_use(&dc);
    return 0;
}
