#!/usr/bin/env python3
"""Writes zoo/ weight-set manifests from the publishers' own metadata, as installed.

torchvision: every entry of `torchvision.models.get_model_weights(<builder>)` (url, meta, the
weights' `transforms()`); the SHA-256 prefix by torch.hub's own `HASH_REGEX`.
Keras applications: each model is built with `weights="imagenet"` while `file_utils.get_file`
and `imagenet_utils.obtain_input_shape` are intercepted, so the file name, URL, file_hash and
default size are exactly the ones Keras would use (nothing is downloaded: the intercepted
`get_file` stops the build); the hash algorithm is Keras's own `resolve_hasher`; the
preprocessing mode is found by running the module's `preprocess_input` against the
`imagenet_utils` modes. Figures Keras does not ship (top-1/top-5, parameters, licenses) are the
documentation tables copied below, each with the revision it was read from.

    ../venv/bin/python converters/make_manifests.py vgg19 resnet101     # writes zoo/<name>.json
    ../venv/bin/python converters/make_manifests.py --out /tmp/m efficientnetb0
    ../venv/bin/python converters/make_manifests.py --check             # compare with zoo/
    ../venv/bin/python converters/make_manifests.py --list

Architectures are zoo registry names (`zoo models`); torchvision's spellings are accepted too
(`inception_v3`, `mobilenet_v3_small`). An existing file is never overwritten unless --force.
"""

import argparse
import ast
import decimal
import inspect
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parent.parent
ZOO = REPO / "zoo"
WRITTEN_WITH = {"torch": "2.15.0", "torchvision": "0.29.2", "keras": "3.15.1", "tf_keras": "2.21.0"}

# Every field of a manifest but origin and notes is compared by --check.
COMPARED_FIELDS = ["name", "architecture", "flavor", "publisher", "format", "file", "url", "checksum", "include_top", "classes",
                   "class_list", "input_size", "preprocessing", "transforms", "parameters", "metrics", "license"]
FIELD_ORDER = COMPARED_FIELDS + ["origin", "notes"]

# The architectures with hand-written manifests, which --check regenerates by default.
HAND_WRITTEN = ["vgg16", "resnet50", "resnet152", "densenet121", "densenet169", "densenet201", "inceptionv3", "mobilenetv2"]


def spelling(name):
    """The registry's spelling rule: case, '_' and '-' do not matter."""
    return name.lower().replace("_", "").replace("-", "")


def percent(text):
    """'0.713' or '71.3%' -> 71.3, without binary rounding noise."""
    text = text.strip()
    if text.endswith("%"):
        return float(decimal.Decimal(text[:-1]))
    return float(decimal.Decimal(text) * 100)


# ---------------------------------------------------------------------------------------------
# torchvision
# ---------------------------------------------------------------------------------------------

# zoo registry name -> torchvision builder. Where Keras has the same model, the zoo name is the
# one without underscores (as inceptionv3 / mobilenetv2), so both flavours share an architecture.
TORCHVISION = {
    "alexnet": "alexnet",
    **{n: n for n in ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]},
    "googlenet": "googlenet",
    **{n: n for n in ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
                      "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]},
    **{n: n for n in ["densenet121", "densenet161", "densenet169", "densenet201"]},
    "inceptionv3": "inception_v3",
    "mobilenetv2": "mobilenet_v2",
    # Not registered in zoo yet: run these into a folder outside the repository.
    "squeezenet1_0": "squeezenet1_0", "squeezenet1_1": "squeezenet1_1",
    **{n: n for n in ["shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"]},
    "mobilenetv3small": "mobilenet_v3_small", "mobilenetv3large": "mobilenet_v3_large",
    **{n: n for n in ["mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"]},
    **{f"efficientnetb{i}": f"efficientnet_b{i}" for i in range(8)},
    **{f"efficientnetv2{s}": f"efficientnet_v2_{s}" for s in "sml"},
}

TV_TAGS = {"IMAGENET1K_V1": "tv_in1k", "IMAGENET1K_V2": "tv2_in1k", "IMAGENET1K_FEATURES": "tv_features"}

TV_LICENSE = ("torchvision code: BSD-3-Clause (torchvision LICENSE). Weights: no license stated; the torchvision README section "
              "'Pre-trained Model License' says the pre-trained models may have their own licenses or terms derived from the "
              "training dataset and that users must determine whether they may use them.")

# What older torchvision sources (before the weights enums) say about the file names, read
# through the search index: the one piece of evidence about a file's container format that does
# not need the file. A name that is already in 2017-era code predates torch.save's zip format
# (PyTorch 1.6, 2020): torch-legacy. Every other file is torch-zip by the catalog's rule.
PRE_ENUM = {
    "vgg": ("vgg.py @ 1c1feb57", True, "2017-era by its code: torch.utils.model_zoo.load_url, no adaptive pooling; "
            "pytorch/vision PR #107 of 2017-03-16 retrained the VGG models",
            {"vgg11": "vgg11-bbd30ac9.pth", "vgg13": "vgg13-c768596a.pth", "vgg16": "vgg16-397923af.pth",
             "vgg19": "vgg19-dcbb9e9d.pth", "vgg11_bn": "vgg11_bn-6002323d.pth", "vgg13_bn": "vgg13_bn-abd245e5.pth",
             "vgg16_bn": "vgg16_bn-6c64b313.pth", "vgg19_bn": "vgg19_bn-c79401a0.pth"}),
    "densenet": ("densenet.py @ 5fbfd2b4", True, "2017-era by its code: torch.utils.model_zoo.load_url, nn.init.kaiming_normal "
                 "without the trailing underscore",
                 {"densenet121": "densenet121-a639ec97.pth", "densenet169": "densenet169-b2777c0a.pth",
                  "densenet201": "densenet201-c1103571.pth", "densenet161": "densenet161-8d451a50.pth"}),
    "resnet": ("resnet.py @ f50e776b", False, "undated: load_state_dict_from_url from torchvision/models/utils.py, no type "
               "annotations",
               {"resnet18": "resnet18-5c106cde.pth", "resnet34": "resnet34-333f7ec4.pth", "resnet50": "resnet50-19c8e357.pth",
                "resnet101": "resnet101-5d3b4d8f.pth", "resnet152": "resnet152-b121ed2d.pth",
                "resnext50_32x4d": "resnext50_32x4d-7cdf4587.pth", "resnext101_32x8d": "resnext101_32x8d-8ba56ff5.pth",
                "wide_resnet50_2": "wide_resnet50_2-95faca4d.pth", "wide_resnet101_2": "wide_resnet101_2-32ee1156.pth"}),
    "alexnet": ("alexnet.py @ 29032aaf", False, "undated: load_state_dict_from_url from torchvision/models/utils.py",
                {"alexnet": "alexnet-owt-4df8aa71.pth"}),
    "googlenet": ("googlenet.py @ 8f19c7dc", False, "2021-era code (type annotations, _internally_replaced_utils)",
                  {"googlenet": "googlenet-1378be20.pth"}),
}

