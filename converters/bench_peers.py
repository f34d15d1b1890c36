#!/usr/bin/env python3
"""Speed and memory of PyTorch, Keras, ONNX Runtime and OpenVINO on the cases of
`zoo bench models`, side by side with zoo.

Each model of make_model_references.py's list (by default the eight the zoo began with: VGG16,
ResNet50/152, DenseNet121/169/201, InceptionV3, MobileNetV2) is built by each peer framework that
publishes it, with random weights and the head zoo benchmarks: global average pooling of the
base's last feature map, then one dense layer of 100 units. The peers (--frameworks):

  torch        the torchvision model (weights=None) with its classifier replaced by a 100-unit
               Linear after the pooling (VGG, AlexNet, SqueezeNet: features, AdaptiveAvgPool2d(1),
               flatten, Linear(C, 100); InceptionV3 and GoogLeNet: aux_logits=False,
               init_weights=False, no dropout; MobileNetV3: its 1280-unit hidden layer goes too,
               as zoo's base ends where Keras's include_top=False does).
  torch_bf16   the same model and cases, the forward pass (and the loss) under
               torch.autocast("cpu", dtype=torch.bfloat16); backward and the SGD step run outside
               it, as PyTorch's mixed precision recipe has them. Weights and gradients stay f32.
  keras        Keras 3: keras.applications.X(include_top=False, weights=None,
               input_shape=(S, S, 3), pooling="avg", plus the entry's keyword arguments such as
               MobileNet's alpha) followed by Dense(100), on the TensorFlow backend.
  onnxruntime  the torch model in eval mode, exported by torch.onnx.export (TorchScript exporter,
               opset 17) at the run's fixed batch and size, run by InferenceSession.run on the
               CPUExecutionProvider (intra_op_num_threads --threads, inter_op_num_threads 1).
  openvino     the same ONNX file, read by Core.read_model and compiled for "CPU" with
               INFERENCE_NUM_THREADS --threads and PERFORMANCE_HINT LATENCY (one stream, so a
               synchronous InferRequest.infer runs the whole batch on all the threads).

The cases, each on a batch of random float32 images (NCHW, NHWC for Keras) with random labels
in 0..99; each runs for the frameworks that have it (--cases picks some), "—" in the table for
the others:

  infer           inference mode, no gradients. All five peers; OpenVINO at its default
                  inference precision (bf16 on a CPU with AVX512-BF16 or AMX, f32 elsewhere: the
                  JSON's `inference_precision` says which it used), ONNX Runtime in f32.
  train           one step: forward in training mode, softmax cross-entropy, backward,
                  SGD (lr 0.01, momentum 0.9) update. torch, torch_bf16, keras.
  train_frozen80  the same with the bottom 80% of the base frozen, the Keras way: n layers in
                  the base, k = ceil(0.2 n), the first n - k frozen; frozen batch norms run in
                  inference mode. PyTorch gets the same rule over the base's leaf modules in
                  definition order (the new head, with the pooling module where torchvision
                  has one, always trains). `trainable_params` in the JSON shows each split.
                  torch, torch_bf16, keras.
  infer_f32       OpenVINO with INFERENCE_PRECISION_HINT f32.
  infer_int8      static int8 quantization, activation ranges from 4 batches of random images:
                  ONNX Runtime's quant_pre_process then quantize_static (QDQ format, per-channel
                  QInt8 weights, QUInt8 activations, MinMax calibration); OpenVINO's NNCF
                  (nncf.quantize, default preset; `pip install nncf`, without it this case is
                  left out for OpenVINO).
zoo has the first three cases only.

Timing: --warmup untimed steps, then --steps timed ones; images/s = batch / median step time.
The whole sequence of cases runs --rounds times (3 by default), and each figure in the table is
the median over the rounds (peak memory: the largest): this machine's speed drifts by up to 30%
for minutes at a time, for every framework alike, and one burst must not decide a ratio. The
JSON keeps every round's figure under `rounds`.
Every (framework, model, case) runs in a fresh child process (this script with a hidden
--worker option), so each peak resident size (VmHWM, framework import and model build
included) is the case's own. The ONNX and int8 model files are made by children of their own,
once per model in each run of this script (in a temporary directory), so neither torch nor the
export nor the calibration counts in an ONNX Runtime or OpenVINO case's memory or time. Each
child also measures how many cores other processes used during its timed steps
(`others_cores`, the same definition as zoo's CPUMonitor; null when the timed steps took under
0.2 s, too short for 100 ticks a second to tell) and a warning is printed when that exceeds
0.1: the machine is shared. Keep --threads at most the number of idle cores: when another
process takes a core from one of torch's OpenMP threads, every barrier waits for it (a
DenseNet121 training step was measured 30 times slower that way).
A 2048^3 float32 matmul through torch gives a reference figure for the machine (SGEMM GFLOP/s).
How each framework runs a step is recorded as `method` in the JSON.

With --zoo PATH, zoo runs each model and case in its own process too, alternating with the peers
(and once more for ResNet50 inference at 224x224, whose GFLOP/s the report holds against the SGEMM):
    PATH bench models --models M --cases C --size S --batch B --threads N --steps K --precision P --json
(P from --zoo-precision: f32, bf16, auto or int8; int8 is inference only: zoo calibrates each model on
its random batch first) whose standard output is a JSON array of {"model",
"size", "batch", "case", "precision", "images_per_s", "peak_rss_mb", "peak_tensor_mb"} (and "gflop_per_s" for inference); its figures fill the zoo columns of the table,
where "zoo/faster peer" holds zoo against the fastest peer that ran the case (`faster_peer` in
the JSON's table).

Usage (from the repository root, with the project venv):

    ../venv/bin/python converters/bench_peers.py [--models vgg16,resnet50,...] [--size 96]
        [--batch 32] [--threads 2] [--steps 5] [--warmup 2]
        [--frameworks torch,torch_bf16,keras,onnxruntime,openvino]
        [--cases infer,train,train_frozen80,infer_f32,infer_int8]
        [--rounds 3] [--zoo .build/release/zoo] [--zoo-precision f32|bf16|auto|int8] [--json OUT.json] [--markdown OUT.md]

The default (all eight models, five cases, five frameworks, batch 32 at 96x96, three rounds)
runs 363 child processes (112 cases and the SGEMM per round, and 24 that make the ONNX and int8
files), about 65 minutes on two cores; with --zoo, 438 and about 80 minutes (estimates: the
two-framework default took 35 and 50, and torch_bf16 takes about as long as torch, the inference
cases of ONNX Runtime and OpenVINO 1-10 s each). CI never runs this script.
"""

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# The cases of `zoo bench models`, then inference variants only some peers have.
ZOO_CASES = ["infer", "train", "train_frozen80"]
CASES = ZOO_CASES + ["infer_f32", "infer_int8"]
# Each peer's cases and its name in the table, in the table's order.
FRAMEWORK_CASES = {"torch": ZOO_CASES, "torch_bf16": ZOO_CASES, "keras": ZOO_CASES,
                   "onnxruntime": ["infer", "infer_int8"], "openvino": ["infer", "infer_f32", "infer_int8"]}
