"""The shapes a Keras model's layers work on, from one symbolic pass (no arithmetic): what counting a model's
multiply-adds (the bench) and sizing its calls to memory (the engine) both start from."""

from __future__ import annotations

import numpy as np

PROBE_SIDE = 64  # the symbolic input's side for per-pixel figures (any side works; all shipped layers scale)


def node_shapes(model, input_shape, keep=None) -> list:
    """``[(operation, [input shapes], output shape)]`` for the nodes of a functional (or Sequential) model
    called on ``input_shape``, in graph order; ``keep(operation)`` picks the nodes (default: every node with
    an input, so not the input layers). A nested model is one node."""
    import keras

    graph = getattr(model, "_functional", None) or model  # a Sequential model wraps a functional one
    nodes = [n for depth in graph._nodes_by_depth.values() for n in depth]
    nodes = [n for n in nodes if n.input_tensors and (keep is None or keep(n.operation))]
    if not nodes:
        return []
    tensors = [t for n in nodes for t in (*n.input_tensors, n.output_tensors[0])]
    specs = keras.Model(graph.inputs, tensors).compute_output_spec(keras.KerasTensor(tuple(input_shape)))
    out, k = [], 0
    for n in nodes:
        m = len(n.input_tensors)
        out.append((n.operation, [tuple(s.shape) for s in specs[k : k + m]], tuple(specs[k + m].shape)))
        k += m + 1
    return out


def working_floats_per_pixel(model) -> float | None:
    """Values held at the model's widest step, per input pixel: the largest sum of one layer's inputs and
    output (what a call needs at least at once, besides the weights). None when the model's graph cannot be
    walked symbolically (a subclassed model, a layer without a symbolic form) or holds a nested model (whose
    inner layers this walk does not see)."""
    import keras

    try:
        channels = model.inputs[0].shape[-1]
        shapes = node_shapes(model, (1, PROBE_SIDE, PROBE_SIDE, channels))
    except Exception:
        return None
    if not shapes or any(isinstance(op, keras.Model) for op, _, _ in shapes):
        return None
    widest = max(sum(int(np.prod(s)) for s in inputs) + int(np.prod(output)) for _, inputs, output in shapes)
    return widest / PROBE_SIDE**2