# Files that later torchvision pull requests re-uploaded under new names (from the existing
# manifests' research; the new names are what the enums list).
REUPLOADED = {
    "vgg11": "pytorch/vision PR #3851 ('Update models weights for inception_v3, vgg11, and vgg13', 2021-05-17, closing "
             "issue #2473 about legacy-format files failing torch.load with a GPU map_location)",
    "vgg13": "pytorch/vision PR #3851 ('Update models weights for inception_v3, vgg11, and vgg13', 2021-05-17, closing "
             "issue #2473 about legacy-format files failing torch.load with a GPU map_location)",
}
LIKELY_REUPLOAD = ("pytorch/vision issue #2068 (2020) asked to re-save the oldest, legacy-format files, resnets included, and "
                   "PR #3620 (2021-03-30) re-uploaded classification weights ('weights are unchanged, but the files can now be "
                   "properly unpickled'); that PR's diff was not read, so the link between it and this file is likely but not "
                   "confirmed.")
# When torchvision first offered weights whose file names are in an undated pre-enum source.
FIRST_OFFERED = {
    "wide_resnet50_2": ("pytorch/vision PR #912 ('Add pretrained Wide ResNet', 2019-05-17; its description says the "
                        "checkpoints are stored in torch.float16 to save space)", "pytorch/vision PR #912"),
    "wide_resnet101_2": ("pytorch/vision PR #912 ('Add pretrained Wide ResNet', 2019-05-17; its description says the "
                         "checkpoints are stored in torch.float16 to save space)", "pytorch/vision PR #912"),
    "resnext50_32x4d": ("2019 (Cadene/pretrained-models.pytorch PR #144, 2019-05-20: 'Model is added to torchvision')",
                        "Cadene/pretrained-models.pytorch PR #144"),
    "resnext101_32x8d": ("2019 (Cadene/pretrained-models.pytorch PR #144, 2019-05-20: 'Model is added to torchvision')",
                         "Cadene/pretrained-models.pytorch PR #144"),
    "googlenet": ("pytorch/vision PR #678 ('Add GoogLeNet (Inception v1)', 2019, weights ported from TensorFlow)",
                  "pytorch/vision PR #678"),
}

# Short graph notes for architectures without hand-written manifests; facts from the builder in
# the installed torchvision module.
TV_GRAPH = {
    "alexnet": "torchvision AlexNet graph (the 'one weird trick' variant: convolutions 64-192-384-256-256 with bias, max pools, "
               "adaptive average pool to 6x6, classifier Dropout-Linear-ReLU x2, Linear).",
    "vgg": "torchvision VGG{depth} graph{bn} (features, avgpool to 7x7, classifier Linear-ReLU-Dropout x2, Linear).",
    "googlenet": "torchvision GoogLeNet graph (BasicConv2d: conv without bias, BatchNorm2d eps 0.001; the 5x5 branch uses a 3x3 "
                 "kernel, a known bug kept for the weights, pytorch/vision issue #906). When loading these weights torchvision "
                 "forces transform_input=True (unless the caller sets it), aux_logits=True and init_weights=False: the graph must "
                 "contain aux1/aux2 for the state dict to load (they are dropped afterwards unless aux_logits was requested, and "
                 "torchvision warns that the auxiliary heads are NOT pretrained); num_params 6624904 does not count them (the "
                 "graph with aux1/aux2 has 13004888). transform_input re-maps the ImageNet-normalized input to the [-1, 1] scaling "
                 "the ported Google weights expect: x_c' = x_c * (std_c / 0.5) + (mean_c - 0.5) / 0.5 per channel; a port must "
                 "apply it (or, equivalently, feed (x - 0.5) / 0.5 on [0, 1] input).",
    "resnet18": "torchvision ResNet graph (BasicBlock, blocks [2, 2, 2, 2]; convolutions without bias, BatchNorm2d default eps 1e-5).",
    "resnet34": "torchvision ResNet graph (BasicBlock, blocks [3, 4, 6, 3]; convolutions without bias, BatchNorm2d default eps 1e-5).",
    "resnet101": "torchvision ResNet graph (v1.5: the downsampling stride on the 3x3 conv of a Bottleneck; blocks [3, 4, 23, 3]; "
                 "convolutions without bias, BatchNorm2d default eps 1e-5).",
    "resnext50_32x4d": "torchvision ResNeXt graph (Bottleneck with groups 32, width_per_group 4, blocks [3, 4, 6, 3]; v1.5 stride "
                       "on the grouped 3x3).",
    "resnext101_32x8d": "torchvision ResNeXt graph (Bottleneck with groups 32, width_per_group 8, blocks [3, 4, 23, 3]; v1.5 stride "
                        "on the grouped 3x3).",
    "resnext101_64x4d": "torchvision ResNeXt graph (Bottleneck with groups 64, width_per_group 4, blocks [3, 4, 23, 3]; v1.5 stride "
                        "on the grouped 3x3).",
    "wide_resnet50_2": "torchvision Wide ResNet graph (Bottleneck with width_per_group 128, blocks [3, 4, 6, 3]: inner 3x3 "
                       "channels doubled, outer 1x1 channels as ResNet50).",
    "wide_resnet101_2": "torchvision Wide ResNet graph (Bottleneck with width_per_group 128, blocks [3, 4, 23, 3]: inner 3x3 "
                        "channels doubled, outer 1x1 channels as ResNet101).",
    "densenet161": "torchvision DenseNet graph (growth 48, bn_size 4, blocks (6, 12, 36, 24), 96 initial features). The .pth file "
                   "uses the old key spelling: denselayer keys end in 'norm.1', 'relu.1', 'conv.1', 'norm.2', 'relu.2', 'conv.2' "
                   "(e.g. features.denseblock1.denselayer1.norm.1.weight); torchvision's _load_state_dict renames them with the "
                   "regex '^(.*denselayer\\d+\\.(?:norm|relu|conv))\\.((?:[12])\\.(?:weight|bias|running_mean|running_var))$' "
                   "to norm1/conv1/norm2/conv2 before loading.",
}


def clean_docs(text):
    """meta _docs without the reStructuredText link markup and line breaks."""
    text = re.sub(r"`([^`<]+?)\s*<([^>]+)>`_", r"\1 (\2)", text or "")
    return " ".join(text.split())


def imagenet_classes():
    return (ZOO / "classes" / "imagenet-1k.txt").read_text(encoding="utf-8").split("\n")[:-1]


