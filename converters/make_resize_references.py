#!/usr/bin/env python3
"""Write the resize and augmentation references under Tests/ZooDataTests/ResizeReferences/.

Run from the repository root:   ../venv/bin/python converters/make_resize_references.py
(CI never runs this script; the files it writes are committed, and the Swift tests in
Tests/ZooDataTests/TransformReferenceTests.swift read only those files.)

What it writes (all arrays channels-last, height x width x 3, values in [0, 255]):

  input_32.npy    float32 32x32x3, uniform noise quantised to 1/8 (seeded PCG64)
  input_224.npy   uint8 224x224x3, uniform integer noise (uint8 keeps the folder small;
                  zoo reads it as floats, as it reads a decoded image)
  resize_<case>_<convention>_<method>.npy
                  the framework's resize of an input:
                    tensorflow  = keras.layers.Resizing (TensorFlow backend), checked here to be
                                  identical to tf.image.resize(antialias=False)
                    torchvision = torchvision.transforms.v2.functional.resize on a float CHW
                                  tensor (bilinear with antialias=True; nearest = "nearest")
                  Outputs taller than 24 rows keep 18 of them (first, middle and last 6; all
                  columns): index.json lists the rows kept.
  crop_<name>.npy keras.preprocessing.image.smart_resize, torchvision's eval transform (Resize(short) then
                  CenterCrop) and a CenterCrop larger than the image (zero padding)
  augment_<name>.npy
                  Keras 3 preprocessing layers with their random amount pinned: a factor range
                  with equal bounds (uniform(a, a) == a) or, for RandomContrast (whose bounds
                  cannot pin a factor below 1), transform_images with a given factor. zoo's
                  wrap fill blends across the seam between the last and first pixel where
                  TensorFlow repeats the edge pixel; the Swift test leaves the seam out.
  index.json      every file with its parameters, the rows kept and the package versions

Keep the folder under ~1.5 MB: the script prints the total and fails above 1.5 MB.
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["KERAS_BACKEND"] = "tensorflow"

import json
import sys
from pathlib import Path

import numpy as np

# torch (and torch._dynamo, which torchvision pulls in) must come before TensorFlow: both
# bundle LLVM and the second to register its command-line options aborts the process.
import torch  # noqa: E402
import torch._dynamo  # noqa: E402,F401
import torchvision  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402
from torchvision.transforms.v2 import functional as TF  # noqa: E402

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "Tests" / "ZooDataTests" / "ResizeReferences"
LIMIT_BYTES = 1_500_000
KEEP_ROWS = 6  # per band (first, middle, last) for outputs taller than 4 * KEEP_ROWS

WRITTEN_WITH = {
    "numpy": "2.4.6",
    "torch": "2.15.0",
    "torchvision": "0.29.2",
    "tensorflow": "2.21.0",
    "keras": "3.15.1",
}


def versions():
    found = {
        "numpy": np.__version__,
        "torch": torch.__version__.split("+")[0],
        "torchvision": torchvision.__version__.split("+")[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
    }
    for name, version in WRITTEN_WITH.items():
        if found[name] != version:
            print(f"warning: {name} {found[name]} installed; the committed files were written with {version}")
    return found


def save(name, array):
    path = OUT / f"{name}.npy"
    np.save(path, np.ascontiguousarray(array))
    return path.name


def kept_rows(height):
    if height <= 4 * KEEP_ROWS:
        return list(range(height))
    middle = (height - KEEP_ROWS) // 2
    return list(range(KEEP_ROWS)) + list(range(middle, middle + KEEP_ROWS)) + list(range(height - KEEP_ROWS, height))


def keras_resize(image, height, width, method):
    layer = keras.layers.Resizing(height, width, interpolation=method)
    result = np.asarray(layer(image[None])[0], dtype=np.float32)
    direct = tf.image.resize(image[None], (height, width), method=method, antialias=False)[0].numpy()
    assert np.array_equal(result, direct), "keras.layers.Resizing differs from tf.image.resize"
    return result


def torchvision_resize(image, height, width, method):
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    mode = InterpolationMode.BILINEAR if method == "bilinear" else InterpolationMode.NEAREST
    result = TF.resize(tensor, [height, width], interpolation=mode, antialias=True)
    return result.numpy().transpose(1, 2, 0).astype(np.float32)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.npy"):
        old.unlink()
    index = {
        "generator": "converters/make_resize_references.py",
        "versions": versions(),
        "layout": "height x width x 3, channels-last RGB, float32 unless noted",
        "inputs": {},
        "resize": [],
        "crops": [],
        "augmentations": [],
    }

    rng = np.random.Generator(np.random.PCG64(20260605))
    input_32 = (np.round(rng.uniform(0, 255, (32, 32, 3)) * 8) / 8).astype(np.float32)
    input_224 = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    inputs = {"input_32": input_32, "input_224": input_224.astype(np.float32)}
    index["inputs"]["input_32"] = {"file": save("input_32", input_32), "dtype": "float32", "shape": list(input_32.shape)}
    index["inputs"]["input_224"] = {"file": save("input_224", input_224), "dtype": "uint8", "shape": list(input_224.shape)}

    # Resize: every case in both conventions and both methods.
    cases = [
        ("32to96", "input_32", 96, 96),
        ("32to299", "input_32", 299, 299),
        ("224to96", "input_224", 96, 96),
        ("32to40x71", "input_32", 40, 71),
        ("32to20x50", "input_32", 20, 50),
        ("224to57x130", "input_224", 57, 130),
    ]
    for case, source, height, width in cases:
        image = inputs[source]
        for convention, run in (("tensorflow", keras_resize), ("torchvision", torchvision_resize)):
            for method in ("bilinear", "nearest"):
                output = run(image, height, width, method)
                rows = kept_rows(height)
                name = f"resize_{case}_{convention}_{method}"
                index["resize"].append({
                    "name": name, "file": save(name, output[rows]), "input": source,
                    "height": height, "width": width, "convention": convention, "method": method, "rows": rows,
                })
        tf_bilinear = keras_resize(image, height, width, "bilinear")
        tv_bilinear = torchvision_resize(image, height, width, "bilinear")
        print(f"{case}: max |tensorflow - torchvision| bilinear = {np.abs(tf_bilinear - tv_bilinear).max():.3g}")

    # Crops: Keras smart_resize and torchvision's evaluation transform on non-square windows.
    def add_crop(name, source, window, output, **parameters):
        rows = kept_rows(output.shape[0])
        index["crops"].append({
            "name": name, "file": save(f"crop_{name}", output[rows]), "input": source,
            "input_window": window, "rows": rows, "height": int(output.shape[0]), "width": int(output.shape[1]),
            **parameters,
        })

    tall = inputs["input_224"][:160]  # 160 x 224
    for height, width in ((64, 64), (50, 120)):
        output = np.asarray(keras.preprocessing.image.smart_resize(tall, (height, width), interpolation="bilinear"), dtype=np.float32)
        add_crop(f"smart_resize_{height}x{width}", "input_224", [0, 0, 160, 224], output,
                 kind="smart_resize", target=[height, width], method="bilinear", convention="tensorflow")
    wide = inputs["input_224"][:150]  # 150 x 224 → Resize(100) gives 100 x 149, crop left round(26.5) = 26
    tensor = torch.from_numpy(np.ascontiguousarray(wide.transpose(2, 0, 1)))
    evaluated = TF.center_crop(TF.resize(tensor, [100], interpolation=InterpolationMode.BILINEAR, antialias=True), [96, 96])
    add_crop("torchvision_eval_100_96", "input_224", [0, 0, 150, 224], evaluated.numpy().transpose(1, 2, 0).astype(np.float32),
             kind="torchvision_eval", resize=100, crop=[96, 96], method="bilinear", convention="torchvision")
    tensor = torch.from_numpy(np.ascontiguousarray(input_32.transpose(2, 0, 1)))
    padded = TF.center_crop(tensor, [37, 30])
    add_crop("center_crop_37x30", "input_32", [0, 0, 32, 32], padded.numpy().transpose(1, 2, 0).astype(np.float32),
             kind="center_crop", crop=[37, 30])

    # Augmentations: Keras layers with the random amount pinned.
    def add_augmentation(name, layer, zoo, output=None):
        if output is None:
            output = layer(input_32, training=True)
        output = np.asarray(output, dtype=np.float32)
        index["augmentations"].append({
            "name": name, "file": save(f"augment_{name}", output), "input": "input_32",
            "keras": {"class": type(layer).__name__, **{k: v for k, v in layer.get_config().items()
                                                          if k in ("factor", "height_factor", "width_factor", "fill_mode",
                                                                   "fill_value", "interpolation", "value_range")}},
            **zoo,
        })

    L = keras.layers
    for name, turns, fill, value, interpolation in (
        ("rotation_36_reflect_bilinear", 0.1, "reflect", 0.0, "bilinear"),
        ("rotation_90_reflect_bilinear", 0.25, "reflect", 0.0, "bilinear"),
        ("rotation_-25_constant_nearest", -25 / 360, "constant", 17.0, "nearest"),
        ("rotation_-50_nearest_bilinear", -50 / 360, "nearest", 0.0, "bilinear"),
        ("rotation_160_constant_bilinear", 160 / 360, "constant", 0.0, "bilinear"),
    ):
        layer = L.RandomRotation((turns, turns), fill_mode=fill, fill_value=value, interpolation=interpolation)
        add_augmentation(name, layer, {"kind": "rotation", "turns": turns, "fill_mode": fill, "fill_value": value,
                                       "interpolation": interpolation})
    for name, height, width, fill, value, interpolation in (
        ("zoom_1.3x0.8_reflect_bilinear", 0.3, -0.2, "reflect", 0.0, "bilinear"),
        ("zoom_0.6_reflect_bilinear", -0.4, None, "reflect", 0.0, "bilinear"),
        ("zoom_1.7_constant_nearest", 0.7, None, "constant", 0.0, "nearest"),
        ("zoom_1.45x1.2_constant_bilinear", 0.45, 0.2, "constant", 30.0, "bilinear"),
        ("zoom_1.5_wrap_bilinear", 0.5, None, "wrap", 0.0, "bilinear"),
        ("zoom_1.35x0.7_nearest_nearest", 0.35, -0.3, "nearest", 0.0, "nearest"),
    ):
        layer = L.RandomZoom((height, height), None if width is None else (width, width),
                             fill_mode=fill, fill_value=value, interpolation=interpolation)
        add_augmentation(name, layer, {"kind": "zoom", "height_factor": height, "width_factor": width, "fill_mode": fill,
                                       "fill_value": value, "interpolation": interpolation})
    for name, height, width, fill, value, interpolation in (
        ("translation_0.1x-0.2_reflect_bilinear", 0.1, -0.2, "reflect", 0.0, "bilinear"),
        ("translation_-0.15x0.3_constant_bilinear", -0.15, 0.3, "constant", 0.0, "bilinear"),
        ("translation_0.25x-0.125_wrap_bilinear", 0.25, -0.125, "wrap", 0.0, "bilinear"),
        ("translation_0.4x0.45_nearest_nearest", 0.4, 0.45, "nearest", 0.0, "nearest"),
        ("translation_-0.3x-0.1_constant_nearest", -0.3, -0.1, "constant", 5.0, "nearest"),
        ("translation_0.6x-0.7_reflect_nearest", 0.6, -0.7, "reflect", 0.0, "nearest"),
    ):
        layer = L.RandomTranslation((height, height), (width, width), fill_mode=fill, fill_value=value,
                                    interpolation=interpolation)
        add_augmentation(name, layer, {"kind": "translation", "height_factor": height, "width_factor": width,
                                       "fill_mode": fill, "fill_value": value, "interpolation": interpolation})
    for factor in (1.3, 0.6):
        layer = L.RandomContrast(0.5)
        output = layer.transform_images(input_32, {"contrast_factor": tf.constant(factor, shape=(1, 1, 1))}, training=True)
        add_augmentation(f"contrast_{factor}", layer, {"kind": "contrast", "contrast": factor, "value_range": [0, 255]}, output)
    for factor in (0.3, -0.2):
        layer = L.RandomBrightness((factor, factor))
        add_augmentation(f"brightness_{factor}", layer, {"kind": "brightness", "factor": factor, "value_range": [0, 255]})

    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    total = sum(path.stat().st_size for path in OUT.iterdir() if path.is_file())
    print(f"{len(list(OUT.glob('*.npy')))} arrays, {total / 1e6:.2f} MB in {OUT.relative_to(REPO)}")
    if total > LIMIT_BYTES:
        sys.exit(f"the references take {total} bytes, more than {LIMIT_BYTES}")


if __name__ == "__main__":
    main()
