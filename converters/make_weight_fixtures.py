#!/usr/bin/env python3
"""Write the weight-file fixtures under Tests/ZooWeightsTests/Fixtures/.

Run:   /work/venv/bin/python converters/make_weight_fixtures.py
(CI never runs this script; the files it writes are committed.)

Every fixture except those marked "emulated" or "hand-crafted" is written by the
real framework's own writer. The script deletes the fixture folder's contents
(keeping `.keep`), rewrites every file, writes `expected.json`, then reopens every
file with the Python libraries (h5py, torch.load(weights_only=True), zipfile,
np.load, safetensors, plus a small pickle probe that never executes anything)
and asserts that the files match expected.json.

Written with (also recorded in expected.json under "writers"; the script warns
if the installed versions differ):
    python 3.11.7, numpy 2.4.6, h5py 3.14.0 (HDF5 1.14.6), torch 2.15.0,
    tensorflow 2.21.0, tf-keras 2.21.0 (Keras 2 API, legacy HDF5 writer),
    keras 3.15.1 (Keras 3, TensorFlow backend), safetensors 0.8.0

Tensor values (see also expected.json "value_formula"):
    float tensors:  value[i] = offset + 0.1 * sin(0.37 * i + k)
                    i = flat row-major index of the tensor as created (Keras
                    shape for Keras files, torch shape for torch files),
                    k = per-tensor index (recorded per tensor as "k"),
                    offset = 1.0 for BN gamma/weight and moving/running variance,
                    else 0.0. Computed in float64, then cast (round to nearest
                    even) to the stored dtype.
    integer tensors: value[i] = lo + (7 * i + 3 * k) mod (hi - lo + 1)
    bool tensors:    value[i] = ((i + k) mod 3 == 0)
Views (torch_views.pt, torch_legacy.pt) take their values from their base.
expected.json lists every value anyway, in logical row-major order, as the
float64 number equal to the stored value (so float32/16/bf16 values are exact).

Files are deterministic in content (names, shapes, values); a few bytes are not
(torch's `.data/serialization_id`, legacy torch storage keys, Keras `.keras`
metadata.json date and zip timestamps).
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["KERAS_BACKEND"] = "tensorflow"

import collections
import io
import json
import pickle
import pickletools
import re
import shutil
import struct
import sys
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np

# torch.optim imports torch._dynamo, which registers LLVM command-line options that
# TensorFlow's bundled LLVM registers too ("Option ... registered more than once",
# abort). Importing torch._dynamo before TensorFlow avoids the clash.
import torch  # noqa: E402
import torch._dynamo  # noqa: E402,F401

WRITTEN_WITH = {
    "python": "3.11.7",
    "numpy": "2.4.6",
    "h5py": "3.14.0",
    "hdf5": "1.14.6",
    "torch": "2.15.0",
    "tensorflow": "2.21.0",
    "tf_keras": "2.21.0",
    "keras": "3.15.1",
    "safetensors": "0.8.0",
}

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "Tests" / "ZooWeightsTests" / "Fixtures"

EXPECTED = {
    "writers": {},
    "value_formula": {
        "float": "value[i] = offset + 0.1*sin(0.37*i + k); i = flat row-major index of the "
        "tensor as created, k = the tensor's \"k\", offset = the tensor's \"offset\" "
        "(1.0 for BN gamma/weight and moving/running variance, else 0.0); computed in "
        "float64, cast (round-to-nearest-even) to the stored dtype",
        "integer": "value[i] = lo + (7*i + 3*k) mod (hi - lo + 1) with the tensor's \"int_range\" [lo, hi]",
        "bool": "value[i] = ((i + k) mod 3 == 0), listed as 0/1",
        "views": "tensors with \"view_of\" take their values from that base tensor; no own k",
        "values": "\"values\" always lists every element in logical row-major (C) order of the "
        "tensor's shape (whatever its strides, storage offset or fortran_order), as the float64 "
        "number exactly equal to the stored value; integers and bools as integers",
    },
    "naming_rules": {
        "metadata": "\"observed_h5_attribute_types\" records the exact HDF5 type h5py wrote for "
        "string attributes (fixed/vlen, cset, padding, shape; shape null = scalar dataspace). "
        "\"extra_groups\" = groups in the weights root that are not in layer_names.",
        "keras-h5": "weights root R = file root for weights-only files, /model_weights for full-model "
        "files. Layer order = R@layer_names (or the concatenation of R@layer_names0, "
        "R@layer_names1, ... when chunked), weightless layers included. For layer L, weights = "
        "/R/L@weight_names (or weight_names0, 1, ...), in order; each weight W is the HDF5 "
        "dataset R/L/W (W may contain '/', i.e. nested groups). Listed tensor name = W if W "
        "starts with L + '/', otherwise L + '/' + W. The dataset path is always R/L/W, "
        "never derived from the listed name. Keras 2 names end in ':0', Keras 3 names do not. "
        "\"tensors\" lists model weights in layer_names x weight_names order; optimizer "
        "weights (/optimizer_weights, names from its own weight_names, listed as written) go "
        "to \"optimizer_tensors\". The group top_level_model_weights (not in layer_names) is "
        "listed in metadata only.",
        "keras3-weights-h5": "listed name = HDF5 dataset path relative to the weights file root, "
        "e.g. layers/conv2d/vars/0, layers/functional/layers/batch_normalization/vars/3. "
        "\"tensors\" lists them in Keras save order (model.layers order, vars 0,1,2...); "
        "HDF5 iteration order is by name (conv2d, conv2d_1, ...), so compare by name. "
        "Groups under optimizer/ are not model weights: listed in metadata.optimizer_datasets.",
        "keras-archive": "same as keras3-weights-h5 for the archive member model.weights.h5",
        "torch-zip": "state-dict key as pickled (e.g. features.0.weight, module.fc.bias). For "
        "checkpoints, tensors are those of metadata.state_dict_key; other tensors go to "
        "\"extra_tensors\" named by their dotted path in the checkpoint object.",
        "torch-legacy": "as torch-zip",
        "safetensors": "header key; order in \"tensors\" is by name (the file orders data by "
        "dtype alignment, then name)",
        "npz": "member name without the .npy suffix, in zip member order",
        "npy": "single tensor named \"\"",
    },
    "fixtures": {},
}


# ----------------------------------------------------------------------------
# values


def fpattern(shape, k, offset=0.0):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.float64)
    return (offset + 0.1 * np.sin(0.37 * i + k)).reshape(shape)


def ipattern(shape, k, lo, hi):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    return (lo + (7 * i + 3 * k) % (hi - lo + 1)).reshape(shape)


def bpattern(shape, k):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    return ((i + k) % 3 == 0).reshape(shape)


def dtype_name(dt):
    dt = np.dtype(dt)
    key = (dt.kind, dt.itemsize)
    table = {
        ("f", 2): "f16", ("f", 4): "f32", ("f", 8): "f64",
        ("i", 1): "i8", ("i", 2): "i16", ("i", 4): "i32", ("i", 8): "i64",
        ("u", 1): "u8", ("b", 1): "bool",
    }
    if key not in table:
        raise ValueError(f"unsupported dtype {dt}")
    return table[key]


def np_values(a):
    a = np.asarray(a)
    flat = a.ravel(order="C")
    if a.dtype.kind in "biu":
        return [int(x) for x in flat]
    return [float(x) for x in flat.astype(np.float64)]


def entry(name, arr, dtype=None, **extra):
    """Expected-tensor record from a NumPy array holding the stored values."""
    arr = np.asarray(arr)
    e = {"name": name, "dtype": dtype or dtype_name(arr.dtype), "shape": list(arr.shape)}
    e.update(extra)
    e["values"] = np_values(arr)
    return e


def role_offset(name):
    base = name.split("/")[-1].split(":")[0].split(".")[-1]
    return 1.0 if base in ("gamma", "moving_variance", "running_var") else 0.0


# ----------------------------------------------------------------------------
# HDF5 helpers


def describe_attr(obj, attr_name):
    """Exact HDF5 type of an attribute, as h5py wrote it (for expected.json)."""
    aid = h5py.h5a.open(obj.id, attr_name.encode("utf-8"))
    t = aid.get_type()
    space = aid.get_space()
    d = {"shape": list(space.shape) if space.get_simple_extent_type() == h5py.h5s.SIMPLE else None}
    if space.get_simple_extent_type() == h5py.h5s.NULL:
        d["shape"] = "null-dataspace"
    cls = t.get_class()
    if cls == h5py.h5t.STRING:
        d["class"] = "vlen-string" if t.is_variable_str() else "fixed-string"
        if not t.is_variable_str():
            d["size"] = t.get_size()
        d["cset"] = {h5py.h5t.CSET_ASCII: "ascii", h5py.h5t.CSET_UTF8: "utf-8"}[t.get_cset()]
        d["strpad"] = {h5py.h5t.STR_NULLTERM: "nullterm", h5py.h5t.STR_NULLPAD: "nullpad",
                       h5py.h5t.STR_SPACEPAD: "spacepad"}[t.get_strpad()]
    elif cls == h5py.h5t.FLOAT:
        d["class"] = f"float{8 * t.get_size()}"
    elif cls == h5py.h5t.INTEGER:
        d["class"] = f"int{8 * t.get_size()}"
    else:
        d["class"] = f"h5t-class-{cls}"
    return d


def attr_types(h5file, paths_and_names):
    out = []
    for path, name in paths_and_names:
        obj = h5file[path]
        if name in obj.attrs:
            out.append({"path": path, "attr": name, **describe_attr(obj, name)})
    return out


def str_list(v):
    if isinstance(v, (bytes, np.bytes_)):
        return [bytes(v).decode("utf-8")]
    if isinstance(v, str):
        return [v]
    return [x.decode("utf-8") if isinstance(x, (bytes, np.bytes_)) else str(x) for x in np.asarray(v).ravel()]


def read_name_attr(group, name):
    """(names, number_of_chunks) following the Keras chunking rule."""
    if name in group.attrs:
        return str_list(group.attrs[name]) if group.attrs[name].size else [], 0
    names, i = [], 0
    while f"{name}{i}" in group.attrs:
        names += str_list(group.attrs[f"{name}{i}"])
        i += 1
    return names, i


def str_attr(group, name):
    v = group.attrs[name]
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode("utf-8")
    if isinstance(v, np.ndarray):
        return str_list(v)[0]
    return str(v)


def listed_name(layer, weight):
    return weight if weight.startswith(layer + "/") else f"{layer}/{weight}"


# ----------------------------------------------------------------------------
# NumPy


def write_npy():
    fx = EXPECTED["fixtures"]

    def npy(fname, arr, version, descr, fortran, k, extra=None, writer=None):
        path = FIX / fname
        if writer:
            writer(path)
        else:
            np.save(path, arr)
        md = {"npy_version": list(version), "descr": descr, "fortran_order": fortran}
        e = entry("", arr, **(extra or {}))
        if k is not None:
            e = {**{kk: vv for kk, vv in e.items() if kk != "values"}, "k": k, "values": e["values"]}
        fx[fname] = {"format": "npy", "metadata": md, "tensors": [e]}

    a = fpattern((3, 4), 0).astype(np.float32)
    npy("f32.npy", a, (1, 0), "<f4", False, 0, {"offset": 0.0})
    b = np.asfortranarray(fpattern((3, 4), 1))
    assert b.flags.f_contiguous and not b.flags.c_contiguous
    npy("f64_fortran.npy", b, (1, 0), "<f8", True, 1, {"offset": 0.0})
    npy("f16.npy", fpattern((5,), 2).astype(np.float16), (1, 0), "<f2", False, 2, {"offset": 0.0})
    npy("i64.npy", ipattern((2, 3), 3, -5, 5).astype(np.int64), (1, 0), "<i8", False, 3,
        {"int_range": [-5, 5]})
    npy("big_endian_f4.npy", fpattern((2, 2, 2), 4).astype(">f4"), (1, 0), ">f4", False, 4,
        {"offset": 0.0})
    v2 = fpattern((4,), 5).astype(np.float32)

    def write_v2(path):
        with open(path, "wb") as f:
            np.lib.format.write_array(f, v2, version=(2, 0))

    npy("v2.npy", v2, (2, 0), "<f4", False, 5, {"offset": 0.0}, writer=write_v2)
    npy("scalar_f32.npy", np.array(2.5, dtype=np.float32), (1, 0), "<f4", False, None)

    obj = np.array([{"weights": [1, 2, 3]}, "text", 3], dtype=object)
    np.save(FIX / "object.npy", obj, allow_pickle=True)
    fx["object.npy"] = {
        "format": "rejected",
        "reject_reason": "npy descr '|O' (object dtype) is a pickle; not allowed",
        "metadata": {"container": "npy", "npy_version": [1, 0], "descr": "|O", "shape": [3]},
        "tensors": [],
    }


def write_npz():
    fx = EXPECTED["fixtures"]
    # np.savez(path, positional, **named) stores the named arrays first, then arr_0
    arrays = collections.OrderedDict()
    arrays["conv.weight"] = fpattern((2, 1, 3, 3), 11).astype(np.float32)
    arrays["bias"] = fpattern((2,), 12).astype(np.float64)
    arrays["ids"] = ipattern((4,), 13, 0, 9).astype(np.int32)
    arrays["half"] = fpattern((3,), 14).astype(np.float16)
    arrays["arr_0"] = fpattern((2, 3), 10).astype(np.float32)
    meta = {"arr_0": 10, "conv.weight": 11, "bias": 12, "ids": 13, "half": 14}
    kw = {k: v for k, v in arrays.items() if k != "arr_0"}
    for fname, fn, comp in (("arrays.npz", np.savez, "stored"),
                            ("arrays_compressed.npz", np.savez_compressed, "deflate")):
        fn(FIX / fname, arrays["arr_0"], **kw)
        tensors = []
        for name, arr in arrays.items():
            extra = {"k": meta[name]}
            if name == "ids":
                extra["int_range"] = [0, 9]
            else:
                extra["offset"] = 0.0
            tensors.append(entry(name, arr, **extra))
        fx[fname] = {
            "format": "npz",
            "metadata": {"members": [n + ".npy" for n in arrays], "compression": comp},
            "tensors": tensors,
        }


# ----------------------------------------------------------------------------
# safetensors


def write_safetensors():
    import safetensors.numpy
    import safetensors.torch
    import torch

    fx = EXPECTED["fixtures"]
    t = collections.OrderedDict()
    t["conv.weight"] = (fpattern((2, 3, 3, 3), 20).astype(np.float32), {"k": 20, "offset": 0.0})
    t["half"] = (fpattern((5,), 21).astype(np.float16), {"k": 21, "offset": 0.0})
    t["f64"] = (fpattern((2, 2), 22), {"k": 22, "offset": 0.0})
    t["ids"] = (ipattern((2, 3), 23, -100, 100).astype(np.int64), {"k": 23, "int_range": [-100, 100]})
    t["u8"] = (ipattern((4,), 24, 0, 255).astype(np.uint8), {"k": 24, "int_range": [0, 255]})
    t["flags"] = (bpattern((5,), 25), {"k": 25})
    t["scalar"] = (np.array(3.25, dtype=np.float32), {})
    t["empty"] = (np.zeros((0, 4), dtype=np.float32), {})
    md = {"format": "np", "producer": "zoo converters/make_weight_fixtures.py"}
    safetensors.numpy.save_file({k: v for k, (v, _) in t.items()}, str(FIX / "tensors.safetensors"), metadata=md)
    os.chmod(FIX / "tensors.safetensors", 0o644)  # safetensors creates files 0600
    fx["tensors.safetensors"] = {
        "format": "safetensors",
        "metadata": {"writer": "safetensors.numpy.save_file", "__metadata__": md},
        "tensors": [entry(k, v, **x) for k, (v, x) in sorted(t.items())],
    }

    bf = torch.tensor(fpattern((2, 3), 26), dtype=torch.float64).to(torch.bfloat16)
    f32 = torch.tensor(fpattern((3,), 27), dtype=torch.float32)
    i32 = torch.tensor(ipattern((2, 2), 28, -9, 9), dtype=torch.int32)
    md2 = {"format": "pt"}
    safetensors.torch.save_file({"bf16": bf, "f32": f32, "i32": i32},
                                str(FIX / "tensors_bf16.safetensors"), metadata=md2)
    os.chmod(FIX / "tensors_bf16.safetensors", 0o644)
    fx["tensors_bf16.safetensors"] = {
        "format": "safetensors",
        "metadata": {"writer": "safetensors.torch.save_file", "__metadata__": md2},
        "tensors": [
            entry("bf16", bf.float().numpy(), dtype="bf16", k=26, offset=0.0),
            entry("f32", f32.numpy(), k=27, offset=0.0),
            entry("i32", i32.numpy(), k=28, int_range=[-9, 9]),
        ],
    }


# ----------------------------------------------------------------------------
# PyTorch


def torch_dtype_name(dt):
    import torch

    return {
        torch.float16: "f16", torch.bfloat16: "bf16", torch.float32: "f32",
        torch.float64: "f64", torch.int8: "i8", torch.int16: "i16", torch.int32: "i32",
        torch.int64: "i64", torch.uint8: "u8", torch.bool: "bool",
    }[dt]


def t_np(t):
    import torch

    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.float().numpy()
    return t.numpy()


def tentry(name, t, storage_keys=None, **extra):
    """Expected record for a torch tensor, with its storage layout."""
    e = {"name": name, "dtype": torch_dtype_name(t.dtype), "shape": list(t.shape)}
    e["stride"] = list(t.stride())
    e["storage_offset"] = int(t.storage_offset())
    st = t.untyped_storage()
    e["storage_numel"] = st.nbytes() // t.element_size()
    if storage_keys is not None:
        e["storage_key"] = storage_keys[st._cdata]
    e.update(extra)
    e["values"] = np_values(t_np(t))
    return e


def storage_keys_for(tensors):
    """Key torch gives each storage: order of first appearance while pickling."""
    keys = {}
    for t in tensors:  # torch keys storages by StorageImpl pointer (storage._cdata)
        keys.setdefault(t.untyped_storage()._cdata, str(len(keys)))
    return keys


def make_tinynet():
    import torch
    from torch import nn

    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 4, 3, padding=1, bias=True),
                nn.BatchNorm2d(4),
                nn.ReLU(inplace=True),
                nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False),  # depthwise
            )
            self.fc = nn.Linear(4, 5)

        def forward(self, x):
            return self.fc(self.features(x).mean((2, 3)))

    torch.manual_seed(0)
    m = TinyNet()
    with torch.no_grad():
        for k, (name, t) in enumerate(m.state_dict().items()):
            if t.dtype == torch.int64:  # num_batches_tracked
                t.fill_(7)
            else:
                t.copy_(torch.tensor(fpattern(tuple(t.shape), k, role_offset(name))))
    return m


def sd_entries(sd, keys, prefix=""):
    import torch

    out = []
    for k, (name, t) in enumerate(sd.items()):
        extra = {}
        if t.dtype == torch.int64:
            extra["note"] = "num_batches_tracked, filled with 7"
        else:
            extra["k"] = k
            extra["offset"] = role_offset(name)
        out.append(tentry(name, t, keys, **extra))
    return out


def zip_layout(path):
    z = zipfile.ZipFile(path)
    names = [i.filename for i in z.infolist()]
    return names


def torch_zip_metadata(path, top_kind):
    names = zip_layout(path)
    prefix = names[0].split("/")[0]
    return {
        "archive_prefix": prefix,
        "entries": names,
        "byteorder": "little",
        "version": "3",
        "pickle_protocol": 2,
        "top_level": top_kind,
    }


def write_torch():
    import torch
    from torch import nn

    fx = EXPECTED["fixtures"]

    # 11. plain state_dict, saved to a buffer -> folder "archive"
    m = make_tinynet()
    sd = m.state_dict()
    buf = io.BytesIO()
    torch.save(sd, buf)
    (FIX / "torch_state_dict.pt").write_bytes(buf.getvalue())
    keys = storage_keys_for(sd.values())
    fx["torch_state_dict.pt"] = {
        "format": "torch-zip",
        "metadata": {**torch_zip_metadata(FIX / "torch_state_dict.pt", "collections.OrderedDict"),
                     "written_by": "torch.save(model.state_dict(), io.BytesIO())"},
        "tensors": sd_entries(sd, keys),
    }

    # 12. DataParallel-style checkpoint
    m = make_tinynet()
    dp = nn.DataParallel(m)
    opt = torch.optim.SGD(dp.parameters(), lr=0.1, momentum=0.9)
    base_k = 100
    with torch.no_grad():
        for j, p in enumerate(dp.parameters()):
            p.grad = torch.tensor(fpattern(tuple(p.shape), base_k + j), dtype=torch.float32)
    saved = {n: t.clone() for n, t in m.state_dict().items()}
    opt.step()  # first step: momentum_buffer = grad (no weight decay)
    with torch.no_grad():  # undo the parameter update: weights stay on the formula
        for n, t in m.state_dict().items():
            t.copy_(saved[n])
    dsd = dp.state_dict()
    assert all(k.startswith("module.") for k in dsd)
    ckpt = {"epoch": 3, "arch": "tinynet", "state_dict": dsd, "best_acc1": 61.5,
            "optimizer": opt.state_dict()}
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    (FIX / "torch_checkpoint.pth").write_bytes(buf.getvalue())
    osd = opt.state_dict()
    all_tensors = list(dsd.values()) + [osd["state"][i]["momentum_buffer"] for i in sorted(osd["state"])]
    keys = storage_keys_for(all_tensors)
    extra = []
    for i in sorted(osd["state"]):
        t = osd["state"][i]["momentum_buffer"]
        extra.append(tentry(f"optimizer.state.{i}.momentum_buffer", t, keys, k=base_k + i, offset=0.0,
                            note="equals the grad set by the formula (first SGD step)"))
    fx["torch_checkpoint.pth"] = {
        "format": "torch-zip",
        "metadata": {
            **torch_zip_metadata(FIX / "torch_checkpoint.pth", "dict"),
            "written_by": "torch.save({epoch, arch, state_dict: nn.DataParallel(m).state_dict(), "
                          "best_acc1, optimizer: SGD.state_dict()}, io.BytesIO())",
            "top_level_keys": list(ckpt.keys()),
            "state_dict_key": "state_dict",
            "key_prefix": "module.",
            "epoch": 3,
            "arch": "tinynet",
            "best_acc1": 61.5,
            "optimizer_param_groups": [{kk: vv for kk, vv in g.items()
                                        if isinstance(vv, (int, float, bool, list, type(None), str))}
                                       for g in osd["param_groups"]],
        },
        "tensors": sd_entries(dsd, keys),
        "extra_tensors": extra,
    }

    # 13. views, shared storages, dtypes
    views, vmeta, ventries = make_views_dict()
    buf = io.BytesIO()
    torch.save(views, buf)
    (FIX / "torch_views.pt").write_bytes(buf.getvalue())
    keys = storage_keys_for(views.values())
    fx["torch_views.pt"] = {
        "format": "torch-zip",
        "metadata": {**torch_zip_metadata(FIX / "torch_views.pt", "collections.OrderedDict"),
                     "written_by": "torch.save(OrderedDict(...), io.BytesIO())", **vmeta},
        "tensors": [tentry(n, views[n], keys, **x) for n, x in ventries],
    }

    # 14. legacy (pre-1.6) format
    m = make_tinynet()
    lsd = collections.OrderedDict(m.state_dict())
    base = torch.tensor(fpattern((3, 4), 50), dtype=torch.float32)
    lsd["view.base"] = base
    lsd["view.transposed"] = base.t()
    lsd["view.slice"] = base[1:, 1:3]          # storage offset 5, strides (4, 1)
    orphan = torch.tensor(fpattern((8,), 51), dtype=torch.float32)
    lsd["view.orphan_slice"] = orphan[2:6]     # base not saved: storage has 8 elements
    lsd["tied.a"] = lsd["fc.weight"]
    with open(FIX / "torch_legacy.pt", "wb") as f:
        torch.save(lsd, f, _use_new_zipfile_serialization=False)
    ents = sd_entries(m.state_dict(), None)
    ents.append(tentry("view.base", base, None, k=50, offset=0.0))
    ents.append(tentry("view.transposed", lsd["view.transposed"], None, view_of="view.base"))
    ents.append(tentry("view.slice", lsd["view.slice"], None, view_of="view.base"))
    ents.append(tentry("view.orphan_slice", lsd["view.orphan_slice"], None,
                       view_of="a (8,) tensor with k=51, offset 0.0, not saved itself"))
    ents.append(tentry("tied.a", lsd["tied.a"], None, view_of="fc.weight"))
    fx["torch_legacy.pt"] = {
        "format": "torch-legacy",
        "metadata": {
            "written_by": "torch.save(sd, f, _use_new_zipfile_serialization=False)",
            "magic_number": 0x1950A86A20F9469CFC6C,
            "protocol_version": 1001,
            "pickle_protocol": 2,
            "top_level": "collections.OrderedDict",
            "storage_count": len(storage_keys_for(lsd.values())),
            "shared_storage": [["view.base", "view.transposed", "view.slice"], ["fc.weight", "tied.a"]],
            "note": "storage keys are str(storage._cdata) (a pointer): they differ per run; "
                    "map them through the pickled key list, never assume 0,1,2",
        },
        "tensors": ents,
    }

    # 15. folder name other than "archive": torch.save by path names the folder after the stem
    m = make_tinynet()
    torch.save(m.state_dict(), FIX / "torch_custom_prefix.pt")
    sd = m.state_dict()
    keys = storage_keys_for(sd.values())
    fx["torch_custom_prefix.pt"] = {
        "format": "torch-zip",
        "metadata": {**torch_zip_metadata(FIX / "torch_custom_prefix.pt", "collections.OrderedDict"),
                     "written_by": "torch.save(model.state_dict(), 'torch_custom_prefix.pt') "
                                   "(real torch writer; torch names the folder after the file stem)"},
        "tensors": sd_entries(sd, keys),
    }


def make_views_dict():
    import torch
    from torch import nn

    d = collections.OrderedDict()
    ents = []
    base = torch.tensor(fpattern((4, 6), 0), dtype=torch.float32)
    d["base"] = base
    ents.append(("base", {"k": 0, "offset": 0.0}))
    d["base_t"] = base.t()                      # (6, 4), strides (1, 6)
    ents.append(("base_t", {"view_of": "base", "note": "transpose, non-contiguous"}))
    d["base_slice"] = base[1:3, 2:]             # (2, 4), offset 8, strides (6, 1)
    ents.append(("base_slice", {"view_of": "base", "note": "slice with storage offset, non-contiguous"}))
    d["flat_slice"] = base.view(-1)[5:17]       # (12,), offset 5
    ents.append(("flat_slice", {"view_of": "base", "note": "contiguous slice with storage offset"}))
    other = torch.tensor(fpattern((10,), 1), dtype=torch.float32)
    d["orphan_slice"] = other[3:7]              # base not saved: storage keeps all 10 elements
    ents.append(("orphan_slice", {"view_of": "a (10,) f32 tensor with k=1, offset 0.0, not saved itself"}))

    tied = nn.Module()
    tied.enc = nn.Linear(3, 2, bias=False)
    tied.dec = nn.Linear(3, 2, bias=False)
    tied.dec.weight = tied.enc.weight
    with torch.no_grad():
        tied.enc.weight.copy_(torch.tensor(fpattern((2, 3), 2)))
    tsd = tied.state_dict()
    d["tied.enc.weight"] = tsd["enc.weight"]
    d["tied.dec.weight"] = tsd["dec.weight"]
    ents.append(("tied.enc.weight", {"k": 2, "offset": 0.0}))
    ents.append(("tied.dec.weight", {"view_of": "tied.enc.weight", "note": "tied weight: second tensor object, same storage"}))

    def f(shape, k, dt):
        return torch.tensor(fpattern(shape, k), dtype=torch.float64).to(dt)

    def i(shape, k, lo, hi, dt):
        return torch.tensor(ipattern(shape, k, lo, hi), dtype=dt)

    d["f16"] = f((2, 3), 3, torch.float16); ents.append(("f16", {"k": 3, "offset": 0.0}))
    d["bf16"] = f((2, 3), 4, torch.bfloat16); ents.append(("bf16", {"k": 4, "offset": 0.0}))
    d["f64"] = f((2, 2), 5, torch.float64); ents.append(("f64", {"k": 5, "offset": 0.0}))
    d["i64"] = i((5,), 6, -1000, 1000, torch.int64); ents.append(("i64", {"k": 6, "int_range": [-1000, 1000]}))
    d["i32"] = i((2, 2), 7, -50, 50, torch.int32); ents.append(("i32", {"k": 7, "int_range": [-50, 50]}))
    d["i16"] = i((3,), 8, -300, 300, torch.int16); ents.append(("i16", {"k": 8, "int_range": [-300, 300]}))
    d["i8"] = i((4,), 9, -128, 127, torch.int8); ents.append(("i8", {"k": 9, "int_range": [-128, 127]}))
    d["u8"] = i((6,), 10, 0, 255, torch.uint8); ents.append(("u8", {"k": 10, "int_range": [0, 255]}))
    d["bool"] = torch.tensor(bpattern((5,), 11)); ents.append(("bool", {"k": 11}))
    d["scalar"] = torch.tensor(1.5, dtype=torch.float32); ents.append(("scalar", {"note": "0-d tensor, value 1.5"}))
    d["empty"] = torch.zeros((0, 3), dtype=torch.float32); ents.append(("empty", {"note": "zero elements; storage of 0 bytes"}))
    p = nn.Parameter(torch.tensor(fpattern((3,), 12), dtype=torch.float32))
    d["param"] = p
    ents.append(("param", {"k": 12, "offset": 0.0, "note": "nn.Parameter: pickled via torch._utils._rebuild_parameter"}))
    d["param_alias"] = p
    ents.append(("param_alias", {"view_of": "param", "note": "the same Parameter object again: pickle memo (BINGET)"}))
    meta = {
        "shared_storage": [["base", "base_t", "base_slice", "flat_slice"],
                           ["tied.enc.weight", "tied.dec.weight"], ["param", "param_alias"]],
        "parameters": ["param", "param_alias"],
    }
    return d, meta, ents


# ----------------------------------------------------------------------------
# hand-crafted malicious pickles (never executed)


def op_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_binunicode(s):
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def malicious_pickle(module, name, arg):
    """{'weight': module.name(arg)} as protocol-2 opcodes, built by hand."""
    P = pickle
    return b"".join([
        P.PROTO + b"\x02",
        op_global("collections", "OrderedDict"),
        P.EMPTY_TUPLE,
        P.REDUCE,
        P.BINPUT + b"\x00",
        P.MARK,
        op_binunicode("weight"),
        op_global(module, name),
        op_binunicode(arg),
        P.TUPLE1,
        P.REDUCE,
        P.SETITEMS,
        P.STOP,
    ])


def write_malicious():
    import torch

    fx = EXPECTED["fixtures"]
    cases = [
        ("malicious_os_system.pt", "os", "system",
         "echo zoo-fixture: os.system was executed, a reader must reject this file",
         "global os.system not allowed"),
        ("malicious_posix_system.pt", "posix", "system",
         "echo zoo-fixture: posix.system was executed, a reader must reject this file",
         "global posix.system not allowed"),
        ("malicious_builtins_eval.pt", "builtins", "eval",
         "print('zoo-fixture: builtins.eval was executed, a reader must reject this file')",
         "global builtins.eval not allowed"),
    ]
    for fname, mod, name, arg, reason in cases:
        data = malicious_pickle(mod, name, arg)
        # validate the opcode stream without executing it
        ops = [(op.name, a) for op, a, _ in pickletools.genops(data)]
        assert ("GLOBAL", f"{mod} {name}") in ops and ops[-1][0] == "STOP"
        buf = io.BytesIO()
        # torch's own zip writer (same class torch.save uses), records written by hand
        with torch.serialization._open_zipfile_writer(buf) as zw:
            zw.write_record("data.pkl", data, len(data))
            zw.write_record("byteorder", b"little", len(b"little"))
        (FIX / fname).write_bytes(buf.getvalue())
        fx[fname] = {
            "format": "rejected",
            "reject_reason": reason,
            "metadata": {
                "container": "torch-zip",
                "archive_prefix": "archive",
                "entries": zip_layout(FIX / fname),
                "disallowed_global": f"{mod} {name}",
                "pickle_opcodes": [o for o, _ in ops],
                "written_by": "hand-crafted protocol-2 pickle (GLOBAL + REDUCE) in torch's "
                              "PyTorchFileWriter zip; never executed",
            },
            "tensors": [],
        }


# ----------------------------------------------------------------------------
# Keras 2 (tf_keras) legacy HDF5


def assign_keras_vars(variables, k0=0):
    """Assign formula values; returns {id(var): (k, offset)}."""
    info = {}
    for j, v in enumerate(variables):
        k = k0 + j
        off = role_offset(v.name)
        v.assign(fpattern(tuple(v.shape), k, off).astype(np.float32))  # all Keras weights here are float32
        info[id(v)] = (k, off)
    return info


def keras_entries(layers, info, name_of, layer_weights):
    """Tensors in layer order x legacy weight order, with listed names."""
    out, lw = [], {}
    for layer in layers:
        ws = layer_weights(layer)
        lw[layer.name] = [name_of(w) for w in ws]
        for w in ws:
            k, off = info[id(w)]
            arr = np.asarray(w.numpy())
            out.append(entry(listed_name(layer.name, name_of(w)), arr, k=k, offset=off,
                             h5_dataset=f"{layer.name}/{name_of(w)}"))
    return out, lw


def k2_legacy_weights(layer):
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def build_k2_model(tk):
    L = tk.layers
    inp = tk.Input((8, 8, 3), name="input")
    x = L.ZeroPadding2D(1, name="pad")(inp)
    x = L.Conv2D(4, 3, strides=2, use_bias=True, name="conv")(x)
    x = L.BatchNormalization(epsilon=1.001e-5, name="conv_bn")(x)
    x = L.ReLU(name="conv_relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = L.BatchNormalization(epsilon=1e-3, name="dw_bn")(x)
    x = L.ReLU(6.0, name="dw_relu")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    x = L.Dense(5, name="predictions")(x)
    model = tk.Model(inp, x, name="k2net")
    info = assign_keras_vars(model.weights)
    return model, info


def chunk_counts(names, limit):
    """Replicates tf_keras save_attributes_to_hdf5_group chunking."""
    arr = np.asarray([n.encode("utf-8") for n in names])
    if arr.size == 0:
        return 0
    n = 1
    while any(x.nbytes > limit for x in np.array_split(arr, n)):
        n += 1
    return 0 if n == 1 else n


def keras_h5_fixture(path, model, info, name_of, keras_version, backend, root, extra_md=None,
                     layer_weights=k2_legacy_weights, extra_groups=("top_level_model_weights",)):
    tensors, lw = keras_entries(model.layers, info, name_of, layer_weights)
    for t in tensors:
        t["h5_dataset"] = (root.rstrip("/") + "/" + t["h5_dataset"]).lstrip("/")
    md = {
        "keras_version": keras_version,
        "backend": backend,
        "weights_root": root,
        "layer_names": [layer.name for layer in model.layers],
        "weight_names": lw,
        "extra_groups": list(extra_groups),
    }
    if root != "/":
        md["root_groups"] = ["model_weights"] + (["optimizer_weights"] if "optimizer_weight_names" in (extra_md or {}) else [])
    md.update(extra_md or {})
    with h5py.File(path, "r") as f:
        paths = [(root, "layer_names"), (root, "backend"), (root, "keras_version")]
        paths += [("/", a) for a in ("keras_version", "backend", "model_config", "training_config")] if root != "/" else []
        for ln in md["layer_names"]:
            paths.append((f"{root.rstrip('/')}/{ln}", "weight_names"))
        chunked = [(p, f"{a}{i}") for p, a in paths for i in range(8)]
        md["observed_h5_attribute_types"] = attr_types(f, paths + chunked)
    return {"format": "keras-h5", "metadata": md, "tensors": tensors}


def write_keras2():
    import tf_keras as tk
    from tf_keras.src.saving.legacy import hdf5_format

    tk.utils.set_random_seed(0)
    fx = EXPECTED["fixtures"]
    kv = tk.__version__
    name_of = lambda w: w.name  # noqa: E731  (tf variable names: "conv/kernel:0")

    # 1. weights only
    model, info = build_k2_model(tk)
    model.save_weights(str(FIX / "keras2_weights.h5"), save_format="h5")
    fx["keras2_weights.h5"] = keras_h5_fixture(
        FIX / "keras2_weights.h5", model, info, name_of, kv, "tensorflow", "/",
        {"written_by": "tf_keras Model.save_weights(path, save_format='h5')"})

    # 2. full model, compiled, optimizer built
    tk.backend.clear_session()
    model, info = build_k2_model(tk)
    model.compile(optimizer=tk.optimizers.SGD(learning_rate=0.01, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    opt_vars = list(model.optimizer.variables)
    opt_entries = []
    for j, v in enumerate(opt_vars):
        if v.dtype.is_integer:
            v.assign(7)
            opt_entries.append(entry(v.name, np.asarray(v.numpy()), note="iterations, set to 7"))
        elif len(v.shape) == 0:
            opt_entries.append(entry(v.name, np.asarray(v.numpy()), note="scalar optimizer state, as created"))
        else:
            v.assign(fpattern(tuple(v.shape), 200 + j).astype(np.float32))
            opt_entries.append(entry(v.name, np.asarray(v.numpy()), k=200 + j, offset=0.0))
    for e in opt_entries:
        e["h5_dataset"] = "optimizer_weights/" + e["name"]
    model.save(str(FIX / "keras2_full_model.h5"), save_format="h5")
    fxe = keras_h5_fixture(
        FIX / "keras2_full_model.h5", model, info, name_of, kv, "tensorflow", "/model_weights",
        {"written_by": "tf_keras Model.save(path, save_format='h5') after compile(SGD(momentum=0.9), 'mse') "
                       "and optimizer.build()",
         "model_config_class_name": "Functional",
         "model_name": "k2net",
         "has_training_config": True,
         "optimizer_weight_names": [e["name"] for e in opt_entries]})
    fxe["optimizer_tensors"] = opt_entries
    fx["keras2_full_model.h5"] = fxe

    # 3. nested: Sequential([Functional backbone, Dense])
    tk.backend.clear_session()
    L = tk.layers
    bin_ = tk.Input((6, 6, 2), name="backbone_input")
    y = L.Conv2D(3, 3, name="inner_conv")(bin_)
    y = L.BatchNormalization(name="inner_bn")(y)
    y = L.ReLU(name="inner_relu")(y)
    y = L.Conv2D(2, 1, use_bias=False, name="inner_conv2")(y)
    y = L.BatchNormalization(name="inner_bn2")(y)
    y = L.GlobalAveragePooling2D(name="inner_pool")(y)
    backbone = tk.Model(bin_, y, name="backbone")
    model = tk.Sequential([tk.Input((6, 6, 2)), backbone, L.Dense(4, name="head")], name="nested")
    info = assign_keras_vars(model.weights)
    model.save_weights(str(FIX / "keras2_nested.h5"), save_format="h5")
    fx["keras2_nested.h5"] = keras_h5_fixture(
        FIX / "keras2_nested.h5", model, info, name_of, kv, "tensorflow", "/",
        {"written_by": "tf_keras Sequential([Input, Functional 'backbone', Dense 'head']).save_weights(h5)",
         "note": "the nested layer's weight_names are ALL trainable weights of the backbone first, "
                 "then ALL non-trainable ones (moving stats), not grouped per inner layer"})

    # 4. chunked layer_names / weight_names, real writer with a lowered limit.
    # tf_keras keeps the 64512-byte HDF5 object-header limit in the module global
    # tf_keras.src.saving.legacy.hdf5_format.HDF5_OBJECT_HEADER_LIMIT, read at call
    # time by save_attributes_to_hdf5_group; we lower it to 40 bytes so that
    # layer_names (10 names, S11 = 110 bytes) and the BN weight_names (4 x S25)
    # are split into layer_names0..3 / weight_names0..3. Restored afterwards.
    tk.backend.clear_session()
    model, info = build_k2_model(tk)
    limit = 40
    old = hdf5_format.HDF5_OBJECT_HEADER_LIMIT
    hdf5_format.HDF5_OBJECT_HEADER_LIMIT = limit
    try:
        model.save_weights(str(FIX / "keras2_chunked_names.h5"), save_format="h5")
    finally:
        hdf5_format.HDF5_OBJECT_HEADER_LIMIT = old
    chunks = {"/": {"layer_names": chunk_counts([l.name for l in model.layers], limit)}}
    for layer in model.layers:
        c = chunk_counts([w.name for w in k2_legacy_weights(layer)], limit)
        if c:
            chunks[f"/{layer.name}"] = {"weight_names": c}
    fx["keras2_chunked_names.h5"] = keras_h5_fixture(
        FIX / "keras2_chunked_names.h5", model, info, name_of, kv, "tensorflow", "/",
        {"written_by": f"tf_keras save_weights(h5) with hdf5_format.HDF5_OBJECT_HEADER_LIMIT "
                       f"monkeypatched from 64512 to {limit}",
         "attribute_chunks": chunks,
         "chunk_rule": "attribute X absent -> concatenate X0, X1, ... in index order (stop at the "
                       "first missing index); attributes listed here are chunked, others are not"})
    tk.backend.clear_session()


# ----------------------------------------------------------------------------
# Keras 3


def k3_legacy_weights(layer):
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def build_k3_flat(keras):
    L = keras.layers
    inp = keras.Input((8, 8, 3), name="input")
    x = L.ZeroPadding2D(1, name="pad")(inp)
    x = L.Conv2D(4, 3, strides=2, use_bias=True, name="conv")(x)
    x = L.BatchNormalization(epsilon=1.001e-5, name="conv_bn")(x)
    x = L.ReLU(name="conv_relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = L.BatchNormalization(name="dw_bn")(x)
    x = L.ReLU(6.0, name="dw_relu")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    x = L.Dense(5, name="predictions")(x)
    model = keras.Model(inp, x, name="k3net_flat")
    return model


def build_k3_nested(keras):
    L = keras.layers
    bin_ = keras.Input((6, 6, 4), name="inner_input")
    y = L.Conv2D(4, 1, name="inner_conv")(bin_)
    y = L.BatchNormalization(name="inner_bn")(y)
    y = L.ReLU(name="inner_relu")(y)
    backbone = keras.Model(bin_, y, name="backbone")
    inp = keras.Input((8, 8, 3), name="input")
    x = L.Conv2D(4, 3, name="stem_conv")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    x = backbone(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = L.BatchNormalization(name="dw_bn")(x)
    x = L.Conv2D(6, 1, name="project")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    x = L.Dense(5, name="predictions")(x)
    return keras.Model(inp, x, name="k3net")


def k3_assign(model, k0=0):
    info = {}
    for j, v in enumerate(model.weights):
        k = k0 + j
        off = role_offset(v.name)
        v.assign(fpattern(tuple(v.shape), k, off).astype(np.float32))
        info[id(v)] = (k, off)
    return info


def snake(name):
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def k3_expected_tree(model, info):
    """Re-implements Keras 3 saving_lib naming: snake_case(class) + _N counter per container."""
    tensors, groups = [], []

    def walk(layer, path):
        groups.append({"vars_group": (path + "/vars").lstrip("/"), "name_attr": layer.name,
                       "class": layer.__class__.__name__})
        own = list(layer._trainable_variables) + list(layer._non_trainable_variables) \
            if hasattr(layer, "_trainable_variables") else []
        if layer.__class__.__name__ in ("Functional", "Sequential"):
            own = []  # a model's own vars (none here); its layers' vars live below
            used = {}
            for sub in layer.layers:
                key = snake(sub.__class__.__name__)
                if key in used:
                    used[key] += 1
                    key = f"{key}_{used[key]}"
                else:
                    used[key] = 0
                walk(sub, f"{path}/layers/{key}".lstrip("/"))
        for i, v in enumerate(own):
            k, off = info[id(v)]
            tensors.append(entry(f"{path}/vars/{i}".lstrip("/"), np.asarray(v.numpy()), k=k, offset=off,
                                 variable_path=v.path))

    walk(model, "")
    return tensors, groups


def write_keras3():
    import keras

    keras.utils.set_random_seed(0)
    fx = EXPECTED["fixtures"]
    kv = keras.__version__

    # 5. Keras 3 legacy full-model .h5
    model = build_k3_flat(keras)
    info = k3_assign(model)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    opt_entries = []
    for j, v in enumerate(model.optimizer.variables):
        if "int" in str(v.dtype):
            v.assign(7)
            opt_entries.append(entry(v.path, np.asarray(v.numpy()), note="iterations, set to 7"))
        elif len(v.shape) == 0:
            opt_entries.append(entry(v.path, np.asarray(v.numpy()), note="scalar optimizer state, as created"))
        else:
            v.assign(fpattern(tuple(v.shape), 200 + j).astype(np.float32))
            opt_entries.append(entry(v.path, np.asarray(v.numpy()), k=200 + j, offset=0.0))
    for e in opt_entries:
        e["h5_dataset"] = "optimizer_weights/" + e["name"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(FIX / "keras3_legacy.h5"))
    fxe = keras_h5_fixture(
        FIX / "keras3_legacy.h5", model, info, lambda w: w.path, kv, "tensorflow", "/model_weights",
        {"written_by": "keras 3 Model.save('x.h5') (legacy full-model HDF5) after compile + optimizer.build",
         "model_config_class_name": "Functional",
         "model_name": "k3net_flat",
         "has_training_config": True,
         "optimizer_weight_names": [e["name"] for e in opt_entries]},
        layer_weights=k3_legacy_weights)
    fxe["optimizer_tensors"] = opt_entries
    fx["keras3_legacy.h5"] = fxe

    # 8. Keras 3 native .weights.h5 with BN and a nested Functional
    model = build_k3_nested(keras)
    info = k3_assign(model)
    model.save_weights(str(FIX / "keras3.weights.h5"))
    tensors, groups = k3_expected_tree(model, info)
    md = {
        "written_by": "keras 3 Model.save_weights('x.weights.h5')",
        "keras_version": kv,
        "vars_groups": groups,
        "name_attribute": "attribute 'name' (the layer's name) on every <path>/vars group, "
                          "including empty groups of weightless layers and the model's root /vars",
        "optimizer_datasets": [],
    }
    with h5py.File(FIX / "keras3.weights.h5", "r") as f:
        md["observed_h5_attribute_types"] = attr_types(f, [("/vars", "name"), ("/layers/conv2d/vars", "name")])
    fx["keras3.weights.h5"] = {"format": "keras3-weights-h5", "metadata": md, "tensors": tensors}

    # 9. .keras archive (same model; compiled and optimizer built so the archive has optimizer vars)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    nopt = len(model.optimizer.variables)
    model.save(str(FIX / "keras3_model.keras"))
    fx["keras3_model.keras"] = {
        "format": "keras-archive",
        "metadata": {
            "written_by": "keras 3 Model.save('x.keras') after compile(SGD(momentum=0.9)) + optimizer.build",
            "keras_version": kv,
            "zip_members": ["metadata.json", "config.json", "model.weights.h5"],
            "zip_compression": "stored",
            "weights_member": "model.weights.h5",
            "config_class_name": "Functional",
            "model_name": "k3net",
            "vars_groups": groups,
            "optimizer_datasets": [f"optimizer/vars/{i}" for i in range(nopt)],
        },
        "tensors": tensors,
    }

    # 10. emulated: same file without the 'name' attributes (older Keras 3)
    with h5py.File(FIX / "keras3.weights.h5", "r") as src, \
            h5py.File(FIX / "keras3_noname.weights.h5", "w") as dst:
        copy_without_name(src, dst)
    fx["keras3_noname.weights.h5"] = {
        "format": "keras3-weights-h5",
        "metadata": {
            "written_by": "emulated: keras3.weights.h5 copied with h5py, dropping every 'name' "
                          "attribute (older Keras 3 wrote none); groups and datasets unchanged",
            "emulated": True,
            "keras_version": kv,
            "vars_groups": [{**g, "name_attr": None} for g in groups],
            "optimizer_datasets": [],
        },
        "tensors": tensors,
    }


def write_keras3_windows():
    """11. emulated: keras3.weights.h5 as Keras 3 on Windows writes it.

    Keras 3 joins group paths with os.path.join, so on Windows every saveable's group is one
    top-level group named with backslashes (`layers\\conv2d`, `layers\\functional\\layers\\conv2d`),
    each holding its `vars`. Built from keras3.weights.h5 with h5py (no Windows machine here),
    plus optimizer and metrics state, which readers leave out of the listing. Written with
    HDF5 v1.10 object formats (about 20 KB, under half the size of keras3.weights.h5).
    """
    fx = EXPECTED["fixtures"]
    linux = fx["keras3.weights.h5"]
    name = "keras3_windows.weights.h5"
    with h5py.File(FIX / "keras3.weights.h5", "r") as src, \
            h5py.File(FIX / name, "w", libver=("v110", "v110")) as dst:
        def copy_group(group, into):
            for k, v in group.attrs.items():
                into.attrs[k] = v
            for key, obj in group.items():
                if isinstance(obj, h5py.Group):
                    copy_group(obj, into.create_group(key))
                else:
                    d = into.create_dataset(key, data=obj[()])
                    for k, v in obj.attrs.items():
                        d.attrs[k] = v

        def flatten(group, path):
            for key, obj in group.items():
                if not isinstance(obj, h5py.Group):
                    continue
                inner = f"{path}\\{key}" if path else key
                if key == "vars":
                    target = dst if not path else dst.require_group(path)
                    copy_group(obj, target.create_group("vars"))
                else:
                    flatten(obj, inner)

        flatten(src, "")
        optimizer = dst.create_group("optimizer").create_group("vars")
        optimizer.create_dataset("0", data=np.asarray(7, dtype=np.int64))
        optimizer.create_dataset("1", data=fpattern((3, 3, 3, 4), 300).astype(np.float32))
        metrics = dst.create_group("metrics\\loss").create_group("vars")
        metrics.create_dataset("0", data=np.asarray(2.5, dtype=np.float32))
        metrics.create_dataset("1", data=np.asarray(4.0, dtype=np.float32))
    fx[name] = {
        "format": "keras3-weights-h5",
        "metadata": {
            "written_by": "emulated: keras3.weights.h5 regrouped with h5py as Keras 3 on Windows "
                          "writes it (os.path.join: top-level groups 'layers\\conv2d', ...), plus "
                          "optimizer/vars and metrics\\loss/vars",
            "emulated": True,
            "keras_version": linux["metadata"]["keras_version"],
            "path_separator": "\\",
            "vars_groups": linux["metadata"]["vars_groups"],
            "optimizer_datasets": ["optimizer/vars/0", "optimizer/vars/1"],
            "metrics_datasets": ["metrics/loss/vars/0", "metrics/loss/vars/1"],
        },
        "tensors": linux["tensors"],
    }


def copy_without_name(src, dst):
    for k, v in src.attrs.items():
        if k != "name":
            dst.attrs[k] = v
    for key in src:
        obj = src[key]
        if isinstance(obj, h5py.Group):
            copy_without_name(obj, dst.create_group(key))
        else:
            d = dst.create_dataset(key, data=obj[()])
            for k, v in obj.attrs.items():
                d.attrs[k] = v


# ----------------------------------------------------------------------------
# emulated legacy HDF5 string variants


def write_emulated_h5():
    fx = EXPECTED["fixtures"]

    # 6. Keras 2.0-era: fixed-length NumPy S<n> arrays, bytes scalars, odd dataset names
    layers = [
        ("input_1", []),
        ("block1_conv1", [("block1_conv1_W_1:0", (3, 3, 3, 2)), ("block1_conv1_b_1:0", (2,))]),
        ("block1_pool", []),
        ("batch_normalization_1", [("batch_normalization_1/gamma:0", (2,)),
                                   ("batch_normalization_1/beta:0", (2,)),
                                   ("batch_normalization_1/moving_mean:0", (2,)),
                                   ("batch_normalization_1/moving_variance:0", (2,))]),
        ("flatten", []),
        ("predictions", [("predictions_1/kernel:0", (8, 3)), ("predictions_1/bias:0", (3,))]),
    ]
    path = FIX / "keras_old_fixed_strings.h5"
    tensors = []
    k = 0
    with h5py.File(path, "w") as f:
        names = np.array([n.encode() for n, _ in layers])          # dtype S21, NUL-padded
        f.attrs["layer_names"] = names
        f.attrs["backend"] = np.bytes_(b"tensorflow")              # fixed-length scalar S10
        f.attrs["keras_version"] = np.bytes_(b"2.0.8")            # fixed-length scalar S5
        for lname, ws in layers:
            g = f.create_group(lname)
            if ws:
                g.attrs["weight_names"] = np.array([w.encode() for w, _ in ws])
            else:
                g.attrs["weight_names"] = np.array([], dtype=np.float64)  # what `attrs[...] = []` gives
            for wname, shape in ws:
                off = role_offset(wname)
                arr = fpattern(shape, k, off).astype(np.float32)
                g.create_dataset(wname, data=arr)
                tensors.append(entry(listed_name(lname, wname), arr, k=k, offset=off,
                                     h5_dataset=f"{lname}/{wname}"))
                k += 1
    widths = {"layer_names": names.dtype.itemsize}
    fx["keras_old_fixed_strings.h5"] = {
        "format": "keras-h5",
        "metadata": {
            "written_by": "emulated with h5py: Keras 2.0-era weights file",
            "emulated": True,
            "keras_version": "2.0.8",
            "backend": "tensorflow",
            "weights_root": "/",
            "extra_groups": [],
            "layer_names": [n for n, _ in layers],
            "weight_names": {n: [w for w, _ in ws] for n, ws in layers},
            "fixed_string_widths": {
                "/@layer_names": widths["layer_names"],
                "/block1_conv1@weight_names": len("block1_conv1_W_1:0"),
                "/batch_normalization_1@weight_names": len("batch_normalization_1/moving_variance:0"),
                "/predictions@weight_names": len("predictions_1/kernel:0"),
            },
            "note": "fixed-length NUL-padded strings; 'batch_normalization_1' (21 bytes) fills "
                    "layer_names' S21 exactly, so it has no terminating NUL; so do both "
                    "block1_conv1 weight names (S18). Datasets are NOT named after the layer: "
                    "/block1_conv1/block1_conv1_W_1:0 and /predictions/predictions_1/kernel:0. "
                    "Weightless layers have weight_names = empty float64 array.",
        },
        "tensors": tensors,
    }
    with h5py.File(path, "r") as f:
        fx["keras_old_fixed_strings.h5"]["metadata"]["observed_h5_attribute_types"] = attr_types(
            f, [("/", "layer_names"), ("/", "backend"), ("/", "keras_version")] +
            [(f"/{n}", "weight_names") for n, _ in layers])

    # 7. variable-length UTF-8 strings, non-ASCII layer name
    layers = [
        ("input", []),
        ("conv_ü", [("conv_ü/kernel:0", (1, 1, 2, 3)), ("conv_ü/bias:0", (3,))]),
        ("relu", []),
        ("dense", [("dense/kernel:0", (3, 2)), ("dense/bias:0", (2,))]),
    ]
    path = FIX / "keras_vlen_utf8.h5"
    tensors = []
    k = 0
    vs = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        f.attrs.create("layer_names", [n for n, _ in layers], dtype=vs)
        f.attrs["backend"] = "tensorflow"          # Python str -> vlen UTF-8 scalar
        f.attrs["keras_version"] = "2.4.0"
        for lname, ws in layers:
            g = f.create_group(lname)
            g.attrs.create("weight_names", [w for w, _ in ws], dtype=vs)
            for wname, shape in ws:
                arr = fpattern(shape, k).astype(np.float32)
                g.create_dataset(wname, data=arr)
                tensors.append(entry(listed_name(lname, wname), arr, k=k, offset=0.0,
                                     h5_dataset=f"{lname}/{wname}"))
                k += 1
    fx["keras_vlen_utf8.h5"] = {
        "format": "keras-h5",
        "metadata": {
            "written_by": "emulated with h5py: variable-length UTF-8 string attributes",
            "emulated": True,
            "keras_version": "2.4.0",
            "backend": "tensorflow",
            "weights_root": "/",
            "extra_groups": [],
            "layer_names": [n for n, _ in layers],
            "weight_names": {n: [w for w, _ in ws] for n, ws in layers},
            "note": "layer 'conv_ü' (UTF-8 c3 bc): group and dataset link names are UTF-8 too. "
                    "Weightless layers have weight_names = vlen string array of shape (0,).",
        },
        "tensors": tensors,
    }
    with h5py.File(path, "r") as f:
        fx["keras_vlen_utf8.h5"]["metadata"]["observed_h5_attribute_types"] = attr_types(
            f, [("/", "layer_names"), ("/", "backend"), ("/", "keras_version")] +
            [(f"/{n}", "weight_names") for n, _ in layers])


# ============================================================================
# verification (reads only the files and expected.json)


def check_values(exp, arr, where):
    arr = np.asarray(arr)
    assert list(arr.shape) == exp["shape"], (where, arr.shape, exp["shape"])
    got = np_values(arr)
    assert got == exp["values"], (where, "values differ")


def verify_keras_h5(path, fe):
    md = fe["metadata"]
    with h5py.File(path, "r") as f:
        root = f[md["weights_root"]]
        names, nchunks = read_name_attr(root, "layer_names")
        assert names == md["layer_names"], (path, names)
        assert str_attr(root, "keras_version") == md["keras_version"]
        assert str_attr(root, "backend") == md["backend"]
        if md["weights_root"] != "/":
            assert str_attr(f, "keras_version") == md["keras_version"]
            assert str_attr(f, "backend") == md["backend"]
            cfg = json.loads(str_attr(f, "model_config"))
            assert cfg["class_name"] == md["model_config_class_name"]
            assert ("training_config" in f.attrs) == md["has_training_config"]
        chunks = md.get("attribute_chunks", {})
        if nchunks or "/" in chunks:
            assert nchunks == chunks["/"]["layer_names"], (nchunks, chunks)
        listed = []
        for lname in names:
            g = root[lname]
            wn, c = read_name_attr(g, "weight_names")
            if c or f"/{lname}" in chunks:
                assert c == chunks[f"/{lname}"]["weight_names"], (lname, c)
            assert wn == md["weight_names"][lname], (lname, wn)
            for w in wn:
                listed.append((listed_name(lname, w), g[w]))
        assert [n for n, _ in listed] == [t["name"] for t in fe["tensors"]], path
        assert sorted(set(root.keys()) - set(names)) == sorted(md["extra_groups"]), (path, list(root.keys()))
        for g in md["extra_groups"]:
            assert read_name_attr(root[g], "weight_names")[0] == []
        if "root_groups" in md:
            assert sorted(f.keys()) == sorted(md["root_groups"]), list(f.keys())
        for (n, ds), t in zip(listed, fe["tensors"]):
            assert dtype_name(ds.dtype) == t["dtype"]
            assert ds.name.lstrip("/") == t["h5_dataset"], (ds.name, t["h5_dataset"])
            check_values(t, ds[()], f"{path.name}:{n}")
        if "optimizer_tensors" in fe:
            og = f["optimizer_weights"]
            wn, _ = read_name_attr(og, "weight_names")
            assert wn == md["optimizer_weight_names"]
            for w, t in zip(wn, fe["optimizer_tensors"]):
                check_values(t, og[w][()], f"{path.name}:opt:{w}")
        else:
            assert "optimizer_weights" not in f


def verify_keras3_weights(f, fe, where):
    """Checks a Keras 3 weights file against fe. Names are compared with '/' for the '\\' that
    Windows writes (metadata.path_separator); `real` maps them back to the file's paths."""
    md = fe["metadata"]
    real = {}
    f.visit(lambda n: real.update({n.replace("\\", "/"): n}))
    assert ("\\" in "".join(real.values())) == (md.get("path_separator") == "\\"), where
    found = [n for n, r in real.items() if isinstance(f[r], h5py.Dataset)]
    state = ("optimizer/", "metrics/")
    model_ds = sorted(n for n in found if not n.startswith(state))
    assert model_ds == sorted(t["name"] for t in fe["tensors"]), (where, model_ds)
    assert sorted(n for n in found if n.startswith(state)) == \
        sorted(md["optimizer_datasets"] + md.get("metrics_datasets", []))
    for t in fe["tensors"]:
        ds = f[real[t["name"]]]
        assert dtype_name(ds.dtype) == t["dtype"]
        check_values(t, ds[()], f"{where}:{t['name']}")
    groups = [n for n, r in real.items() if isinstance(f[r], h5py.Group) and n.split("/")[-1] == "vars"
              and not n.startswith(state)]
    assert sorted(groups) == sorted(g["vars_group"] for g in md["vars_groups"]), (where, groups)
    for g in md["vars_groups"]:
        grp = f[real[g["vars_group"]]]
        if g["name_attr"] is None:
            assert "name" not in grp.attrs
        else:
            assert grp.attrs["name"] == g["name_attr"], (g, grp.attrs.get("name"))


class ProbeTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)
        self.param = False


STORAGE_DT = {
    "FloatStorage": ("f32", np.float32), "DoubleStorage": ("f64", np.float64),
    "HalfStorage": ("f16", np.float16), "BFloat16Storage": ("bf16", np.uint16),
    "LongStorage": ("i64", np.int64), "IntStorage": ("i32", np.int32),
    "ShortStorage": ("i16", np.int16), "CharStorage": ("i8", np.int8),
    "ByteStorage": ("u8", np.uint8), "BoolStorage": ("bool", np.bool_),
}


class Probe(pickle.Unpickler):
    """Whitelisting unpickler: what a Swift reader must do. Executes nothing."""

    def find_class(self, module, name):
        full = f"{module}.{name}"
        if full == "collections.OrderedDict":
            return collections.OrderedDict
        if full == "torch._utils._rebuild_tensor_v2":
            return lambda storage, off, size, stride, *rest: ProbeTensor(storage, off, size, stride)
        if full == "torch._utils._rebuild_parameter":
            def rp(data, *rest):
                data.param = True
                return data
            return rp
        if module == "torch" and name in STORAGE_DT:
            return name
        raise pickle.UnpicklingError(f"global {module}.{name} not allowed")

    def persistent_load(self, pid):
        assert pid[0] == "storage"
        return {"type": pid[1], "key": pid[2], "location": pid[3], "numel": pid[4],
                "view": pid[5] if len(pid) > 5 else None}


