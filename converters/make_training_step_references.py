#!/usr/bin/env python3
"""Reference training steps for zoo's training parity test (Tests/ZooTrainingTests/StepReferences/).

For each torchvision model of TORCH_MODELS (ResNet50, DenseNet121, MobileNetV2, and issue 16's
ResNeXt50 32x4d, MNASNet 1.0, EfficientNet-B0), each with a 10-class classifier, the real
torchvision model is filled with the deterministic weights of make_model_references.py
(`--formula hash`, its rules included: every parameter and buffer comes from the formula of its
state-dict name, num_batches_tracked stays 0; plus the MARGINS overrides below), put in
training mode (batch norm normalizes with batch statistics and updates its running statistics,
with the momentum torchvision builds the model with, unbiased running variance) with every
dropout's p set to 0 and stochastic depth off (EfficientNet's stochastic_depth_prob = 0: a
random mask cannot be matched) and DenseNet's memory-efficient checkpointing off (torchvision's
default), and takes one training step:

    logits = model(x)                                   x: [4, 3, 64, 64] float32
    loss   = F.cross_entropy(logits, labels)            mean over the batch, labels [3, 1, 7, 0]
    loss.backward()
    torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=1e-4).step()

Everything is float32 on the CPU with torch.use_deterministic_algorithms(True); the step is
taken twice and must give bit-identical results, and torch's step must follow the SGD rule
(buffer = g + wd * w; w -= lr * buffer) for every element ("sgd_rule_max_rel" in the JSON).

INPUT: x[n, h, w, c] = Float(sin(0.013 * Double(index) + 0.5 * Double(n) + phase)), index the
row-major NHWC element index (make_model_references.py's input formula at batch 4, plus a
phase), saved as input.npy (NHWC float32); torch receives it transposed to NCHW. The phase is
the one of 0, 0.01, ..., 5.99 whose closest max-pooling near-tie is widest (see MARGINS).

MARGINS. A float32 gradient is only defined up to the side on which each ReLU input falls:
an input within float32 rounding of a kink (0 for ReLU, 0 and 6 for ReLU6) may land on the
other side in another float32 implementation, and that one element switches its whole
upstream gradient on or off. With the plain formula weights there are millions of ReLU inputs
and torch's own float32 forward errs by up to 7e-4 at them (deep layers; 3e-6 at the stem),
so a few inputs always lie that close: torch float32 then disagrees with float64 (and with
torch float32 channels-last) by up to 20% of a tensor's largest gradient (MobileNetV2; 8%
DenseNet121, 3% ResNet50), and so does zoo, for that reason alone. The script removes
those points: it measures, at every kink input, torch's float32 error (float32 contiguous
and channels-last against float64), then in one float64 forward pass moves, site by site in
forward order, the batch-norm shift (bias) of every channel with an input closer than
MARGIN_FACTOR (10) times that error to a kink by the smallest amount that clears it (the new
bias rounded to float32; that batch norm feeds the site linearly: the BN right before the
ReLU, or in ResNet's relu(bn3(y) + downsample(x)) the last one run). It then checks that every
kink input is at least MARGIN_REQUIRED (4) times torch's float32 error away, with no element
on another side in either float32 variant ("margins" in the JSON: the number of overrides and
the smallest margin over error reached). The overrides are listed in the JSON entries of the
biases they change ("overrides": [channel, float32 bits]); the Swift side applies them on top
of the formula. Max pooling has the same problem with near-ties (the gradient goes to the
largest value of a window); shifts cannot separate two values of one channel, so the input
phase is chosen instead ("margins.max_pool_smallest_gap_over_float32_error").

Where float32 still cannot be exact, the script says how accurate it is: "float32_accuracy"
gives torch float32's largest error against float64 for the loss, the logits, the gradients
(per tensor as each parameter entry's "float32_error"), their norms and sums and the running
statistics, each relative to the scale the test uses; the test allows max(floor, 3 x that).
A gradient that is zero in exact arithmetic (float64 below 1e-10 everywhere: a batch-norm
shift followed, through linear layers only, by batch norms in training mode, as MobileNetV2's
projection shifts) is marked "vanishing": float32 holds only rounding noise there.

OUTPUT, per model, `<model>.json` (listing, storage map, statistics) and `<model>.npz`
(three float32 arrays; everything in torch's layout, row-major over the torch shape):

    "logits"   [4, 10], the forward pass's logits (to tell a forward from a backward problem)
    "grad"     flat: every parameter's gradient, one after the other in state-dict order
    "after"    flat: every parameter's value after the SGD step, and every batch norm's
               running_mean and running_var after the step (the forward pass updated them;
               the optimizer does not touch them), in state-dict order

Each JSON tensor entry says where its values are: "grad" / "after" = {"at": offset, "n":
count} into the flat array. n equal to the tensor's element count means the whole tensor;
otherwise (n = SAMPLES = 64) the values at the tensor's SAMPLE INDICES. What is whole:

    gradients            up to FULL_LIMIT (4096) elements; a sampled gradient's entry has
                         "grad_stats": L2 norm, sum and largest magnitude of the whole tensor
                         (float64 over the float32 values)
    running statistics   up to FULL_LIMIT elements (all of these models'); else "after_stats"
    values after step    up to SAMPLES elements; every parameter's entry has "update_stats",
                         the statistics of the whole update (after - before), which see every
                         element of the step

(The values after the step are sampled even where the gradient is whole, to keep the folder
near 2 MB: they follow from the gradient by the SGD rule, which the script checks for torch
and the test checks for zoo, element by element.)

SAMPLE INDICES of a tensor with source name `name` and n > 64 elements, k = 0..63 (one
index in each 64th of the flat tensor, exact integer arithmetic, as Swift computes them):

    lo = k * n / 64, hi = (k + 1) * n / 64         (integer division)
    index_k = lo + lowbias32(k XOR lowbias32(fnv1a32(name))) mod (hi - lo)

with fnv1a32 and lowbias32 of make_model_references.py. "index_examples" in every JSON lists
them for a few tensors.

The JSON also holds the loss (the float32 value and its bits), the labels, the
hyper-parameters, the listing (name, shape, role, fan_in) that make_model_references.py's
formula needs, and the versions. The script writes a README.md into the folder too.

Usage: python converters/make_training_step_references.py [--out DIR] [--models ...]
       [--threads N] [--phase P]      (about 5 minutes on 2 cores; under 2 with --phase 4.32,
                                       which skips the scan for the phase)
"""

