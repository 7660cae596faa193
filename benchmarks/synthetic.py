"""Classic architectures with seeded random weights, built offline.

The ``onnx`` package ships weight-less "light" models of classic networks
(``light_inception_v1`` = GoogLeNet, ResNet-50, SqueezeNet, ShuffleNet,
DenseNet-121, ...) whose weights are ``ConstantOfShape`` nodes. Replacing
those with seeded, fan-in-scaled random initializers gives the real graph and
compute profile of each network without a download: right for testing taps
and for benchmarks, meaningless as to what activations mean.

Only the tests and the benchmarks use it, so it lives here, outside the
package. Import it either way::

    from synthetic import light_model               # scripts in benchmarks/
    from benchmarks.synthetic import light_model    # from the repository root (the tests)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

LIGHT_MODELS: dict[str, str] = {
    "googlenet": "light_inception_v1",
    "inception_v2": "light_inception_v2",
    "resnet50": "light_resnet50",
    "squeezenet": "light_squeezenet",
    "shufflenet": "light_shufflenet",
    "densenet121": "light_densenet121",
    "alexnet": "light_bvlc_alexnet",
    "vgg19": "light_vgg19",
    "zfnet512": "light_zfnet512",
}


def light_model_path(name: str) -> Path:
    """Path of a light model file inside the installed onnx package."""
    base = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    return base / f"{LIGHT_MODELS.get(name, name)}.onnx"


def _weight(rng: np.random.Generator, shape: tuple[int, ...], role: str) -> np.ndarray:
    if role == "scale" or role == "var":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if role in ("bias", "mean") or len(shape) <= 1:
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
    return (rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))).astype(np.float32)


def _roles(graph: onnx.GraphProto) -> dict[str, str]:
    """What each weight tensor is, from how it is consumed."""
    roles: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "BatchNormalization":
            for name, role in zip(node.input[1:], ("scale", "bias", "mean", "var"), strict=False):
                roles[name] = role
        elif node.op_type in ("Conv", "Gemm", "MatMul"):
            for i, name in enumerate(node.input[1:], start=1):
                roles.setdefault(name, "weight" if i == 1 else "bias")
    return roles


def materialize(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """Replace every weight-producing ``ConstantOfShape`` with a seeded initializer.

    Returns a new model whose only graph input is the image; Gemm weights are
    laid out as the op expects (transB honoured by shape, not values).
    """
    rng = np.random.default_rng(seed)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {init.name: init for init in graph.initializer}
    roles = _roles(graph)
    keep_nodes = []
    new_inits: list[onnx.TensorProto] = []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
            role = roles.get(node.output[0], "weight")
            new_inits.append(numpy_helper.from_array(_weight(rng, shape, role), node.output[0]))
        else:
            keep_nodes.append(node)
    used = {name for node in keep_nodes for name in node.input}
    kept_inits = [init for init in graph.initializer if init.name in used]
    del graph.node[:]
    graph.node.extend(keep_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept_inits + new_inits)
    init_names = {init.name for init in graph.initializer}
    inputs = [inp for inp in graph.input if inp.name not in init_names and inp.name in used]
    del graph.input[:]
    graph.input.extend(inputs)
    out.ir_version = max(out.ir_version, 4)  # IR < 4 wants initializers listed as inputs
    return out


def light_model(name: str, seed: int = 0) -> onnx.ModelProto:
    """A classic architecture (see :data:`LIGHT_MODELS`) with seeded weights."""
    return materialize(onnx.load(str(light_model_path(name))), seed)