def probe_array(pt, raw):
    dname, npdt = STORAGE_DT[pt.storage["type"]]
    buf = np.frombuffer(raw, dtype=npdt)
    assert buf.size == pt.storage["numel"], (buf.size, pt.storage["numel"])
    if dname == "bf16":
        buf = (buf.astype(np.uint32) << 16).view(np.float32)
    el = buf.itemsize
    a = np.lib.stride_tricks.as_strided(buf[pt.offset:] if buf.size else buf, shape=pt.size,
                                        strides=[s * el for s in pt.stride])
    return dname, a


def flatten_tensors(obj, prefix=""):
    out = collections.OrderedDict()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten_tensors(v, f"{prefix}{k}."))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten_tensors(v, f"{prefix}{i}."))
    elif isinstance(obj, ProbeTensor):
        out[prefix[:-1]] = obj
    return out


def verify_probe(tensors, raw_of, fe, check_keys):
    exp = {t["name"]: t for t in fe["tensors"] + fe.get("extra_tensors", [])}
    sdkey = fe["metadata"].get("state_dict_key")
    names = [n for n in tensors if (not sdkey or n.startswith(sdkey + "."))]
    if sdkey:
        names = [n[len(sdkey) + 1:] for n in names]
        tensors = collections.OrderedDict(
            [(n[len(sdkey) + 1:] if n.startswith(sdkey + ".") else n, t) for n, t in tensors.items()])
    assert names == [t["name"] for t in fe["tensors"]], (names, [t["name"] for t in fe["tensors"]])
    for name, t in exp.items():
        pt = tensors[name]
        dname, a = probe_array(pt, raw_of(pt.storage["key"]))
        assert dname == t["dtype"], (name, dname)
        assert list(pt.stride) == t["stride"] and pt.offset == t["storage_offset"], name
        assert pt.storage["numel"] == t["storage_numel"], name
        if check_keys:
            assert pt.storage["key"] == t["storage_key"], (name, pt.storage["key"], t["storage_key"])
        check_values(t, a, f"probe:{name}")
    for group in fe["metadata"].get("shared_storage", []):
        assert len({tensors[n].storage["key"] for n in group}) == 1, group
    for n in fe["metadata"].get("parameters", []):
        assert tensors[n].param, n


