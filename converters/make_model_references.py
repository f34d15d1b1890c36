#!/usr/bin/env python3
"""Reference outputs for zoo's model parity tests (Tests/ZooModelsTests/References/).

Every model of the zoo is built by the real framework (keras.applications on
Keras 3 / TensorFlow, torchvision.models on PyTorch), filled with deterministic
weights given by a formula of each tensor's *source name* and element index,
run on fixed inputs, and its logits and pooled features are saved as small
.npy files together with a JSON listing of every tensor (name, shape, role).
Swift evaluates the same formula under the same names and layouts, pushes the
values through zoo's real weight-import path (key maps, layout transforms),
runs the same inputs and compares. No Python and no weight file are needed in CI.

WEIGHT FORMULA (fixed; Swift must evaluate it exactly like this)
----------------------------------------------------------------
For a tensor with source name `name` and source shape `shape`, element index
`i` = row-major (C order) index over `shape` in the framework's own layout
(Keras: conv kernel HWIO [kh, kw, in, out], depthwise [kh, kw, C, 1],
Dense [in, out]; torch: conv OIHW [out, in/groups, kh, kw], depthwise
[C, 1, kh, kw], Linear [out, in]):

    h     = FNV-1a 32-bit over the UTF-8 bytes of name
            (h = 2166136261; for each byte b: h = ((h XOR b) * 16777619) mod 2^32)
    lowbias32(x): x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15;
                  x *= 0x846ca68b; x ^= x >> 16          (all mod 2^32)
    u(i)  = (Double(lowbias32(UInt32(i) XOR lowbias32(h))) + 0.5) * 2^-31 - 1
            (uniform in (-1, 1); exact integer arithmetic, no libm)
    value = Float(f(u))        (one float64 -> float32 round-to-nearest-even)

with f chosen by the tensor's role (written into the JSON listing):

    kernel     u * sqrt(6.0 / fan_in)   (the float64 scalar sqrt(6.0/fan_in)
                                         is computed first, then one multiply)
               fan_in = product of the source shape without its output dim:
               Keras Conv2D kh*kw*in, Keras DepthwiseConv2D kh*kw, Keras Dense
               in; torch Conv2d in/groups*kh*kw (depthwise kh*kw), Linear in.
               The listing carries fan_in for every kernel.
    bias       0.05 * u                 (conv / dense bias)
    bn_gamma   1.0 + 0.1 * u            (Keras gamma, torch BN weight)
    bn_beta    0.05 * u                 (Keras beta, torch BN bias)
    bn_mean    0.05 * u                 (moving_mean / running_mean)
    bn_var     1.25 + 0.25 * u          (moving_variance / running_var)
    counter    not generated: torch num_batches_tracked keeps its value (0)

plus the rules in RULES below (listed in every JSON under "rules"; a tensor a
rule applies to gets the rule's role, so Swift never matches names itself):
the last BN gamma of every ResNet bottleneck branch is 0.25 + 0.05 * u, which
keeps residual sums from doubling block after block (likewise the last BN of
every Xception residual branch and the 3x3's BN of every ResNetV2 block), and
MobileNet (v1)'s batch norms, a plain chain of 27, get 1.15 + 0.1 * u so that the
signal survives to the logits.

Why a hash and not sin(a*i + phase) (the first formula tried, still available
as --formula sin): with a pure sinusoid in the flat index each layer
correlates its input with one frequency, the signal fades, and several
models' logits hardly depended on the input at all (input dependence down to
1e-7), so a wrong padding or stride would have gone unnoticed. With the hash
every model's output depends on its input (see logits_input_dependence in the
listings).

INPUTS
------
x[n, h, w, c] = Float(sin(0.013 * Double(index) + 0.5 * Double(n))), index =
row-major NHWC element index, batch 2, saved as input_<S>.npy (NHWC float32);
torch receives the same values transposed to NCHW. Keras models that rescale raw
pixels themselves (PIXEL_INPUT) get input_<S>_pixels.npy, 127.5 * (x + 1).

CHECKS: every model's logits and features finite, max |value| < 1e4, features
not all zero, the two inputs give different logits; the Keras listing equals
the names, order and values of a legacy .h5 file Keras itself writes; one
model per family is rebuilt from scratch and must reproduce the saved .npy
files bit for bit; the expected layer and parameter counts are asserted.

Usage: python converters/make_model_references.py [--out DIR] [--models ...]
(see --help). Runs the Keras and the torch part in two child processes.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from fractions import Fraction

import numpy as np

# ----------------------------------------------------------------------------
# Constants shared by every part
# ----------------------------------------------------------------------------

FNV_OFFSET = 2166136261
FNV_PRIME = 16777619
PHASE_MOD = 10007
STEP = 0.7548776662
BATCH = 2

# One entry per model: everything the references need to know about it, in one place. A new
# model is one line here. Fields: the family (for README grouping), the smallest meaningful input
# (VGG 32: its minimum, block5_pool is 1x1; InceptionV3 75: its minimum; 64 for the rest: last
# feature map 2x2, every stride-2 stage sees an even size), the keras.applications constructor
# (None: not in Keras), the torchvision.models function (None: not in torchvision), the expected
# Keras figures (asserted when given): the layer count without the top and the total parameters
# with a 100-class head; whether the model is rebuilt from scratch for the determinism check (one
# model per family); extra torchvision keyword arguments; extra keras.applications keyword
# arguments (MobileNet's alpha); whether the Keras model takes raw pixels (see PIXEL_INPUT).
ModelEntry = namedtuple("ModelEntry", "family input_size keras_app torch_fn notop_layers head100_total determinism torch_kwargs "
                        "keras_kwargs keras_pixels", defaults=(None, None, False))
TORCH_ONLY = dict(keras_app=None, notop_layers=None, head100_total=None)
KERAS_ONLY = dict(torch_fn=None)
MODEL_ENTRIES = {
    "vgg16": ModelEntry("vgg", 32, "VGG16", "vgg16", 19, 14765988, True),
    "vgg19": ModelEntry("vgg", 32, "VGG19", "vgg19", 22, None, False),
    "vgg11": ModelEntry("vgg", 32, torch_fn="vgg11", determinism=False, **TORCH_ONLY),
    "vgg13": ModelEntry("vgg", 32, torch_fn="vgg13", determinism=False, **TORCH_ONLY),
    "vgg11_bn": ModelEntry("vgg", 32, torch_fn="vgg11_bn", determinism=True, **TORCH_ONLY),
    "vgg13_bn": ModelEntry("vgg", 32, torch_fn="vgg13_bn", determinism=False, **TORCH_ONLY),
    "vgg16_bn": ModelEntry("vgg", 32, torch_fn="vgg16_bn", determinism=False, **TORCH_ONLY),
    "vgg19_bn": ModelEntry("vgg", 32, torch_fn="vgg19_bn", determinism=False, **TORCH_ONLY),
    "alexnet": ModelEntry("alexnet", 64, torch_fn="alexnet", determinism=True, **TORCH_ONLY),
    "resnet18": ModelEntry("resnet", 64, torch_fn="resnet18", determinism=True, **TORCH_ONLY),
    "resnet34": ModelEntry("resnet", 64, torch_fn="resnet34", determinism=False, **TORCH_ONLY),
    "resnet50": ModelEntry("resnet", 64, "ResNet50", "resnet50", 175, 23792612, True),
    "resnet101": ModelEntry("resnet", 64, "ResNet101", "resnet101", None, None, False),
    "resnet152": ModelEntry("resnet", 64, "ResNet152", "resnet152", 515, 58575844, False),
    "resnext50_32x4d": ModelEntry("resnet", 64, torch_fn="resnext50_32x4d", determinism=True, **TORCH_ONLY),
    "resnext101_32x8d": ModelEntry("resnet", 64, torch_fn="resnext101_32x8d", determinism=False, **TORCH_ONLY),
    "resnext101_64x4d": ModelEntry("resnet", 64, torch_fn="resnext101_64x4d", determinism=False, **TORCH_ONLY),
    "wide_resnet50_2": ModelEntry("resnet", 64, torch_fn="wide_resnet50_2", determinism=False, **TORCH_ONLY),
    "wide_resnet101_2": ModelEntry("resnet", 64, torch_fn="wide_resnet101_2", determinism=False, **TORCH_ONLY),
    "densenet121": ModelEntry("densenet", 64, "DenseNet121", "densenet121", 427, 7140004, True),
    "densenet161": ModelEntry("densenet", 64, torch_fn="densenet161", determinism=False, **TORCH_ONLY),
    "densenet169": ModelEntry("densenet", 64, "DenseNet169", "densenet169", 595, 12809380, False),
    "densenet201": ModelEntry("densenet", 64, "DenseNet201", "densenet201", 707, 18514084, False),
    "squeezenet1_0": ModelEntry("squeezenet", 64, torch_fn="squeezenet1_0", determinism=True, **TORCH_ONLY),
    "squeezenet1_1": ModelEntry("squeezenet", 64, torch_fn="squeezenet1_1", determinism=False, **TORCH_ONLY),
    "googlenet": ModelEntry("googlenet", 64, torch_fn="googlenet", determinism=True,
                            torch_kwargs={"aux_logits": True, "init_weights": False, "transform_input": False}, **TORCH_ONLY),
    "inceptionv3": ModelEntry("inception", 75, "InceptionV3", "inception_v3", 311, 22007684, True,
                              {"aux_logits": True, "init_weights": False, "transform_input": False}),
    "mobilenetv2": ModelEntry("mobilenet", 64, "MobileNetV2", "mobilenet_v2", 154, 2386084, True),
    # The other widths Keras publishes (torchvision: 1.0 only).
    **{f"mobilenetv2_a{code}": ModelEntry("mobilenet", 64, "MobileNetV2", None, 154, None, False, keras_kwargs={"alpha": alpha})
       for code, alpha in (("035", 0.35), ("050", 0.5), ("075", 0.75), ("130", 1.3), ("140", 1.4))},
    **{f"efficientnetb{i}": ModelEntry("efficientnet", 64, f"EfficientNetB{i}", f"efficientnet_b{i}", None, None, i in (0, 5))
       for i in range(8)},
    # MobileNetV3 Small and Large (both frameworks), then the variants only Keras publishes.
    "mobilenetv3small": ModelEntry("mobilenetv3", 64, "MobileNetV3Small", "mobilenet_v3_small", 157, 996820, True, keras_pixels=True),
    "mobilenetv3large": ModelEntry("mobilenetv3", 64, "MobileNetV3Large", "mobilenet_v3_large", 187, 3092452, False, keras_pixels=True),
    "mobilenetv3small_minimalistic": ModelEntry("mobilenetv3", 64, "MobileNetV3Small", notop_layers=103, head100_total=498700,
                                                determinism=False, keras_kwargs={"minimalistic": True}, keras_pixels=True,
                                                **KERAS_ONLY),
    "mobilenetv3large_minimalistic": ModelEntry("mobilenetv3", 64, "MobileNetV3Large", notop_layers=139, head100_total=1533708,
                                                determinism=False, keras_kwargs={"minimalistic": True}, keras_pixels=True,
                                                **KERAS_ONLY),
    "mobilenetv3small_a075": ModelEntry("mobilenetv3", 64, "MobileNetV3Small", notop_layers=157, head100_total=626460,
                                        determinism=False, keras_kwargs={"alpha": 0.75}, keras_pixels=True, **KERAS_ONLY),
    "mobilenetv3large_a075": ModelEntry("mobilenetv3", 64, "MobileNetV3Large", notop_layers=187, head100_total=1880836,
                                        determinism=False, keras_kwargs={"alpha": 0.75}, keras_pixels=True, **KERAS_ONLY),
    # EfficientNetV2: B0-B3 Keras only; 64 like V1 (last map 2x2, every stride-2 stage sees an even size).
    **{f"efficientnetv2b{i}": ModelEntry("efficientnetv2", 64, f"EfficientNetV2B{i}", notop_layers=n, head100_total=t,
                                         determinism=i == 0, keras_pixels=True, **KERAS_ONLY)
       for i, (n, t) in enumerate([(270, 6047412), (334, 7059224), (349, 8910274), (409, 13084322)])},
    "efficientnetv2s": ModelEntry("efficientnetv2", 64, "EfficientNetV2S", "efficientnet_v2_s", 513, 20459460, True, keras_pixels=True),
    "efficientnetv2m": ModelEntry("efficientnetv2", 64, "EfficientNetV2M", "efficientnet_v2_m", 740, 53278488, False, keras_pixels=True),
    "efficientnetv2l": ModelEntry("efficientnetv2", 64, "EfficientNetV2L", "efficientnet_v2_l", 1028, 117874948, False, keras_pixels=True),
    "mnasnet0_5": ModelEntry("mnasnet", 64, torch_fn="mnasnet0_5", determinism=True, **TORCH_ONLY),
    "mnasnet0_75": ModelEntry("mnasnet", 64, torch_fn="mnasnet0_75", determinism=False, **TORCH_ONLY),
    "mnasnet1_0": ModelEntry("mnasnet", 64, torch_fn="mnasnet1_0", determinism=False, **TORCH_ONLY),
    "mnasnet1_3": ModelEntry("mnasnet", 64, torch_fn="mnasnet1_3", determinism=False, **TORCH_ONLY),
    # ShuffleNetV2 at 75: its stride-2 layers (conv1, the max pool, each stage's first unit) see
    # 75, 38, 19, 10 and 5, odd and even sizes both, so a wrong padding of either parity shows; the
    # last map is 3x3. 64 would give even sizes only. 75 also shares InceptionV3's input file.
    **{f"shufflenet_v2_x{w}": ModelEntry("shufflenet", 75, torch_fn=f"shufflenet_v2_x{w}", determinism=w == "1_0", **TORCH_ONLY)
       for w in ("0_5", "1_0", "1_5", "2_0")},
    # Keras applications only. Xception at 75 (its minimum is 71): block1 leaves 35x35, so its four
    # `same` max pools see 35, 18, 9 and 5, both parities of TensorFlow's padding rule (an even
    # size pads only the bottom and right, an odd one both sides); 71 would give odd sizes only,
    # and all-even sizes need 101. 75 also shares InceptionV3's input file.
    "xception": ModelEntry("xception", 75, "Xception", notop_layers=132, head100_total=21066380, determinism=True, **KERAS_ONLY),
    "resnet50v2": ModelEntry("resnetv2", 64, "ResNet50V2", notop_layers=190, head100_total=23769700, determinism=True, **KERAS_ONLY),
    "resnet101v2": ModelEntry("resnetv2", 64, "ResNet101V2", notop_layers=377, head100_total=42831460, determinism=False,
                              **KERAS_ONLY),
    "resnet152v2": ModelEntry("resnetv2", 64, "ResNet152V2", notop_layers=564, head100_total=58536548, determinism=False,
                              **KERAS_ONLY),
    # InceptionResNetV2 at 75, its minimum, like InceptionV3 (whose input file it shares): the
    # stem's valid convolutions and pools leave 7x7 for the block35s, 3x3 for the block17s and
    # 1x1 for the block8s. No rule: Keras's residual scales (0.17, 0.1, 0.2) already keep the 40
    # residual sums from growing (measured with the plain formula: logits 5.3, input dependence 0.93).
    "inceptionresnetv2": ModelEntry("inceptionresnetv2", 75, "InceptionResNetV2", notop_layers=780, head100_total=54490436,
                                    determinism=True, **KERAS_ONLY),
    "mobilenet": ModelEntry("mobilenetv1", 64, "MobileNet", notop_layers=86, head100_total=3331364, determinism=True,
                            **KERAS_ONLY),
    "mobilenet_a025": ModelEntry("mobilenetv1", 64, "MobileNet", notop_layers=86, head100_total=244244, determinism=False,
                                 keras_kwargs={"alpha": 0.25}, **KERAS_ONLY),
    "mobilenet_a050": ModelEntry("mobilenetv1", 64, "MobileNet", notop_layers=86, head100_total=880836, determinism=False,
                                 keras_kwargs={"alpha": 0.5}, **KERAS_ONLY),
    "mobilenet_a075": ModelEntry("mobilenetv1", 64, "MobileNet", notop_layers=86, head100_total=1909876, determinism=False,
                                 keras_kwargs={"alpha": 0.75}, **KERAS_ONLY),
}
MODELS = list(MODEL_ENTRIES)
# Auxiliary classifiers whose outputs the references also hold: (module whose output feeds it,
# the classifier's module), run in eval mode on that output. Not InceptionV3's AuxLogits: its
# 5x5 stride-3 pool needs a larger map than Mixed_6e gives at the references' 75x75.
AUX_CLASSIFIERS = {
    "googlenet": [("inception4a", "aux1"), ("inception4d", "aux2")],
}
FLAVORS = ["keras", "torchvision"]
FAMILY = {m: e.family for m, e in MODEL_ENTRIES.items()}
DETERMINISM_MODELS = [m for m, e in MODEL_ENTRIES.items() if e.determinism]
INPUT_SIZE = {m: e.input_size for m, e in MODEL_ENTRIES.items()}
KERAS_APP = {m: e.keras_app for m, e in MODEL_ENTRIES.items()}
KERAS_KWARGS = {m: e.keras_kwargs or {} for m, e in MODEL_ENTRIES.items()}
# The input size of each Keras model's full top (its published weights' size).
KERAS_TOP_SIZE = {m: 299 if m in ("inceptionv3", "xception", "inceptionresnetv2") else 224 for m in MODEL_ENTRIES}
TORCH_FN = {m: e.torch_fn for m, e in MODEL_ENTRIES.items()}
EXPECTED_NOTOP_LAYERS = {m: e.notop_layers for m, e in MODEL_ENTRIES.items()}
EXPECTED_HEAD100_TOTAL = {m: e.head100_total for m, e in MODEL_ENTRIES.items()}
# Keras models whose first layers rescale raw 0-255 pixels (MobileNetV3's Rescaling(1/127.5,
# offset=-1), EfficientNetV2's 1/128 with offset -1 or, for B0-B3, 1/255 and ImageNet's
# Normalization): the common input in [-1, 1] would reach their convolutions as a constant plus
# a sliver of the signal (measured: MobileNetV3Small's logits_input_dependence 3e-5,
# EfficientNetV2's 0.002-0.07), so their Keras flavour runs input_<S>_pixels.npy,
# 127.5 * (x + 1), which the rescaling maps back to (about) the common input.
PIXEL_INPUT = {m for m, e in MODEL_ENTRIES.items() if e.keras_pixels}
LAYERS_INPUT = 96
FREEZE_FRACTIONS = [Fraction(0), Fraction(1, 10), Fraction(2, 10)]
EXPECTED_DENSENET201_TRAINABLE = {"0": 192100, "0.1": 2831140, "0.2": 5056740}

ROLE_FORMULAS = {
    "kernel": "u * sqrt(4 / fan_in)",
    "bias": "0.05 * u",
    "bn_gamma": "1 + 0.1 * u",
    "bn_beta": "0.05 * u",
    "bn_mean": "0.05 * u",
    "bn_var": "1.25 + 0.25 * u",
    "counter": "not generated (framework value, 0)",
}

# Two unit sequences u(i). "hash" is the project's formula (the default,
# documented at the top). "sin" was the first formula; it was replaced because
# "sin" makes every tensor a pure sinusoid in its flat index, so each
# contraction evaluates one Fourier coefficient of the incoming activations:
# the signal fades layer by layer and the logits barely depend on the input
# (see logits_input_dependence in the listings). "hash" is exact integer
# arithmetic (no libm):
#     s = lowbias32(h);  v = lowbias32(UInt32(i) XOR s)
#     u = (Double(v) + 0.5) * 2^-31 - 1        (uniform in (-1, 1), exact)
#     lowbias32(x): x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15;
#                   x *= 0x846ca68b; x ^= x >> 16   (all mod 2^32)
# and uses kernel gain 6 (u has variance 1/3 instead of 1/2).
FORMULAS = {
    "sin": {"kernel_gain": 4.0,
            "u": "sin(Double(i) * 0.7548776662 + phase), phase = Double(h % 10007) / 10007.0 * (2.0 * pi)"},
    "hash": {"kernel_gain": 6.0,
             "u": "(Double(lowbias32(UInt32(i) ^ lowbias32(h))) + 0.5) * 2^-31 - 1"},
}

# Name-based special rules, per formula. Each: id, the models and names it
# covers (full-match regexes on the source name, per flavour), the role it
# assigns and the formula. Only where a model's activations would otherwise
# not stay sane ("sin" needs none).
RESIDUAL_RULE = {
    "id": "damped_residual_gamma",
    "description": "the gamma of the last BatchNormalization of every ResNet bottleneck "
                   "branch (Keras `convS_blockK_3_bn/gamma`, torch `layerN.K.bn3.weight`; "
                   "not the shortcut's `_0_bn` / `downsample.1`)",
    "models": ["resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
               "wide_resnet50_2", "wide_resnet101_2"],
    "patterns": {"keras": r"conv[2-5]_block[0-9]+_3_bn/gamma",
                 "torchvision": r"layer[1-4]\.[0-9]+\.bn3\.weight"},
    "role": "bn_gamma_damped",
    "formula": "0.25 + 0.05 * u",
    "fn": lambda u: 0.25 + 0.05 * u,
}
BASIC_RESIDUAL_RULE = {
    "id": "damped_basic_residual_gamma",
    "description": "the same for ResNet basic blocks: the gamma of each block's second BatchNormalization "
                   "(torch `layerN.K.bn2.weight`; not the shortcut's `downsample.1`)",
    "models": ["resnet18", "resnet34"],
    "patterns": {"keras": r"conv[2-5]_block[0-9]+_2_bn/gamma",
                 "torchvision": r"layer[1-4]\.[0-9]+\.bn2\.weight"},
    "role": "bn_gamma_damped",
    "formula": "0.25 + 0.05 * u",
    "fn": lambda u: 0.25 + 0.05 * u,
}
SE_GATE_RULE = {
    "id": "open_se_gate",
    "description": "the bias of every squeeze-and-excitation expansion (the convolution before the sigmoid gate: "
                   "Keras `blockNx_se_expand/bias`, torch `features.S.K.block.J.fc2.bias`): gates near 0.95 instead "
                   "of 0.5, which otherwise halve the signal in every block until the logits no longer depend on the "
                   "input (input dependence 1e-6 before)",
    "models": [f"efficientnetb{i}" for i in range(8)],
    "patterns": {"keras": r"block[0-9]+[a-z]+_se_expand/bias",
                 "torchvision": r"features\.[0-9]+\.[0-9]+\.block\.[0-9]+\.fc2\.bias"},
    "role": "se_gate_bias",
    "formula": "3 + 0.05 * u",
    "fn": lambda u: 3.0 + 0.05 * u,
    "from_role": "bias",
}
# The same for EfficientNetV2's MBConv stages (its Fused-MBConv stages have no SE); a rule of its
# own so that V1's listings keep theirs.
SE_GATE_V2_RULE = {**SE_GATE_RULE, "id": "open_se_gate_v2",
                   "models": [f"efficientnetv2{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")]}
# Keras models that normalize raw 0-255 pixels themselves (Rescaling(1/255), then Normalization)
# would see the references' inputs in [-1, 1] as almost constant: the normalization's statistics
# get values for pixels scaled by 1/255 (mean near 0, standard deviation near 1/255), so the
# normalized input is close to the raw one again.
INPUT_MEAN_RULE = {
    "id": "input_normalization_mean",
    "description": "the mean of Keras's in-model Normalization of 1/255-scaled input (`normalization/mean`)",
    "models": [f"efficientnetb{i}" for i in range(8)],
    "patterns": {"keras": r"normalization/mean", "torchvision": r"(?!)"},
    "role": "input_mean", "formula": "0.0002 * u", "fn": lambda u: 0.0002 * u, "from_role": "bn_mean",
}
INPUT_VARIANCE_RULE = {
    "id": "input_normalization_variance",
    "description": "the variance of the same Normalization (`normalization/variance`), about (1/255)^2",
    "models": [f"efficientnetb{i}" for i in range(8)],
    "patterns": {"keras": r"normalization/variance", "torchvision": r"(?!)"},
    "role": "input_var", "formula": "1.5e-5 * (1 + 0.1 * u)", "fn": lambda u: 1.5e-5 * (1.0 + 0.1 * u), "from_role": "bn_var",
}
MBCONV_RESIDUAL_RULE = {
    "id": "damped_mbconv_residual_gamma",
    "description": "the gamma of every MBConv block's projection BatchNormalization (Keras `blockNx_project_bn/gamma`, "
                   "torch `features.S.K.block.J.1.weight` of the last unit) in EfficientNetB7 only: without it the residual "
                   "sums of its 55 blocks grow to ~400 and amplify float32 rounding about tenfold per stage (measured: "
                   "1e-6 relative at stage 2, 3e-5 at stage 4, 1e-2 at the top, in zoo against Keras and torchvision alike)",
    "models": ["efficientnetb7"],
    "patterns": {"keras": r"block[0-9]+[a-z]+_project_bn/gamma",
                 "torchvision": r"features\.[0-9]+\.[0-9]+\.block\.[23]\.1\.weight"},
    "role": "bn_gamma_mbconv",
    "formula": "0.6 + 0.05 * u",
    "fn": lambda u: 0.6 + 0.05 * u,
}
MOBILENETV3 = ["mobilenetv3small", "mobilenetv3large", "mobilenetv3small_minimalistic", "mobilenetv3large_minimalistic",
               "mobilenetv3small_a075", "mobilenetv3large_a075"]
HARD_SE_GATE_RULE = {
    "id": "open_hard_se_gate",
    "description": "the bias of every MobileNetV3 squeeze-and-excitation expansion (the convolution before the hard-sigmoid "
                   "gate relu6(x + 3) / 6: Keras `expanded_conv_N_squeeze_excite_conv_1/bias`, torch "
                   "`features.N.block.J.fc2.bias`): gates near 0.75, inside their linear range, instead of 0.5, which halve "
                   "the signal in every block (torchvision MobileNetV3-Small's logits_input_dependence 0.008 before)",
    "models": MOBILENETV3,
    "patterns": {"keras": r"expanded_conv(_[0-9]+)?_squeeze_excite_conv_1/bias",
                 "torchvision": r"features\.[0-9]+\.block\.[0-9]+\.fc2\.bias"},
    "role": "se_hard_gate_bias",
    "formula": "1.5 + 0.05 * u",
    "fn": lambda u: 1.5 + 0.05 * u,
    "from_role": "bias",
}
V2_RESIDUAL_RULE = {
    "id": "damped_efficientnetv2_residual_gamma",
    "description": "the gamma of the projection BatchNormalization of every EfficientNetV2 S/M/L block after the "
                   "first of its stage, the residual branches (Keras `blockN[b-z]_project_bn/gamma`; torch: the last "
                   "unit of block K >= 1, `features.1.K.block.0.1` in the unexpanded Fused-MBConv stage, "
                   "`features.[23].K.block.1.1` in the expanded ones, `features.S.K.block.3.1` in the MBConv stages): "
                   "without it the residual sums of their 40-79 blocks grow until the logits reach 3e3 (Keras M) and "
                   "1.5e5 (torchvision L, over the converter's 1e4 limit), and S's reach 360 with float32 rounding "
                   "amplified to 3e-4 of them in zoo against Keras and torchvision alike; damping every block's "
                   "projection instead (the stages' first blocks too) leaves the logits an input dependence of 2e-5",
    "models": ["efficientnetv2s", "efficientnetv2m", "efficientnetv2l"],
    "patterns": {"keras": r"block[0-9]+[b-z]_project_bn/gamma",
                 "torchvision": r"features\.1\.[1-9][0-9]*\.block\.0\.1\.weight"
                                r"|features\.[23]\.[1-9][0-9]*\.block\.1\.1\.weight"
                                r"|features\.[4-7]\.[1-9][0-9]*\.block\.3\.1\.weight"},
    "role": "bn_gamma_damped",
    "formula": "0.25 + 0.05 * u",
    "fn": lambda u: 0.25 + 0.05 * u,
}
# Keras-only families: their rules have no torchvision pattern.
XCEPTION_RESIDUAL_RULE = {
    "id": "damped_xception_residual_gamma",
    "description": "the gamma of the last BatchNormalization of every Xception residual branch: "
                   "`blockN_sepconv3_bn` in the middle flow (blocks 5-12), `blockN_sepconv2_bn` in the "
                   "strided blocks 2, 3, 4 and 13 (not their shortcuts' auto-named `batch_normalization_K`); "
                   "without it the middle flow's sums reach logits of 1e4",
    "models": ["xception"],
    "patterns": {"keras": r"block([5-9]|1[0-2])_sepconv3_bn/gamma|block(2|3|4|13)_sepconv2_bn/gamma"},
    "role": "bn_gamma_damped",
    "formula": "0.25 + 0.05 * u",
    "fn": lambda u: 0.25 + 0.05 * u,
}
PREACTIVATION_RESIDUAL_RULE = {
    "id": "damped_preactivation_residual_gamma",
    "description": "ResNetV2's residual branches end in a convolution (`_3_conv`) without a batch norm, so "
                   "the gamma of the branch's last BatchNormalization (`convS_blockK_2_bn`, before the 3x3's "
                   "ReLU) is damped instead; without it ResNet152V2's logits reach 3e4",
    "models": ["resnet50v2", "resnet101v2", "resnet152v2"],
    "patterns": {"keras": r"conv[2-5]_block[0-9]+_2_bn/gamma"},
    "role": "bn_gamma_damped",
    "formula": "0.25 + 0.05 * u",
    "fn": lambda u: 0.25 + 0.05 * u,
}
PLAIN_CHAIN_RULE = {
    "id": "raised_plain_chain_gamma",
    "description": "MobileNet (v1) is a plain chain of 27 batch norms without residual connections: with "
                   "the plain formula each norm (moving variance about 1.25) shrinks the signal and the "
                   "logits move by only 3% when the input is zeroed, too little to test the padding and "
                   "strides; a gamma of about 1.15 keeps the signal through the chain",
    "models": ["mobilenet", "mobilenet_a025", "mobilenet_a050", "mobilenet_a075"],
    "patterns": {"keras": r"conv(1|_dw_[0-9]+|_pw_[0-9]+)_bn/gamma"},
    "role": "bn_gamma_raised",
    "formula": "1.15 + 0.1 * u",
    "fn": lambda u: 1.15 + 0.1 * u,
}
RULES_BY_FORMULA = {"sin": [], "hash": [RESIDUAL_RULE, BASIC_RESIDUAL_RULE, SE_GATE_RULE, SE_GATE_V2_RULE, INPUT_MEAN_RULE,
                                         INPUT_VARIANCE_RULE, MBCONV_RESIDUAL_RULE, V2_RESIDUAL_RULE, XCEPTION_RESIDUAL_RULE,
                                         PREACTIVATION_RESIDUAL_RULE, PLAIN_CHAIN_RULE, HARD_SE_GATE_RULE]}
FORMULA = "hash"
RULES = RULES_BY_FORMULA[FORMULA]


def set_formula(name):
    global FORMULA, RULES
    FORMULA = name
    RULES = RULES_BY_FORMULA[name]


def keras_models(models):
    """The models of `models` that Keras applications has."""
    return [m for m in models if KERAS_APP[m]]


def torch_models(models):
    """The models of `models` that torchvision has."""
    return [m for m in models if TORCH_FN[m]]


def flavors_of(model):
    return [f for f, has in (("keras", KERAS_APP[model]), ("torchvision", TORCH_FN[model])) if has]


def fnv1a32(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h ^= b
        h = (h * FNV_PRIME) & 0xFFFFFFFF
    return h


def phase_of(name: str) -> float:
    return (fnv1a32(name.encode("utf-8")) % PHASE_MOD) / float(PHASE_MOD) * (2.0 * math.pi)


def lowbias32(x):
    """Works on Python ints and on uint64 numpy arrays holding 32-bit values."""
    m = 0xFFFFFFFF
    x = x ^ (x >> 16)
    x = (x * 0x7feb352d) & m
    x = x ^ (x >> 15)
    x = (x * 0x846ca68b) & m
    return x ^ (x >> 16)


def unit_values(name, start, stop):
    """u(i) for i in [start, stop), float64."""
    if FORMULA == "sin":
        i = np.arange(start, stop, dtype=np.float64)
        return np.sin(i * STEP + phase_of(name))
    assert stop <= 1 << 32
    seed = np.uint64(lowbias32(fnv1a32(name.encode("utf-8"))))
    v = lowbias32(np.arange(start, stop, dtype=np.uint64) ^ seed)
    return (v.astype(np.float64) + 0.5) * 2.0 ** -31 - 1.0


def _apply_role(u, role, fan_in):
    if role == "kernel":
        return u * math.sqrt(FORMULAS[FORMULA]["kernel_gain"] / fan_in)
    if role in ("bias", "bn_beta", "bn_mean"):
        return 0.05 * u
    if role == "bn_gamma":
        return 1.0 + 0.1 * u
    if role == "bn_var":
        return 1.25 + 0.25 * u
    for rule in RULES:
        if role == rule["role"]:
            return rule["fn"](u)
    raise ValueError(f"no formula for role {role}")


def role_formulas():
    d = dict(ROLE_FORMULAS)
    d["kernel"] = f"u * sqrt({FORMULAS[FORMULA]['kernel_gain']:g} / fan_in)"
    for r in RULES:
        d[r["role"]] = r["formula"]
    return d


def formula_values(name, shape, role, fan_in=None, chunk=1 << 22):
    """float32 array of `shape` filled by the weight formula."""
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = _apply_role(unit_values(name, start, stop), role, fan_in)  # f64 -> f32 (RNE)
    return out.reshape(shape)


def make_input(size):
    shape = (BATCH, size, size, 3)
    index = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    n = np.arange(BATCH, dtype=np.float64).reshape(BATCH, 1, 1, 1)
    return np.sin(0.013 * index + 0.5 * n).astype(np.float32)


def make_pixel_input(size):
    """The common input as raw pixels, 127.5 * (x + 1) (see PIXEL_INPUT)."""
    return (127.5 * (make_input(size).astype(np.float64) + 1.0)).astype(np.float32)


def input_file(model, flavor):
    size = INPUT_SIZE[model]
    return f"input_{size}_pixels.npy" if flavor == "keras" and model in PIXEL_INPUT else f"input_{size}.npy"


def rule_role(flavor, model, name):
    import re
    for rule in RULES:
        if model in rule["models"] and flavor in rule["patterns"] and re.fullmatch(rule["patterns"][flavor], name):
            return rule["role"]
    return None


def tensor_entry(flavor, model, name, shape, role, fan_in):
    """A tensor's listing entry; a rule of RULES may give a batch-norm scale another role."""
    special = rule_role(flavor, model, name)
    if special:
        assert role == next(r.get("from_role", "bn_gamma") for r in RULES if r["role"] == special), (name, role)
        role = special
    entry = {"name": name, "shape": shape, "role": role}
    if fan_in is not None:
        entry["fan_in"] = fan_in
    return entry


