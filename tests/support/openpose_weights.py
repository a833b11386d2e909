"""Random-weight OpenPose files in the official layout, built at test time (the real ones are 350 MB and
non-commercial). controlnet-aux's `util.transfer` reads key `a.b.c` of its model from file key `b.c`, so each
key loses its first component; fp16 halves the files (load_state_dict copies them into float32)."""

from __future__ import annotations

from pathlib import Path

import torch

from hierafash_core.pose_detect import BODY_WEIGHTS, HAND_WEIGHTS


def write_random_openpose(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """body_pose_model.pth and hand_pose_model.pth with seeded random weights in `folder`."""
    from controlnet_aux.open_pose.model import bodypose_model, handpose_model

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    paths = []
    for name, model in ((BODY_WEIGHTS, bodypose_model()), (HAND_WEIGHTS, handpose_model())):
        state = {key.split(".", 1)[1]: value.half() for key, value in model.state_dict().items()}
        torch.save(state, folder / name)
        paths.append(folder / name)
    return paths[0], paths[1]