import argparse
import json
import os
import sys
import time
from collections import namedtuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_model_references as mmr  # noqa: E402  (the weight formula and the ResNet rule)

# zoo's name: (the torchvision function, its keyword arguments beyond weights and classes, the
# batch-norm momentum torchvision builds it with). ResNeXt50 (grouped convolutions), MNASNet
# (torchvision's momentum 0.0003) and EfficientNet-B0 (SiLU, squeeze-and-excitation with a
# sigmoid gate, 5x5 depthwise convolutions; stochastic depth off, as dropout is, since a random
# mask cannot be matched) are the three families added in issue 16.
TorchModel = namedtuple("TorchModel", "fn kwargs bn_momentum")
TORCH_MODELS = {
    "resnet50": TorchModel("resnet50", {}, 0.1),
    "densenet121": TorchModel("densenet121", {}, 0.1),
    "mobilenetv2": TorchModel("mobilenet_v2", {}, 0.1),
    "resnext50_32x4d": TorchModel("resnext50_32x4d", {}, 0.1),
    "mnasnet1_0": TorchModel("mnasnet1_0", {}, 1 - 0.9997),
    "efficientnetb0": TorchModel("efficientnet_b0", {"stochastic_depth_prob": 0.0}, 0.1),
}
MODELS = list(TORCH_MODELS)
BATCH = 4
SIZE = 64
CLASSES = 10
LABELS = [3, 1, 7, 0]
LR = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
FULL_LIMIT = 4096
# Margins (see MARGINS): each kink input is moved MARGIN_FACTOR times torch's float32 error (at
# least MARGIN_FLOOR) away from its kink, and must end up MARGIN_REQUIRED times that error away.
MARGIN_FACTOR = 10.0
MARGIN_FLOOR = 1e-6
MARGIN_REQUIRED = 4.0
# A gradient whose float64 value is below this everywhere vanishes in exact arithmetic.
VANISHING = 1e-10
# The input's phase (see INPUT): main() scans 0, 0.01, ..., PHASES_SCANNED - 0.01 for the one
# with the widest max-pooling near-ties (--phase skips the scan).
INPUT_PHASE = 0.0
PHASES_SCANNED = 6.0
SAMPLES = 64
AFTER_FULL_LIMIT = SAMPLES


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_input(phase=None):
    phase = INPUT_PHASE if phase is None else phase
    shape = (BATCH, SIZE, SIZE, 3)
    index = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    n = np.arange(BATCH, dtype=np.float64).reshape(BATCH, 1, 1, 1)
    return np.sin(0.013 * index + 0.5 * n + phase).astype(np.float32)


def sample_indices(name, count):
    """One index in each SAMPLES-th of the flat tensor (see the module docstring)."""
    assert count > SAMPLES
    seed = mmr.lowbias32(mmr.fnv1a32(name.encode("utf-8")))
    out = []
    for k in range(SAMPLES):
        lo, hi = k * count // SAMPLES, (k + 1) * count // SAMPLES
        out.append(lo + mmr.lowbias32(k ^ seed) % (hi - lo))
    assert all(a < b for a, b in zip(out, out[1:])) and out[-1] < count
    return np.array(out, dtype=np.int64)


def statistics(a):
    d = a.astype(np.float64).reshape(-1)
    r = {"norm": np.sqrt(np.dot(d, d)), "sum": d.sum(), "max_abs": np.abs(d).max()}
    return {k: float(f"{float(v):.8g}") for k, v in r.items()}


def build(torch, torchvision, model):
    spec = TORCH_MODELS[model]
    m = getattr(torchvision.models, spec.fn)(weights=None, num_classes=CLASSES, **spec.kwargs)
    for mod in m.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    if model == "densenet121":
        # memory_efficient (checkpointing) is off by default; it must stay off so the graph is
        # the plain one (it would give the same numbers, but no need to rely on that).
        assert all(not layer.memory_efficient for name, layer in m.named_modules()
                   if type(layer).__name__ == "_DenseLayer")
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            assert abs(mod.momentum - spec.bn_momentum) < 1e-12 and mod.track_running_stats, (model, mod.momentum)
        assert type(mod).__name__ != "StochasticDepth" or mod.p == 0, model
    return m