def rules_for(model):
    return [{k: v for k, v in r.items() if k != "fn"} for r in RULES if model in r["models"]]


def save_npy(path, array):
    np.save(path, np.ascontiguousarray(array, dtype=np.float32))


def stats(logits, features, logits_zero, features_zero):
    """Magnitudes, plus how much the outputs depend on the input at all:
    input_dependence = max|L(x) - L(0)| / max|L(x)| (L(0): the same model on
    an all-zero input), batch_dependence = max|L(x0) - L(x1)| / max|L(x)|."""
    peak = float(np.abs(logits).max())
    return {
        "logits_max_abs": peak,
        "logits_input_dependence": float(np.abs(logits - logits_zero).max()) / peak,
        "logits_batch_dependence": float(np.abs(logits[0] - logits[1]).max()) / peak,
        "logits_std": float(logits.astype(np.float64).std()),
        "features_max_abs": float(np.abs(features).max()),
        "features_input_dependence": float(np.abs(features - features_zero).max())
        / max(float(np.abs(features).max()), 1e-30),
        "features_nonzero_fraction": float((features != 0).mean()),
    }


def check_sane(tag, logits, features):
    for what, a in (("logits", logits), ("features", features)):
        if not np.all(np.isfinite(a)):
            raise AssertionError(f"{tag}: {what} not finite")
        if np.abs(a).max() >= 1e4:
            raise AssertionError(f"{tag}: {what} max |value| {np.abs(a).max()} >= 1e4")
    if not np.any(features != 0):
        raise AssertionError(f"{tag}: features all zero")
    if np.abs(logits[0] - logits[1]).max() == 0:
        raise AssertionError(f"{tag}: both inputs give the same logits")


