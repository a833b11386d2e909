"""The nodes a first session starts from: the example figure, the region preview with its legend, size and steps."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image
from support.graphs import Graph

from hierafash_cli.server import ComfyError
from hierafash_cli.workflow import pack_nodes
from hierafash_core.synthetic import draw_figure, example_spec, sample_figures
from hierafash_core.vocab import region_color
from hierafash_core.weights import OFFICIAL_CKPT_URL

WIDTH, HEIGHT = 128, 176


def images_of(comfy, entry, node) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(comfy.view(i))).convert("RGB"))
            for i in entry["outputs"][str(node)]["images"]]


def defaults(object_info: dict, class_type: str) -> dict:
    """Every required widget of a node at its schema default, as a new node in the editor has them."""
    required = object_info[class_type]["input"]["required"]
    return {name: spec[1]["default"] for name, spec in required.items() if len(spec) > 1 and "default" in spec[1]}


@pytest.fixture(scope="module")
def object_info(comfy):
    return comfy.get("/object_info")


def example_graph(object_info, seed=0):
    g = Graph()
    figure = g.add("HieraFashExampleFigure", figure=seed, width=WIDTH, height=HEIGHT)
    masks = g.add("HieraFashPoseMaskBuilder", **{**defaults(object_info, "HieraFashPoseMaskBuilder"),
                                                  "image": figure.out(0), "pose_keypoint": figure.out(1)})
    preview = g.add("HieraFashPreviewGarmentRegions", body_masks=masks.out(0), image=figure.out(0))
    shown = g.add("PreviewImage", images=figure.out(0))
    return g, preview, shown


@pytest.mark.parametrize("seed", [0, 7])
def test_example_figure_is_the_generators_figure(comfy, object_info, seed):
    g, _, shown = example_graph(object_info, seed)
    entry = comfy.run(g.prompt())
    (image,) = images_of(comfy, entry, shown)
    spec = example_spec() if seed == 0 else sample_figures(1, seed)[0]
    expected = np.clip(np.rint(draw_figure(spec, WIDTH, HEIGHT).image * 255), 0, 255).astype(np.uint8)
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(image.astype(int) - expected).max() <= 1


def test_region_preview_shows_every_region_with_a_legend_before_sampling(comfy, object_info):
    g, preview, _ = example_graph(object_info)
    entry = comfy.run(g.prompt())  # no sampler in the graph: the preview is an output node of its own
    (image,) = images_of(comfy, entry, preview)
    assert image.shape[1] == WIDTH and image.shape[0] > HEIGHT  # the legend sits below, covering nothing
    legend = image[HEIGHT:].reshape(-1, 3).astype(int)
    # A dress's length, sleeve and collar regions differ (its hem region may equal its length region and then
    # shares that entry), so each of the three has a swatch in its colour.
    for kind in ("clothing_length", "sleeve_length", "collar"):
        color = np.rint(np.array(region_color(kind)) * 255)
        assert (np.abs(legend - color).max(axis=1) <= 2).sum() >= 9, f"no legend swatch for {kind}"
    tinted = image[:HEIGHT].astype(int)
    figure = np.rint(draw_figure(example_spec(), WIDTH, HEIGHT).image * 255)
    assert (np.abs(tinted - figure).max(axis=-1) > 8).mean() > 0.05  # the regions are drawn on the figure


@pytest.mark.parametrize(("preset", "size"), [("quick try (256 x 352, 20 steps)", (256, 352, 20)),
                                              ("paper (512 x 704, 100 steps)", (512, 704, 100)),
                                              ("custom (the values below)", (192, 128, 7))])
def test_size_and_steps_feeds_sizes_and_steps(comfy, preset, size):
    g = Graph()
    settings = g.add("HieraFashSizeAndSteps", preset=preset, width=192, height=128, steps=7)
    empty = g.add("EmptyImage", width=settings.out(0), height=settings.out(1), batch_size=1, color=0)
    shown = g.add("PreviewImage", images=empty.out(0))
    text = g.add("PreviewAny", source=settings.out(2))
    entry = comfy.run(g.prompt())
    (image,) = images_of(comfy, entry, shown)
    assert (image.shape[1], image.shape[0]) == size[:2]
    assert entry["outputs"][str(text)]["text"] == [str(size[2])]


def test_a_missing_official_file_is_named_with_its_folder_and_source_before_running(comfy, comfy_base):
    g = Graph()
    loader = g.add("HieraFashLoadOfficialModel", ckpt_name="hfd_not_downloaded.ckpt")
    g.add("PreviewAny", source=loader.out(2))
    with pytest.raises(ComfyError) as caught:
        comfy.run(g.prompt())
    message = str(caught.value)
    # refused at validation, before anything runs (0.3.75 answers with node errors, 0.30 with a 400)
    assert "node errors" in message or "prompt_outputs_failed_validation" in message
    assert "HieraFash Load Official Model: input 'ckpt_name': 'hfd_not_downloaded.ckpt' is not in" in message
    assert str(comfy_base / "models" / "checkpoints") in message and OFFICIAL_CKPT_URL in message


PAPER_SYMBOLS = re.compile(r"P_C|C\(t\)|M\(t\)|ε|epsilon|\bA[1-5]\b|\bDDPM\b|\bUNet\b", re.IGNORECASE)


def node_texts(info: dict) -> list[str]:
    """What an artist reads on a node: its title, description and every input and output tooltip."""
    texts = [info.get("display_name", ""), info.get("description", ""), *(info.get("output_tooltips") or [])]
    for section in info["input"].values():
        texts += [spec[1].get("tooltip") for spec in section.values()
                  if len(spec) > 1 and isinstance(spec[1], dict)]
    return [text for text in texts if text]


def test_nodes_speak_a_designers_words(object_info):
    """The paper's symbols stay in the help pages ('In the paper'); titles and tooltips do without them."""
    ours = pack_nodes(object_info)
    symbols = {node_id: found for node_id, info in ours.items()
               if (found := sorted({m for text in node_texts(info) for m in PAPER_SYMBOLS.findall(text)}))}
    assert symbols == {}
    if any(info.get("search_aliases") for info in ours.values()):  # node search aliases exist from ComfyUI 0.30
        garment_words = ("fashion", "garment", "dress", "outfit")
        unfound = [node_id for node_id, info in ours.items() if not info.get("deprecated")
                   and not any(w in " ".join(info.get("search_aliases") or []) for w in garment_words)]
        assert unfound == []
