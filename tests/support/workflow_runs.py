"""Running the shipped templates (workflows/*.json) and the legacy saves on the tiny test models, for the comfy and
browser tiers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from hierafash_cli.workflow import CHECKPOINT_NAME, CONTROLNET_NAME

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
LEGACY = ROOT / "tests" / "data" / "legacy_workflows"  # the 0.1.0 templates: saves that must keep loading and running
NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))  # the shipped templates
LEGACY_NAMES = sorted(p.stem for p in LEGACY.glob("*.json"))
DRAFT = "Fashion garment design - dress draft from concepts"
EDIT = "Fashion garment edit - new sleeves and collar on a dress"
BOTH = "Fashion garment design then edit - dress draft, then a new collar and hem"
SMALL = "Fashion garment design then edit - small model trained here, no download"  # on fixture quality_model

# The legacy saves load the converted files with stock loaders; the templates load the official replica itself.
TINY_MODELS = {CHECKPOINT_NAME: "tiny_sd15.safetensors", CONTROLNET_NAME: "tiny_pose_cn.safetensors"}
WIDTH, HEIGHT, STEPS = 64, 88, 6  # the official 512 x 704 aspect, at test size
SMALL_RUN = [
    "HieraFashSizeAndSteps.preset=custom (the values below)", f"HieraFashSizeAndSteps.width={WIDTH}",
    f"HieraFashSizeAndSteps.height={HEIGHT}", f"HieraFashSizeAndSteps.steps={STEPS}",
    # the legacy saves
    f"EmptyLatentImage.width={WIDTH}", f"EmptyLatentImage.height={HEIGHT}",
    f"HieraFashPoseMaskBuilder.width={WIDTH}", f"HieraFashPoseMaskBuilder.height={HEIGHT}",
    f"Steps.value={STEPS}",
]


def workflow_path(name: str) -> Path:
    """A shipped template or a legacy save, by name."""
    return next(p for p in (WORKFLOWS / f"{name}.json", LEGACY / f"{name}.json") if p.is_file())


def small_run(workflow: dict) -> list[str]:
    """The SMALL_RUN assignments whose node is in this workflow and whose input is a widget there (not a link)."""
    by_key = {}
    for n in workflow["nodes"]:
        linked = {i["name"] for i in n.get("inputs", []) if i.get("link") is not None}
        for key in (n["type"], n.get("title")):
            by_key.setdefault(key, set()).update(linked)
    out = []
    for assignment in SMALL_RUN:
        key, rest = assignment.split(".", 1)
        if key in by_key and rest.split("=", 1)[0] not in by_key[key]:
            out.append(assignment)
    return out


SOURCE_IMAGE = "hierafashdiff_draft.png"  # what the legacy edit workflow's Load Image names

# Saved images per Save Image title, for each shipped template and legacy save.
EXPECTED_SAVES = {
    DRAFT: {"Save draft": 1}, EDIT: {"Save edit": 1}, BOTH: {"Save draft": 1, "Save edit": 1},
    SMALL: {"Save draft": 1, "Save edit": 1},
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