def constructor(model):
    spec = TORCH_MODELS[model]
    arguments = "".join(f", {k}={v!r}" for k, v in spec.kwargs.items())
    return f"torchvision.models.{spec.fn}(weights=None, num_classes={CLASSES}{arguments}), every Dropout's p set to 0"


def fill(torch, m, tensors, sd, overrides=None):
    """The formula's values, then the margin overrides ({name: {flat index: float32}})."""
    new = {}
    for t in tensors:
        if t["role"] == "counter":
            new[t["name"]] = sd[t["name"]]
        else:
            values = mmr.formula_values(t["name"], t["shape"], t["role"], t.get("fan_in"))
            for index, value in (overrides or {}).get(t["name"], {}).items():
                values.reshape(-1)[index] = value
            new[t["name"]] = torch.from_numpy(values)
    # The modules' versions (MNASNet refuses a state dict without its own).
    new = type(sd)(new)
    new._metadata = getattr(sd, "_metadata", None)
    m.load_state_dict(new, strict=True)


def make(torch, torchvision, model, overrides=None, dtype=None, channels_last=False):
    """The filled model in training mode, in float32 unless `dtype` says otherwise."""
    m = build(torch, torchvision, model)
    tensors, sd = mmr.torch_listing(torch, m, model)
    fill(torch, m, tensors, sd, overrides)
    if dtype is not None:
        m = m.to(dtype)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    m.train()
    return m, tensors


def input_tensor(torch, dtype=None, channels_last=False, phase=None):
    x = torch.from_numpy(np.ascontiguousarray(make_input(phase).transpose(0, 3, 1, 2)))
    if dtype is not None:
        x = x.to(dtype)
    return x.to(memory_format=torch.channels_last) if channels_last else x


# ----------------------------------------------------------------------------
# Margins: no ReLU input within float32 reach of its kink (see MARGINS in the docstring)
# ----------------------------------------------------------------------------

def instrument(torch, m, on_site, on_pool=None):
    """Calls on_site(index, site, kinks, x, bn) with every kink input (the tensor a ReLU or
    ReLU6 receives, and DenseNet's norm5 output, which F.relu receives) in forward order; `bn`
    is the batch norm whose shift moves that input channel by channel (the last one run: in
    ResNet's `relu(bn3(y) + downsample(x))` that is downsample.1 or bn3, both linear into the
    sum). on_site may return a replacement for x. on_pool(site, x) sees max-pooling inputs."""
    names = {mod: n for n, mod in m.named_modules()}
    state = {"last": None, "count": 0}

    def bn_hook(mod, inputs, output):
        state["last"] = mod
        if names[mod] == "features.norm5":
            state["count"] += 1
            return on_site(state["count"] - 1, "features.norm5 (F.relu)", (0.0,), output, mod)
        return None

    def relu_hook(mod, inputs):
        state["count"] += 1
        kinks = (0.0, 6.0) if isinstance(mod, torch.nn.ReLU6) else (0.0,)
        replaced = on_site(state["count"] - 1, names[mod], kinks, inputs[0], state["last"])
        return None if replaced is None else (replaced,)

    def pool_hook(mod, inputs):
        # pool_windows reads the stems' 3x3 stride-2 pooling with padding 1 (ResNet, DenseNet).
        assert (mod.kernel_size, mod.stride, mod.padding) in ((3, 2, 1), ((3, 3), (2, 2), (1, 1))), names[mod]
        if on_pool is not None:
            on_pool(names[mod], inputs[0])

    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.register_forward_hook(bn_hook)
        elif isinstance(mod, (torch.nn.ReLU, torch.nn.ReLU6)):
            mod.register_forward_pre_hook(relu_hook)
        elif isinstance(mod, torch.nn.MaxPool2d):
            mod.register_forward_pre_hook(pool_hook)


def site_values(torch, torchvision, model, overrides, dtype, channels_last=False):
    """Every kink input and max-pooling input of one forward pass, as float64 numpy."""
    m, _ = make(torch, torchvision, model, overrides, dtype, channels_last)
    sites, pools = [], []
    # clone: the ReLUs work in place
    instrument(torch, m, lambda k, site, kinks, x, bn: sites.append((site, kinks, x.detach().double().clone().numpy())),
               lambda site, x: pools.append((site, x.detach().double().clone().numpy())))
    with torch.no_grad():
        m(input_tensor(torch, dtype, channels_last))
    return sites, pools


def pool_windows(torch, x):
    """The 3x3 stride-2 windows (padding 1) of a max-pooling input, [windows, 9]."""
    import torch.nn.functional as F
    t = torch.from_numpy(x)
    n, c, h, w = t.shape
    return F.unfold(t.reshape(n * c, 1, h, w), kernel_size=3, stride=2, padding=1).transpose(1, 2).reshape(-1, 9)


