#!/usr/bin/env python3
"""Full-size round trip: weight files written by real Keras and PyTorch, loaded by `zoo extract`.

For every architecture, the real framework builds the full model (ImageNet top, default input
size) with its own random initialization and randomized batch-norm statistics, computes logits
for a small batch of random images, and writes its weights in every format it offers:

  Keras 3 (keras):        model.save_weights("x.weights.h5"), keras.saving.save_model("x.h5")
                          (legacy full-model HDF5) and model.save("x.keras")
  Keras 2 (tf_keras):     model.save_weights("x.h5") (legacy weights-only HDF5)
  PyTorch (torchvision):  torch.save(state_dict) in the zip format and in the legacy format,
                          and safetensors.torch.save_file

`zoo extract` then runs the same raw images (with `--preprocess`, so zoo's preprocessing is
checked against the framework's too) and the logits are compared. The result table goes into
the README's compatibility section.

Run from the repository root after `swift build -c release`:

    ../venv/bin/python converters/roundtrip.py [--models resnet50 ...] [--work /tmp/zoo-roundtrip]

It needs several GB of free disk in --work (VGG16 files are about 550 MB each) and takes a
while on two cores. CI never runs it.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from make_model_references import MODEL_ENTRIES, V2_RESIDUAL_RULE  # noqa: E402  (the one list of models and their constructors)

MODELS = list(MODEL_ENTRIES)
KERAS_NAME = {m: e.keras_app for m, e in MODEL_ENTRIES.items() if e.keras_app}
TORCH_NAME = {m: e.torch_fn for m, e in MODEL_ENTRIES.items() if e.torch_fn}
# The preprocessing zoo is told to apply (`zoo extract --preprocess`), as the Keras weights expect.
# The preprocessing each Keras family's published weights expect (what zoo extract is told).
KERAS_FAMILY_PREPROCESS = {"vgg": "caffe", "resnet": "caffe", "densenet": "torch", "inception": "tf", "mobilenet": "tf",
                           "xception": "tf", "resnetv2": "tf", "mobilenetv1": "tf", "efficientnet": "none",
                           "inceptionresnetv2": "tf", "mobilenetv3": "none", "efficientnetv2": "none"}
KERAS_PREPROCESS = {m: KERAS_FAMILY_PREPROCESS[e.family] for m, e in MODEL_ENTRIES.items() if e.keras_app}
KERAS_KWARGS = {m: e.keras_kwargs or {} for m, e in MODEL_ENTRIES.items()}
SIZE = {"inceptionv3": 299, "xception": 299, "inceptionresnetv2": 299, **{f"efficientnetb{i}": s for i, s in enumerate([224, 240, 260, 300, 380, 456, 528, 600])},
        **{f"efficientnetv2{v}": s for v, s in [("b0", 224), ("b1", 240), ("b2", 260), ("b3", 300), ("s", 384), ("m", 480), ("l", 480)]}}
BATCH = 2


def size_of(model):
    return SIZE.get(model, 224)


def images(model):
    rng = np.random.default_rng(7)
    s = size_of(model)
    return (rng.random((BATCH, s, s, 3)) * 255).astype(np.float32)


def randomize_keras_batch_norm(model, rng):
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            weights = layer.get_weights()
            channels = weights[-1].shape
            weights[-2] = rng.normal(0, 0.1, channels).astype(np.float32)      # moving mean
            weights[-1] = rng.uniform(0.5, 1.5, channels).astype(np.float32)   # moving variance
            layer.set_weights(weights)


# Keras's initialization (every batch norm's gamma 1) makes EfficientNetV2's deep residual sums
# chaotic at full size: Keras's own EfficientNetV2-S logits reach 1e5 (L's 5e12) and move by
# 60-80% of that when the input moves by 1e-6 (B3: 0.1%), so no two implementations can agree on
# them. The last gamma of each residual branch (`blockNx_project_bn`, x after a) is drawn from a
# damped range instead: [0.5, 0.7] (S's logits then move by 8e-7 for that input change and differ
# by 3% between the two images), [0.3, 0.5] for L's 79 blocks (5e-7 and 1%; [0.5, 0.7] left it chaotic).
DAMPED_RESIDUAL_GAMMA = {m: (V2_RESIDUAL_RULE["patterns"]["keras"], (0.3, 0.5) if m == "efficientnetv2l" else (0.5, 0.7))
                         for m, e in MODEL_ENTRIES.items() if e.family == "efficientnetv2"}


def damp_residual_gammas(model, pattern, gamma_range, rng):
    import re
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization" and re.fullmatch(pattern, layer.name + "/gamma"):
            weights = layer.get_weights()
            weights[0] = rng.uniform(*gamma_range, weights[0].shape).astype(np.float32)
            layer.set_weights(weights)


def keras_part(model_name, work, use_tf_keras):
    if use_tf_keras:
        import tf_keras as keras
    else:
        import keras
    import importlib
    app = getattr(keras.applications, KERAS_NAME[model_name])
    module = importlib.import_module(app.__module__)
    model = app(weights=None, include_top=True, classifier_activation=None, **KERAS_KWARGS[model_name])
    randomize_keras_batch_norm(model, np.random.default_rng(3))
    if model_name in DAMPED_RESIDUAL_GAMMA:
        damp_residual_gammas(model, *DAMPED_RESIDUAL_GAMMA[model_name], np.random.default_rng(4))
    x = images(model_name)
    logits = model.predict(module.preprocess_input(x.copy()), verbose=0)
    files = []
    stem = os.path.join(work, f"{model_name}_{'tfkeras' if use_tf_keras else 'keras3'}")
    if use_tf_keras:
        path = stem + ".h5"
        model.save_weights(path)
        files.append(("Keras 2 legacy HDF5 (tf_keras save_weights)", path))
    else:
        path = stem + ".weights.h5"
        model.save_weights(path)
        files.append(("Keras 3 .weights.h5 (save_weights)", path))
        path = stem + ".h5"
        keras.saving.save_model(model, path)
        files.append(("Keras 3 legacy HDF5 (save_model .h5)", path))
        path = stem + ".keras"
        model.save(path)
        files.append(("Keras 3 .keras archive (save)", path))
    return logits, files, KERAS_PREPROCESS[model_name]


def torch_part(model_name, work):
    import torch
    import torchvision
    import safetensors.torch
    torch.manual_seed(5)
    kwargs = {"init_weights": True} if model_name in ("inceptionv3", "googlenet") else {}
    model = getattr(torchvision.models, TORCH_NAME[model_name])(weights=None, **kwargs).eval()
    generator = torch.Generator().manual_seed(3)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    x = images(model_name)
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    normalized = (x / 255.0 - mean) / std
    with torch.no_grad():
        logits = model(torch.from_numpy(normalized.transpose(0, 3, 1, 2).copy())).numpy()
    state = model.state_dict()
    stem = os.path.join(work, f"{model_name}_torch")
    files = []
    path = stem + ".pth"
    torch.save(state, path)
    files.append(("torch.save zip (state_dict)", path))
    path = stem + "_legacy.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    files.append(("torch.save legacy (pre-1.6 format)", path))
    path = stem + ".safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, path)
    files.append(("safetensors (safetensors.torch)", path))
    return logits, files, "torch"


def run_zoo(zoo, model, flavor, weights, images_path, out, preprocess):
    command = [zoo, "extract", model, "--weights", weights, "--flavor", flavor, "--input", images_path, "--out", out,
               "--preprocess", preprocess, "--batch", str(BATCH)]
    start = time.time()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return None, done.stderr.strip(), time.time() - start
    return np.load(out), "", time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--work", default="/tmp/zoo-roundtrip")
    parser.add_argument("--zoo", default=".build/release/zoo")
    parser.add_argument("--keep", action="store_true", help="keep the weight files")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    import torch  # noqa: F401  (before TensorFlow: torch.optim after TF crashes LLVM option registration)
    import torch._dynamo  # noqa: F401
    import keras
    import tf_keras
    import torchvision
    versions = {"keras": keras.__version__, "tf_keras": tf_keras.__version__, "torch": torch.__version__,
                "torchvision": torchvision.__version__, "numpy": np.__version__}
    rows = []
    for model in args.models:
        x = images(model)
        images_path = os.path.join(args.work, f"{model}_images.npy")
        np.save(images_path, x)
        parts = ([("keras", lambda: keras_part(model, args.work, False)), ("keras", lambda: keras_part(model, args.work, True))]
                 if model in KERAS_NAME else []) + ([("torchvision", lambda: torch_part(model, args.work))] if model in TORCH_NAME else [])
        for flavor, make in parts:
            logits, files, preprocess = make()
            for writer, path in files:
                out = path + ".logits.npy"
                ours, error, seconds = run_zoo(args.zoo, model, flavor, path, images_path, out, preprocess)
                if ours is None:
                    difference, status = None, "FAILED: " + error.splitlines()[-1] if error else "FAILED"
                else:
                    scale = float(np.abs(logits).max())
                    difference = float(np.abs(ours - logits).max()) / scale
                    status = "ok" if difference < 1e-4 else "MISMATCH"
                size_mb = os.path.getsize(path) / 1e6
                rows.append({"model": model, "flavor": flavor, "writer": writer, "file_mb": round(size_mb, 1),
                             "max_relative_difference": difference, "zoo_seconds": round(seconds, 1), "status": status})
                print(json.dumps(rows[-1]), flush=True)
                if not args.keep:
                    for p in (path, out):
                        if os.path.exists(p):
                            os.remove(p)
    print("\n| model | flavour | file written by | size (MB) | max |zoo - framework| / max |logit| | result |")
    print("|---|---|---|---:|---:|---|")
    for r in rows:
        d = "-" if r["max_relative_difference"] is None else f"{r['max_relative_difference']:.1e}"
        print(f"| {r['model']} | {r['flavor']} | {r['writer']} | {r['file_mb']} | {d} | {r['status']} |")
    print("\nversions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    with open(os.path.join(args.work, "roundtrip.json"), "w") as f:
        json.dump({"versions": versions, "rows": rows}, f, indent=1)
    sys.exit(0 if all(r["status"] == "ok" for r in rows) else 1)


if __name__ == "__main__":
    main()