def torch_listing(torch, m, model):
    """A torchvision model's state dict as the references list it: name, shape, formula role and
    fan-in per tensor, in state-dict order; also the state dict."""
    nn = torch.nn
    info = {}
    for mname, mod in m.named_modules():
        items = list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False))
        for pname, p in items:
            key = f"{mname}.{pname}" if mname else pname
            shape = list(p.shape)
            fan_in = None
            if isinstance(mod, nn.Conv2d) and pname == "weight":
                role, fan_in = "kernel", int(np.prod(shape[1:]))
            elif isinstance(mod, nn.Linear) and pname == "weight":
                role, fan_in = "kernel", shape[1]
            elif isinstance(mod, (nn.Conv2d, nn.Linear)) and pname == "bias":
                role = "bias"
            elif isinstance(mod, nn.BatchNorm2d):
                role = {"weight": "bn_gamma", "bias": "bn_beta", "running_mean": "bn_mean",
                        "running_var": "bn_var", "num_batches_tracked": "counter"}[pname]
            else:
                raise ValueError(f"torch {model}: unknown tensor {key} in {type(mod).__name__}")
            info[key] = tensor_entry("torchvision", model, key, shape, role, fan_in)
    sd = m.state_dict()
    assert set(sd) == set(info), model
    return [info[k] for k in sd], sd