def pool_report(torch, exact, variants):
    """Max pooling sends the gradient to each window's largest value. Over the windows whose
    largest float64 value is positive: the smallest ratio of the float64 gap to the runner-up
    (or to 0: the padding and the values the ReLU cut) over the float32 error of the window's
    values (the largest over the float32 variants), and how many windows' largest element
    differs in a float32 variant."""
    a = pool_windows(torch, exact)
    top = torch.topk(a, 2, dim=1)
    positive = top.values[:, 0] > 0
    gap = (top.values[:, 0] - top.values[:, 1].clamp_min(0))[positive]
    error = torch.zeros_like(gap)
    flips = 0
    for rounded in variants:
        b = pool_windows(torch, rounded)
        error = torch.maximum(error, (b - a).abs().amax(dim=1)[positive])
        flips += int((torch.argmax(a, dim=1) != torch.argmax(b, dim=1))[positive].sum())
    return float((gap / error.clamp_min(1e-30)).min()), flips


class _Stop(Exception):
    pass


def pool_input(torch, m, dtype, channels_last, phase):
    """The input of model m's first max pooling (the stem's), from a forward pass stopped there."""
    captured = []

    def hook(mod, inputs):
        captured.append(inputs[0].detach().double().clone().numpy())
        raise _Stop

    pools = [mod for mod in m.modules() if isinstance(mod, torch.nn.MaxPool2d)]
    handle = pools[0].register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            m(input_tensor(torch, dtype, channels_last, phase))
    except _Stop:
        pass
    handle.remove()
    return captured[0]


def choose_phase(torch, torchvision, models, phases):
    """Of the input phases, the one whose worst max-pooling near-tie (the smallest gap over
    float32 error, over the models with a stem max pooling) is widest."""
    built = {}
    for model in models:
        if any(isinstance(mod, torch.nn.MaxPool2d) for mod in build(torch, torchvision, model).modules()):
            built[model] = [(make(torch, torchvision, model, None, dtype, cl)[0], dtype, cl)
                            for dtype, cl in ((torch.float64, False), (torch.float32, False), (torch.float32, True))]
    best = (-1.0, phases[0], {})
    if not built:
        return phases[0], {}
    for phase in phases:
        ratios = {}
        for model, variants in built.items():
            values = [pool_input(torch, m, dtype, cl, phase) for m, dtype, cl in variants]
            ratios[model] = round(pool_report(torch, values[0], values[1:])[0], 2)
        if min(ratios.values()) > best[0]:
            best = (min(ratios.values()), phase, ratios)
    log(f"input phase {best[1]}: smallest max-pooling gap over float32 error {best[2]}")
    return best[1], best[2]


def site_report(torch, torchvision, model, overrides):
    """Per kink site: the largest float32 error of its input (torch float32 contiguous and
    channels-last against float64), the float64 distance to the nearest kink, and how many
    elements are on another side of a kink in float32 than in float64. Also the smallest
    max-pooling gap against the float32 error of the pooled values."""
    s64, p64 = site_values(torch, torchvision, model, overrides, torch.float64)
    report = [{"site": site, "error": 0.0, "margin": float(min(np.abs(v - k).min() for k in kinks)), "flips": 0}
              for site, kinks, v in s64]
    rounded = {}
    for channels_last in (False, True):
        s32, p32 = site_values(torch, torchvision, model, overrides, torch.float32, channels_last)
        assert len(s32) == len(s64) and len(p32) == len(p64)
        for r, (_, kinks, a), (_, _, b) in zip(report, s32, s64):
            r["error"] = max(r["error"], float(np.abs(a - b).max()))
            r["flips"] += sum(int(((a > k) != (b > k)).sum()) for k in kinks)
        for i, (_, a) in enumerate(p32):
            rounded.setdefault(i, []).append(a)
    pools = []
    for i, (site, b) in enumerate(p64):
        ratio, flips = pool_report(torch, b, rounded[i])
        pools.append({"site": site, "gap_over_error": ratio, "flips": flips})
    return report, pools


def shift_for(values, kinks, margin):
    """The smallest |d| that keeps every value + d at least `margin` from every kink."""
    lo = np.concatenate([k - values - margin for k in kinks])
    hi = np.concatenate([k - values + margin for k in kinks])
    order = np.argsort(lo)
    merged = []
    for a, b in zip(lo[order], hi[order]):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    for a, b in merged:
        if a < 0 < b:
            return a if -a < b else b
    return 0.0


def nudge(torch, torchvision, model, margins):
    """One float64 forward pass that shifts, site by site in forward order, the batch-norm
    shift (bias) of every channel with a kink input closer than margins[site] to a kink,
    by the smallest amount that clears it (the new bias rounded to float32). Returns the
    overrides {bias name: {channel: float32}}."""
    m, _ = make(torch, torchvision, model, None, torch.float64)
    names = {mod: n for n, mod in m.named_modules()}
    overrides = {}

    def on_site(k, site, kinks, x, bn):
        margin = margins[k]
        channels = x.shape[1]
        flat = x.detach().transpose(0, 1).reshape(channels, -1).numpy()
        close = np.zeros(channels, dtype=bool)
        for kink in kinks:
            close |= (np.abs(flat - kink) < margin).any(axis=1)
        if not close.any():
            return None
        delta = np.zeros(channels)
        with torch.no_grad():
            for c in np.nonzero(close)[0]:
                old = float(bn.bias[c])
                new = np.float32(old + shift_for(flat[c], kinks, margin * 1.05))
                bn.bias[c] = float(new)
                delta[c] = float(new) - old
                overrides.setdefault(names[bn] + ".bias", {})[int(c)] = new
        return x + torch.from_numpy(delta).view(1, channels, 1, 1)

    instrument(torch, m, on_site)
    with torch.no_grad():
        m(input_tensor(torch, torch.float64))
    return overrides