def verify_torch_zip(path, fe):
    import torch

    md = fe["metadata"]
    z = zipfile.ZipFile(path)
    infos = z.infolist()
    assert [i.filename for i in infos] == md["entries"]
    prefix = md["archive_prefix"]
    assert all(i.filename.startswith(prefix + "/") for i in infos)
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
    raw = path.read_bytes()
    for i in infos:  # 64-byte alignment of every record's data (FB padding extra field)
        n, e = struct.unpack("<HH", raw[i.header_offset + 26:i.header_offset + 30])
        start = i.header_offset + 30 + n + e
        if i.filename.split("/", 1)[1].startswith("data/"):
            assert start % 64 == 0, (i.filename, start)
    assert z.read(prefix + "/byteorder") == b"little"
    assert z.read(prefix + "/version").strip() == md["version"].encode()
    data = z.read(prefix + "/data.pkl")
    assert data[:2] == b"\x80" + bytes([md["pickle_protocol"]])
    obj = Probe(io.BytesIO(data)).load()
    verify_probe(flatten_tensors(obj), lambda k: z.read(f"{prefix}/data/{k}"), fe, True)
    # and torch itself
    loaded = torch.load(path, weights_only=True)
    if md.get("state_dict_key"):
        assert loaded["epoch"] == md["epoch"] and list(loaded.keys()) == md["top_level_keys"]
        sd = loaded[md["state_dict_key"]]
    else:
        sd = loaded
    assert list(sd.keys()) == [t["name"] for t in fe["tensors"]]
    for t in fe["tensors"]:
        x = sd[t["name"]]
        assert torch_dtype_name(x.dtype) == t["dtype"] and list(x.stride()) == t["stride"]
        assert x.storage_offset() == t["storage_offset"]
        check_values(t, t_np(x), f"torch.load:{t['name']}")
    for group in md.get("shared_storage", []):
        assert len({sd[n].untyped_storage().data_ptr() for n in group}) == 1, group