def write_listing(path, doc):
    """JSON with one tensor per line: small, diffable."""
    tensors = doc.pop("tensors")
    head = json.dumps(doc, indent=1)
    lines = ",\n".join("  " + json.dumps(t, separators=(",", ":")) for t in tensors)
    text = head[:-2] + ',\n "tensors": [\n' + lines + "\n ]\n}\n"
    json.loads(text)  # must stay valid
    with open(path, "w") as f:
        f.write(text)
    doc["tensors"] = tensors


def quiet_env():
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["KERAS_BACKEND"] = "tensorflow"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# Keras worker
# ----------------------------------------------------------------------------

def h5_str_attr(group, name):
    """Read a (possibly chunked: name0, name1, ...) string-array attribute."""
    if name in group.attrs:
        raw = list(group.attrs[name])
    else:
        raw, k = [], 0
        while f"{name}{k}" in group.attrs:
            raw.extend(group.attrs[f"{name}{k}"])
            k += 1
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in raw]


def h5_attr_type(group, name):
    import h5py
    if name not in group.attrs:
        return "chunked"
    t = group.attrs.get_id(name).get_type()
    if isinstance(t, h5py.h5t.TypeStringID):
        if t.is_variable_str():
            return "variable-length string"
        return f"fixed-length string ({t.get_size()} bytes)"
    return type(t).__name__