def tv_builder_checks_hash(source, builder):
    """Whether the module's code loads weights with get_state_dict(..., check_hash=True)."""
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", None) == "get_state_dict"]
    return bool(calls) and all(any(k.arg == "check_hash" and getattr(k.value, "value", None) is True for k in c.keywords)
                               for c in calls)


def tv_manifests(arch):
    import torch
    import torch.hub
    import torchvision
    from torchvision.models import get_model_weights
    from torchvision.transforms._presets import ImageClassification

    builder = TORCHVISION[arch]
    enum = get_model_weights(builder)
    module = sys.modules[enum.__module__]
    module_path = "torchvision/" + Path(module.__file__).relative_to(Path(torchvision.__file__).parent).as_posix()
    source = Path(module.__file__).read_text(encoding="utf-8")
    checks_hash = tv_builder_checks_hash(source, builder)
    import importlib.metadata
    dist_version = importlib.metadata.version("torchvision")
    git_version = torchvision.version.git_version
    entries = list(enum)
    out = []
    for weights in entries:
        if weights.name not in TV_TAGS:
            raise SystemExit(f"{arch}: no tag for {enum.__name__}.{weights.name}; add one to TV_TAGS")
        name = f"{arch}.{TV_TAGS[weights.name]}"
        meta = weights.meta
        url = weights.url
        file = url.rsplit("/", 1)[1]
        assert url.startswith("https://") and url.endswith("/" + file), url
        notes, origin_extra = [f"{enum.__name__}.{weights.name}."], []

        match = torch.hub.HASH_REGEX.search(file)
        prefix = match.group(1) if match else None
        if prefix and checks_hash:
            checksum = {"algorithm": "sha256-prefix", "value": prefix}
            skipped = file[: match.start()]
            if "-" in skipped:
                notes.append(f"The hash prefix is {prefix}: torch.hub's regex skips the earlier '-' parts of the name because "
                             "they are not followed by '.'.")
        else:
            checksum = None
            notes.append("No checksum: " + ("the file name has no hex digits for torch.hub's HASH_REGEX." if not prefix else
                                            f"{module_path} does not pass check_hash=True to get_state_dict."))

        categories = meta.get("categories")
        if categories is not None and list(categories) != imagenet_classes():
            raise SystemExit(f"{name}: meta categories differ from zoo/classes/imagenet-1k.txt")
        acc = (meta.get("_metrics") or {}).get("ImageNet-1K") or {}
        top1, top5 = acc.get("acc@1"), acc.get("acc@5")
        metrics = None if top1 is None or top5 is None or math.isnan(top1) or math.isnan(top5) else {"top1": top1, "top5": top5}
        include_top = categories is not None and metrics is not None
        if categories is None:
            notes.append("meta categories None" + (" and _metrics acc@1/acc@5 NaN" if metrics is None else "") +
                         " (hence classes and metrics null).")

        preset = weights.transforms()
        assert isinstance(preset, ImageClassification), type(preset)
        if not preset.antialias:
            notes.append("transforms antialias False.")
        transforms = {"resize": int(preset.resize_size[0]), "crop": int(preset.crop_size[0]),
                      "interpolation": preset.interpolation.value, "mean": list(preset.mean), "std": list(preset.std)}

        notes.append(f"meta min_size {tuple(meta['min_size'])}; recipe {meta['recipe']}.")
        graph = graph_note(arch)
        if graph:
            notes.append(graph)
        docs = clean_docs(meta.get("_docs"))
        if docs:
            notes.append(f"meta _docs: {docs}")
        if "_file_size" in meta:
            notes.append(f"meta _file_size {meta['_file_size']} (MB; the schema has no size field).")
            per_parameter = meta["_file_size"] * 2**20 / meta["num_params"]
            if per_parameter < 3:
                notes.append(f"That is {per_parameter:.2f} bytes per parameter (num_params {meta['num_params']}), so the "
                             "tensors are most likely stored as float16, not float32: a loader must convert them.")
        fmt, fmt_notes, fmt_origin = tv_format(arch, builder, weights.name, file)
        notes += fmt_notes
        origin_extra += fmt_origin
        if len(entries) > 1:
            notes.append(f"DEFAULT = {enum.DEFAULT.name}.")

        origin = (f"pytorch/vision {module_path} ({enum.__name__}.{weights.name}) as shipped in torchvision {dist_version} "
                  f"(installed; version.py git_version {git_version}): url, transforms (torchvision/transforms/_presets.py "
                  "ImageClassification: resize_size, crop_size, interpolation, mean, std, antialias), meta num_params/_metrics/"
                  "min_size/recipe/_docs/_file_size/categories (categories compared with zoo/classes/imagenet-1k.txt); "
                  f"sha256-prefix rule: torch {torch.__version__} torch/hub.py (HASH_REGEX r'-([a-f0-9]*)\\.', "
                  "download_url_to_file compares digest[:len(hash_prefix)]); the builder passes check_hash=True"
                  + "".join("; " + o for o in origin_extra))
        out.append({
            "name": name, "architecture": arch, "flavor": "torchvision", "publisher": "torchvision", "format": fmt,
            "file": file, "url": url, "checksum": checksum, "include_top": include_top,
            "classes": len(categories) if include_top else None, "class_list": "imagenet-1k" if include_top else None,
            "input_size": transforms["crop"], "preprocessing": "torchvision", "transforms": transforms,
            "parameters": meta.get("num_params"), "metrics": metrics, "license": TV_LICENSE, "origin": origin,
            "notes": " ".join(notes),
        })
    return out


def graph_note(arch):
    if arch in TV_GRAPH:
        return TV_GRAPH[arch]
    m = re.fullmatch(r"vgg(\d+)(_bn)?", arch)
    if m and arch != "vgg16":
        return TV_GRAPH["vgg"].format(depth=m.group(1), bn=" with BatchNorm2d after every convolution" if m.group(2) else "")
    return None


