/* fuzz_cifar.c - the CIFAR-10 binary folder (cifar-10-batches-bin/test_batch.bin: records of a
 * label byte and 3x32x32 pixels, batches.meta.txt) as `--dataset cifar10 --split test` opens it.
 * Input: byte 0 gives the number of records (1..4) and whether the file is cut short, then one
 * label byte per record, then the pixel bytes (repeated to fill), then (after "\n##\n")
 * batches.meta.txt. */
#include "fuzz_dataset.h"

#define CIFAR_BYTES 3073

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t n = 1 + data[0] % 4, cut = (data[0] >> 2) & 3;
    data++, size--;
    const uint8_t *names;
    size_t nnames;
    size = fuzz_split(data, size, &names, &nnames);
    size_t bytes = n * CIFAR_BYTES - cut * 1000;
    uint8_t *f = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) f[i] = (uint8_t)(i * 13 + (size > n ? data[n + i % (size - n)] : 0));
    for (size_t r = 0; r < n && r < size; r++)
        if (r * CIFAR_BYTES < bytes) f[r * CIFAR_BYTES] = data[r];
    mkdir(fuzz_path("cifar-10-batches-bin"), 0700);
    fuzz_write("cifar-10-batches-bin/test_batch.bin", f, bytes);
    fuzz_write("cifar-10-batches-bin/batches.meta.txt", names, nnames);
    free(f);
    DatasetConfig dc;
    dataset_config_default(&dc);
    dc.kind = DATASET_CIFAR10;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", fuzz_path(""));
    dc.path = dir;
    dc.split = "test";
    fuzz_dataset_use(&dc);
    return 0;
}
