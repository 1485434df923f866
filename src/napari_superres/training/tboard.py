"""TensorBoard scalars for a training run (``MODEL.train/tensorboard``), one point per epoch.

Written with TensorFlow's own summary writer and the scalar plugin's metadata, so TensorBoard shows them
without this process needing the ``tensorboard`` package (only the viewer needs it).
"""

import math


class ScalarWriter:
    def __init__(self, folder):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(folder))
        self._metadata = summary_pb2.SummaryMetadata()
        self._metadata.plugin_data.plugin_name = "scalars"

    def write(self, step: int, values: dict) -> None:
        tf = self._tf
        with self._writer.as_default():
            for tag, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=self._metadata)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
