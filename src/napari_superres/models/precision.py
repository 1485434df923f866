"""The same model, same weights, computing in a lower precision (Keras mixed precision).

``mixed_bfloat16`` and ``mixed_float16`` keep the weights in float32 and do the arithmetic of the heavy
layers in 16 bits: on CPUs with AVX512-BF16 or AMX, and on GPUs, that is several times the float32 rate.
A shipped architecture is rebuilt under the policy, so its own choices hold (the bicubic skip and the output
stay float32: 16-bit floats cannot hold every 8-bit grey level). Any other functional model is cloned with
its convolution and dense layers switched to the policy.

Variants are built once per loaded model and shared: every variant of a model knows the others.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import InputError, ModelError

PRECISIONS = ("float32", "bfloat16", "float16")
_POLICIES = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision


def with_precision(srm, precision: str):
    """``srm`` computing in ``precision``; built on first use, then the same object every time."""
    check_precision(precision)
    if srm.precision == precision:
        return srm
    variants = srm.variants
    variants.setdefault(srm.precision, srm)
    if precision not in variants:
        base = variants["float32"]
        policy = _POLICIES[precision]
        model = _rebuild_mixed(base, policy) or _clone_mixed(base.keras_model, policy)
        variants[precision] = replace(base, keras_model=model, precision=precision, eager=False, precision_reason="")
    return variants[precision]


def _rebuild_mixed(srm, policy: str):
    """A shipped architecture rebuilt under ``policy`` (it knows which layers stay float32); None otherwise."""
    import keras

    from .registry import ARCHITECTURES, build_model

    desc = srm.description or {}
    if desc.get("architecture") not in ARCHITECTURES:
        return None
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_model(desc["architecture"], srm.scale, srm.channels, **(desc.get("options") or {}))
        model.set_weights(srm.keras_model.get_weights())
    except (ModelError, ValueError):
        return None
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def _clone_mixed(model, policy: str):
    """Any functional model with its arithmetic layers switched to ``policy`` (the rest stays float32)."""
    import keras

    heavy = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.DepthwiseConv2D,
             keras.layers.SeparableConv2D, keras.layers.Dense)

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, heavy):
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    mixed = keras.models.clone_model(model, clone_function=clone)
    mixed.set_weights(model.get_weights())
    return mixed