def tv_format(arch, builder, entry, file):
    """(format, notes, origin parts) by the catalog's rule (zoo/README.md, Formats)."""
    family = next((k for k, source in PRE_ENUM.items() if builder in source[3]), None)
    if entry != "IMAGENET1K_V1":
        return "torch-zip", [f"Format torch-zip by rule: {entry} is a later weights entry (no source read states this file's "
                             "format)."], []
    if builder in REUPLOADED:
        return "torch-zip", [f"The file is the 2021 re-upload from {REUPLOADED[builder]}; format torch-zip by rule."], \
            [REUPLOADED[builder].split(" (")[0]]
    if family is None:
        return "torch-zip", ["Format torch-zip by rule: no source read states this file's format."], []
    where, dated, dating, names = PRE_ENUM[family]
    old = names[builder]
    origin = [f"format: pre-weights-enum revision pytorch/vision {where} read through the search index"]
    if old != file:
        return "torch-zip", [f"The pre-enum torchvision {where.split(' @')[0]} (pytorch/vision @ {where.split('@ ')[1]}) pointed "
                             f"at {old}; this URL names a different, later file. {LIKELY_REUPLOAD} Format torch-zip by rule: no "
                             "source read states this file's format."], origin + ["pytorch/vision issue #2068, PR #3620"]
    if dated:
        return "torch-legacy", [f"Format torch-legacy: the same file name is already in an early torchvision "
                                f"{where.split(' @')[0]} (pytorch/vision @ {where.split('@ ')[1]}; {dating}), so the file "
                                "predates torch.save's zip format (PyTorch 1.6, 2020); pytorch/vision issue #2068 (maintainer, "
                                "2020) states the oldest weight files are in the legacy format. Files that old may be the "
                                "legacy pickle stream or the even older tar container: a loader should sniff the first bytes."], \
            origin + ["pytorch/vision issue #2068"]
    first, cite = FIRST_OFFERED.get(builder, (None, None))
    return "torch-zip", [f"Format torch-zip by rule, but UNVERIFIED: the same file name is in the pre-enum "
                         f"{where.split(' @')[0]} (pytorch/vision @ {where.split('@ ')[1]}; {dating})"
                         + (f", and torchvision first offered these weights in {first}" if first else "")
                         + ", so it may well be a pre-zip (legacy) file: sniff the first bytes."], \
        origin + ([cite] if cite else [])


# ---------------------------------------------------------------------------------------------
# Keras applications
# ---------------------------------------------------------------------------------------------

# keras-team/keras docs/templates/applications.md @ c52fd2be4c426f9ae9c9fa5300920227462e22e4
# (2020-10-17), the Keras 2 applications docs: the table, copied as it stands.
KERAS2_DOCS = "keras-team/keras docs/templates/applications.md @ c52fd2be4c (2020-10-17, the Keras 2 applications docs)"
KERAS2_TABLE = """
| [Xception](#xception) | 88 MB | 0.790 | 0.945 | 22,910,480 | 126 |
| [VGG16](#vgg16) | 528 MB | 0.713 | 0.901 | 138,357,544 | 23 |
| [VGG19](#vgg19) | 549 MB | 0.713 | 0.900 | 143,667,240 | 26 |
| [ResNet50](#resnet) | 98 MB | 0.749 | 0.921 | 25,636,712 | - |
| [ResNet101](#resnet) | 171 MB | 0.764 | 0.928 | 44,707,176 | - |
| [ResNet152](#resnet) | 232 MB | 0.766 | 0.931 | 60,419,944 | - |
| [ResNet50V2](#resnet) | 98 MB | 0.760 | 0.930 | 25,613,800 | - |
| [ResNet101V2](#resnet) | 171 MB | 0.772 | 0.938 | 44,675,560 | - |
| [ResNet152V2](#resnet) | 232 MB | 0.780 | 0.942 | 60,380,648 | - |
| [InceptionV3](#inceptionv3) | 92 MB | 0.779 | 0.937 | 23,851,784 | 159 |
| [InceptionResNetV2](#inceptionresnetv2) | 215 MB | 0.803 | 0.953 | 55,873,736 | 572 |
| [MobileNet](#mobilenet) | 16 MB | 0.704 | 0.895 | 4,253,864 | 88 |
| [MobileNetV2](#mobilenetv2) | 14 MB | 0.713 | 0.901 | 3,538,984 | 88 |
| [DenseNet121](#densenet) | 33 MB | 0.750 | 0.923 | 8,062,504 | 121 |
| [DenseNet169](#densenet) | 57 MB | 0.762 | 0.932 | 14,307,880 | 169 |
| [DenseNet201](#densenet) | 80 MB | 0.773 | 0.936 | 20,242,984 | 201 |
"""
# keras-team/keras-io templates/api/applications/index.md @ e7be306b7cad4726760a753c5bed90824e096b81:
# the rows for models the Keras 2 docs do not list (parameters rounded to 0.1M there).
KERAS_IO_DOCS = "keras-team/keras-io templates/api/applications/index.md @ e7be306b"
KERAS_IO_TABLE = """
| [EfficientNetB0](efficientnet/#efficientnetb0-function) | 29 | 77.1% | 93.3% | 5.3M | 132 | 46.0 | 4.9 |
| [EfficientNetB1](efficientnet/#efficientnetb1-function) | 31 | 79.1% | 94.4% | 7.9M | 186 | 60.2 | 5.6 |
| [EfficientNetB2](efficientnet/#efficientnetb2-function) | 36 | 80.1% | 94.9% | 9.2M | 186 | 80.8 | 6.5 |
| [EfficientNetB3](efficientnet/#efficientnetb3-function) | 48 | 81.6% | 95.7% | 12.3M | 210 | 140.0 | 8.8 |
| [EfficientNetB4](efficientnet/#efficientnetb4-function) | 75 | 82.9% | 96.4% | 19.5M | 258 | 308.3 | 15.1 |
| [EfficientNetB5](efficientnet/#efficientnetb5-function) | 118 | 83.6% | 96.7% | 30.6M | 312 | 579.2 | 25.3 |
| [EfficientNetB6](efficientnet/#efficientnetb6-function) | 166 | 84.0% | 96.8% | 43.3M | 360 | 958.1 | 40.4 |
| [EfficientNetB7](efficientnet/#efficientnetb7-function) | 256 | 84.3% | 97.0% | 66.7M | 438 | 1578.9 | 61.6 |
| [EfficientNetV2B0](efficientnet_v2/#efficientnetv2b0-function) | 29 | 78.7% | 94.3% | 7.2M | - | - | - |
| [EfficientNetV2B1](efficientnet_v2/#efficientnetv2b1-function) | 34 | 79.8% | 95.0% | 8.2M | - | - | - |
| [EfficientNetV2B2](efficientnet_v2/#efficientnetv2b2-function) | 42 | 80.5% | 95.1% | 10.2M | - | - | - |
| [EfficientNetV2B3](efficientnet_v2/#efficientnetv2b3-function) | 59 | 82.0% | 95.8% | 14.5M | - | - | - |
| [EfficientNetV2S](efficientnet_v2/#efficientnetv2s-function) | 88 | 83.9% | 96.7% | 21.6M | - | - | - |
| [EfficientNetV2M](efficientnet_v2/#efficientnetv2m-function) | 220 | 85.3% | 97.4% | 54.4M | - | - | - |
| [EfficientNetV2L](efficientnet_v2/#efficientnetv2l-function) | 479 | 85.7% | 97.5% | 119.0M | - | - | - |
"""
# keras-team/keras-io templates/api/applications/index.md @ 01b6d6c4c4ef2c7975be4c42ac148db57352d978,
# an earlier revision with exact EfficientNet parameter counts (and '-' for their accuracy).
KERAS_IO_EXACT_DOCS = "keras-team/keras-io templates/api/applications/index.md @ 01b6d6c4"
KERAS_IO_EXACT_TABLE = """
| [EfficientNetB0](efficientnet/#efficientnetb0-function) | 29 MB | - | - | 5,330,571 | - | 53.33ms |
| [EfficientNetB1](efficientnet/#efficientnetb1-function) | 31 MB | - | - | 7,856,239 | - | 64.32ms |
| [EfficientNetB2](efficientnet/#efficientnetb2-function) | 36 MB | - | - | 9,177,569 | - | 64.11ms |
| [EfficientNetB3](efficientnet/#efficientnetb3-function) | 48 MB | - | - | 12,320,535 | - | 75.43ms |
| [EfficientNetB4](efficientnet/#efficientnetb4-function) | 75 MB | - | - | 19,466,823 | - | 89.08ms |
| [EfficientNetB5](efficientnet/#efficientnetb5-function) | 118 MB | - | - | 30,562,527 | - | 123.41ms |
| [EfficientNetB6](efficientnet/#efficientnetb6-function) | 166 MB | - | - | 43,265,143 | - | 172.57ms |
| [EfficientNetB7](efficientnet/#efficientnetb7-function) | 256 MB | - | - | 66,658,687 | - | 280.04ms |
"""


