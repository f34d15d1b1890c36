#!/usr/bin/env python3
"""Reference outputs for zoo's cifar-airbench (Tests/ZooModelsTests/References/cifar/).

The network of Keller Jordan's airbench (main_baseline.py in KellerJordan/cifar10-zoo): a 2x2
convolution without padding, batch norm, GELU, then three groups of conv 3x3, max pool 2x2,
batch norm, GELU, conv 3x3, batch norm, GELU (64, 256, 256 channels), written here from that
description with zoo's two changes: the classifier is a global max pool and a linear layer with
a bias, airbench's fixed 1/9 scale on the logits applied before the pool instead (the same logits
but for the bias), and the batch norms have no scale parameter (airbench
keeps theirs at 1 and does not train it), epsilon 1e-12. Weights come from the same
deterministic hash formula as make_model_references.py; writes

  cifar-airbench.json          listing (names, shapes, roles)
  cifar-airbench_logits.npy    logits for input_32.npy (2 images)

Run: ../venv/bin/python converters/make_cifar_airbench_references.py (CPU; torch 2.15).
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
from make_cifar_resnet_references import OUT, fill  # noqa: E402  (the shared formula and listing)


class ShiftNorm(nn.Module):
    """Batch norm whose scale is fixed at 1: only the shift is a parameter."""

    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias, self.training, 0.1, 1e-12)


class Group(nn.Module):
    def __init__(self, inputs, width):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 3, padding=1, bias=False)
        self.norm1 = ShiftNorm(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm2 = ShiftNorm(width)

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 24, 2, bias=False)
        self.norm = ShiftNorm(24)

    def forward(self, x):
        return F.gelu(self.norm(self.conv(x)))


class Airbench(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = Stem()
        self.block1 = Group(24, 64)
        self.block2 = Group(64, 256)
        self.block3 = Group(256, 256)
        self.linear = nn.Linear(256, classes)

    def forward(self, x):
        y = self.block3(self.block2(self.block1(self.stem(x))))
        return self.linear(F.adaptive_max_pool2d(y / 9, 1).flatten(1))


def main():
    x = np.load(os.path.join(HERE, "..", "Tests", "ZooModelsTests", "References", "input_32.npy"))
    inputs = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    model = Airbench().eval()
    listing = fill(model, norms=(ShiftNorm,))
    with torch.no_grad():
        logits = model(inputs).numpy()
    name = "cifar-airbench"
    np.save(os.path.join(OUT, f"{name}_logits.npy"), logits.astype(np.float32))
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump({"model": name, "flavor": "torchvision", "input_size": 32, "input": "input_32.npy",
                   "logits": f"cifar/{name}_logits.npy", "features": None, "tensors": listing,
                   "versions": {"torch": torch.__version__, "numpy": np.__version__}}, f, indent=1)
    print(name, "parameters", sum(p.numel() for p in model.parameters()), "max |logit|", float(np.abs(logits).max()))


if __name__ == "__main__":
    main()