FRAMEWORK_TITLES = {"torch": "PyTorch", "torch_bf16": "PyTorch bf16", "keras": "Keras",
                    "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
FRAMEWORKS = list(FRAMEWORK_CASES)
# The models and the frameworks' constructor names, shared with the reference scripts (that
# module imports only numpy at its top, so this process still never imports torch or TensorFlow).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_references import KERAS_APP, KERAS_KWARGS, MODELS, TORCH_FN  # noqa: E402

# The default models: the eight the zoo began with; --models takes any of MODELS.
DEFAULT_MODELS = ["vgg16", "resnet50", "resnet152", "densenet121", "densenet169", "densenet201", "inceptionv3",
                  "mobilenetv2"]


def runs_case(framework, model_name, case):
    """Whether the framework has the case and the model (an architecture only Keras or only
    torchvision publishes is run by that side alone; ONNX Runtime and OpenVINO run the
    torchvision model)."""
    published = (KERAS_APP if framework == "keras" else TORCH_FN)[model_name] is not None
    return published and case in FRAMEWORK_CASES[framework]

CLASSES = 100
LEARNING_RATE = 0.01
MOMENTUM = 0.9
SGEMM_N = 2048
SGEMM_WARMUP, SGEMM_REPEATS = 2, 5
NOISE_THRESHOLD = 0.1   # cores used by other processes above which a figure is flagged
NOT_RUN, FAILED = "—", "failed"
ONNX_OPSET = 17
ONNX_INPUT = "images"
CALIBRATION_BATCHES = 4   # random batches for the int8 quantizers' activation ranges
TIMING_SEED, CALIBRATION_SEED = 0, 1


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# /proc readings (Linux); None where /proc is not available
# ----------------------------------------------------------------------------

def status_mb(key):
    """A kB field of /proc/self/status (VmHWM, VmRSS) in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def busy_ticks():
    """Busy ticks of all CPUs: every field of /proc/stat's `cpu` line but idle and iowait.

    This is exactly zoo's CPUMonitor definition, so the two sides' noise figures compare.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields) - fields[3] - fields[4]


def own_ticks():
    """This process's utime + stime (fields 14 and 15 of /proc/self/stat), all threads."""
    try:
        with open("/proc/self/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it start at field 3.
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


class NoiseMeter:
    """Cores that other processes used between start() and stop(), on average; None where the
    window is too short for the clock ticks to tell noise from rounding (a few milliseconds of
    inference: one tick either way would read as more than the threshold)."""

    def __init__(self, own=own_ticks):
        self.own = own

    def start(self):
        self.busy0, self.own0, self.wall0 = busy_ticks(), self.own(), time.perf_counter()

    def stop(self):
        busy, own, wall = busy_ticks(), self.own(), time.perf_counter() - self.wall0
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        if None in (busy, own, self.busy0, self.own0) or wall < 2 / (ticks_per_s * NOISE_THRESHOLD):
            return None
        others = ((busy - self.busy0) - (own - self.own0)) / ticks_per_s
        return max(0.0, others / wall)


def time_steps(step, warmup, steps):
    """Runs `step` warmup times untimed, then `steps` times timed; returns (seconds, others_cores)."""
    for _ in range(warmup):
        step()
    meter = NoiseMeter()
    meter.start()
    seconds = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - t0)
    return seconds, meter.stop()