def verify_torch_legacy(path, fe):
    import torch

    md = fe["metadata"]
    f = io.BytesIO(path.read_bytes())
    assert pickle.load(f) == md["magic_number"]
    assert pickle.load(f) == md["protocol_version"]
    sys_info = pickle.load(f)
    assert sys_info["little_endian"] is True
    obj = Probe(f).load()
    keys = pickle.load(f)
    assert len(keys) == md["storage_count"]
    storages = {}
    tensors = flatten_tensors(obj)
    types = {pt.storage["key"]: pt.storage["type"] for pt in tensors.values()}
    for k in keys:
        (n,) = struct.unpack("<q", f.read(8))
        el = np.dtype(STORAGE_DT[types[k]][1]).itemsize
        storages[k] = f.read(n * el)
    assert f.read() == b""
    verify_probe(tensors, lambda k: storages[k], fe, False)
    sd = torch.load(path, weights_only=True)
    assert list(sd.keys()) == [t["name"] for t in fe["tensors"]]
    for t in fe["tensors"]:
        check_values(t, t_np(sd[t["name"]]), f"torch.load legacy:{t['name']}")


def verify_rejected(path, fe):
    import torch

    md = fe["metadata"]
    if md["container"] == "npy":
        try:
            np.load(path, allow_pickle=False)
        except ValueError:
            pass
        else:
            raise AssertionError("object.npy loaded without pickle")
        with open(path, "rb") as f:
            assert np.lib.format.read_magic(f) == tuple(md["npy_version"])
            shape, fortran, dt = np.lib.format.read_array_header_1_0(f)
            assert dt == np.dtype(object) and list(shape) == md["shape"]
        return
    z = zipfile.ZipFile(path)
    assert [i.filename for i in z.infolist()] == md["entries"]
    data = z.read(md["archive_prefix"] + "/data.pkl")
    ops = [(op.name, a) for op, a, _ in pickletools.genops(data)]
    assert ("GLOBAL", md["disallowed_global"]) in ops
    assert [o for o, _ in ops] == md["pickle_opcodes"]
    try:
        Probe(io.BytesIO(data)).load()
    except pickle.UnpicklingError:
        pass
    else:
        raise AssertionError("probe accepted a malicious pickle")
    try:  # weights_only=True never calls the global
        torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        pass
    else:
        raise AssertionError("torch.load(weights_only=True) accepted a malicious pickle")