def keras_worker(args):
    import h5py
    import keras
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    try:
        from keras.src.legacy.saving.legacy_h5_format import _legacy_weights
    except Exception:  # pragma: no cover
        def _legacy_weights(layer):
            return layer.trainable_weights + layer.non_trainable_weights
    out = args.out
    versions = {"python": sys.version.split()[0], "numpy": np.__version__,
                "keras": keras.__version__, "tensorflow": tf.__version__,
                "h5py": h5py.__version__, "backend": keras.backend.backend()}
    meta = {"versions": versions, "models": {}, "observations": []}
    tmpdir = tempfile.mkdtemp(prefix="zoo_refs_keras_")

    def build(model, include_top, size, classes=1000):
        keras.backend.clear_session()
        ctor = getattr(keras.applications, KERAS_APP[model])
        kw = dict(weights=None, include_top=include_top, input_shape=(size, size, 3), **KERAS_KWARGS[model])
        if include_top:
            kw.update(classes=1000, classifier_activation=None)
        return ctor(**kw)

    def listing(m, model):
        tensors, variables = [], []
        for layer in m.layers:
            for w in _legacy_weights(layer):
                name = w.path
                if name != f"{layer.name}/{w.name}":
                    meta["observations"].append(
                        f"keras {model}: weight path {name} != layer/weight {layer.name}/{w.name}")
                shape = [int(s) for s in w.shape]
                cls = type(layer).__name__
                fan_in = None
                if w.name == "kernel" and cls == "Conv2D":
                    role, fan_in = "kernel", int(np.prod(shape[:-1]))
                elif w.name == "kernel" and cls == "Dense":
                    role, fan_in = "kernel", shape[0]
                elif w.name in ("kernel", "depthwise_kernel") and cls == "DepthwiseConv2D":
                    # Keras 3 names it `kernel`; Keras 2 files say `depthwise_kernel:0`.
                    assert shape[3] == 1, shape
                    role, fan_in = "kernel", shape[0] * shape[1]
                elif w.name == "depthwise_kernel" and cls == "SeparableConv2D":
                    assert shape[3] == 1, shape
                    role, fan_in = "kernel", shape[0] * shape[1]
                elif w.name == "pointwise_kernel" and cls == "SeparableConv2D":
                    assert shape[:2] == [1, 1], shape
                    role, fan_in = "kernel", shape[2]
                elif w.name == "bias" and cls in ("Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D"):
                    role = "bias"
                elif cls == "Normalization" and w.name in ("mean", "variance", "count"):
                    # The input normalization's statistics get the batch-norm formulas; its
                    # sample count is bookkeeping (not generated, stays 0).
                    role = {"mean": "bn_mean", "variance": "bn_var", "count": "counter"}[w.name]
                elif cls == "BatchNormalization" and w.name in (
                        "gamma", "beta", "moving_mean", "moving_variance"):
                    role = {"gamma": "bn_gamma", "beta": "bn_beta",
                            "moving_mean": "bn_mean", "moving_variance": "bn_var"}[w.name]
                else:
                    raise ValueError(f"keras {model}: unknown tensor {name} in {cls}")
                tensors.append(tensor_entry("keras", model, name, shape, role, fan_in))
                variables.append(w)
        assert len(variables) == len(m.weights) and \
            {id(v) for v in variables} == {id(v) for v in m.weights}, model
        same_order = all(a is b for a, b in zip(variables, m.weights))
        return tensors, variables, same_order

    def fill(tensors, variables):
        values = []
        for t, v in zip(tensors, variables):
            if t["role"] == "counter":
                values.append(np.asarray(v.numpy()))
                continue
            arr = formula_values(t["name"], t["shape"], t["role"], t.get("fan_in"))
            v.assign(arr)
            values.append(arr)
        return values

    def finalize(m):
        """Layers that keep constants made from their variables (Normalization's mean and
        variance) remake them, as Keras's own loading does after setting the variables."""
        for layer in m.layers:
            if isinstance(layer, keras.layers.Normalization):
                layer.finalize_state()

    def run(m, model, x):
        if FAMILY[model] == "vgg":
            feat_layer = m.get_layer("block5_pool")
        else:
            # The top's pooling: the one GlobalAveragePooling2D, or where squeeze-and-excitation
            # blocks have pools of their own, `avg_pool` (EfficientNet) or the one not named
            # `..._squeeze_excite_avg_pool` (MobileNetV3, whose top pool has an automatic name).
            gaps = [l for l in m.layers if isinstance(l, keras.layers.GlobalAveragePooling2D)]
            named = [l for l in gaps if l.name == "avg_pool"] or \
                [l for l in gaps if not l.name.endswith("squeeze_excite_avg_pool")]
            assert len(gaps) == 1 or len(named) == 1, model
            feat_layer = named[0] if named else gaps[0]
        probe = keras.Model(m.inputs, [m.outputs[0], feat_layer.output])
        logits, feats = probe(x, training=False)
        logits = np.asarray(logits, dtype=np.float32)
        feats = np.asarray(feats, dtype=np.float32)
        if FAMILY[model] == "vgg":  # global average of block5_pool's output
            feats = feats.mean(axis=(1, 2), dtype=np.float32)
        elif feats.ndim == 4:  # a GlobalAveragePooling2D with keepdims=True (MobileNet's top)
            assert feats.shape[1:3] == (1, 1), feats.shape
            feats = feats.reshape(feats.shape[0], feats.shape[3])
        return logits, feats, feat_layer.name

    def verify_h5(m, model, tensors, values):
        """Write a real legacy .h5 with Keras and check names, order, values."""
        path = os.path.join(tmpdir, f"{model}.h5")
        keras.saving.save_model(m, path)
        try:
            with h5py.File(path, "r") as f:
                g = f["model_weights"]
                seen = []
                for ln in h5_str_attr(g, "layer_names"):
                    for wn in h5_str_attr(g[ln], "weight_names"):
                        seen.append((wn, g[ln][wn][()]))
            assert [s[0] for s in seen] == [t["name"] for t in tensors], f"{model}: h5 names"
            for (wn, arr), t, v in zip(seen, tensors, values):
                assert list(arr.shape) == t["shape"] and np.array_equal(arr, v), f"{model}: {wn}"
        finally:
            os.remove(path)
        return len(seen)

    todo = keras_models(args.models)
    for model in todo:
        t0 = time.time()
        size = INPUT_SIZE[model]
        x = np.load(os.path.join(out, input_file(model, "keras")))
        m = build(model, True, size)
        tensors, variables, same_order = listing(m, model)
        values = fill(tensors, variables)
        finalize(m)
        logits, feats, feat_layer = run(m, model, x)
        logits_zero, feats_zero = run(m, model, np.zeros_like(x))[:2]
        check_sane(f"keras {model}", logits, feats)
        n_h5 = verify_h5(m, model, tensors, values)
        save_npy(os.path.join(out, f"{model}_keras_logits.npy"), logits)
        save_npy(os.path.join(out, f"{model}_keras_features.npy"), feats)
        total = sum(int(np.prod(t["shape"])) for t in tensors)
        trainable = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
        st = stats(logits, feats, logits_zero, feats_zero)
        doc = {
            "model": model, "flavor": "keras", "input_size": size,
            "input": input_file(model, "keras"), "input_layout": "NHWC", "batch": BATCH,
            "constructor": f"keras.applications.{KERAS_APP[model]}(weights=None, include_top=True, "
                           f"classes=1000, classifier_activation=None, input_shape=({size}, {size}, 3)"
                           + "".join(f", {k}={v}" for k, v in KERAS_KWARGS[model].items()) + ")",
            "logits": f"{model}_keras_logits.npy", "logits_shape": list(logits.shape),
            "features": f"{model}_keras_features.npy", "features_shape": list(feats.shape),
            "features_definition": ("global average over H,W of block5_pool's output"
                                    if FAMILY[model] == "vgg" else f"output of the GlobalAveragePooling2D layer '{feat_layer}'"),
            "formula": FORMULA, "u": FORMULAS[FORMULA]["u"],
            "rules": rules_for(model), "roles": role_formulas(),
            "tensor_names": "legacy .h5 spelling: weight_names inside each layer group, "
                            "in the file's layer_names order (= model.layers), each layer's "
                            "trainable + non-trainable weights (checked against a file Keras wrote)",
            "parameter_count": total, "trainable_parameter_count": trainable,
            **{k: st[k] for k in ("logits_max_abs", "features_max_abs", "logits_input_dependence",
                                    "features_input_dependence", "logits_batch_dependence", "features_nonzero_fraction")},
            "versions": versions,
            "tensors": tensors,
        }
        write_listing(os.path.join(out, f"{model}_keras.json"), doc)
        if not same_order:
            meta["observations"].append(f"keras {model}: legacy .h5 tensor order differs from model.weights")
        meta["models"][model] = {"stats": st, "listing_order_equals_model_weights": same_order,
                                 "h5_tensors_checked": n_h5, "seconds": round(time.time() - t0, 1)}
        if model == "inceptionv3":
            convs = [l.name for l in m.layers if type(l).__name__ == "Conv2D"]
            idx = [int(n.rsplit("_", 1)[1]) if "_" in n[len("conv2d"):] else 0 for n in convs]
            meta["models"][model]["conv2d_suffixes_in_model_layers_order"] = idx
            meta["observations"].append(
                "keras inceptionv3: conv2d suffixes in model.layers order are "
                + ("sorted (= creation order)" if idx == sorted(idx) else "NOT sorted: model.layers "
                   "(depth-sorted) order differs from creation order"))
        log(f"keras {model}: {time.time() - t0:.1f}s {st}")
        del m, variables, values

    if not args.skip_layers:
        meta["layers"] = keras_layers_part(args, keras, h5py, build, tmpdir, meta)

    # Determinism: reload the .npy files, rebuild one model per family, compare.
    det = {}
    for model in [m for m in DETERMINISM_MODELS if m in todo]:
        size = INPUT_SIZE[model]
        x = np.load(os.path.join(out, input_file(model, "keras")))
        m = build(model, True, size)
        tensors, variables, _ = listing(m, model)
        fill(tensors, variables)
        finalize(m)
        logits, feats, _ = run(m, model, x)
        ref_l = np.load(os.path.join(out, f"{model}_keras_logits.npy"))
        ref_f = np.load(os.path.join(out, f"{model}_keras_features.npy"))
        same = bool(np.array_equal(ref_l, logits) and np.array_equal(ref_f, feats))
        det[model] = {"identical": same,
                      "max_abs_diff": float(max(np.abs(ref_l - logits).max(), np.abs(ref_f - feats).max()))}
        log(f"keras determinism {model}: {det[model]}")
    meta["determinism"] = det
    os.rmdir(tmpdir)
    with open(args.meta, "w") as f:
        json.dump(meta, f)
    bad = [k for k, v in det.items() if not v["identical"]]
    if bad:
        raise SystemExit(f"keras: not deterministic: {bad}")