def frozen_count(n):
    """Layers frozen by the Keras rule for train_frozen80: the top k = ceil(0.2 n) stay trainable."""
    return n - (n + 4) // 5     # exact integer ceil(n / 5), no float rounding


# ----------------------------------------------------------------------------
# PyTorch worker
# ----------------------------------------------------------------------------

def torch_build(model_name):
    """Returns (model, head modules): the torchvision model with a GAP -> Linear(100) head on its
    base (the layers zoo's `features` top keeps)."""
    import torch
    import torch.nn as nn
    import torchvision
    fn = getattr(torchvision.models, TORCH_FN[model_name])
    if model_name in ("inceptionv3", "googlenet"):
        model = fn(weights=None, aux_logits=False, init_weights=False)
        model.dropout = nn.Identity()   # zoo's head (as Keras's) has no dropout before Dense(100)
        model.fc = nn.Linear(model.fc.in_features, CLASSES)
        return model, [model.avgpool, model.dropout, model.fc]
    model = fn(weights=None)
    if isinstance(getattr(model, "fc", None), nn.Linear):
        # ResNet, ResNeXt, Wide ResNet, ShuffleNetV2 (whose pooling is functional).
        model.fc = nn.Linear(model.fc.in_features, CLASSES)
        return model, [m for m in (getattr(model, "avgpool", None), model.fc) if m is not None]
    if not any(isinstance(m, nn.Linear) for m in model.classifier.modules()) or model_name.startswith(("vgg", "alexnet")):
        # VGG and AlexNet (their classifiers flatten a 7x7 or 6x6 map) and SqueezeNet (a 1x1-conv
        # classifier): the features, then the head on their pooled output.
        with torch.no_grad():
            channels = model.features(torch.zeros(1, 3, 64, 64)).shape[1]
        head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, CLASSES)]
        return nn.Sequential(model.features, *head), head
    # DenseNet, MobileNetV2/V3, MNASNet, EfficientNet: pooling is functional or a module before
    # `classifier`, which becomes one Linear from the pooled features (MobileNetV3's 1280-unit
    # hidden layer and every classifier dropout go with it, as zoo's `gap,dense` head has neither).
    first = next(m for m in model.classifier.modules() if isinstance(m, nn.Linear))
    model.classifier = nn.Linear(first.in_features, CLASSES)
    return model, [m for m in (getattr(model, "avgpool", None), model.classifier) if m is not None]


def torch_worker(args, model_name, case, bf16):
    """Returns (result, step) for one case; with bf16 the forward and the loss run under CPU
    autocast to bfloat16, backward and the SGD step outside it, as PyTorch's automatic mixed
    precision recipe has them."""
    import contextlib
    import torch
    import torch.nn as nn
    import torchvision
    torch.manual_seed(0)
    precision = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    autocast_text = " + torch.autocast('cpu', dtype=torch.bfloat16)" if bf16 else ""
    model, head = torch_build(model_name)
    head_ids = {id(m) for m in head}
    base_leaves = [m for m in model.modules()
                   if next(m.children(), None) is None and id(m) not in head_ids]
    result = {"framework_version": torch.__version__, "torchvision_version": torchvision.__version__,
              "total_params": sum(p.numel() for p in model.parameters()),
              "base_layers": len(base_leaves)}
    # Contiguous NCHW: what a torchvision user gets without asking for channels_last.
    x = torch.rand(args.batch, 3, args.size, args.size)
    y = torch.randint(0, CLASSES, (args.batch,))

    if case == "infer":
        model.eval()
        result["method"] = "model.eval() + torch.inference_mode()" + autocast_text

        def step():
            with torch.inference_mode(), precision():
                model(x)
    else:
        frozen_bn = []
        if case == "train_frozen80":
            frozen = base_leaves[:frozen_count(len(base_leaves))]
            for m in frozen:
                for p in m.parameters():
                    p.requires_grad_(False)
            frozen_bn = [m for m in frozen if isinstance(m, nn.BatchNorm2d)]
            result["frozen_layers"] = len(frozen)
        model.train()
        # Keras runs frozen batch norms in inference mode; eval() gives torch the same.
        for m in frozen_bn:
            m.eval()
        params = [p for p in model.parameters() if p.requires_grad]
        result["trainable_params"] = sum(p.numel() for p in params)
        optimizer = torch.optim.SGD(params, lr=LEARNING_RATE, momentum=MOMENTUM)
        loss_fn = nn.CrossEntropyLoss()
        result["method"] = ("model.train(), CrossEntropyLoss" + (" (both under torch.autocast('cpu', "
                            "dtype=torch.bfloat16))" if bf16 else "") + ", backward, torch.optim.SGD step")

        def step():
            optimizer.zero_grad(set_to_none=True)
            with precision():
                loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
    return result, step