def verify_safetensors(path, fe):
    import safetensors.torch

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert header.get("__metadata__") == fe["metadata"]["__metadata__"]
    names = sorted(k for k in header if k != "__metadata__")
    assert names == [t["name"] for t in fe["tensors"]]
    spans = sorted(tuple(header[k]["data_offsets"]) for k in names)
    pos = 0
    for b, e in spans:
        assert b == pos
        pos = e
    assert 8 + n + pos == len(raw)
    loaded = safetensors.torch.load_file(str(path))
    for t in fe["tensors"]:
        h = header[t["name"]]
        assert h["shape"] == t["shape"]
        assert h["dtype"] == {"f16": "F16", "bf16": "BF16", "f32": "F32", "f64": "F64", "i64": "I64",
                              "i32": "I32", "u8": "U8", "bool": "BOOL"}[t["dtype"]]
        check_values(t, t_np(loaded[t["name"]]), f"{path.name}:{t['name']}")


def verify_npz(path, fe):
    z = zipfile.ZipFile(path)
    assert [i.filename for i in z.infolist()] == fe["metadata"]["members"]
    want = zipfile.ZIP_STORED if fe["metadata"]["compression"] == "stored" else zipfile.ZIP_DEFLATED
    assert all(i.compress_type == want for i in z.infolist())
    with np.load(path, allow_pickle=False) as d:
        assert list(d.files) == [t["name"] for t in fe["tensors"]]
        for t in fe["tensors"]:
            assert dtype_name(d[t["name"]].dtype) == t["dtype"]
            check_values(t, d[t["name"]], f"{path.name}:{t['name']}")