def table_rows(table):
    rows = {}
    for line in table.strip().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[re.match(r"\[(\w+)\]", cells[0]).group(1)] = cells[1:]
    return rows


KERAS2_ROWS, KERAS_IO_ROWS, KERAS_IO_EXACT_ROWS = table_rows(KERAS2_TABLE), table_rows(KERAS_IO_TABLE), table_rows(KERAS_IO_EXACT_TABLE)

# The License section of each model in the Keras 2 docs (above); EfficientNet, EfficientNetV2
# and MobileNetV3 are not in those docs, and keras-io states no license for them.
KERAS_CODE = "Keras code: Apache-2.0."
APACHE = "Weights: Apache License 2.0 (tensorflow/models), per the Keras applications docs; " + KERAS_CODE
KERAS_LICENSES = {
    "vgg": "Weights: Creative Commons Attribution 4.0 (ported from the ones released by VGG at Oxford), per the Keras applications "
           "docs; " + KERAS_CODE,
    "resnet": "Weights: MIT (ported from Kaiming He's deep-residual-networks repository), per the Keras applications docs; "
              + KERAS_CODE,
    "resnet_v2": "Weights: BSD (ported from Facebook's fb.resnet.torch), per the Keras applications docs; " + KERAS_CODE,
    "densenet": "Weights: BSD 3-clause (liuzhuang13/DenseNet), per the Keras applications docs; " + KERAS_CODE,
    "xception": "Weights: MIT ('trained by ourselves', the Keras authors), per the Keras applications docs; " + KERAS_CODE,
    "inception_v3": APACHE, "inception_resnet_v2": APACHE, "mobilenet": APACHE, "mobilenet_v2": APACHE,
}

PREPROCESSING_NOTES = {
    "caffe": "'caffe' preprocessing: RGB->BGR, subtract [103.939, 116.779, 123.68] (B, G, R), no scaling.",
    "tf": "'tf' preprocessing: x/127.5 - 1.",
    "torch": "'torch' preprocessing: x/255, then subtract mean [0.485, 0.456, 0.406] and divide by std [0.229, 0.224, 0.225] (RGB).",
    "none": "preprocess_input is a pass-through: the graph has its own input preprocessing layers and takes pixels in [0, 255].",
}

KERAS_GRAPH = {
    "vgg19": "Keras VGG19 graph (block1_conv1 .. block5_conv4, then flatten, fc1, fc2, predictions); channels_last kernels (HWIO).",
    "resnet": "Keras ResNet (v1) graph from resnet.py: convolutions with bias, BatchNormalization epsilon 1.001e-5, and the "
              "downsampling stride on the first 1x1 convolution of a block (torchvision puts it on the 3x3), so these weights need "
              "the Keras-flavor graph.",
    "resnet_v2": "Keras ResNetV2 (pre-activation) graph from resnet.py/resnet_v2.py (preact=True, use_bias=True).",
}


@dataclass
class KerasVariant:
    name: str
    architecture: str
    module: str
    function: str
    kwargs: dict
    docs_key: str
    alpha: float = None
    rows: int = None
    minimalistic: bool = False
    notes: list = field(default_factory=list)


def alpha_tag(alpha):
    return f"a{round(alpha * 100):03d}"


def keras_variants(arch):
    """The Keras weight sets of a zoo architecture, top and notop."""
    simple = {
        "vgg16": ("vgg16", "VGG16"), "vgg19": ("vgg19", "VGG19"),
        "resnet50": ("resnet", "ResNet50"), "resnet101": ("resnet", "ResNet101"), "resnet152": ("resnet", "ResNet152"),
        "resnet50v2": ("resnet_v2", "ResNet50V2"), "resnet101v2": ("resnet_v2", "ResNet101V2"),
        "resnet152v2": ("resnet_v2", "ResNet152V2"),
        "densenet121": ("densenet", "DenseNet121"), "densenet169": ("densenet", "DenseNet169"),
        "densenet201": ("densenet", "DenseNet201"),
        "inceptionv3": ("inception_v3", "InceptionV3"), "inceptionresnetv2": ("inception_resnet_v2", "InceptionResNetV2"),
        "xception": ("xception", "Xception"),
        **{f"efficientnetb{i}": ("efficientnet", f"EfficientNetB{i}") for i in range(8)},
        **{f"efficientnetv2{s}": ("efficientnet_v2", f"EfficientNetV2{s.upper()}") for s in ["b0", "b1", "b2", "b3", "s", "m", "l"]},
    }
    out = []
    if arch in simple:
        module, function = simple[arch]
        for top in (True, False):
            out.append(KerasVariant(f"{arch}.keras_imagenet{'' if top else '_notop'}", arch, module, function,
                                    {"include_top": top}, function))
        return out
    m = re.fullmatch(r"(mobilenet|mobilenetv2)(?:_a(\d{3}))?", arch)
    if m:
        v2 = m.group(1) == "mobilenetv2"
        alpha = int(m.group(2)) / 100 if m.group(2) else 1.0
        allowed = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] if v2 else [0.25, 0.5, 0.75, 1.0]
        if alpha not in allowed or (m.group(2) and alpha == 1.0):
            return []
        for rows in ([96, 128, 160, 192, 224] if v2 else [128, 160, 192, 224]):
            for top in (True, False):
                out.append(KerasVariant(f"{m.group(1)}.keras_imagenet_{alpha_tag(alpha)}_r{rows}{'' if top else '_notop'}", arch,
                                        "mobilenet_v2" if v2 else "mobilenet", "MobileNetV2" if v2 else "MobileNet",
                                        {"include_top": top, "alpha": alpha, "input_shape": (rows, rows, 3)},
                                        "MobileNetV2" if v2 else "MobileNet", alpha=alpha, rows=rows))
        return out
    m = re.fullmatch(r"mobilenetv3(small|large)(?:_(a075|minimalistic))?", arch)
    if m:
        size, variant = m.group(1), m.group(2)
        alpha = 0.75 if variant == "a075" else 1.0
        tag = {None: "", "a075": "_a075", "minimalistic": "_minimalistic"}[variant]
        for top in (True, False):
            out.append(KerasVariant(f"mobilenetv3{size}.keras_imagenet{tag}{'' if top else '_notop'}", arch, "mobilenet_v3",
                                    f"MobileNetV3{size.capitalize()}",
                                    {"include_top": top, "alpha": alpha, "minimalistic": variant == "minimalistic",
                                     "input_shape": (224, 224, 3)},
                                    f"MobileNetV3{size.capitalize()}", alpha=alpha, rows=224,
                                    minimalistic=variant == "minimalistic"))
        return out
    return []


