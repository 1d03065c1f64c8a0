/* fuzz_stl10.c - the STL-10 binary folder (stl10_binary/: *_X.bin, *_y.bin, fold_indices.txt,
 * class_names.txt) as `--dataset stl10 --data DIR [--split S] [--fold F]` opens it.
 * Input: byte 0 picks the split and the fold, byte 1 the number of images (1..3) and whether the
 * X files are cut short, then one label byte per image, then the fold file, then (after
 * "\n##\n") class_names.txt. The pixels are filled from the input. */
#include "fuzz_dataset.h"

#define STL_BYTES (3 * 96 * 96)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    static const char *splits[] = {"train", "test", "unlabeled", "train+unlabeled"};
    int fold = (data[0] >> 2) % 12 - 1; /* -1 (whole split) .. 10 (missing) */
    const char *split = splits[data[0] & 3];
    size_t n = 1 + data[1] % 3, cut = (data[1] >> 2) & 3;
    data += 2, size -= 2;
    size_t ny = n < size ? n : size;
    const uint8_t *y = data;
    data += ny, size -= ny;
    const uint8_t *names;
    size_t nnames, nfold = fuzz_split(data, size, &names, &nnames);
    size_t xbytes = n * STL_BYTES - cut * 4000;
    uint8_t *x = malloc(xbytes);
    for (size_t i = 0; i < xbytes; i++) x[i] = (uint8_t)(i * 7 + (size ? data[i % size] : 0));
    fuzz_path("stl10_binary");
    mkdir(fuzz_path("stl10_binary"), 0700);
    fuzz_write("stl10_binary/train_X.bin", x, xbytes);
    fuzz_write("stl10_binary/test_X.bin", x, xbytes);
    fuzz_write("stl10_binary/unlabeled_X.bin", x, xbytes);
    fuzz_write("stl10_binary/train_y.bin", y, ny);
    fuzz_write("stl10_binary/test_y.bin", y, ny);
    fuzz_write("stl10_binary/fold_indices.txt", data, nfold);
    fuzz_write("stl10_binary/class_names.txt", names, nnames);
    free(x);
    DatasetConfig dc;
    dataset_config_default(&dc);
    dc.kind = DATASET_STL10;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", fuzz_path(""));
    dc.path = dir;
    dc.split = split;
    dc.fold = fold;
    fuzz_dataset_use(&dc);
    return 0;
}
