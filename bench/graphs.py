"""API-format prompts for the benchmarks (no ComfyUI import needed).

Every graph starts from the same pieces (checkpoint, source image, design, pose masks, negative, ControlNet),
so the pairs below differ only where the comparison says they do.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from hierafash_core.design import join_items

sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))  # the one graph builder, shared with tests
from support.designs import PAPER_ATTRIBUTES, PAPER_CONCEPT_FIELDS, design_of  # noqa: E402
from support.graphs import Graph  # noqa: E402

DETAIL = "satin, fine fabric texture"  # its own prompt for the detail stage: 7 distinct stages
NEGATIVE = ""
# Pose Mask Builder outputs per attribute A1..A5 (2 length, 3 sleeves, 4 collar, 5 hem).
MASK_OUTPUT = (2, 3, 3, 4, 5)
BAND_ALL = "all steps (official code)"
BAND_ATTRIBUTES = "attribute stages (after the concept)"


def design_prompts() -> list[str]:
    """[P_C, P_C+A1, ..., P_C+A1..A5, full + detail]: the scheduler's seven stage prompts."""
    prompts = design_of().cumulative_prompts()
    return [*prompts, join_items([prompts[-1], DETAIL])]


@dataclass(frozen=True)
class Setup:
    ckpt: str  # names inside the base directory's models/ folders
    controlnet: str | None
    source: str  # image name inside input/
    width: int
    height: int
    cfg: float = 5.0


def out(node_id: str, index: int = 0) -> list:
    return [node_id, index]


class Common:
    """The shared upstream of every benchmark graph."""

    def __init__(self, g: Graph, s: Setup):
        self.g, self.s = g, s
        ckpt = g.add("CheckpointLoaderSimple", ckpt_name=s.ckpt)
        self.model, self.clip, self.vae = out(ckpt, 0), out(ckpt, 1), out(ckpt, 2)
        self.image = out(g.add("LoadImage", image=s.source))
        design = g.add("HieraFashConceptIdeation", **PAPER_CONCEPT_FIELDS, custom_concept="")
        for label, value in PAPER_ATTRIBUTES:
            design = g.add("HieraFashAttributeIteration", design=out(design), attribute=label, value=value,
                           custom_text="")
        self.design = out(design)
        self.masks = g.add("HieraFashPoseMaskBuilder", preset="front_standing", width=s.width, height=s.height,
                           category="Dress", person=-1, grow=0.05, feather=0.0, coordinates="auto",
                           missing_keypoints="estimate", external_mode="union", image=self.image,
                           design=self.design)
        self.negative = out(g.add("CLIPTextEncode", text=NEGATIVE, clip=self.clip))
        self.control_net = out(g.add("ControlNetLoader", control_net_name=s.controlnet)) if s.controlnet else None

    def counter(self, model, tag: str) -> list:
        return out(self.g.add("HieraFashBenchCounter", model=model, tag=tag))

    def stock_pose(self, positive, start: float, end: float = 1.0):
        """Stock ControlNetApplyAdvanced with the pose render (positive and negative share one copy)."""
        if self.control_net is None:
            return positive, self.negative
        cn = self.g.add("ControlNetApplyAdvanced", positive=positive, negative=self.negative,
                        control_net=self.control_net, image=out(self.masks, 1), strength=1.0, start_percent=start,
                        end_percent=end)
        return out(cn, 0), out(cn, 1)

    def union_mask(self) -> list:
        """The union of the attribute regions from stock MaskComposite nodes (binary masks: add = union)."""
        union = out(self.masks, 2)
        for index in (3, 4, 5):
            union = out(self.g.add("MaskComposite", destination=union, source=out(self.masks, index), x=0, y=0,
                                   operation="add"))
        return union

    def sample(self, model, positive, negative, latent, *, seed, steps, sampler, scheduler, start_at_step=0):
        return out(self.g.add("KSamplerAdvanced", model=model, add_noise="enable", noise_seed=seed, steps=steps,
                              cfg=self.s.cfg, sampler_name=sampler, scheduler=scheduler, positive=positive,
                              negative=negative, latent_image=latent, start_at_step=start_at_step,
                              end_at_step=10000, return_with_leftover_noise="disable"))