KERAS_ARCHS = (["vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2", "densenet121",
                "densenet169", "densenet201", "inceptionv3", "inceptionresnetv2", "xception"]
               + [f"efficientnetb{i}" for i in range(8)] + [f"efficientnetv2{s}" for s in ["b0", "b1", "b2", "b3", "s", "m", "l"]]
               + ["mobilenet_a025", "mobilenet_a050", "mobilenet_a075", "mobilenet"]
               + ["mobilenetv2_a035", "mobilenetv2_a050", "mobilenetv2_a075", "mobilenetv2", "mobilenetv2_a130", "mobilenetv2_a140"]
               + [f"mobilenetv3{s}{v}" for s in ("small", "large") for v in ("", "_a075", "_minimalistic")])


class _Stop(Exception):
    """Raised by the intercepted get_file: the build got as far as downloading."""


def keras_intercept(variant):
    """Builds the Keras model with weights='imagenet' and returns what its get_file and
    obtain_input_shape calls were given."""
    import importlib
    import keras
    from keras.src.applications import imagenet_utils
    from keras.src.utils import file_utils

    module = importlib.import_module(f"keras.src.applications.{variant.module}")
    seen = {}
    real_get_file, real_obtain = file_utils.get_file, imagenet_utils.obtain_input_shape

    def get_file(*args, **kwargs):
        bound = inspect.signature(real_get_file).bind(*args, **kwargs)
        bound.apply_defaults()
        seen["get_file"] = dict(bound.arguments)
        raise _Stop

    def obtain_input_shape(*args, **kwargs):
        bound = inspect.signature(real_obtain).bind(*args, **kwargs)
        bound.apply_defaults()
        seen["obtain_input_shape"] = dict(bound.arguments)
        return real_obtain(*args, **kwargs)

    file_utils.get_file, imagenet_utils.obtain_input_shape = get_file, obtain_input_shape
    try:
        getattr(module, variant.function)(weights="imagenet", **variant.kwargs)
        raise SystemExit(f"{variant.name}: {variant.function} never called get_file")
    except _Stop:
        pass
    finally:
        file_utils.get_file, imagenet_utils.obtain_input_shape = real_get_file, real_obtain
        keras.backend.clear_session()
    return module, seen


def keras_preprocessing(module):
    """The imagenet_utils mode the module's preprocess_input applies ('none' for a pass-through)."""
    import numpy as np
    from keras.src.applications import imagenet_utils

    x = (np.arange(2 * 3 * 3 * 3, dtype="float32").reshape(2, 3, 3, 3) * 4.7) % 256
    y = np.asarray(module.preprocess_input(x.copy()))
    if np.array_equal(y, x):
        return "none"
    found = [m for m in ("caffe", "tf", "torch")
             if np.allclose(y, np.asarray(imagenet_utils.preprocess_input(x.copy(), mode=m)), atol=1e-5)]
    if len(found) != 1:
        raise SystemExit(f"{module.__name__}: preprocess_input matches {found or 'no imagenet_utils mode'}")
    return found[0]


def docstring_table(path, pattern):
    """{checkpoint: groups} from a docstring table of an installed file."""
    return {m.group(1): m.groups()[1:] for m in re.finditer(pattern, Path(path).read_text(encoding="utf-8"))}


