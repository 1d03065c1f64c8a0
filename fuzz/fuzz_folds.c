/* fuzz_folds.c - fold files (STL-10's fold_indices.txt, linear-eval/knn-eval --fold-indices):
 * dataset_parse_folds. The first two bytes choose the train split's size. */
#include "fuzz.h"

#include "dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t ntr = (size_t)data[0] << 8 | data[1];
    size_t *idx[10], cnt[10];
    int nf = dataset_parse_folds("fuzz_folds.txt", (const char *)data + 2, size - 2, ntr, 10, idx, cnt);
    fuzz_check(nf < 0);
    if (nf == 0 || nf > 10) abort();
    for (int f = 0; f < nf; f++) {
        if (!cnt[f]) abort();
        for (size_t i = 0; i < cnt[f]; i++)
            if (idx[f][i] >= ntr) abort();
        free(idx[f]);
    }
    return 0;
}