def hierarchical(s: Setup, *, tag, seed, steps, sampler, scheduler, band, band_start=0.0, edit="all",
                 decode=False, preserve=False) -> dict:
    """C(t) (7 stages) + M(t) via Attribute Edit + the pose band, one sampling pass."""
    g = Graph()
    c = Common(g, s)
    sched = g.add("HieraFashHierarchicalPromptScheduler", design=c.design, clip=c.clip, model=c.model, steps=steps,
                  scheduler=scheduler, detail=DETAIL, suffix="", boundaries="900, 800, 710, 630, 560, 500")
    edit_node = g.add("HieraFashAttributeEdit", model=c.model, vae=c.vae, image=c.image, schedule=out(sched, 1),
                      body_masks=out(c.masks, 0), edit_attributes=edit)
    positive, negative = out(sched, 0), c.negative
    if c.control_net is not None:
        pose = g.add("HieraFashApplyPoseControlNet", positive=positive, negative=negative, control_net=c.control_net,
                     pose_image=out(c.masks, 1), strength=1.0, band=band, start_percent=band_start, end_percent=1.0,
                     schedule=out(sched, 1))
        positive, negative = out(pose, 0), out(pose, 1)
    sampled = c.sample(c.counter(out(edit_node, 0), tag), positive, negative, out(edit_node, 1), seed=seed,
                       steps=steps, sampler=sampler, scheduler=scheduler)
    capture = {"tag": tag, "latent": sampled, "source_latent": out(edit_node, 1), "mask": out(edit_node, 2)}
    if decode:
        raw = out(g.add("VAEDecode", samples=sampled, vae=c.vae))
        capture.update(raw_image=raw, source_image=c.image)
        if preserve:
            capture["image"] = out(g.add("HieraFashPreserveSource", image=raw, source=c.image, mask=out(edit_node, 2)))
    g.add("HieraFashBenchCapture", **capture)
    return g.nodes


def vanilla(s: Setup, *, tag, seed, steps, sampler, scheduler, band_start=0.0, start_at_step=0,
            decode=False) -> dict:
    """One prompt (stock CLIPTextEncode), stock SetLatentNoiseMask with the union mask, stock ControlNet."""
    g = Graph()
    c = Common(g, s)
    positive = out(g.add("CLIPTextEncode", text=design_prompts()[-1], clip=c.clip))
    positive, negative = c.stock_pose(positive, band_start)
    union = c.union_mask()
    latent = out(g.add("SetLatentNoiseMask", samples=out(g.add("VAEEncode", pixels=c.image, vae=c.vae)), mask=union))
    sampled = c.sample(c.counter(c.model, tag), positive, negative, latent, seed=seed, steps=steps, sampler=sampler,
                       scheduler=scheduler, start_at_step=start_at_step)
    capture = {"tag": tag, "latent": sampled, "source_latent": latent, "mask": union}
    if decode:
        capture.update(raw_image=out(g.add("VAEDecode", samples=sampled, vae=c.vae)), source_image=c.image)
    g.add("HieraFashBenchCapture", **capture)
    return g.nodes


def official_chain(s: Setup, *, tag, seed, steps=100, sampler="ddim", scheduler="ddim_uniform",
                   starts=(8, 16, 24, 32, 40)) -> dict:
    """The official editing, emulated with stock nodes: five sequential runs, one per attribute.

    Run i starts at DDIM index starts[i] of `steps` (t = 911/831/751/671/591 at 100 ddim_uniform steps): the
    previous result is forward-noised to that level (KSamplerAdvanced, add_noise, start_at_step) and
    blended outside attribute i's own mask (SetLatentNoiseMask), prompted with P_C + A1..Ai and the pose
    ControlNet on every step, as the official demo's "send to attribute editing" loop does.
    """
    g = Graph()
    c = Common(g, s)
    prompts = design_prompts()
    latent = out(g.add("VAEEncode", pixels=c.image, vae=c.vae))
    source = latent
    for i, start in enumerate(starts):
        positive = out(g.add("CLIPTextEncode", text=prompts[i + 1], clip=c.clip))
        positive, negative = c.stock_pose(positive, 0.0)
        masked = out(g.add("SetLatentNoiseMask", samples=latent, mask=out(c.masks, MASK_OUTPUT[i])))
        latent = c.sample(c.counter(c.model, f"{tag}_{i + 1}"), positive, negative, masked, seed=seed + i,
                          steps=steps, sampler=sampler, scheduler=scheduler, start_at_step=start)
    g.add("HieraFashBenchCapture", tag=tag, latent=latent, source_latent=source, mask=c.union_mask())
    return g.nodes