def verify_npy(path, fe):
    md = fe["metadata"]
    with open(path, "rb") as f:
        ver = np.lib.format.read_magic(f)
        assert list(ver) == md["npy_version"]
        hdr = np.lib.format.read_array_header_1_0(f) if ver == (1, 0) else np.lib.format.read_array_header_2_0(f)
        shape, fortran, dt = hdr
        assert dt.str == md["descr"] and fortran == md["fortran_order"], (path, dt.str, fortran)
        assert f.tell() % 64 == 0
    a = np.load(path, allow_pickle=False)
    (t,) = fe["tensors"]
    assert dtype_name(a.dtype) == t["dtype"]
    check_values(t, a, path.name)


def verify_all():
    exp = json.loads((FIX / "expected.json").read_text(encoding="utf-8"))
    files = sorted(p.name for p in FIX.iterdir() if p.name not in (".keep", "expected.json"))
    assert files == sorted(exp["fixtures"]), (files, sorted(exp["fixtures"]))
    for name, fe in exp["fixtures"].items():
        path = FIX / name
        fmt = fe["format"]
        if fmt == "keras-h5":
            verify_keras_h5(path, fe)
        elif fmt == "keras3-weights-h5":
            with h5py.File(path, "r") as f:
                verify_keras3_weights(f, fe, name)
        elif fmt == "keras-archive":
            z = zipfile.ZipFile(path)
            assert sorted(i.filename for i in z.infolist()) == sorted(fe["metadata"]["zip_members"])
            assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
            meta = json.loads(z.read("metadata.json"))
            assert meta["keras_version"] == fe["metadata"]["keras_version"]
            cfg = json.loads(z.read("config.json"))
            assert cfg["class_name"] == fe["metadata"]["config_class_name"]
            assert cfg["config"]["name"] == fe["metadata"]["model_name"]
            with h5py.File(io.BytesIO(z.read(fe["metadata"]["weights_member"])), "r") as f:
                verify_keras3_weights(f, fe, name)
        elif fmt == "torch-zip":
            verify_torch_zip(path, fe)
        elif fmt == "torch-legacy":
            verify_torch_legacy(path, fe)
        elif fmt == "rejected":
            verify_rejected(path, fe)
        elif fmt == "safetensors":
            verify_safetensors(path, fe)
        elif fmt == "npz":
            verify_npz(path, fe)
        elif fmt == "npy":
            verify_npy(path, fe)
        else:
            raise AssertionError(fmt)
        print(f"  ok  {name}")


