"""Array in, array out: axes, dtype and range, normalisation, tiling, batching, self-ensemble, geometry.

Pure functions with no Qt or napari. ``engine.api.upscale`` is the entry point; importing this package
imports neither Keras nor TensorFlow (the model is only touched through its ``predict``).
"""
