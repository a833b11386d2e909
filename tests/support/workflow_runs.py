"""Running the shipped workflows (workflows/*.json) on the tiny test models, shared by the comfy and browser tiers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from hierafash_cli.workflow import CHECKPOINT_NAME, CONTROLNET_NAME

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))

TINY_MODELS = {CHECKPOINT_NAME: "tiny_sd15.safetensors", CONTROLNET_NAME: "tiny_pose_cn.safetensors"}
WIDTH, HEIGHT, STEPS = 64, 88, 6  # the official 512 x 704 aspect, at test size
SMALL_RUN = [
    f"EmptyLatentImage.width={WIDTH}", f"EmptyLatentImage.height={HEIGHT}",
    f"HieraFashPoseMaskBuilder.width={WIDTH}", f"HieraFashPoseMaskBuilder.height={HEIGHT}",
    f"Steps.value={STEPS}",
]


def small_run(workflow: dict) -> list[str]:
    """The SMALL_RUN assignments whose node type or title occurs in this workflow."""
    present = {n["type"] for n in workflow["nodes"]} | {n.get("title") for n in workflow["nodes"]}
    return [a for a in SMALL_RUN if a.split(".", 1)[0] in present]


SOURCE_IMAGE = "hierafashdiff_draft.png"  # what the edit workflow's Load Image names

# Saved images per Save Image title, for each shipped workflow.
EXPECTED_SAVES = {
    "hierafash_concept_to_draft": {"Save draft": 1},
    "hierafash_attribute_edit": {"Save edit": 1},
    "hierafash_generate_then_edit": {"Save draft": 1, "Save edit": 1},
}


def write_source_image(input_dir: Path, name: str = SOURCE_IMAGE) -> Path:
    """A seeded 64 x 88 test image for the edit workflow's Load Image."""
    rng = np.random.default_rng(11)
    path = Path(input_dir) / name
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(path)
    return path


def saved_images(entry: dict, prompt: dict) -> dict[str, list[dict]]:
    """{Save Image title: its saved images} from a /history entry."""
    out = {}
    for node_id, node in prompt.items():
        if node["class_type"] == "SaveImage":
            images = entry.get("outputs", {}).get(node_id, {}).get("images", [])
            out[node["_meta"]["title"]] = [i for i in images if i.get("type") == "output"]
    return out
