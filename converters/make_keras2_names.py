#!/usr/bin/env python3
"""Keras 2's layer and tensor names, for the Keras applications whose Keras 2 names are not Keras 3's.

Keras's published `.h5` files were written by Keras 2. For most families its layer names are
Keras 3's (once slashes become underscores, as zoo reads legacy files); MobileNetV3's are not:
`Conv`, `Conv/BatchNorm`, `expanded_conv_3/squeeze_excite/Conv_1`, `Logits` against Keras 3's
`conv`, `conv_bn`, `expanded_conv_3_squeeze_excite_conv_1`, `logits`.

For each such model this builds it in tf_keras (Keras 2), writes its weights with `save_weights`
to a temporary `.h5` and records what that file holds as zoo lists it: `layer_names`, and every
tensor (`weight_names` inside each layer group, the layer's name in front where Keras 2 left it
out), each paired with the tensor of the committed Keras 3 listing (`<model>_keras.json`) that
holds the same weight: the same position among the layers with weights, the same position in
its layer, the same shape (checked here; a difference stops the script). The test suite loads a
file spelled this way into zoo's model, values from the Keras 3 names' formula, and expects
Keras 3's logits: the names map one to one through the family's explicit aliases.

`--survey` builds every Keras model of make_model_references.py in both frameworks and prints
the models whose names differ (a new such family needs aliases, and a place in KERAS2_MODELS).

Run from the repository root with the project venv:

    ../venv/bin/python converters/make_keras2_names.py [--survey]

writes Tests/ZooModelsTests/References/keras2_names.json. CI never runs it.
"""

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_references import KERAS_APP, KERAS_KWARGS, MODELS, h5_str_attr  # noqa: E402

REFERENCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ZooModelsTests", "References")
# The models whose Keras 2 names differ from Keras 3's (what --survey found).
KERAS2_MODELS = ["mobilenetv3small", "mobilenetv3large", "mobilenetv3small_minimalistic",
                 "mobilenetv3large_minimalistic", "mobilenetv3small_a075", "mobilenetv3large_a075"]
SURVEY_SIZE = 224


def keras2_file(tf_keras, h5py, model, folder):
    """Layer names and, per layer with weights, its tensors (name, shape) as zoo lists them."""
    app = getattr(tf_keras.applications, KERAS_APP[model])
    m = app(weights=None, include_top=True, input_shape=(SURVEY_SIZE, SURVEY_SIZE, 3), **KERAS_KWARGS.get(model, {}))
    path = os.path.join(folder, f"{model}.h5")
    m.save_weights(path)
    with h5py.File(path, "r") as f:
        layer_names = h5_str_attr(f, "layer_names")
        layers = []
        for layer in layer_names:
            weights = h5_str_attr(f[layer], "weight_names")
            if weights:
                layers.append([(w if w.startswith(layer + "/") else f"{layer}/{w}", list(f[layer][w].shape)) for w in weights])
    tf_keras.backend.clear_session()
    return layer_names, layers


def keras3_layers(model):
    """The committed Keras 3 listing's tensors, grouped by layer in file order."""
    with open(os.path.join(REFERENCES, f"{model}_keras.json")) as f:
        listing = json.load(f)
    layers, names = [], []
    for entry in listing["tensors"]:
        layer = entry["name"].split("/")[0]
        if not names or names[-1] != layer:
            names.append(layer)
            layers.append([])
        layers[-1].append((entry["name"], entry["shape"]))
    return layers


def pair(model, keras2, keras3):
    if len(keras2) != len(keras3):
        sys.exit(f"{model}: tf_keras has {len(keras2)} layers with weights, the Keras 3 listing {len(keras3)}")
    tensors = []
    for ours, theirs in zip(keras2, keras3):
        if [s for _, s in ours] != [s for _, s in theirs]:
            sys.exit(f"{model}: tf_keras layer {ours[0][0]} has shapes {[s for _, s in ours]}, "
                     f"Keras 3's {theirs[0][0]} {[s for _, s in theirs]}")
        tensors += [{"name": k2, "keras3": k3} for (k2, _), (k3, _) in zip(ours, theirs)]
    return tensors


def survey(tf_keras):
    import keras
    for model in MODELS:
        if not KERAS_APP.get(model):
            continue
        kwargs = KERAS_KWARGS.get(model, {})
        size = 299 if model in ("inceptionv3", "xception", "inceptionresnetv2") else SURVEY_SIZE
        names = []
        for framework in (tf_keras, keras):
            m = getattr(framework.applications, KERAS_APP[model])(weights=None, include_top=True,
                                                                  input_shape=(size, size, 3), **kwargs)
            names.append([layer.name.replace("/", "_") for layer in m.layers if layer.weights])
            framework.backend.clear_session()
        differing = [(a, b) for a, b in zip(*names) if a != b]
        verdict = "same" if names[0] == names[1] else f"DIFFERENT ({len(differing)} of {len(names[1])}, e.g. {differing[:3]})"
        print(f"{model}: {verdict}", flush=True)


def compact_json(doc):
    """Indented JSON with each tensor pair on one line: a readable diff when a name changes."""
    models = []
    for model, entry in doc["models"].items():
        tensors = ",\n".join("    " + json.dumps(t) for t in entry["tensors"])
        models.append(f'  {json.dumps(model)}: {{"layer_names": {json.dumps(entry["layer_names"])},\n'
                      f'   "tensors": [\n{tensors}]}}')
    return f'{{"writer": {json.dumps(doc["writer"])}, "models": {{\n' + ",\n".join(models) + "}}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--survey", action="store_true", help="print which Keras models' names differ between Keras 2 and 3")
    args = parser.parse_args()
    import h5py
    import tf_keras
    if args.survey:
        survey(tf_keras)
    doc = {"writer": f"tf_keras {tf_keras.__version__} Model.save_weights (legacy HDF5)", "models": {}}
    with tempfile.TemporaryDirectory() as folder:
        for model in KERAS2_MODELS:
            layer_names, keras2 = keras2_file(tf_keras, h5py, model, folder)
            doc["models"][model] = {"layer_names": layer_names, "tensors": pair(model, keras2, keras3_layers(model))}
            print(f"{model}: {len(layer_names)} layers, {len(doc['models'][model]['tensors'])} tensors", flush=True)
    out = os.path.join(REFERENCES, "keras2_names.json")
    with open(out + ".tmp", "w") as f:
        f.write(compact_json(doc) + "\n")
    os.replace(out + ".tmp", out)
    print(f"wrote {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
