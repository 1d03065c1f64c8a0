/* tensorboard.h - TensorBoard event files (what torch.utils.tensorboard.SummaryWriter writes):
 * scalars and PNG images, readable by `tensorboard --logdir RUN/tensorboard`.
 *
 *     TbWriter *tb;
 *     if (tb_open(&tb, "runs/x/tensorboard", -1)) error(sc_error());   // a new events file
 *     tb_scalar(tb, "train/loss", 12, 5.1);
 *     tb_image_png(tb, "augmentations", 0, png, png_bytes, h, w, 3);
 *     tb_close(tb);                                                     // flushes
 *
 * Format: a file DIR/events.out.tfevents.<unix time>.<host>.<pid>.simclr of TFRecords, each
 *     u64le length | u32le masked_crc32c(those 8 bytes) | data | u32le masked_crc32c(data),
 *     masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8, crc32c = CRC-32C (Castagnoli),
 * around Event protobufs (tensorboard/compat/proto/event.proto): the first record is
 * Event{wall_time, file_version "brain.Event:2"}, then Event{wall_time 1, step 2, summary 5:
 * Summary{value 1: {tag 1, simple_value 2 | image 4: {height 1, width 2, colorspace 3,
 * encoded_image_string 4}}}}. tools/tensorboard_event.proto writes those messages out.
 *
 * A new log (keep_upto < 0) removes older events files in DIR (TensorBoard would merge them).
 * Resume (keep_upto >= 0): the newest events file in DIR is kept up to the records whose step
 * is <= keep_upto (a torn record at the end, from a crash, is dropped too), rewritten atomically,
 * and appended to, so a resumed run's log holds each step once, like metrics.jsonl.
 */
#ifndef SIMCLR_TENSORBOARD_H
#define SIMCLR_TENSORBOARD_H

#include <stddef.h>
#include <stdint.h>

typedef struct TbWriter TbWriter;

int tb_open(TbWriter **w, const char *dir, long keep_upto);
int tb_scalar(TbWriter *w, const char *tag, long step, double value);
/* png: an encoded PNG of h x w pixels with c channels (1 grey, 3 RGB, 4 RGBA). */
int tb_image_png(TbWriter *w, const char *tag, long step, const uint8_t *png, size_t n, int h,
                 int wd, int c);
int tb_flush(TbWriter *w);
void tb_close(TbWriter *w);
const char *tb_path(const TbWriter *w);

/* CRC-32C of p (start with crc = 0), and TFRecord's mask of it. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);
uint32_t crc32c_masked(const void *p, size_t n);

#endif
