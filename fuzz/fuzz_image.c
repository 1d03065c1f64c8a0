/* fuzz_image.c - PNG and JPEG decoding (image_decode: libpng / libjpeg-turbo behind our error
 * handling, size limits and channel conversion), as folder datasets read every file. */
#include "fuzz.h"

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ImageU8 im = {0};
    int rc = image_decode(data, size, "fuzz.img", &im);
    fuzz_check(rc);
    if (!rc) {
        if (im.h < 1 || im.w < 1 || (im.c != 1 && im.c != 3) || (size_t)im.h * im.w * im.c > im.cap)
            abort();
        unsigned s = 0; /* every decoded byte is readable */
        for (size_t i = 0; i < (size_t)im.h * im.w * im.c; i++) s += im.px[i];
        (void)s;
    }
    image_free(&im);
    return 0;
}