def sgemm_worker(args):
    import torch
    a = torch.rand(SGEMM_N, SGEMM_N)
    b = torch.rand(SGEMM_N, SGEMM_N)
    seconds, others = time_steps(lambda: torch.mm(a, b), SGEMM_WARMUP, SGEMM_REPEATS)
    return {"framework_version": torch.__version__, "n": SGEMM_N, "step_s": seconds,
            "others_cores": others,
            "gflops": 2 * SGEMM_N ** 3 / statistics.median(seconds) / 1e9}


# ----------------------------------------------------------------------------
# Keras worker (TensorFlow backend)
# ----------------------------------------------------------------------------

def keras_worker(args, model_name, case, tf):
    """Returns (result, step) for one case."""
    import keras
    import numpy as np
    keras.utils.set_random_seed(0)
    base = getattr(keras.applications, KERAS_APP[model_name])(
        include_top=False, weights=None, input_shape=(args.size, args.size, 3), pooling="avg", **KERAS_KWARGS[model_name])
    model = keras.Model(base.inputs, keras.layers.Dense(CLASSES)(base.output))
    # Learnable parameters before any freezing, as torch counts them (count_params() would
    # add the batch norms' moving statistics, which torch keeps as buffers).
    result = {"framework_version": keras.__version__, "tensorflow_version": tf.__version__,
              "total_params": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
              "base_layers": len(base.layers)}
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((args.batch, args.size, args.size, 3), dtype=np.float32))
    y = tf.constant(rng.integers(0, CLASSES, args.batch, dtype=np.int32))

    if case == "infer":
        # predict_on_batch runs the compiled predict function (a tf.function around
        # model(x, training=False)); measured as fast as calling our own tf.function and about
        # ten times faster than an eager model(x) call.
        result["method"] = "model.predict_on_batch"

        def step():
            model.predict_on_batch(x)
    else:
        if case == "train_frozen80":
            frozen = base.layers[:frozen_count(len(base.layers))]
            for layer in frozen:
                layer.trainable = False   # frozen BatchNormalization then runs in inference mode
            result["frozen_layers"] = len(frozen)
        result["trainable_params"] = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = keras.optimizers.SGD(learning_rate=LEARNING_RATE, momentum=MOMENTUM)
        optimizer.build(model.trainable_variables)
        # A tf.function train step (the Keras guide's custom loop): measured about 10% faster
        # than compile() + train_on_batch, which also updates metric trackers and converts the
        # loss to numpy. Neither uses XLA: Keras's jit_compile="auto" is off on CPU-only machines.
        result["method"] = "tf.function step: GradientTape, model(x, training=True), optimizer.apply"

        @tf.function
        def train_step(images, labels):
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, model(images, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss

        def step():
            train_step(x, y).numpy()   # fetching the loss waits for the whole step
    return result, step


# ----------------------------------------------------------------------------
# ONNX Runtime and OpenVINO workers, on the torchvision model exported to ONNX
# ----------------------------------------------------------------------------

def random_images(args, seed):
    """A batch of random float32 NCHW images, the torch worker's input shape, as numpy."""
    import numpy as np
    return np.random.default_rng(seed).random((args.batch, 3, args.size, args.size), dtype=np.float32)


def calibration_batches(args):
    return [random_images(args, CALIBRATION_SEED + i) for i in range(CALIBRATION_BATCHES)]


def export_onnx(args, model_name, path):
    """Writes the torch worker's model (eval mode) as ONNX at the fixed batch and size."""
    import torch
    torch.manual_seed(0)
    model, _ = torch_build(model_name)
    model.eval()
    x = torch.rand(args.batch, 3, args.size, args.size)
    # The TorchScript exporter: quick, and it folds each batch norm into its convolution.
    torch.onnx.export(model, (x,), path, opset_version=ONNX_OPSET, dynamo=False,
                      input_names=[ONNX_INPUT], output_names=["logits"])
    return {"total_params": sum(p.numel() for p in model.parameters()),
            "exported_by": f"torch {torch.__version__} torch.onnx.export(dynamo=False, opset_version={ONNX_OPSET}), "
                           f"batch {args.batch}, {args.size}x{args.size}"}


def quantize_onnx(args, f32_path, path):
    """Writes ONNX Runtime's static int8 quantization of the f32 file."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class RandomImages(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration_batches(args))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {ONNX_INPUT: batch}

    # The pre-processing (shape inference, graph optimization) ONNX Runtime's guide asks for first.
    preprocessed = path + ".pre.onnx"
    quant_pre_process(f32_path, preprocessed)
    quantize_static(preprocessed, path, RandomImages(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    return {"quantized_by": "onnxruntime.quantization: quant_pre_process, quantize_static(QDQ, per-channel, "
                            f"QInt8 weights, QUInt8 activations, MinMax over {CALIBRATION_BATCHES} random batches)"}


def quantize_openvino(args, f32_path, path):
    """Writes NNCF's int8 quantization of the f32 file as OpenVINO IR."""
    import nncf
    import openvino as ov
    model = nncf.quantize(ov.Core().read_model(f32_path), nncf.Dataset(calibration_batches(args)),
                          subset_size=CALIBRATION_BATCHES)
    ov.save_model(model, path, compress_to_fp16=False)
    return {"quantized_by": f"nncf {nncf.__version__} nncf.quantize (default preset) over {CALIBRATION_BATCHES} "
                            "random batches"}


# Each model file the ONNX Runtime and OpenVINO workers read: its name and how it is made from
# the f32 ONNX file (None: it is that file).
ARTIFACTS = {"onnx": (".onnx", None), "onnx_int8": ("_int8.onnx", quantize_onnx),
             "openvino_int8": ("_int8.xml", quantize_openvino)}


def prepare_worker(args, model_name, artifact):
    """Child process: writes one model file into --model-dir; returns what made it."""
    suffix, quantize = ARTIFACTS[artifact]
    path = os.path.join(args.model_dir, model_name + suffix)
    if quantize is None:
        return export_onnx(args, model_name, path)
    f32_path, info = prepared(args, model_name, "onnx")
    return {**info, **quantize(args, f32_path, path)}


def prepared(args, model_name, artifact):
    """Returns (path, description) of a model file, made by a child process the first time any
    case of this run asks for it: torch, the export and the calibration then count in neither
    the case's peak memory nor its time, and the rounds reuse the file."""
    path = os.path.join(args.model_dir, model_name + ARTIFACTS[artifact][0])
    description = path + ".json"
    if not os.path.exists(description):
        made = run_worker(args, "prepare", model_name, artifact)
        if made.get("failed"):
            raise SystemExit(f"cannot make the {artifact} file of {model_name}: {made['error']}")
        with open(description, "w") as f:
            json.dump(made, f)
    with open(description) as f:
        return path, json.load(f)


def onnxruntime_worker(args, model_name, case):
    """Returns (result, step): InferenceSession.run of the whole batch, f32 or int8."""
    import onnxruntime as ort
    path, result = prepared(args, model_name, "onnx_int8" if case == "infer_int8" else "onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    x = random_images(args, TIMING_SEED)
    result.update(framework_version=ort.__version__,
                  method=f"InferenceSession.run, CPUExecutionProvider, intra_op_num_threads {args.threads}, "
                         "inter_op_num_threads 1")

    def step():
        session.run(None, {ONNX_INPUT: x})
    return result, step


def openvino_worker(args, model_name, case):
    """Returns (result, step): a synchronous InferRequest.infer of the whole batch."""
    import openvino as ov
    path, result = prepared(args, model_name, "openvino_int8" if case == "infer_int8" else "onnx")
    # LATENCY: one stream, so one infer() call runs the whole batch on all --threads threads.
    config = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"}
    if case == "infer_f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    core = ov.Core()
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(random_images(args, TIMING_SEED)))
    result.update(framework_version=ov.__version__, config=config,
                  inference_precision=compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
                  method="Core.read_model, compile_model('CPU'), InferRequest.infer")
    return result, request.infer


def worker_main(args):
    """Child process: one (framework, model, case), or one model file for the ONNX Runtime and
    OpenVINO cases (framework "prepare"); prints one JSON line on standard output."""
    framework, model_name, case = args.worker
    if framework == "prepare":
        if case == "onnx":
            import torch
            torch.set_num_threads(args.threads)
        print(json.dumps(prepare_worker(args, model_name, case)), flush=True)
        return
    if framework in ("torch", "torch_bf16"):
        import torch
        # Before any operation: inter-op threads can no longer be set once work has started.
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        if model_name == "sgemm":
            result = sgemm_worker(args)
        else:
            result, step = torch_worker(args, model_name, case, bf16=framework == "torch_bf16")
    elif framework == "keras":
        import tensorflow as tf
        # Before any operation (and before importing keras, which may start TensorFlow).
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        result, step = keras_worker(args, model_name, case, tf)
    elif framework == "onnxruntime":
        result, step = onnxruntime_worker(args, model_name, case)
    elif framework == "openvino":
        result, step = openvino_worker(args, model_name, case)
    else:
        raise SystemExit(f"unknown framework {framework}")
    result.update(framework=framework, model=model_name, case=case, threads=args.threads)
    if model_name != "sgemm":
        result["rss_built_mb"] = status_mb("VmRSS")
        result["step_s"], result["others_cores"] = time_steps(step, args.warmup, args.steps)
        result["median_s"] = statistics.median(result["step_s"])
        result.update(images_per_s=args.batch / result["median_s"], size=args.size,
                      batch=args.batch, steps=args.steps, warmup=args.warmup)
    result["peak_rss_mb"] = status_mb("VmHWM")
    print(json.dumps(result), flush=True)


# ----------------------------------------------------------------------------
# Parent: runs the children and zoo, prints the report
# ----------------------------------------------------------------------------

def child_env(threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["KERAS_BACKEND"] = "tensorflow"
    return env


def last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_worker(args, framework, model_name, case):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, model_name, case,
           "--size", str(args.size), "--batch", str(args.batch), "--threads", str(args.threads),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--model-dir", args.model_dir]
    proc = subprocess.run(cmd, env=child_env(args.threads), capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        # Frameworks may print to stdout too; the result is the last line that is a JSON object.
        if proc.returncode == 0 and line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                pass
    if proc.returncode < 0:
        # The kernel's OOM killer sends SIGKILL and leaves no message of its own.
        error = f"killed by signal {-proc.returncode}"
        if proc.returncode == -9:
            error += " (out of memory?)"
        if last_line(proc.stderr):
            error = last_line(proc.stderr) + "; " + error
    else:
        error = last_line(proc.stderr) or f"exit status {proc.returncode}, no result"
    return {"framework": framework, "model": model_name, "case": case, "failed": True,
            "returncode": proc.returncode, "error": error}


def children_ticks():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * os.sysconf("SC_CLK_TCK"))


def run_zoo(args, model_name, case, size=None):
    """Runs `zoo bench models --json` for one model and case, in its own process like the peers'
    cases, so its peak memory is the case's own; returns a result shaped like a worker's."""
    size = size or args.size
    cmd = [args.zoo, "bench", "models", "--models", model_name, "--cases", case, "--size", str(size),
           "--batch", str(args.batch), "--threads", str(args.threads), "--steps", str(args.steps),
           "--precision", args.zoo_precision, "--json"]
    result = {"framework": "zoo", "model": model_name, "case": case, "command": cmd}
    # zoo's process is not this one: its CPU time comes from the children's rusage.
    meter = NoiseMeter(own=children_ticks)
    meter.start()
    try:
        proc = subprocess.run(cmd, env=child_env(args.threads), capture_output=True, text=True)
    except OSError as e:
        return {**result, "failed": True, "error": str(e)}
    result["others_cores"] = meter.stop()
    if proc.returncode != 0:
        return {**result, "failed": True, "error": last_line(proc.stderr) or f"exit status {proc.returncode}"}
    try:
        rows = json.loads(proc.stdout)
        row = next(r for r in rows if r["model"] == model_name and r["case"] == case)
        if row.get("size") != size or row.get("batch") != args.batch:
            raise ValueError(f"the row is for size {row.get('size')} batch {row.get('batch')}")
        return {**result, "images_per_s": row["images_per_s"], "peak_rss_mb": row["peak_rss_mb"],
                "gflop_per_s": row.get("gflop_per_s")}
    except (ValueError, KeyError, TypeError, StopIteration) as e:
        return {**result, "failed": True, "error": f"cannot read zoo's output: {e!r}"}


def package_versions():
    versions = {"python": platform.python_version()}
    for key, names in (("torch", ["torch"]), ("torchvision", ["torchvision"]), ("keras", ["keras"]),
                       ("tensorflow", ["tensorflow", "tensorflow-cpu"]), ("onnx", ["onnx"]),
                       ("onnxruntime", ["onnxruntime"]), ("openvino", ["openvino"]), ("nncf", ["nncf"]),
                       ("numpy", ["numpy"])):
        versions[key] = None
        for name in names:
            try:
                versions[key] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                pass
    return versions


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def value(entry, key):
    """A figure of a result for the table: a number, FAILED, or None where that side did not run."""
    if entry is None:
        return None
    if entry.get("failed"):
        return FAILED
    return entry.get(key)


def is_rate(v):
    return isinstance(v, (int, float)) and v > 0


def combine_rounds(runs):
    """One result from a case's rounds: the median rate, the largest peak memory and noise; the
    first failure if any round failed."""
    failed = [r for r in runs if r.get("failed")]
    if failed:
        return failed[0]
    combined = dict(runs[-1])
    for key in ("images_per_s", "gflop_per_s", "gflops"):
        if all(is_rate(r.get(key)) for r in runs):
            combined[key] = statistics.median(r[key] for r in runs)
    for key in ("peak_rss_mb", "others_cores"):
        if all(r.get(key) is not None for r in runs):
            combined[key] = max(r[key] for r in runs)
    combined["rounds"] = [{k: r.get(k) for k in ("images_per_s", "gflop_per_s", "gflops", "peak_rss_mb", "others_cores")
                           if r.get(k) is not None} for r in runs]
    return combined


def table_rows(args, results):
    """One dict per model and case that anything ran, with the table's figures (numbers, FAILED
    or None); every framework has its keys, run or not."""
    rows = []
    for model_name in args.models:
        for case in args.cases:
            runs = {fw: results.get((fw, model_name, case)) for fw in ["zoo"] + FRAMEWORKS}
            if not any(runs.values()):
                continue
            row = {"model": model_name, "case": case}
            row.update({f"{fw}_img_s": value(runs[fw], "images_per_s") for fw in runs})
            row.update({f"{fw}_mb": value(runs[fw], "peak_rss_mb") for fw in runs})
            rates = {fw: row[f"{fw}_img_s"] for fw in FRAMEWORKS if is_rate(row[f"{fw}_img_s"])}
            row["faster_peer"] = max(rates, key=rates.get) if rates else None
            zoo_ok = is_rate(row["zoo_img_s"])
            row["zoo_vs_torch"] = (row["zoo_img_s"] / row["torch_img_s"]
                                   if zoo_ok and is_rate(row["torch_img_s"]) else None)
            row["zoo_vs_faster_peer"] = row["zoo_img_s"] / max(rates.values()) if zoo_ok and rates else None
            rows.append(row)
    return rows


def fmt(v, spec):
    if v is None:
        return NOT_RUN
    if v == FAILED:
        return FAILED
    if spec == "rate":
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    if spec == "ratio":
        return f"{v:.2f}x"
    return f"{v:.0f}"


def markdown_table(rows, frameworks):
    """The table, with columns for the frameworks that ran (zoo's are always there)."""
    columns = ([("zoo img/s", "zoo_img_s", "rate")]
               + [(f"{FRAMEWORK_TITLES[fw]} img/s", f"{fw}_img_s", "rate") for fw in frameworks]
               + [("zoo/PyTorch", "zoo_vs_torch", "ratio"), ("zoo/faster peer", "zoo_vs_faster_peer", "ratio"),
                  ("zoo MB", "zoo_mb", "mb")]
               + [(f"{FRAMEWORK_TITLES[fw]} MB", f"{fw}_mb", "mb") for fw in frameworks])
    lines = ["| model | case | " + " | ".join(title for title, _, _ in columns) + " |",
             "|---|---|" + "---:|" * len(columns)]
    for row in rows:
        cells = [row["model"], row["case"]] + [fmt(row[key], spec) for _, key, spec in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report_header(doc):
    v = doc["versions"]
    sgemm = doc["sgemm"]
    sgemm_text = (f"{sgemm['gflops']:.1f} GFLOP/s" if not sgemm.get("failed")
                  else f"failed ({sgemm['error']})")
    cfg = doc["config"]
    lines = [f"Date: {doc['date']}",
             f"CPU: {doc['cpu']} ({doc['cpus_available']} CPUs available), "
             f"{cfg['threads']} thread(s) per framework"
             + (f"; zoo ran with --precision {cfg['zoo_precision']}" if cfg.get("zoo") else ""),
             "Versions: " + ", ".join(f"{k} {v[k] or 'not installed'}" for k in v),
             f"SGEMM reference (torch, {SGEMM_N}^3 float32, median of {SGEMM_REPEATS}): {sgemm_text}"]
    gemm_check = doc.get("resnet50_224")
    if gemm_check:
        if gemm_check.get("failed") or not gemm_check.get("gflop_per_s"):
            lines.append(f"zoo ResNet50 inference at 224x224: failed ({gemm_check.get('error', 'no GFLOP/s figure')})")
        else:
            share = (f", {100 * gemm_check['gflop_per_s'] / sgemm['gflops']:.0f}% of the SGEMM reference"
                     if not sgemm.get("failed") else "")
            lines.append(f"zoo ResNet50 inference at 224x224, batch {cfg['batch']}: {gemm_check['images_per_s']:.1f} img/s, "
                         f"{gemm_check['gflop_per_s']:.1f} GFLOP/s (2 x multiply-adds){share}")
    precisions = sorted({r["inference_precision"] for r in doc["results"]
                         if r.get("framework") == "openvino" and r.get("case") == "infer" and "inference_precision" in r})
    if precisions:
        lines.append(f"OpenVINO's infer case ran at its default inference precision: {', '.join(precisions)}")
    return lines + [f"Input {cfg['size']}x{cfg['size']}, batch {cfg['batch']}, {cfg['warmup']} warm-up and "
                    f"{cfg['steps']} timed steps; img/s = batch / median step time, the median over "
                    f"{cfg['rounds']} round(s) of every case; MB = peak resident MiB of the case's own "
                    f"process, the largest over the rounds"]


def comma_list(choices):
    def parse(text):
        items = [s.strip() for s in text.split(",") if s.strip()]
        bad = [s for s in items if s not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(choices)}")
        return [c for c in choices if c in items]
    return parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=comma_list(MODELS), default=DEFAULT_MODELS,
                    help="comma-separated models of make_model_references.py's list (default: the first eight)")
    ap.add_argument("--size", type=int, default=96, help="input height and width (default: 96)")
    ap.add_argument("--batch", type=int, default=32, help="batch size (default: 32)")
    ap.add_argument("--threads", type=int, default=2, help="compute threads per framework (default: 2)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per case (default: 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before them (default: 2)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="times the whole sequence of cases runs; figures are medians over them (default: 3)")
    ap.add_argument("--frameworks", type=comma_list(FRAMEWORKS), default=FRAMEWORKS,
                    help=f"comma-separated peers to run (default: {','.join(FRAMEWORKS)})")
    ap.add_argument("--cases", type=comma_list(CASES), default=CASES,
                    help=f"comma-separated cases; each runs for the frameworks that have it (default: {','.join(CASES)})")
    ap.add_argument("--zoo", metavar="PATH", help="zoo executable; runs `PATH bench models ... --json`")
    ap.add_argument("--zoo-precision", choices=["f32", "bf16", "auto", "int8"], default="f32",
                    help="zoo's --precision (default: f32)")
    ap.add_argument("--json", metavar="OUT", help="write every result as JSON")
    ap.add_argument("--markdown", metavar="OUT", help="write the header and the table as markdown")
    ap.add_argument("--worker", nargs=3, metavar=("FRAMEWORK", "MODEL", "CASE"), help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)   # the run's exported and quantized model files
    args = ap.parse_args()
    if min(args.size, args.batch, args.threads, args.steps, args.rounds) < 1 or args.warmup < 0:
        ap.error("--size, --batch, --threads, --steps and --rounds must be positive, --warmup not negative")
    if args.worker:
        return worker_main(args)
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as args.model_dir:
        run_all(args)


def run_all(args):
    """Runs every job, in rounds, and writes the report."""
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "cpu": cpu_model(), "cpus_available": len(os.sched_getaffinity(0)),
           "versions": package_versions(),
           "config": {"models": args.models, "frameworks": args.frameworks, "cases": args.cases, "size": args.size,
                      "batch": args.batch, "threads": args.threads, "steps": args.steps,
                      "warmup": args.warmup, "rounds": args.rounds, "zoo": args.zoo,
                      "zoo_precision": args.zoo_precision}}

    def flag_noise(what, cores):
        if cores is not None and cores > NOISE_THRESHOLD:
            log(f"warning: other processes used {cores:.2f} cores during {what}; "
                f"its figures are lower than on a quiet machine")

    # Frameworks alternate within each case, so slow drifts in the machine's load hit all alike; the
    # rounds repeat the whole sequence, so a burst of load spoils at most one round of a case.
    # Each job: its key in the results, what the log calls it, and how to run it.
    sgemm_key, resnet50_224_key = ("torch", "sgemm", "-"), ("zoo", "resnet50", "infer at 224")
    jobs = [(sgemm_key, f"the SGEMM reference ({SGEMM_N}^3, {args.threads} thread(s))",
             lambda: run_worker(args, "torch", "sgemm", "-"))]
    if args.zoo:
        # Issue 8's compute-bound check: ResNet50 inference at 224 against the SGEMM figure.
        jobs.append((resnet50_224_key, "zoo ResNet50 inference at 224x224",
                     lambda: run_zoo(args, "resnet50", "infer", size=224)))
    # NNCF is an optional package: without it OpenVINO's int8 case is left out, not faked.
    left_out = set()
    if "openvino" in args.frameworks and "infer_int8" in args.cases and importlib.util.find_spec("nncf") is None:
        log("nncf is not installed (pip install nncf): OpenVINO's infer_int8 case is left out")
        left_out.add(("openvino", "infer_int8"))
    for model_name in args.models:
        for case in args.cases:
            peers = [f for f in args.frameworks if runs_case(f, model_name, case) and (f, case) not in left_out]
            for fw in peers + (["zoo"] if args.zoo and case in ZOO_CASES else []):
                run = (lambda m=model_name, c=case: run_zoo(args, m, c)) if fw == "zoo" else \
                      (lambda fw=fw, m=model_name, c=case: run_worker(args, fw, m, c))
                jobs.append(((fw, model_name, case), f"{fw} {model_name} {case}", run))
    runs = {}
    for round_index in range(1, args.rounds + 1):
        for i, (key, what, run) in enumerate(jobs, 1):
            where = f"[round {round_index}/{args.rounds}, {i}/{len(jobs)}]"
            t0 = time.time()
            r = run()
            runs.setdefault(key, []).append(r)
            if r.get("failed"):
                log(f"{where} {what}: failed: {r['error']}")
                continue
            if key == sgemm_key:
                log(f"{where} {what}: {r['gflops']:.1f} GFLOP/s ({time.time() - t0:.0f} s)")
            else:
                params = ""
                if "trainable_params" in r:
                    params = f", trainable {r['trainable_params']:,} of {r['total_params']:,} params"
                    if "frozen_layers" in r:
                        params += f" ({r['frozen_layers']} of {r['base_layers']} base layers frozen)"
                log(f"{where} {what}: {r['images_per_s']:.2f} img/s, peak {r['peak_rss_mb']:.0f} MB"
                    f"{params} ({time.time() - t0:.0f} s)")
            flag_noise(what, r.get("others_cores"))
    results = {key: combine_rounds(case_runs) for key, case_runs in runs.items()}
    doc["sgemm"] = results.pop(sgemm_key)
    if args.zoo:
        doc["resnet50_224"] = results.pop(resnet50_224_key)
    doc["results"] = list(results.values())

    rows = table_rows(args, results)
    doc["table"] = rows
    noisy = [f"{r['framework']} {r['model']} {r['case']} ({r['others_cores']:.2f})"
             for r in doc["results"] if (r.get("others_cores") or 0) > NOISE_THRESHOLD]
    lines = report_header(doc) + [""] + markdown_table(rows, args.frameworks)
    if noisy:
        lines += ["", f"Other processes used more than {NOISE_THRESHOLD} cores during: " + ", ".join(noisy)]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