def keras_layers_part(args, keras, h5py, build, tmpdir, meta):
    import tf_keras
    res = {"input_size": LAYERS_INPUT, "models": {},
           "writer": "keras.saving.save_model(model, '<tmp>.h5') (Keras 3 refuses "
                     "model.save_weights('<tmp>.h5'): the filename must end in .weights.h5); "
                     "layer_names read from the '/model_weights' group. Also: "
                     "tf_keras (Keras 2) model.save_weights('<tmp>.h5'), layer_names read from the root group.",
           "tf_keras_version": tf_keras.__version__}
    try:
        build("vgg16", False, LAYERS_INPUT).save_weights(os.path.join(tmpdir, "probe.h5"))
        res["writer"] = "model.save_weights('<tmp>.h5') (Keras 3 accepted the extension)"
        os.remove(os.path.join(tmpdir, "probe.h5"))
    except ValueError as e:
        res["keras3_save_weights_h5_error"] = str(e).replace(tmpdir, "<tmp>")

    def head(base):
        x = keras.layers.GlobalAveragePooling2D()(base.output)
        x = keras.layers.Dropout(0.5)(x)
        x = keras.layers.Dense(100)(x)
        return keras.Model(base.inputs, x)

    def counts(m):
        tr = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
        nt = sum(int(np.prod(w.shape)) for w in m.non_trainable_weights)
        return {"total": tr + nt, "trainable": tr, "non_trainable": nt}

    for model in keras_models(args.models):
        t0 = time.time()
        base = build(model, False, LAYERS_INPUT)
        names = [l.name for l in base.layers]
        path = os.path.join(tmpdir, f"{model}_notop.h5")
        keras.saving.save_model(base, path)
        with h5py.File(path, "r") as f:
            g = f["model_weights"]
            h5_names = h5_str_attr(g, "layer_names")
            h5_type = h5_attr_type(g, "layer_names")
            first_w = next(w for ln in h5_names for w in h5_str_attr(g[ln], "weight_names"))
            keras_version_attr = g.attrs.get("keras_version")
        os.remove(path)
        assert EXPECTED_NOTOP_LAYERS[model] in (None, len(names)), (model, len(names))
        assert len(h5_names) == len(names), model
        head_counts = counts(head(base))
        assert EXPECTED_HEAD100_TOTAL[model] in (None, head_counts["total"]), (model, head_counts)
        entry = {"layer_count": len(names), "model_layers": names, "h5_layer_names": h5_names,
                 "h5_layer_names_equal_model_layers": h5_names == names,
                 "h5_layer_names_hdf5_type": h5_type,
                 "h5_keras_version_attr": keras_version_attr.decode() if isinstance(keras_version_attr, bytes)
                 else str(keras_version_attr),
                 "h5_first_weight_name": first_w,
                 "parameter_counts": {"notop96_gap_dropout_dense100": head_counts}}
        # Keras 2 (tf_keras) writes the classic .h5 the published weight files come from.
        tf_keras.backend.clear_session()
        tb = getattr(tf_keras.applications, KERAS_APP[model])(
            weights=None, include_top=False, input_shape=(LAYERS_INPUT, LAYERS_INPUT, 3), **KERAS_KWARGS[model])
        path2 = os.path.join(tmpdir, f"{model}_tfkeras.h5")
        tb.save_weights(path2)
        with h5py.File(path2, "r") as f:
            k2_names = h5_str_attr(f, "layer_names")
            k2_type = h5_attr_type(f, "layer_names")
            k2_first_w = next(w for ln in k2_names for w in h5_str_attr(f[ln], "weight_names"))
        os.remove(path2)
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(names, k2_names)) if a != b]
        entry["tf_keras_h5"] = {
            "layer_count": len(k2_names),
            "layer_names_hdf5_type": k2_type,
            "first_weight_name": k2_first_w,
            "differences_from_model_layers": [{"index": i, "keras3": a, "tf_keras": b} for i, a, b in diff],
        }
        if len(diff) > 1:  # more than the input layer's name: keep the whole list
            entry["tf_keras_h5"]["layer_names"] = k2_names
        del tb
        res["models"][model] = entry
        log(f"keras layers {model}: {len(names)} layers, head100 {head_counts}, "
            f"tf_keras diffs {len(diff)} ({time.time() - t0:.1f}s)")

    # Full-top parameter counts (default sizes).
    for model in keras_models(args.models):
        size = KERAS_TOP_SIZE[model]
        res["models"][model]["parameter_counts"][f"keras_top_{size}"] = counts(build(model, True, size))

    # DenseNet201 partial freezing.
    if "densenet201" in args.models:
        fr = {"rule": "base = DenseNet201(include_top=False, weights=None, input_shape=(96,96,3)); "
                      "n = len(base.layers) (707, the input layer included); k = ceil(n*p) (exact "
                      "rational arithmetic); layer.trainable = False for base.layers[:n-k]; then "
                      "GlobalAveragePooling2D, Dropout(0.5), Dense(100) (trainable) on top; "
                      "trainable = sum of sizes of model.trainable_weights (a frozen "
                      "BatchNormalization's gamma/beta count as non-trainable)",
              "counts": {}}
        for p in FREEZE_FRACTIONS:
            base = build("densenet201", False, LAYERS_INPUT)
            n = len(base.layers)
            k = math.ceil(n * p)
            for layer in base.layers[:n - k]:
                layer.trainable = False
            c = counts(head(base))
            key = str(float(p)) if p else "0"
            fr["counts"][key] = {"trainable_top_layers": k, "frozen_layers": n - k, **c}
            assert c["trainable"] == EXPECTED_DENSENET201_TRAINABLE[key], (key, c)
        res["densenet201_freezing"] = fr
    return res


# ----------------------------------------------------------------------------
# torch worker
# ----------------------------------------------------------------------------

