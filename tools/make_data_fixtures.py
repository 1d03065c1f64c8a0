#!/usr/bin/python3
"""Writes the reference fixtures of the data module into tests/fixtures/data/.

Run with Debian's interpreter (torch 1.13, torchvision 0.14, PIL 9.4):
    /usr/bin/python3 tools/make_data_fixtures.py
Everything is deterministic (no torch RNG is used: each op gets explicit parameters), so the
files only change when torchvision does. The C tests (tests/test_augment.c, test_dataset.c)
read them; their tolerances are documented there and in doc/data.md.
"""
import os
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "data")
CHINA = "/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg"


def save(name, arr):
    np.save(os.path.join(OUT, name), arr)


def to_float(pil):  # HWC uint8 PIL -> (C,H,W) float32 in [0,1]
    return torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    # ---- source image: a natural 40x52 crop of china.jpg, downscaled with PIL -------------------
    china = Image.open(CHINA).convert("RGB")
    src_pil = china.crop((200, 120, 460, 320)).resize((52, 40), Image.BILINEAR)
    src = np.asarray(src_pil, dtype=np.uint8)
    save("src.npy", src)  # (40, 52, 3) uint8
    x = to_float(src_pil)  # (3, 40, 52)

    # ---- resized crop: (top, left, h, w, S) --------------------------------------------------
    cases = np.array([[5, 7, 30, 25, 32],    # upscale both axes
                      [0, 0, 40, 52, 20],    # downscale both (antialias matters)
                      [3, 10, 33, 17, 24],   # down vertically, up horizontally
                      [0, 0, 40, 52, 13],    # strong downscale, non-integer factor
                      [11, 2, 7, 9, 9]],     # tiny crop, upscale
                     dtype=np.int32)
    save("rrc_params.npy", cases)
    for k, (t, l, h, w, s) in enumerate(cases.tolist()):
        aa = F.resized_crop(x, t, l, h, w, [s, s], antialias=True)
        save(f"rrc{k}_tensor_aa.npy", aa.numpy().astype(np.float32))
        pil = F.resized_crop(src_pil, t, l, h, w, [s, s])
        save(f"rrc{k}_pil.npy", np.asarray(pil, dtype=np.uint8))
    # a gray source for the 1-channel path
    gray_pil = src_pil.convert("L")
    save("src_gray.npy", np.asarray(gray_pil, dtype=np.uint8))
    save("rrc_gray_pil.npy", np.asarray(F.resized_crop(gray_pil, 4, 6, 30, 40, [24, 24]), dtype=np.uint8))

    # ---- colour ops on the float tensor (torchvision's tensor formulas) ------------------------
    ops = {
        "brightness": [1.3, 0.6],
        "contrast": [0.5, 1.4],
        "saturation": [0.3, 1.7],
        "hue": [0.1, -0.17, 0.45],
    }
    fn = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast,
          "saturation": F.adjust_saturation, "hue": F.adjust_hue}
    for name, factors in ops.items():
        outs, pils = [], []
        for f in factors:
            outs.append(fn[name](x, f).numpy())
            pils.append(np.asarray(fn[name](src_pil, f), dtype=np.uint8))
        save(f"{name}_factors.npy", np.array(factors, dtype=np.float32))
        save(f"{name}_tensor.npy", np.stack(outs).astype(np.float32))  # (K, 3, H, W)
        save(f"{name}_pil.npy", np.stack(pils))                        # (K, H, W, 3) uint8
    # jitter in an explicit order (0 brightness, 1 contrast, 2 saturation, 3 hue)
    order, b, c, s, h = [2, 0, 3, 1], 1.2, 0.7, 1.4, 0.08
    y = x.clone()
    for o in order:
        y = [lambda z: F.adjust_brightness(z, b), lambda z: F.adjust_contrast(z, c),
             lambda z: F.adjust_saturation(z, s), lambda z: F.adjust_hue(z, h)][o](y)
    save("jitter_params.npy", np.array(order + [b, c, s, h], dtype=np.float32))
    save("jitter_tensor.npy", y.numpy().astype(np.float32))
    save("gray_tensor.npy", F.rgb_to_grayscale(x, num_output_channels=3).numpy())
    save("gray_pil.npy", np.asarray(F.rgb_to_grayscale(src_pil, num_output_channels=3), dtype=np.uint8))

    # ---- Gaussian blur -----------------------------------------------------------------------
    blur = [(9, 1.3), (5, 0.4), (3, 2.0)]
    save("blur_params.npy", np.array(blur, dtype=np.float32))
    for k, (ks, sg) in enumerate(blur):
        save(f"blur{k}_tensor.npy", F.gaussian_blur(x, [ks, ks], [sg, sg]).numpy())
        save(f"blur{k}_pil.npy", np.asarray(F.gaussian_blur(src_pil, [ks, ks], [sg, sg]), dtype=np.uint8))

    # ---- normalise (ImageNet) ------------------------------------------------------------------
    save("normalize_tensor.npy", F.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).numpy())

    # ---- a whole view with explicit parameters: crop+resize, flip, jitter, gray, blur ---------
    # float chain (what the C code does) and torchvision's PIL chain (what SimCLR code runs).
    t, l, hh, ww, S = 4, 9, 31, 36, 28
    v = F.resized_crop(x, t, l, hh, ww, [S, S], antialias=True)
    v = F.hflip(v)
    for o in [3, 1, 0, 2]:
        v = [lambda z: F.adjust_brightness(z, 0.8), lambda z: F.adjust_contrast(z, 1.3),
             lambda z: F.adjust_saturation(z, 0.6), lambda z: F.adjust_hue(z, -0.12)][o](v)
    v = F.gaussian_blur(v, [3, 3], [0.9, 0.9])
    save("view_params.npy", np.array([t, l, hh, ww, S, 1, 3, 1, 0, 2, 0.8, 1.3, 0.6, -0.12, 3, 0.9],
                                     dtype=np.float32))
    save("view_tensor.npy", v.numpy())
    p = F.resized_crop(src_pil, t, l, hh, ww, [S, S])
    p = F.hflip(p)
    for o in [3, 1, 0, 2]:
        p = [lambda z: F.adjust_brightness(z, 0.8), lambda z: F.adjust_contrast(z, 1.3),
             lambda z: F.adjust_saturation(z, 0.6), lambda z: F.adjust_hue(z, -0.12)][o](p)
    p = F.gaussian_blur(p, [3, 3], [0.9, 0.9])
    save("view_pil.npy", np.asarray(p, dtype=np.uint8))

    # ---- RandomResizedCrop fallback (scale > 1 never fits: every attempt fails) ---------------
    rows = []
    for H, W, r0, r1 in [(40, 52, 3 / 4, 4 / 3), (20, 100, 3 / 4, 4 / 3), (100, 21, 3 / 4, 4 / 3),
                         (33, 50, 0.5, 1.0), (17, 9, 1.0, 1.5), (96, 96, 3 / 4, 4 / 3),
                         (40, 5, 2.0, 3.0), (5, 40, 0.25, 0.5)]:  # last two: round(2.5) == 2
        i, j, h, w = T.RandomResizedCrop.get_params(torch.zeros(1, H, W), [2.0, 3.0], [r0, r1])
        rows.append([H, W, r0, r1, i, j, h, w])
    save("crop_fallback.npy", np.array(rows, dtype=np.float64))

    # ---- decoders: small PNG / JPEG files and what PIL decodes them to ------------------------
    dec = os.path.join(OUT, "images")
    os.makedirs(dec, exist_ok=True)
    rgb = src_pil.crop((0, 0, 23, 17))
    rgb.save(os.path.join(dec, "rgb.png"))
    rgb.convert("L").save(os.path.join(dec, "gray.png"))
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray((np.arange(17 * 23).reshape(17, 23) % 256).astype(np.uint8)))
    rgba.save(os.path.join(dec, "rgba.png"))
    rgb.convert("P", palette=Image.ADAPTIVE, colors=16).save(os.path.join(dec, "palette.png"))
    arr16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257 + 3)
    Image.fromarray(arr16.astype(np.uint16)).save(os.path.join(dec, "gray16.png"))
    rgb.save(os.path.join(dec, "rgb.jpg"), quality=90)
    rgb.convert("L").save(os.path.join(dec, "gray.jpg"), quality=90)
    for name in ["rgb.png", "gray.png", "rgba.png", "palette.png", "gray16.png", "rgb.jpg", "gray.jpg"]:
        im = Image.open(os.path.join(dec, name))
        if im.mode in ("RGBA", "P", "RGB"):
            ref = np.asarray(im.convert("RGB"), dtype=np.uint8)
        elif im.mode == "I;16" or im.mode == "I":
            ref = (np.asarray(im, dtype=np.uint32) >> 8).astype(np.uint8)  # high byte
        else:
            ref = np.asarray(im.convert("L"), dtype=np.uint8)
        save("dec_" + name.replace(".", "_") + ".npy", ref)
    with open(os.path.join(dec, "broken.png"), "wb") as f:  # a PNG signature, then garbage
        f.write(b"\x89PNG\r\n\x1a\n" + bytes(range(40)))
    with open(os.path.join(dec, "rgb.jpg"), "rb") as f:
        data = f.read()
    with open(os.path.join(dec, "truncated.jpg"), "wb") as f:
        f.write(data[: len(data) // 2])

    # ---- STL-10: a tiny stl10_binary/ and what torchvision's reader makes of it -------------
    stl = os.path.join(OUT, "stl10_binary")
    os.makedirs(stl, exist_ok=True)
    rng = np.random.RandomState(0)
    tx = rng.randint(0, 256, size=(3, 3 * 96 * 96)).astype(np.uint8)
    tx.tofile(os.path.join(stl, "train_X.bin"))
    np.array([1, 10, 4], dtype=np.uint8).tofile(os.path.join(stl, "train_y.bin"))
    rng.randint(0, 256, size=(2, 3 * 96 * 96)).astype(np.uint8).tofile(os.path.join(stl, "test_X.bin"))
    np.array([2, 7], dtype=np.uint8).tofile(os.path.join(stl, "test_y.bin"))
    rng.randint(0, 256, size=(2, 3 * 96 * 96)).astype(np.uint8).tofile(os.path.join(stl, "unlabeled_X.bin"))
    with open(os.path.join(stl, "class_names.txt"), "w") as f:
        f.write("\n".join(["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]) + "\n")
    with open(os.path.join(stl, "fold_indices.txt"), "w") as f:
        for k in range(10):
            f.write(" ".join(str((k + i) % 3) for i in range(2)) + " \n")
    ds = torchvision.datasets.STL10.__new__(torchvision.datasets.STL10)
    ds.root, ds.base_folder = OUT, "stl10_binary"
    imgs, labels = ds._STL10__loadfile("train_X.bin", "train_y.bin")  # (N, 3, 96, 96), 0-based
    save("stl_train_chw.npy", imgs)
    save("stl_train_labels.npy", labels.astype(np.int64))

    # ---- CIFAR-100: a tiny cifar-100-binary/ and what torchvision's reader makes of the same ----
    # images (torchvision reads the python version: the same 3072 bytes per image in a pickle)
    c100 = os.path.join(OUT, "cifar-100-binary")
    os.makedirs(c100, exist_ok=True)
    fine_names = ("apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
                  "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
                  "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
                  "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse "
                  "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy "
                  "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
                  "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
                  "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm").split()
    coarse_names = ("aquatic_mammals fish flowers food_containers fruit_and_vegetables "
                    "household_electrical_devices household_furniture insects large_carnivores "
                    "large_man-made_outdoor_things large_natural_outdoor_scenes large_omnivores_and_herbivores "
                    "medium_mammals non-insect_invertebrates people reptiles small_mammals trees vehicles_1 "
                    "vehicles_2").split()
    assert len(fine_names) == 100 and len(coarse_names) == 20
    for fname, names in (("fine_label_names.txt", fine_names), ("coarse_label_names.txt", coarse_names)):
        with open(os.path.join(c100, fname), "w") as f:
            f.write("\n".join(names) + "\n")
    import pickle
    import tempfile
    import torchvision.datasets.cifar as tvc
    tvc.check_integrity = lambda *a, **k: True  # our pickles are not the published ones
    tvc.CIFAR10._check_integrity = lambda self: True
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "cifar-100-python"))
        with open(os.path.join(tmp, "cifar-100-python", "meta"), "wb") as f:
            pickle.dump({"fine_label_names": fine_names, "coarse_label_names": coarse_names}, f)
        for split, n in (("train", 6), ("test", 4)):
            data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
            fine = rng.randint(0, 100, size=n)
            coarse = rng.randint(0, 20, size=n)
            fine[0], coarse[0] = 99, 19  # the largest labels occur
            rec = np.concatenate([coarse[:, None], fine[:, None], data], axis=1).astype(np.uint8)
            rec.tofile(os.path.join(c100, split + ".bin"))
            with open(os.path.join(tmp, "cifar-100-python", split), "wb") as f:
                pickle.dump({"data": data, "fine_labels": fine.tolist(), "coarse_labels": coarse.tolist()}, f)
            ds = torchvision.datasets.CIFAR100(tmp, train=split == "train", download=False)
            save("cifar100_%s_hwc.npy" % split, np.ascontiguousarray(ds.data))
            save("cifar100_%s_fine.npy" % split, np.asarray(ds.targets, dtype=np.int64))
            save("cifar100_%s_coarse.npy" % split, coarse.astype(np.int64))
        assert ds.classes == fine_names
    print("fixtures written to", OUT)


if __name__ == "__main__":
    sys.exit(main())