# ============================================================================


def record_versions():
    import keras
    import safetensors
    import tensorflow as tf
    import tf_keras
    import torch

    actual = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "torch": torch.__version__.split("+")[0],
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "keras": keras.__version__,
        "safetensors": safetensors.__version__,
    }
    for k, v in actual.items():
        if WRITTEN_WITH.get(k) != v:
            print(f"warning: {k} {v} differs from WRITTEN_WITH {WRITTEN_WITH.get(k)}; "
                  f"update the header of this script", file=sys.stderr)
    EXPECTED["writers"] = actual


def dump_json(obj):
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    # put number lists (values, shapes, strides) on one line
    return re.sub(r"\[([-+0-9.eE,\s]*)\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",") if x.strip()) + "]",
                  text) + "\n"


def main():
    FIX.mkdir(parents=True, exist_ok=True)
    for p in FIX.iterdir():
        if p.name == ".keep":
            continue
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    record_versions()
    write_npy()
    write_npz()
    write_safetensors()
    write_torch()
    write_malicious()
    write_emulated_h5()
    write_keras2()
    write_keras3()
    write_keras3_windows()
    EXPECTED["fixtures"] = dict(sorted(EXPECTED["fixtures"].items()))
    (FIX / "expected.json").write_text(dump_json(EXPECTED), encoding="utf-8")
    print("verifying:")
    verify_all()
    total = 0
    for p in sorted(FIX.iterdir()):
        if p.name == ".keep":
            continue
        total += p.stat().st_size
        print(f"  {p.stat().st_size:8d}  {p.name}")
    print(f"  {total:8d}  total bytes in {FIX.relative_to(REPO)}")
    assert total < 1_000_000, "fixtures must stay well under 1 MB"


if __name__ == "__main__":
    main()