def choose_margins(torch, torchvision, model):
    """Overrides that put every kink input at least MARGIN_FACTOR times torch's float32 error
    away from its kink, checked afterwards (float32 contiguous and channels-last against
    float64) to be at least MARGIN_REQUIRED times that error with no element on another side."""
    report, pools = site_report(torch, torchvision, model, None)
    before = {"flips": sum(r["flips"] for r in report), "sites": len(report)}
    margins = [max(MARGIN_FACTOR * r["error"], MARGIN_FLOOR) for r in report]
    for attempt in range(4):
        overrides = nudge(torch, torchvision, model, margins)
        report, pools = site_report(torch, torchvision, model, overrides)
        bad = [i for i, r in enumerate(report) if r["flips"] or r["margin"] < MARGIN_REQUIRED * r["error"]]
        if not bad:
            break
        log(f"{model}: margins too small at {[report[i]['site'] for i in bad]}, widening")
        for i in bad:
            margins[i] = max(margins[i], MARGIN_FACTOR * report[i]["error"]) * 2
    else:
        raise SystemExit(f"{model}: could not clear the kinks")
    for p in pools:
        assert p["flips"] == 0 and p["gap_over_error"] >= MARGIN_REQUIRED, (model, p)
    # A model without kinks (EfficientNet: SiLU and sigmoid only) has no sites: nothing to clear.
    ratio = min((r["margin"] / max(r["error"], 1e-30) for r in report), default=None)
    summary = {"sites": len(report), "flips_without_overrides": before["flips"],
               "overrides": sum(len(v) for v in overrides.values()),
               "biases_overridden": len(overrides), "margin_factor": MARGIN_FACTOR,
               "smallest_margin_over_float32_error": None if ratio is None else round(ratio, 2),
               "largest_float32_error_at_a_kink_input": max((r["error"] for r in report), default=None),
               "max_pool_smallest_gap_over_float32_error": [round(p["gap_over_error"], 1) for p in pools]}
    return overrides, summary


def conditioning(torch, torchvision, model, overrides):
    """How accurate float32 can be at this point: the step's loss, logits, gradients and
    running statistics in float64 and in torch float32 (contiguous and channels-last), and
    float32's largest error against float64 (over both variants), each relative to the scale
    the test uses: per parameter, the gradient's largest magnitude (its "float32_error"; None
    where the float64 gradient vanishes, below VANISHING everywhere: zero in exact arithmetic,
    float32 holds only rounding noise); model-wide, the largest such error and the largest
    errors of each tensor's gradient norm (over the norm), gradient sum (over the norm), and
    running statistics after the step (over their largest magnitude; their change, over the
    change's largest magnitude)."""
    import torch.nn.functional as F

    def run(dtype, channels_last=False):
        m, _ = make(torch, torchvision, model, overrides, dtype, channels_last)
        before = {k: v.detach().double().clone().numpy() for k, v in m.state_dict().items()}
        logits = m(input_tensor(torch, dtype, channels_last))
        loss = F.cross_entropy(logits, torch.tensor(LABELS))
        loss.backward()
        running = {k: (before[k], v.detach().double().clone().numpy()) for k, v in m.state_dict().items()
                   if k.endswith("running_mean") or k.endswith("running_var")}
        return {"loss": float(loss.detach()), "logits": logits.detach().double().numpy(), "running": running,
                "grads": {n: p.grad.detach().double().numpy() for n, p in m.named_parameters()}}

    exact = run(torch.float64)
    variants = [run(torch.float32), run(torch.float32, True)]
    per_parameter, largest = {}, {"gradient": 0.0, "gradient_norm": 0.0, "gradient_sum": 0.0, "loss": 0.0,
                                  "logits": 0.0, "running_statistics": 0.0, "running_statistics_change": 0.0}

    def note(key, value):
        largest[key] = max(largest[key], float(value))

    for v in variants:
        note("loss", abs(v["loss"] - exact["loss"]) / abs(exact["loss"]))
        note("logits", np.abs(v["logits"] - exact["logits"]).max() / np.abs(exact["logits"]).max())
        for k, (start, end) in exact["running"].items():
            note("running_statistics", np.abs(v["running"][k][1] - end).max() / np.abs(end).max())
            change = end - start
            note("running_statistics_change", np.abs((v["running"][k][1] - start) - change).max() / np.abs(change).max())
    for name, g in exact["grads"].items():
        scale = float(np.abs(g).max())
        if scale <= VANISHING:
            per_parameter[name] = {"float64_max_abs": scale, "float32_error": None}
            continue
        error = max(float(np.abs(v["grads"][name] - g).max()) for v in variants) / scale
        per_parameter[name] = {"float64_max_abs": scale, "float32_error": error}
        note("gradient", error)
        norm = float(np.linalg.norm(g))
        for v in variants:
            note("gradient_norm", abs(np.linalg.norm(v["grads"][name]) - norm) / norm)
            note("gradient_sum", abs(v["grads"][name].sum() - g.sum()) / norm)
    return per_parameter, {k: float(f"{v:.3g}") for k, v in largest.items()}