def torch_worker(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out
    versions = {"python": sys.version.split()[0], "numpy": np.__version__,
                "torch": torch.__version__, "torchvision": torchvision.__version__}
    meta = {"versions": versions, "models": {}, "observations": []}

    def build(model, aux=True):
        fn = getattr(torchvision.models, TORCH_FN[model])
        kwargs = dict(MODEL_ENTRIES[model].torch_kwargs or {})
        if "aux_logits" in kwargs:
            kwargs["aux_logits"] = aux
        return fn(weights=None, **kwargs).eval()

    def fill(m, tensors, sd):
        # An OrderedDict with the state dict's per-module metadata: MNASNet refuses a state dict
        # without its version.
        from collections import OrderedDict
        new = OrderedDict()
        new._metadata = getattr(sd, "_metadata", None)
        for t in tensors:
            if t["role"] == "counter":
                new[t["name"]] = sd[t["name"]]
            else:
                new[t["name"]] = torch.from_numpy(
                    formula_values(t["name"], t["shape"], t["role"], t.get("fan_in")))
        m.load_state_dict(new, strict=True)

    def run(m, model, x_nhwc):
        x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
        store = {}
        if FAMILY[model] in ("resnet", "inception", "googlenet", "efficientnet", "efficientnetv2"):
            h = m.avgpool.register_forward_hook(
                lambda mod, i, o: store.__setitem__("f", torch.flatten(o, 1).clone()))
        elif FAMILY[model] == "densenet":
            h = m.features.register_forward_hook(
                lambda mod, i, o: store.__setitem__(
                    "f", torch.flatten(F.adaptive_avg_pool2d(F.relu(o), (1, 1)), 1).clone()))
        else:  # vgg, alexnet, mobilenet, squeezenet, mnasnet, shufflenet: mean over H, W of the trunk's output
            trunk = getattr(m, {"mnasnet": "layers", "shufflenet": "conv5"}.get(FAMILY[model], "features"))
            h = trunk.register_forward_hook(
                lambda mod, i, o: store.__setitem__(
                    "f", torch.flatten(F.adaptive_avg_pool2d(o, (1, 1)), 1).clone()))
        with torch.no_grad():
            logits = m(x)
        h.remove()
        assert isinstance(logits, torch.Tensor), type(logits)
        return logits.numpy().astype(np.float32), store["f"].numpy().astype(np.float32)

    feature_def = {
        "vgg": "mean over H,W of features(x) (adaptive_avg_pool2d(features(x), 1)); NOT what the "
               "classifier sees (that is AdaptiveAvgPool2d(7) then flatten, 25088 wide)",
        "alexnet": "mean over H,W of features(x) (adaptive_avg_pool2d(features(x), 1)); NOT what the "
                   "classifier sees (that is AdaptiveAvgPool2d(6) then flatten, 9216 wide)",
        "resnet": "flatten(avgpool output)",
        "inception": "flatten(avgpool output) (before dropout and fc)",
        "googlenet": "flatten(avgpool output) (before dropout and fc)",
        "efficientnet": "flatten(avgpool output) (before dropout and classifier.1)",
        "efficientnetv2": "flatten(avgpool output) (before dropout and classifier.1)",
        "mobilenet": "mean over H,W of features(x) (adaptive_avg_pool2d(features(x), 1))",
        "mnasnet": "mean over H,W of layers(x) (what the classifier sees)",
        "mobilenetv3": "mean over H,W of features(x) (avgpool's output, what classifier.0 sees)",
        "shufflenet": "mean over H,W of conv5's output (what fc sees)",
        "squeezenet": "mean over H,W of features(x) (adaptive_avg_pool2d(features(x), 1)); the classifier "
                      "applies its 1x1 convolution and ReLU before pooling",
    }
    def auxiliary_logits(m, x_nhwc, source, classifier):
        """The auxiliary classifier `classifier` on the output of module `source`, in eval mode."""
        x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
        store = {}
        h = getattr(m, source).register_forward_hook(lambda mod, i, o: store.__setitem__("o", o.clone()))
        with torch.no_grad():
            m(x)
            h.remove()
            return getattr(m, classifier)(store["o"]).numpy().astype(np.float32)

    for model in torch_models(args.models):
        t0 = time.time()
        size = INPUT_SIZE[model]
        x = np.load(os.path.join(out, f"input_{size}.npy"))
        m = build(model)
        tensors, sd = torch_listing(torch, m, model)
        fill(m, tensors, sd)
        logits, feats = run(m, model, x)
        logits_zero, feats_zero = run(m, model, np.zeros_like(x))[:2]
        check_sane(f"torchvision {model}", logits, feats)
        save_npy(os.path.join(out, f"{model}_torchvision_logits.npy"), logits)
        save_npy(os.path.join(out, f"{model}_torchvision_features.npy"), feats)
        st = stats(logits, feats, logits_zero, feats_zero)
        total = sum(int(np.prod(t["shape"])) for t in tensors if t["role"] != "counter")
        params = sum(p.numel() for p in m.parameters())
        ctor = f"torchvision.models.{TORCH_FN[model]}(weights=None" + "".join(
            f", {k}={v}" for k, v in (MODEL_ENTRIES[model].torch_kwargs or {}).items()) + ").eval()"
        doc = {
            "model": model, "flavor": "torchvision", "input_size": size,
            "input": f"input_{size}.npy", "input_layout": "NHWC in the file; torch ran x.transpose(0, 3, 1, 2) (NCHW)",
            "batch": BATCH, "constructor": ctor,
            "logits": f"{model}_torchvision_logits.npy", "logits_shape": list(logits.shape),
            "features": f"{model}_torchvision_features.npy", "features_shape": list(feats.shape),
            "features_definition": feature_def.get(
                FAMILY[model], "flatten(adaptive_avg_pool2d(relu(features(x)), 1)) (what the classifier sees)"),
            "formula": FORMULA, "u": FORMULAS[FORMULA]["u"],
            "rules": rules_for(model), "roles": role_formulas(),
            "tensor_names": "state_dict keys in state_dict order, num_batches_tracked included (role counter)",
            "parameter_count": total, "trainable_parameter_count": params,
            **{k: st[k] for k in ("logits_max_abs", "features_max_abs", "logits_input_dependence",
                                    "features_input_dependence", "logits_batch_dependence", "features_nonzero_fraction")},
            "versions": versions,
            "tensors": tensors,
        }
        if model in AUX_CLASSIFIERS:
            doc["auxiliary_logits"] = {}
            for source, classifier in AUX_CLASSIFIERS[model]:
                file = f"{model}_torchvision_{classifier}_logits.npy"
                save_npy(os.path.join(out, file), auxiliary_logits(m, x, source, classifier))
                doc["auxiliary_logits"][classifier] = file
        write_listing(os.path.join(out, f"{model}_torchvision.json"), doc)
        meta["models"][model] = {"stats": st, "seconds": round(time.time() - t0, 1)}
        log(f"torch {model}: {time.time() - t0:.1f}s {st}")
        del m, sd

    counts = {}
    for model in torch_models(args.models):
        has_aux = "aux_logits" in (MODEL_ENTRIES[model].torch_kwargs or {})
        variants = [("", True)] + ([("_without_aux", False)] if has_aux else [])
        for suffix, aux in variants:
            m = build(model, aux)
            params = sum(p.numel() for p in m.parameters())
            bufs = sum(b.numel() for n, b in m.named_buffers() if not n.endswith("num_batches_tracked"))
            counts[model + suffix] = {"parameters": params, "bn_running_stats": bufs,
                                      "state_dict_floats": params + bufs}
    meta["parameter_counts"] = counts

    det = {}
    for model in [m for m in DETERMINISM_MODELS if m in torch_models(args.models)]:
        size = INPUT_SIZE[model]
        x = np.load(os.path.join(out, f"input_{size}.npy"))
        m = build(model)
        tensors, sd = torch_listing(torch, m, model)
        fill(m, tensors, sd)
        logits, feats = run(m, model, x)
        ref_l = np.load(os.path.join(out, f"{model}_torchvision_logits.npy"))
        ref_f = np.load(os.path.join(out, f"{model}_torchvision_features.npy"))
        same = bool(np.array_equal(ref_l, logits) and np.array_equal(ref_f, feats))
        det[model] = {"identical": same,
                      "max_abs_diff": float(max(np.abs(ref_l - logits).max(), np.abs(ref_f - feats).max()))}
        log(f"torch determinism {model}: {det[model]}")
    meta["determinism"] = det
    with open(args.meta, "w") as f:
        json.dump(meta, f)
    bad = [k for k, v in det.items() if not v["identical"]]
    if bad:
        raise SystemExit(f"torch: not deterministic: {bad}")


# ----------------------------------------------------------------------------
# Orchestration
# ----------------------------------------------------------------------------

def formula_vectors():
    """A few worked values so Swift can unit-test its formula implementation."""
    cases = [("conv1_conv/kernel", [7, 7, 3, 64], "kernel", 147),
             ("conv1.weight", [64, 3, 7, 7], "kernel", 147),
             ("features.norm5.running_var", [1024], "bn_var", None),
             ("bn_Conv1/gamma", [32], "bn_gamma", None),
             ("classifier.0.weight", [4096, 25088], "kernel", 25088)]
    res = []
    for name, shape, role, fan_in in cases:
        n = int(np.prod(shape))
        idx = [0, 1, 2, 3, n // 2, n - 1]
        full = None if n > 1 << 20 else formula_values(name, shape, role, fan_in).reshape(-1)
        vals = []
        for i in idx:
            u = float(unit_values(name, i, i + 1)[0])
            v = np.float32(_apply_role(np.float64(u), role, fan_in))
            if full is not None:
                assert full[i] == v, (name, i)
            vals.append({"index": i, "u": u, "value": float(v), "value_bits": f"0x{v.view(np.uint32):08x}"})
        res.append({"name": name, "shape": shape, "role": role, "fan_in": fan_in,
                    "fnv1a32": fnv1a32(name.encode()), "phase": phase_of(name),
                    "lowbias32_of_fnv1a32": lowbias32(fnv1a32(name.encode())), "values": vals})
    return res


def write_readme(out):
    """The folder's README, from the listings and keras_layers.json in it."""
    with open(os.path.join(out, "keras_layers.json")) as f:
        facts = json.load(f)
    listings = {}
    for model in MODELS:
        for flavor in flavors_of(model):
            path = os.path.join(out, f"{model}_{flavor}.json")
            if os.path.exists(path):
                with open(path) as f:
                    listings[(model, flavor)] = json.load(f)
    lines = []
    w = lines.append
    w("# Model parity references")
    w("")
    w("Generated by `converters/make_model_references.py`; do not edit by hand. "
      "Every model of the zoo was built by the real framework, filled with the deterministic "
      "weights below, run on the inputs below, and its outputs were saved here. The Swift tests "
      "evaluate the same formula under the same source names and layouts, load the values through "
      "zoo's weight-import path, run the same inputs and compare.")
    w("")
    w("## Command")
    w("")
    w("```")
    w("CUDA_VISIBLE_DEVICES= TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=tensorflow \\")
    w("  python converters/make_model_references.py      # writes this folder")
    w("```")
    w("")
    w("Needs a Python with the versions listed below (CPU only). It runs the Keras part and the "
      "torch part in two child processes, about 2.5 minutes on 2 cores (measured: 145 s).")
    w("")
    w("## Versions")
    w("")
    vs = facts.get("versions", {})
    for k in sorted(vs):
        w(f"- {k} {vs[k]}")
    w("")
    w("## Weight formula")
    w("")
    w(f"Formula variant: `{FORMULA}` (`--formula {FORMULA}`; the project's formula is `hash`).")
    w("")
    w("For a tensor with source name `name` (UTF-8) and source shape `shape`, element index `i` in "
      "row-major order over `shape` in the framework's own layout (Keras: conv kernel HWIO "
      "`[kh, kw, in, out]`, depthwise `[kh, kw, C, 1]`, Dense `[in, out]`; torch: conv OIHW "
      "`[out, in/groups, kh, kw]`, depthwise `[C, 1, kh, kw]`, Linear `[out, in]`):")
    w("")
    w("```")
    w("h     = FNV-1a 32-bit of name's UTF-8 bytes  (h = 2166136261; per byte b: h = ((h ^ b) * 16777619) mod 2^32)")
    if FORMULA == "sin":
        w("phase = Double(h % 10007) / 10007.0 * (2.0 * pi)")
        w("u(i)  = sin(Double(i) * 0.7548776662 + phase)    // float64; one multiply, one add, no FMA")
    else:
        w("lowbias32(x): x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16   // UInt32, wrapping")
        w("v     = lowbias32(UInt32(i) ^ lowbias32(h))")
        w("u(i)  = (Double(v) + 0.5) * 2^-31 - 1             // exact; uniform in (-1, 1)")
    w("value = Float(f(u))                               // one float64 -> float32 rounding")
    w("```")
    w("")
    gain = FORMULAS[FORMULA]["kernel_gain"]
    w("| role | f(u) | which tensors |")
    w("|---|---|---|")
    w(f"| `kernel` | `u * sqrt({gain:g}.0 / fan_in)` (the float64 scalar `sqrt({gain:g}.0 / fan_in)` first, then one multiply) | Keras `kernel` (Conv2D, Dense, and DepthwiseConv2D, whose weight Keras 3 also calls `kernel`); torch Conv2d/Linear `weight`. `fan_in` = Keras conv kh·kw·in, depthwise kh·kw, Dense in; torch conv in/groups·kh·kw (depthwise kh·kw), Linear in. Given in the listing. |")
    w("| `bias` | `0.05 * u` | conv / dense bias |")
    w("| `bn_gamma` | `1.0 + 0.1 * u` | Keras `gamma`, torch BatchNorm `weight` |")
    w("| `bn_beta` | `0.05 * u` | Keras `beta`, torch BatchNorm `bias` |")
    w("| `bn_mean` | `0.05 * u` | `moving_mean`, `running_mean` |")
    w("| `bn_var` | `1.25 + 0.25 * u` | `moving_variance`, `running_var` |")
    w("| `counter` | not generated (stays 0) | torch `num_batches_tracked` |")
    for r in RULES:
        w(f"| `{r['role']}` | `{r['formula']}` | rule `{r['id']}`: {r['description']} |")
    w("")
    if RULES:
        w("Special rules (also in every affected listing under `rules`; the listing already gives "
          "the affected tensors their rule's role, so Swift needs no name matching):")
        w("")
        for r in RULES:
            torch = f", torch names `{r['patterns']['torchvision']}`" if "torchvision" in r["patterns"] else ""
            w(f"- `{r['id']}` ({', '.join(r['models'])}): {r['description']}. Keras names "
              f"`{r['patterns']['keras']}`{torch} (full-match regexes); value `{r['formula']}`.")
        w("")
    else:
        w("No special rules: every model stays within the sanity bounds (finite, max |value| < 1e4, "
          "features not all zero) with the plain formula.")
        w("")
    if FORMULA == "sin":
        w("numpy's float64 `sin` agreed bit for bit with the C library's `sin` (glibc) on 4 million "
          "sampled arguments, including indices around 1e8 (VGG16's `classifier.0.weight`), so a Swift "
          "`Foundation.sin` on Linux should reproduce the values exactly. `formula_vectors.json` has "
          "worked values (hash, phase, u, value, value bits) for a few names to unit-test an implementation.")
        w("")
        w("Caveat: with `sin`, every tensor is a pure sinusoid of its flat index, so each layer "
          "correlates its input with a single frequency and the signal fades with depth; the outputs "
          "are largely set by the biases and BN shifts. See the input-dependence columns below: for "
          "some models the logits move by less than float32 noise when the input is replaced by zeros, "
          "so those references cannot catch errors in the input path (padding, pooling, strides). "
          "`--formula hash` (integer hash, exact, no libm) does not have this problem.")
    else:
        w("The hash variant is exact integer arithmetic; no libm is involved. `formula_vectors.json` has "
          "worked values (hash, seed, u, value, value bits) for a few names to unit-test an implementation.")
    w("")
    w("Input: `x[n, h, w, c] = Float(sin(0.013 * Double(index) + 0.5 * Double(n)))`, `index` the "
      "row-major NHWC element index, batch 2. torch ran the same values transposed to NCHW. Keras models that "
      "rescale raw pixels themselves (MobileNetV3's `Rescaling(1/127.5, offset=-1)`, EfficientNetV2's "
      "`Rescaling(1/128, offset=-1)` or, B0-B3, `Rescaling(1/255)` and ImageNet's `Normalization`) ran "
      "`input_<S>_pixels.npy`, `127.5 * (x + 1)`, which that rescaling maps back to `x` or near it "
      "(the listing's `input` names the file).")
    w("")
    w("## Files")
    w("")
    w("| file | what |")
    w("|---|---|")
    w("| `input_<S>.npy` | float32 `[2, S, S, 3]` NHWC input (S = 32, 64, 75) |")
    w("| `input_<S>_pixels.npy` | the same as raw pixels, `127.5 * (x + 1)`, for Keras models that rescale pixels themselves |")
    w("| `<model>_<flavor>_logits.npy` | float32 `[2, 1000]`: Keras built with `classifier_activation=None`, torch eval forward |")
    w("| `<model>_<flavor>_features.npy` | float32 `[2, C]` pooled pre-classifier features (definition in the listing) |")
    w("| `<model>_<flavor>.json` | listing: constructor, input size, rules, role formulas, every tensor of the weight file in the framework's order (`name`, `shape`, `role`, `fan_in` for kernels), parameter counts, output magnitudes, versions |")
    w("| `keras_layers.json` | Keras `include_top=False` layer lists at 96x96 (`model.layers` and the `layer_names` of a legacy `.h5` Keras wrote, plus a tf_keras-written one), parameter counts (GAP+Dropout+Dense(100) head, full tops for Keras and torchvision), DenseNet201 partial-freezing counts |")
    w("| `formula_vectors.json` | worked examples of the weight formula |")
    w("")
    w("Models and sizes: " + ", ".join(f"{m} {INPUT_SIZE[m]}" for m in MODELS) + ". "
      "VGG16 at 32: Keras' Flatten then sees 1x1x512, so Keras `fc1/kernel` is `[512, 4096]`, "
      "while torchvision's AdaptiveAvgPool2d(7) always feeds a 25088-wide `classifier.0`; that is "
      "how the two architectures are.")
    w("")
    w("Tensor names: Keras listings spell names as a legacy `.h5` file does (Keras 3: "
      "`<layer>/<weight>`, e.g. `conv1_conv/kernel`; the script writes such a file with Keras and "
      "checks names, order and values against it). Keras 2 files (tf_keras, the published weight "
      "files) spell them `<layer>/<weight>:0`. InceptionV3's Keras names are the auto-names of a "
      "fresh session (`conv2d`, `conv2d_1`, ..., `batch_normalization`, ...). torch listings are "
      "`state_dict()` keys in order.")
    w("")
    w("## Output magnitudes")
    w("")
    w("`input dependence` = max|L(x) - L(0)| / max|L(x)| (L(0): logits for an all-zero input); "
      "`batch dependence` = max|L(x0) - L(x1)| / max|L(x)|. Small values mean the logits are mostly "
      "fixed by the weights (biases, BN shifts) and only weakly test the input path.")
    w("")
    w("| model | flavour | S | logits max abs | features max abs | features nonzero | input dependence | batch dependence |")
    w("|---|---|---|---|---|---|---|---|")
    def figure(doc, key, spec):
        return format(doc[key], spec) if key in doc else "-"

    for (model, flavor), s in listings.items():
        w(f"| {model} | {flavor} | {INPUT_SIZE[model]} | {figure(s, 'logits_max_abs', '.4g')} | "
          f"{figure(s, 'features_max_abs', '.4g')} | {figure(s, 'features_nonzero_fraction', '.2f')} | "
          f"{figure(s, 'logits_input_dependence', '.3g')} | {figure(s, 'logits_batch_dependence', '.3g')} |")
    w("")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def update_framework_facts(out, metas, models):
    """Merges what this run's workers learned into keras_layers.json: the entries of the models
    that ran are replaced, the others kept, so one model can be regenerated alone."""
    path = os.path.join(out, "keras_layers.json")
    facts = {"models": {}}
    if os.path.exists(path):
        with open(path) as f:
            facts = json.load(f)
    if "keras" in metas and "layers" in metas["keras"]:
        layers = metas["keras"]["layers"]
        for key, value in layers.items():
            if key != "models":
                facts[key] = value
        for model, entry in layers["models"].items():
            old = facts["models"].get(model, {}).get("parameter_counts", {})
            for key in ("torchvision_top", "torchvision_top_without_aux"):
                if key in old:
                    entry["parameter_counts"].setdefault(key, old[key])
            facts["models"][model] = entry
        seen = set(facts.get("observations", []))
        facts["observations"] = facts.get("observations", []) + [
            o for o in metas["keras"]["observations"] if o not in seen]
    if "torch" in metas:
        counts = metas["torch"]["parameter_counts"]
        for model in torch_models(models):
            entry = facts["models"].setdefault(model, {"parameter_counts": {}})
            entry["parameter_counts"]["torchvision_top"] = counts[model]
            if f"{model}_without_aux" in counts:
                entry["parameter_counts"]["torchvision_top_without_aux"] = counts[f"{model}_without_aux"]
    versions = dict(facts.get("versions", {}))
    for worker in metas.values():
        versions.update(worker["versions"])
    if "tf_keras_version" in facts:
        versions["tf_keras"] = facts["tf_keras_version"]
    facts["versions"] = versions
    facts["models"] = {m: facts["models"][m] for m in MODELS if m in facts["models"]}
    with open(path, "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(os.path.dirname(here), "Tests", "ZooModelsTests", "References")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=default_out, help="output folder (default: %(default)s)")
    ap.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    ap.add_argument("--flavors", nargs="+", default=FLAVORS, choices=FLAVORS)
    ap.add_argument("--skip-layers", action="store_true", help="skip keras_layers.json")
    ap.add_argument("--serial", action="store_true", help="run the two workers one after the other")
    ap.add_argument("--threads", type=int, default=0,
                    help="threads per worker (default: cores/2 in parallel mode, all cores in serial mode)")
    ap.add_argument("--formula", choices=sorted(FORMULAS), default="hash",
                    help="unit sequence u(i): 'hash' (the project's formula, default) or 'sin' "
                         "(the first formula, kept to show why it was replaced)")
    ap.add_argument("--worker", choices=["keras", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--meta", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.models = [m for m in MODELS if m in args.models]
    set_formula(args.formula)
    quiet_env()

    if args.worker == "keras":
        return keras_worker(args)
    if args.worker == "torch":
        return torch_worker(args)

    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    for size in sorted({INPUT_SIZE[m] for m in args.models}):
        save_npy(os.path.join(args.out, f"input_{size}.npy"), make_input(size))
    for size in sorted({INPUT_SIZE[m] for m in args.models if m in PIXEL_INPUT and "keras" in args.flavors}):
        save_npy(os.path.join(args.out, f"input_{size}_pixels.npy"), make_pixel_input(size))
    with open(os.path.join(args.out, "formula_vectors.json"), "w") as f:
        json.dump({"formula": FORMULA, "u": FORMULAS[FORMULA]["u"], "roles": role_formulas(),
                   "cases": formula_vectors()}, f, indent=1)
        f.write("\n")

    cores = os.cpu_count() or 1
    threads = args.threads or (cores if args.serial else max(1, cores // 2))
    tmp = tempfile.mkdtemp(prefix="zoo_refs_")
    jobs = []
    for flavor, worker in (("keras", "keras"), ("torchvision", "torch")):
        if flavor not in args.flavors or not any(flavor in flavors_of(m) for m in args.models):
            continue
        meta = os.path.join(tmp, f"{worker}.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--meta", meta,
               "--out", args.out, "--threads", str(threads), "--formula", args.formula,
               "--models", *args.models]
        if args.skip_layers:
            cmd.append("--skip-layers")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        p = subprocess.Popen(cmd, env=env)
        if args.serial:
            p.wait()
        jobs.append((worker, meta, p))
    failed = [w for w, _, p in jobs if p.wait() != 0]
    if failed:
        raise SystemExit(f"worker(s) failed: {failed}")
    metas = {}
    for worker, path, _ in jobs:
        with open(path) as f:
            metas[worker] = json.load(f)
        os.remove(path)
    os.rmdir(tmp)

    # Re-verify every written .npy loads back with the expected shape and values sane.
    for model in args.models:
        for flavor in [f for f in args.flavors if f in flavors_of(model)]:
            with open(os.path.join(args.out, f"{model}_{flavor}.json")) as f:
                doc = json.load(f)
            lg = np.load(os.path.join(args.out, doc["logits"]))
            ft = np.load(os.path.join(args.out, doc["features"]))
            assert lg.dtype == np.float32 and list(lg.shape) == doc["logits_shape"] == [BATCH, 1000]
            assert ft.dtype == np.float32 and list(ft.shape) == doc["features_shape"]
            check_sane(f"{flavor} {model} (reloaded)", lg, ft)
            assert float(np.abs(lg).max()) == doc["logits_max_abs"]

    update_framework_facts(args.out, metas, args.models)
    write_readme(args.out)

    total = 0
    for name in sorted(os.listdir(args.out)):
        total += os.path.getsize(os.path.join(args.out, name))
    print(json.dumps({
        "seconds": round(time.time() - t0, 1), "threads_per_worker": threads,
        "out_bytes": total,
        "determinism": {w: metas[w].get("determinism") for w in metas},
        "observations": sum((metas[w].get("observations", []) for w in metas), []),
        "stats": {f"{m}_{w}": metas[w]["models"][m]["stats"] for w in metas for m in metas[w]["models"]},
    }, indent=1))


if __name__ == "__main__":
    main()
