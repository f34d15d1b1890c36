#!/usr/bin/env python3
"""Reference outputs for zoo's CIFAR ResNets (Tests/ZooModelsTests/References/cifar/).

The CIFAR ResNets of He et al. (2016) are not in torchvision; PyTorch users train them with
small implementations that share a layout: `conv1`, `bn1`, `layer1..3.<i>.{conv1,bn1,conv2,bn2}`,
a `shortcut` (empty for option A, whose identity subsamples and zero-pads channels;
`shortcut.0`/`shortcut.1` for option B's 1x1 projection), and a classifier `linear` (some call it
`fc`). This script defines that layout in PyTorch from the paper, fills it with the same
deterministic hash formula as make_model_references.py, and writes:

  cifar_<name>.json            listing (names, shapes, roles) as for the other references
  cifar_<name>_logits.npy      logits for input_32.npy (2 images)
  cifar_resnet8_checkpoint.pth a real torch.save file as other projects write them:
                               {"epoch", "best_prec1", "state_dict"} with DataParallel's
                               "module." prefix and the classifier named "fc"
  cifar_resnet8_checkpoint_logits.npy

Run: ../venv/bin/python converters/make_cifar_resnet_references.py (CPU; torch 2.15).
"""

import json
import os
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_model_references import fnv1a32, lowbias32  # noqa: E402  (the shared formula)

OUT = os.path.join(HERE, "..", "Tests", "ZooModelsTests", "References", "cifar")


def unit(name, count):
    seed = np.uint64(lowbias32(fnv1a32(name.encode("utf-8"))))
    v = lowbias32(np.arange(count, dtype=np.uint64) ^ seed)
    return (v.astype(np.float64) + 0.5) * 2.0 ** -31 - 1.0


def formula(name, shape, role, fan_in):
    u = unit(name, int(np.prod(shape)) if shape else 1)
    if role == "kernel":
        values = u * np.sqrt(6.0 / fan_in)
    elif role in ("bias", "bn_beta", "bn_mean"):
        values = 0.05 * u
    elif role == "bn_gamma":
        values = 1.0 + 0.1 * u
    elif role == "bn_gamma_damped":
        values = 0.25 + 0.05 * u
    elif role == "bn_var":
        values = 1.25 + 0.25 * u
    else:
        raise ValueError(role)
    return values.astype(np.float32).reshape(shape)


class Block(nn.Module):
    def __init__(self, inputs, width, stride, shortcut, preactivation):
        super().__init__()
        self.preactivation = preactivation
        self.bn1 = nn.BatchNorm2d(inputs if preactivation else width)
        self.conv1 = nn.Conv2d(inputs, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.projects = stride != 1 or inputs != width
        self.option = shortcut
        self.pad = (width - inputs) // 2
        self.stride = stride
        if self.projects and shortcut == "b":
            layers = [nn.Conv2d(inputs, width, 1, stride, bias=False)]
            if not preactivation:
                layers.append(nn.BatchNorm2d(width))
            self.shortcut = nn.Sequential(*layers)
        else:
            self.shortcut = nn.Sequential()

    def identity(self, x):
        if self.projects and self.option == "b":
            return self.shortcut(x)
        if self.projects:
            x = x[:, :, ::self.stride, ::self.stride]
            return F.pad(x, (0, 0, 0, 0, self.pad, self.pad), "constant", 0)
        return x

    def forward(self, x):
        if self.preactivation:
            activated = F.relu(self.bn1(x))
            shortcut = self.identity(activated if self.projects and self.option == "b" else x)
            y = self.conv1(activated)
            y = self.conv2(F.relu(self.bn2(y)))
            return y + shortcut
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.identity(x))


class CIFARResNet(nn.Module):
    def __init__(self, depth, shortcut="a", preactivation=False, classes=10, classifier="linear"):
        super().__init__()
        n = (depth - 2) // 6
        self.preactivation = preactivation
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        if not preactivation:
            self.bn1 = nn.BatchNorm2d(16)
        channels = 16
        for stage, width in enumerate([16, 32, 64]):
            blocks = []
            for index in range(n):
                blocks.append(Block(channels, width, 2 if index == 0 and stage > 0 else 1, shortcut, preactivation))
                channels = width
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        if preactivation:
            self.bn_final = nn.BatchNorm2d(64)
        self.classifier_name = classifier
        setattr(self, classifier, nn.Linear(64, classes))

    def forward(self, x):
        y = self.conv1(x)
        if not self.preactivation:
            y = F.relu(self.bn1(y))
        y = self.layer3(self.layer2(self.layer1(y)))
        if self.preactivation:
            y = F.relu(self.bn_final(y))
        y = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return getattr(self, self.classifier_name)(y)


def fill(model, norms=(nn.BatchNorm2d,)):
    """Formula weights; returns the listing. `norms` are the batch-norm module types (their
    tensors take the norm roles; a norm without a scale simply has no `weight`)."""
    modules = dict(model.named_modules())
    listing = []
    state = model.state_dict()
    for name, tensor in state.items():
        module_name, _, leaf = name.rpartition(".")
        module = modules[module_name]
        shape = list(tensor.shape)
        fan_in = None
        if leaf == "num_batches_tracked":
            listing.append({"name": name, "shape": shape, "role": "counter"})
            continue
        if isinstance(module, norms):
            role = {"weight": "bn_gamma", "bias": "bn_beta", "running_mean": "bn_mean", "running_var": "bn_var"}[leaf]
        elif leaf == "weight":
            role = "kernel"
            fan_in = int(np.prod(shape[1:]))
        else:
            role = "bias"
        values = formula(name, shape, role, fan_in)
        with torch.no_grad():
            state[name].copy_(torch.from_numpy(values))
        entry = {"name": name, "shape": shape, "role": role}
        if fan_in:
            entry["fan_in"] = fan_in
        listing.append(entry)
    model.load_state_dict(state)
    return listing


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    x = np.load(os.path.join(HERE, "..", "Tests", "ZooModelsTests", "References", "input_32.npy"))
    inputs = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    for name, depth, shortcut, preactivation in [("cifar-resnet20", 20, "a", False), ("cifar-resnet20b", 20, "b", False),
                                                 ("cifar-preresnet20", 20, "b", True)]:
        model = CIFARResNet(depth, shortcut, preactivation).eval()
        listing = fill(model)
        with torch.no_grad():
            logits = model(inputs).numpy()
        np.save(os.path.join(OUT, f"{name}_logits.npy"), logits.astype(np.float32))
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump({"model": name, "flavor": "torchvision", "input_size": 32, "input": "input_32.npy",
                       "logits": f"cifar/{name}_logits.npy", "features": None, "tensors": listing, "versions": versions}, f, indent=1)
        print(name, "parameters", sum(p.numel() for p in model.parameters()), "max |logit|", float(np.abs(logits).max()))

    # A checkpoint as other projects save it: DataParallel names, a dict around the state dict,
    # the classifier called fc; the weights are PyTorch's own random initialization.
    torch.manual_seed(8)
    model = CIFARResNet(8, "a", False, classifier="fc").eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        logits = model(inputs).numpy()
    wrapped = nn.DataParallel(model)
    torch.save({"epoch": 182, "best_prec1": 91.25, "state_dict": wrapped.state_dict()},
               os.path.join(OUT, "cifar_resnet8_checkpoint.pth"))
    np.save(os.path.join(OUT, "cifar_resnet8_checkpoint_logits.npy"), logits.astype(np.float32))
    print("checkpoint bytes", os.path.getsize(os.path.join(OUT, "cifar_resnet8_checkpoint.pth")))


if __name__ == "__main__":
    main()