def step(torch, torchvision, model, overrides):
    """One training step in float32 from the formula weights and the overrides; returns
    everything to save, as numpy."""
    import torch.nn.functional as F
    m, tensors = make(torch, torchvision, model, overrides)
    before = {k: v.detach().clone().numpy() for k, v in m.state_dict().items()}
    x = input_tensor(torch)
    labels = torch.tensor(LABELS, dtype=torch.int64)
    optimizer = torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    optimizer.zero_grad(set_to_none=True)
    logits = m(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    grads = {n: p.grad.detach().clone().numpy() for n, p in m.named_parameters()}
    optimizer.step()
    after = {k: v.detach().clone().numpy() for k, v in m.state_dict().items()}
    params = [n for n, _ in m.named_parameters()]
    for v in list(grads.values()) + list(after.values()):
        assert v.dtype in (np.float32, np.int64), v.dtype
    return {"tensors": tensors, "params": params, "before": before, "grads": grads, "after": after,
            "logits": logits.detach().numpy().copy(), "loss": np.float32(loss.item())}


def check_sgd(r):
    """The step is PyTorch's first SGD-momentum step: buffer = g + wd * w, w -= lr * buffer."""
    worst, where = 0.0, None
    for n in r["params"]:
        w, g = r["before"][n], r["grads"][n]
        expected = w - np.float32(LR) * (g + np.float32(WEIGHT_DECAY) * w)
        scale = max(float(np.abs(w).max()), float(np.abs(r["after"][n]).max()), 1e-30)
        error = float(np.abs(expected - r["after"][n]).max()) / scale
        if error > worst:
            worst, where = error, n
    assert worst < 1e-6, (worst, where)
    return worst


def check_running(r, tensors):
    """running = 0.9 * running + 0.1 * batch statistic: the change must not be zero, and
    num_batches_tracked must be 1."""
    for t in tensors:
        if t["role"] == "counter":
            assert int(r["after"][t["name"]]) == 1, t["name"]
        elif t["role"] in ("bn_mean", "bn_var"):
            assert not np.array_equal(r["before"][t["name"]], r["after"][t["name"]]), t["name"]


def identical(a, b):
    if a["loss"].tobytes() != b["loss"].tobytes() or not np.array_equal(a["logits"], b["logits"]):
        return False
    return all(np.array_equal(a["grads"][n], b["grads"][n]) for n in a["grads"]) and \
        all(np.array_equal(a["after"][n], b["after"][n]) for n in a["after"])


def write_json(path, doc):
    """JSON with one tensor per line."""
    tensors = doc.pop("tensors")
    head = json.dumps(doc, indent=1)
    lines = ",\n".join("  " + json.dumps(t, separators=(",", ":")) for t in tensors)
    text = head[:-2] + ',\n "tensors": [\n' + lines + "\n ]\n}\n"
    json.loads(text)
    with open(path, "w") as f:
        f.write(text)
    doc["tensors"] = tensors


def save(out, model, r, versions, sgd, overrides, margins, accuracy, largest):
    flat = {"grad": [], "after": []}
    offsets = {"grad": 0, "after": 0}
    entries = []
    examples = []
    params = set(r["params"])
    for t in r["tensors"]:
        name = t["name"]
        if t["role"] == "counter":
            continue
        kind = "parameter" if name in params else {"bn_mean": "running_mean", "bn_var": "running_var"}[t["role"]]
        count = int(np.prod(t["shape"]))
        entry = dict(t)
        entry["kind"] = kind
        if name in overrides:
            entry["overrides"] = [[int(i), int(np.float32(v).view(np.uint32))] for i, v in sorted(overrides[name].items())]
        if kind == "parameter":
            a = accuracy[name]
            if a["float32_error"] is None:
                entry["vanishing"] = True
                entry["float64_max_abs"] = float(f"{a['float64_max_abs']:.3g}")
            else:
                entry["float32_error"] = float(f"{a['float32_error']:.3g}")
        idx = sample_indices(name, count) if count > SAMPLES else None
        if idx is not None and len(examples) < 3 and count > FULL_LIMIT:
            examples.append({"name": name, "count": count, "indices": idx.tolist()})
        if kind == "parameter":
            quantities = [("grad", r["grads"][name], count <= FULL_LIMIT), ("after", r["after"][name], count <= SAMPLES)]
            update = r["after"][name].astype(np.float64) - r["before"][name].astype(np.float64)
            entry["update_stats"] = statistics(update)
        else:
            quantities = [("after", r["after"][name], count <= FULL_LIMIT)]
        for what, a, whole in quantities:
            assert list(a.shape) == t["shape"], (name, a.shape)
            assert np.all(np.isfinite(a)), (model, what, name)
            values = a.reshape(-1) if whole else a.reshape(-1)[idx]
            entry[what] = {"at": offsets[what], "n": int(values.size)}
            if not whole and not (what == "after" and kind == "parameter"):  # (update_stats covers those)
                entry[f"{what}_stats"] = statistics(a)
            flat[what].append(values.astype(np.float32))
            offsets[what] += values.size
        entries.append(entry)
    arrays = {"logits": r["logits"].astype(np.float32),
              "grad": np.concatenate(flat["grad"]), "after": np.concatenate(flat["after"])}
    np.savez_compressed(os.path.join(out, f"{model}.npz"), **arrays)
    grad_norm = float(np.sqrt(sum(float(np.sum(r["grads"][n].astype(np.float64) ** 2)) for n in r["params"])))
    doc = {
        "model": model,
        "constructor": constructor(model),
        "mode": "model.train(): batch norm with batch statistics, running statistics updated "
                f"(momentum {TORCH_MODELS[model].bn_momentum:.4g}, unbiased running variance); no dropout",
        "input": "input.npy", "input_layout": "NHWC in the file; torch ran x.transpose(0, 3, 1, 2) (NCHW)",
        "input_shape": [BATCH, SIZE, SIZE, 3],
        "input_formula": "x[n, h, w, c] = Float(sin(0.013 * Double(index) + 0.5 * Double(n) + phase)), index the "
                         "row-major NHWC element index",
        "input_phase": INPUT_PHASE,
        "labels": LABELS, "loss_function": "torch.nn.functional.cross_entropy (mean over the batch)",
        "loss": float(r["loss"]), "loss_bits": f"0x{r['loss'].view(np.uint32):08x}",
        "logits": "logits", "logits_max_abs": float(np.abs(r["logits"]).max()),
        "optimizer": {"kind": "torch.optim.SGD", "lr": LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                      "dampening": 0, "nesterov": False,
                      "first_step": "buffer = grad + weight_decay * w; w = w - lr * buffer"},
        "formula": mmr.FORMULA, "u": mmr.FORMULAS[mmr.FORMULA]["u"], "roles": mmr.role_formulas(),
        "rules": mmr.rules_for(model),
        "storage": {"full_limit": FULL_LIMIT, "samples": SAMPLES,
                    "arrays": "npz 'grad' and 'after' are flat float32; an entry's {'at', 'n'} is its slice: the "
                              "whole tensor (row-major, torch shape) when n is its element count, else its "
                              "values at the sample indices",
                    "sample_indices": "k = 0..63: lo = k*n/64, hi = (k+1)*n/64 (integer division), index_k = lo + "
                                      "lowbias32(k ^ lowbias32(fnv1a32(name))) % (hi - lo)",
                    "whole": f"gradients and running statistics up to {FULL_LIMIT} elements; values after the step "
                             f"up to {SAMPLES}",
                    "statistics": "norm (L2), sum, max_abs of the whole tensor, float64 over the float32 values "
                                  "(update_stats: of after - before)"},
        "index_examples": examples,
        "margins": margins,
        "overrides": "entries' 'overrides': [channel, float32 bits] pairs replacing the formula's value of a batch-norm "
                     "bias (see MARGINS in the converter)",
        "float32_accuracy": {
            "definition": "torch float32 (contiguous and channels-last) against float64 at this point, the largest "
                          "error of each quantity relative to the test's scale: 'gradient' (per tensor: over its "
                          "largest magnitude; each parameter entry's 'float32_error'), 'gradient_norm' (over the "
                          "norm), 'gradient_sum' (over the norm), 'loss', 'logits' (over the largest |logit|), "
                          "'running_statistics' (over the largest magnitude) and their change (over the change's "
                          "largest magnitude). A parameter entry with 'vanishing' has a float64 gradient below 1e-10 "
                          "everywhere: zero in exact arithmetic (a batch-norm shift followed, through linear layers "
                          "only, by batch norms in training mode), float32 holds rounding noise",
            "largest": largest,
            "worst_gradient": max(((a["float32_error"], n) for n, a in accuracy.items() if a["float32_error"] is not None))[1],
            "vanishing": sum(a["float32_error"] is None for a in accuracy.values())},
        "sgd_rule_max_rel": sgd,
        "global_grad_norm": grad_norm,
        "versions": versions,
        "tensors": entries,
    }
    write_json(os.path.join(out, f"{model}.json"), doc)
    return doc


def write_readme(out, docs, phase):
    lines = []
    w = lines.append
    w("# Training-step references")
    w("")
    w("Written by `converters/make_training_step_references.py` (its docstring explains everything); do not "
      "edit by hand. Read by `Tests/ZooTrainingTests/TrainingStepParityTests.swift`.")
    w("")
    w("One training step of each torchvision model below (10 classes, no dropout or stochastic depth, batch "
      "norm in training mode) from the parity formula's weights, on `input.npy` (4 x 64 x 64 x 3, NHWC), labels "
      "[3, 1, 7, 0], mean cross-entropy, then `torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=1e-4)`. "
      "`<model>.npz` holds the logits, the gradients and the values after the step (whole tensors up to 4096 "
      "elements, else 64 samples with the whole tensor's norm, sum and largest magnitude); `<model>.json` the "
      "listing, where each tensor's values are, the statistics, and the batch-norm shifts moved off the ReLU "
      "kinks (see MARGINS in the script).")
    w("")
    w("```")
    w("../venv/bin/python converters/make_training_step_references.py")
    w("```")
    w("")
    w(f"Input phase {phase}. Versions and the stem max pooling's smallest near-tie gap over float32 error are "
      "per model (a model without ReLUs has no kinks to clear: `-`).")
    w("")
    w("| model | torch, torchvision | loss | shifts moved | smallest kink margin / float32 error | max-pool gap / float32 error | torch float32 vs float64: largest gradient error (tensor) | sums | loss | vanishing gradients |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for model, d in docs.items():
        a, m, v = d["float32_accuracy"], d["margins"], d["versions"]
        margin = m["smallest_margin_over_float32_error"]
        pools = ", ".join(str(g) for g in m["max_pool_smallest_gap_over_float32_error"]) or "-"
        w(f"| {model} | {v['torch']}, {v['torchvision']} | {d['loss']:.6f} | {m['overrides']} | "
          f"{'-' if margin is None else margin} | {pools} | "
          f"{a['largest']['gradient']:.2g} (`{a['worst_gradient']}`) | {a['largest']['gradient_sum']:.2g} | "
          f"{a['largest']['loss']:.2g} | {a['vanishing']} |")
    w("")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    default_out = os.path.join(os.path.dirname(HERE), "Tests", "ZooTrainingTests", "StepReferences")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=default_out, help="output folder (default: %(default)s)")
    ap.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--phase", type=float, help="the input phase (default: scan 0 to 5.99 for it, about 3 minutes)")
    args = ap.parse_args()
    args.models = [m for m in MODELS if m in args.models]
    began = time.time()
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    mmr.set_formula("hash")

    import torch
    import torchvision
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    if args.threads:
        torch.set_num_threads(args.threads)
    versions = {"python": sys.version.split()[0], "numpy": np.__version__,
                "torch": torch.__version__, "torchvision": torchvision.__version__}

    os.makedirs(args.out, exist_ok=True)
    global INPUT_PHASE
    # Models added to a folder of references share its input: its phase, and its input.npy bit
    # for bit (np.sin may round differently on another CPU; then regenerate every model).
    kept = [m for m in MODELS if m not in args.models and os.path.exists(os.path.join(args.out, f"{m}.json"))]
    if kept and args.phase is None:
        with open(os.path.join(args.out, f"{kept[0]}.json")) as f:
            args.phase = json.load(f)["input_phase"]
        log(f"input phase {args.phase}: the one of the references kept ({', '.join(kept)})")
    phases = [round(0.01 * k, 2) for k in range(int(round(PHASES_SCANNED * 100)))] if args.phase is None else [args.phase]
    INPUT_PHASE, pool_ratios = choose_phase(torch, torchvision, args.models, phases)
    input_path = os.path.join(args.out, "input.npy")
    if kept:
        if not np.array_equal(np.load(input_path), make_input()):
            raise SystemExit(f"{input_path} differs from the input formula on this machine; regenerate every model")
    else:
        np.save(input_path, make_input())
    summary, docs = {}, {}
    for model in args.models:
        t0 = time.time()
        overrides, margins = choose_margins(torch, torchvision, model)
        log(f"{model}: margins {margins} ({time.time() - t0:.1f}s)")
        accuracy, largest = conditioning(torch, torchvision, model, overrides)
        r = step(torch, torchvision, model, overrides)
        again = step(torch, torchvision, model, overrides)
        assert identical(r, again), f"{model}: two runs differ"
        sgd = check_sgd(r)
        check_running(r, r["tensors"])
        doc = save(args.out, model, r, versions, sgd, overrides, margins, accuracy, largest)
        docs[model] = doc
        summary[model] = {"loss": doc["loss"], "global_grad_norm": doc["global_grad_norm"],
                          "logits_max_abs": doc["logits_max_abs"], "sgd_rule_max_rel": sgd,
                          "tensors": len(doc["tensors"]),
                          "whole_gradients": sum("grad_stats" not in e for e in doc["tensors"] if "grad" in e),
                          "float32_accuracy": {k: v for k, v in doc["float32_accuracy"].items() if k != "definition"},
                          "seconds": round(time.time() - t0, 1)}
        log(f"{model}: {summary[model]}")

    # Reload what was written.
    for model in args.models:
        with open(os.path.join(args.out, f"{model}.json")) as f:
            doc = json.load(f)
        with np.load(os.path.join(args.out, f"{model}.npz")) as z:
            assert z["logits"].shape == (BATCH, CLASSES)
            lengths = {w: 0 for w in ("grad", "after")}
            for e in doc["tensors"]:
                for what in ("grad", "after"):
                    if what in e:
                        assert e[what]["at"] == lengths[what], e["name"]
                        lengths[what] += e[what]["n"]
                        count = int(np.prod(e["shape"]))
                        stats = "update_stats" if what == "after" and e["kind"] == "parameter" else f"{what}_stats"
                        assert e[what]["n"] == count or stats in e, e["name"]
            for what in ("grad", "after"):
                assert z[what].dtype == np.float32 and z[what].shape == (lengths[what],)
    for model in MODELS:
        if model not in docs and os.path.exists(os.path.join(args.out, f"{model}.json")):
            with open(os.path.join(args.out, f"{model}.json")) as f:
                docs[model] = json.load(f)
    write_readme(args.out, {m: docs[m] for m in MODELS if m in docs}, INPUT_PHASE)
    sizes = {n: os.path.getsize(os.path.join(args.out, n)) for n in sorted(os.listdir(args.out))}
    print(json.dumps({"summary": summary, "bytes": sizes, "total_bytes": sum(sizes.values()),
                      "seconds": round(time.time() - began, 1)}, indent=1))


if __name__ == "__main__":
    main()