def keras_figures(v, keras_dir, tf_keras_dir):
    """(metrics, parameters, notes, origin parts) for a top variant."""
    key = v.docs_key
    if v.module == "mobilenet_v2":
        checkpoint = f"mobilenet_v2_{float(v.alpha)}_{v.rows}"
        table = docstring_table(tf_keras_dir / "mobilenet_v2.py",
                                r"\|\s*\[(mobilenet_v2_[\d.]+_\d+)\]\s*\|\s*\d+\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|")
        src = "keras-team/tf-keras tf_keras/applications/mobilenet_v2.py docstring table (tf-keras {} as installed)"
        params = int(KERAS2_ROWS[key][3].replace(",", "")) if v.alpha == 1.0 else None
        mparams = table[checkpoint][0] if checkpoint in table else None
        if v.alpha == 1.0 and v.rows == 224:
            r = KERAS2_ROWS[key]
            slim = table.get(checkpoint)
            return ({"top1": percent(r[1]), "top5": percent(r[2])}, params,
                    [f"Metrics are the Keras docs' MobileNetV2 row ({percent(r[1])}/{percent(r[2])})"
                     + (f"; the table in the tf-keras mobilenet_v2.py docstring gives {slim[1]}/{slim[2]} for {checkpoint} (the "
                        "TF-slim checkpoint these weights were translated from)." if slim else ".")],
                    [f"top-1/top-5 and parameters: {KERAS2_DOCS}", "docstring table: " + src])
        notes = []
        if checkpoint in table:
            metrics = {"top1": float(table[checkpoint][1]), "top5": float(table[checkpoint][2])}
            notes.append(f"Metrics are from the table in the tf-keras mobilenet_v2.py docstring (checkpoint {checkpoint}; the "
                         "Keras weights were translated from those TF-slim checkpoints); the Keras docs list MobileNetV2 at 224 "
                         "(alpha 1.0) only.")
        else:
            metrics = None
            notes.append(f"metrics null: neither the Keras docs nor the tf-keras mobilenet_v2.py docstring table state figures "
                         f"for {checkpoint} (the table lists alpha 1.3 and 1.4 at 224 only).")
        if params:
            notes.append("Parameters: the Keras docs' count for MobileNetV2 (alpha 1.0, with top); no layer of the Keras "
                         "MobileNetV2 graph depends on the input rows (global average pooling before the Dense head), so the "
                         "count is the same at every row size.")
        else:
            notes.append("parameters null: the Keras docs give a count for alpha 1.0 only"
                         + (f"; the tf-keras docstring table says {mparams}M for this width." if mparams else "."))
        origins = ["top-1/top-5: " + src] + ([f"parameters: {KERAS2_DOCS} (MobileNetV2 row)"] if params else [])
        return metrics, params, notes, origins
    if v.module == "mobilenet":
        # Two tables: widths at 224, and rows at width 1.0; keyed by '<alpha> <rows>'.
        text = (tf_keras_dir / "mobilenet.py").read_text(encoding="utf-8")
        figures = {(float(a), int(r)): (acc, p) for a, r, acc, p in
                   re.findall(r"\|\s*([\d.]+) MobileNet-(\d+)\s*\|\s*([\d.]+) %\s*\|\s*\d+\s*\|\s*([\d.]+)", text)}
        src = "keras-team/tf-keras tf_keras/applications/mobilenet.py docstring tables (tf-keras {} as installed)"
        params = int(KERAS2_ROWS[key][3].replace(",", "")) if v.alpha == 1.0 else None
        stated = figures.get((v.alpha, v.rows))
        if v.alpha == 1.0 and v.rows == 224:
            r = KERAS2_ROWS[key]
            return ({"top1": percent(r[1]), "top5": percent(r[2])}, params,
                    [f"Metrics are the Keras docs' MobileNet row; the tf-keras mobilenet.py docstring (the paper's table) gives "
                     f"top-1 {stated[0]}% for 1.0 MobileNet-224."] if stated else [],
                    [f"top-1/top-5 and parameters: {KERAS2_DOCS}", "docstring table: " + src])
        notes = [("metrics null: the tf-keras mobilenet.py docstring (the paper's tables) states top-1 "
                  f"{stated[0]}% for {v.alpha} MobileNet-{v.rows} but no top-5, and the schema needs both; the Keras docs list "
                  "MobileNet at alpha 1.0, 224 only.") if stated else
                 (f"metrics null: no source read states figures for alpha {v.alpha} at {v.rows} (the tf-keras mobilenet.py "
                  "docstring tables give widths at 224 and rows at width 1.0 only).")]
        if params:
            notes.append("Parameters: the Keras docs' count for MobileNet (alpha 1.0, with top); the Keras MobileNet head pools "
                         "globally before its 1x1 convolution classifier, so the count is the same at every row size.")
        else:
            width = figures.get((v.alpha, 224))
            notes.append("parameters null: the Keras docs give a count for alpha 1.0 only"
                         + (f"; the tf-keras docstring says {width[1]}M for this width." if width else "."))
        return None, params, notes, ["top-1 (no top-5): " + src] + ([f"parameters: {KERAS2_DOCS} (MobileNet row)"] if params else [])
    if v.module == "mobilenet_v3":
        text = (keras_dir / "mobilenet_v3.py").read_text(encoding="utf-8")
        size = "large" if "Large" in v.function else "small"
        checkpoint = f"mobilenet_v3_{size}{'_minimalistic' if v.minimalistic else ''}_{v.alpha}_224"
        m = re.search(rf"\|\s*{checkpoint}\s*\|\s*\d+\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|", text)
        note = ("metrics and parameters null: the keras mobilenet_v3.py docstring table states "
                f"top-1 {m.group(2)}% and {m.group(1)}M parameters for {checkpoint} but no top-5 (the schema needs both) and no "
                "exact count; the Keras docs tables have no MobileNetV3 row.") if m else \
            f"metrics and parameters null: no source read states figures for {checkpoint}."
        return None, None, [note], ["top-1 and parameters (M): keras/src/applications/mobilenet_v3.py docstring table"]
    if key in KERAS2_ROWS:
        r = KERAS2_ROWS[key]
        return ({"top1": percent(r[1]), "top5": percent(r[2])}, int(r[3].replace(",", "")), [],
                [f"top-1/top-5, parameters and license: {KERAS2_DOCS}: table of top-1/top-5/parameters and per-model License "
                 f"sections; top-1/top-5 repeated in {KERAS_IO_DOCS}"])
    if key in KERAS_IO_ROWS:
        r = KERAS_IO_ROWS[key]
        exact = KERAS_IO_EXACT_ROWS.get(key)
        params = int(exact[3].replace(",", "")) if exact else None
        notes = [] if exact else [f"parameters null: the keras-io table states {r[3]} (rounded) only."]
        return ({"top1": percent(r[1]), "top5": percent(r[2])}, params, notes,
                [f"top-1/top-5: {KERAS_IO_DOCS}"] + ([f"parameters: {KERAS_IO_EXACT_DOCS} (exact counts; later revisions "
                                                       "round them)"] if exact else []))
    return None, None, [f"metrics and parameters null: no Keras docs table read lists {key}."], []


