"""The entry of the bench's child processes (see :func:`.child.run_child`): ``python -m napari_superres.benchmark
--child TASK_JSON`` runs one task and prints its JSON answer as the last line of stdout."""

import json
import os
import sys


def run_task(task: dict) -> dict:
    """The task's answer; each section owns the task it sends to a child."""
    if task["task"] == "peers":  # PyTorch and ONNX Runtime (this child runs Keras on torch)
        from .peers import peer_child

        return peer_child(task)
    if task["task"] == "memory":
        from .tiling import memory_task

        return memory_task(task)
    from .options import speed_task  # "speed": the oneDNN switch

    return speed_task(task)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        print(json.dumps(run_task(json.loads(sys.argv[2]))))
    else:
        sys.exit("usage: napari-superres bench (this module's own entry is for its subprocess)")