def keras_manifests(arch):
    import importlib.metadata
    import keras
    from keras.src.utils import file_utils

    keras_dir = Path(keras.__file__).parent / "src" / "applications"
    import tf_keras
    tf_keras_dir = Path(tf_keras.__file__).parent / "src" / "applications"
    tf_keras_version = importlib.metadata.version("tf_keras")
    out = []
    for v in keras_variants(arch):
        module, seen = keras_intercept(v)
        call = seen["get_file"]
        file, url = call["fname"], call["origin"]
        assert url.startswith("https://") and url.endswith("/" + file), (file, url)
        stated = call.get("file_hash") or call.get("md5_hash")
        notes, origin = [], []
        if stated:
            algorithm = file_utils.resolve_hasher(call["hash_algorithm"], stated)
            algorithm = {"md5": "md5", "sha256": "sha256"}[algorithm.name]
            checksum = {"algorithm": algorithm, "value": stated}
        else:
            checksum = None
            notes.append(f"No checksum: {v.module}.py calls get_file({file!r}, ..., cache_subdir={call['cache_subdir']!r}) "
                         "without file_hash.")
        obtained = seen.get("obtain_input_shape")
        input_size = obtained["default_size"] if obtained else v.rows
        if v.rows and input_size != v.rows:
            raise SystemExit(f"{v.name}: default_size {input_size} for rows {v.rows}")
        top = v.kwargs["include_top"]
        preprocessing = keras_preprocessing(module)
        family = v.module
        license = KERAS_LICENSES.get("vgg" if family.startswith("vgg") else family)
        if top:
            metrics, params, figure_notes, figure_origin = keras_figures(v, keras_dir, tf_keras_dir)
            notes += figure_notes
            size = next((rows[v.docs_key][0] for rows in (KERAS2_ROWS, KERAS_IO_ROWS) if v.docs_key in rows), None)
            if size and v.alpha in (None, 1.0) and not v.minimalistic and v.rows in (None, 224):
                notes.append(f"The docs table gives Size {size if 'MB' in size else size + ' MB'} (the schema has no size "
                             "field).")
        else:
            metrics, params, figure_origin = None, None, []
            notes.insert(0, "No classifier (include_top=False): the convolutional base only; the docs state no parameter count or "
                            "accuracy for it.")
            if license:
                figure_origin = [f"license: {KERAS2_DOCS}"]
        if license is None:
            notes.append("license null: the Keras 2 applications docs (the source of the other Keras licenses) have no section "
                         f"for {v.docs_key}, and the keras-io table states none.")
        elif top and not any("license" in o for o in figure_origin):
            figure_origin.append(f"license: {KERAS2_DOCS}")
        graph = KERAS_GRAPH.get(arch) or KERAS_GRAPH.get(family)
        if graph:
            notes.append(graph)
        notes.append(PREPROCESSING_NOTES[preprocessing])
        if obtained:
            notes.append(f"min_size {obtained['min_size']}.")
        if v.module in ("mobilenet", "mobilenet_v2"):
            notes.append(f"File name built by {v.module}.py from alpha and rows; Keras picks these weights when the input is square "
                         "with rows in the supported sizes, else falls back to 224 with a warning.")
        origin = (f"keras {keras.__version__} as installed, keras/src/applications/{v.module}.py ({v.function}(weights='imagenet', "
                  + ", ".join(f"{k}={val!r}" for k, val in v.kwargs.items()) + ")): URL, file name, file_hash as passed to "
                  "file_utils.get_file, "
                  + ("default_size/min_size as passed to imagenet_utils.obtain_input_shape" if obtained else
                     "input size: the rows of the weights' file name (the module does not call obtain_input_shape)")
                  + ", preprocess_input mode; hash algorithm: keras/src/utils/file_utils.py resolve_hasher (auto: 64 hex digits -> sha256, else md5)"
                  + "".join("; " + o.format(tf_keras_version) for o in figure_origin))
        out.append({
            "name": v.name, "architecture": v.architecture, "flavor": "keras", "publisher": "Keras applications",
            "format": "keras-h5", "file": file, "url": url, "checksum": checksum, "include_top": top,
            "classes": 1000 if top else None, "class_list": "imagenet-1k" if top else None, "input_size": input_size,
            "preprocessing": preprocessing, "transforms": None, "parameters": params, "metrics": metrics, "license": license,
            "origin": origin, "notes": " ".join(notes),
        })
    return out


# ---------------------------------------------------------------------------------------------


def resolve(name):
    """(torchvision key, keras key) for an architecture name in any spelling."""
    tv = next((k for k, b in TORCHVISION.items() if spelling(k) == spelling(name) or spelling(b) == spelling(name)), None)
    keras = next((k for k in KERAS_ARCHS if spelling(k) == spelling(name)), None)
    return tv, keras


def manifests_for(names, sources):
    out = []
    for name in names:
        tv, keras = resolve(name)
        if tv is None and keras is None:
            raise SystemExit(f"unknown architecture {name!r}; --list shows the known ones")
        if keras and "keras" in sources:
            out += keras_manifests(keras)
        if tv and "torchvision" in sources:
            out += tv_manifests(tv)
    for m in out:
        assert list(m) == FIELD_ORDER, list(m)
    return out


def dump(manifest):
    return json.dumps(manifest, indent=2, ensure_ascii=True) + "\n"


def warn_versions():
    import importlib.metadata
    for package, version in WRITTEN_WITH.items():
        installed = importlib.metadata.version(package)
        if installed != version:
            print(f"warning: {package} {installed} installed; the catalog was read from {version}", file=sys.stderr)


def check(names, sources):
    problems = 0
    generated = manifests_for(names, sources)
    names_generated = {m["name"] for m in generated}
    for m in generated:
        path = ZOO / f"{m['name']}.json"
        if not path.exists():
            print(f"MISSING  {m['name']}: generated, but zoo/ has no such manifest")
            problems += 1
            continue
        existing = json.loads(path.read_text(encoding="utf-8"))
        diffs = [f for f in COMPARED_FIELDS if existing.get(f) != m[f]]
        if diffs:
            problems += 1
            print(f"DIFFERS  {m['name']}:")
            for f in diffs:
                print(f"    {f}: zoo/ {json.dumps(existing.get(f))}\n    {' ' * len(f)}  script {json.dumps(m[f])}")
        else:
            print(f"agrees   {m['name']}")
    for name in names:
        tv, keras = resolve(name)
        archs = {a for a in (tv, keras) if a}
        for path in sorted(ZOO.glob("*.json")):
            if path.name == "schema.json":
                continue
            existing = json.loads(path.read_text(encoding="utf-8"))
            if existing["architecture"] in archs and existing["name"] not in names_generated and existing["publisher"] != "zoo":
                flavour = "keras" if existing["flavor"] == "keras" else "torchvision"
                if flavour in sources:
                    print(f"EXTRA    {existing['name']}: in zoo/, but the script does not generate it")
                    problems += 1
    print(f"--check: {len(generated)} manifests regenerated, {problems} disagreement(s)")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("architectures", nargs="*", help="zoo registry names (torchvision spellings accepted)")
    parser.add_argument("--out", type=Path, default=ZOO, help="folder to write into (default: zoo/)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--check", action="store_true",
                        help="regenerate the manifests of the given architectures (default: those with hand-written "
                             "manifests) and compare every field but origin and notes with zoo/; writes nothing")
    parser.add_argument("--source", choices=["torchvision", "keras"], action="append",
                        help="only this publisher (repeatable; default both)")
    parser.add_argument("--list", action="store_true", help="list the architectures the script knows")
    args = parser.parse_args()
    sources = set(args.source or ["torchvision", "keras"])
    # torch before tensorflow: the other order aborts (both register LLVM's command-line options).
    import torch  # noqa: F401
    import torchvision  # noqa: F401
    if args.list:
        for name in sorted(set(TORCHVISION) | set(KERAS_ARCHS)):
            tv, keras = resolve(name)
            print(f"{name:24} {'torchvision:' + TORCHVISION[tv] if tv else '':34} {'keras' if keras else ''}")
        return 0
    warn_versions()
    if args.check:
        return 1 if check(args.architectures or HAND_WRITTEN, sources) else 0
    if not args.architectures:
        parser.error("name at least one architecture (or --check, --list)")
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for m in manifests_for(args.architectures, sources):
        path = args.out / f"{m['name']}.json"
        if path.exists() and not args.force:
            print(f"kept     {path} (exists; --force to overwrite)")
            continue
        path.write_text(dump(m), encoding="utf-8")
        written += 1
        print(f"wrote    {path}")
    print(f"{written} manifest(s) written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
