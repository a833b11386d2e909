"""Pose Mask Builder (pose -> body-part masks, pose image, overlay) and the pose ControlNet band."""

from __future__ import annotations

import nodes as comfy_nodes
from comfy_api.latest import io, ui

from ..hierafash_core.body_masks import CANVAS_SIDES, FEATHER_RANGE, GROW_RANGE, MaskSettings, build_body_masks
from ..hierafash_core.masks import DEFAULT_GROW
from ..hierafash_core.pose import (
    LARGEST,
    OFFICIAL_STYLE,
    RENDER_STYLES,
    load_pose_preset,
    pose_presets,
    read_pose_keypoint,
    render_pose,
    to_pose_keypoint,
)
from ..hierafash_core.preview import overlay_regions
from ..hierafash_core.vocab import attribute_kind, concept_values
from .common import CATEGORY, advanced, input_error, node_errors, schema
from .common import BodyMasks as BodyMasksType
from .common import Design as DesignType
from .common import Schedule as ScheduleType

POSE_KEYPOINT = io.Custom("POSE_KEYPOINT")
BUILDER = "HieraFash Pose Mask Builder"
APPLY_POSE = "HieraFash Apply Pose ControlNet"
UNKNOWN = "unknown"


class PoseMaskBuilder(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashPoseMaskBuilder",
            display_name=BUILDER,
            category=f"{CATEGORY}/pose",
            search_aliases=["body part mask", "openpose mask", "sleeve mask", "collar mask", "pose preset",
                            "garment mask", "outfit mask", "dress mask", "hem mask", "length mask", "body mask",
                            "clothing region", "neckline", "lapel", "skirt", "top", "pose render"],
            description=(
                "Turns a pose (from a pose estimator, or a ready-made preset) into the garment regions an edit "
                "may repaint: clothing length, sleeves, collar, hem. Sizes follow the body, not pixels. Also draws "
                "the pose that holds the figure in place, and previews the regions."
            ),
            inputs=[
                io.Combo.Input("preset", options=list(pose_presets()), default="front_standing",
                               tooltip="Pose used when no pose_keypoint is connected."),
                io.Int.Input("width", default=512, min=CANVAS_SIDES[0], max=CANVAS_SIDES[1], step=8,
                             tooltip="Canvas width when no image is connected."),
                io.Int.Input("height", default=704, min=CANVAS_SIDES[0], max=CANVAS_SIDES[1], step=8,
                             tooltip="Canvas height when no image is connected."),
                io.Combo.Input("category", options=list(concept_values("category")), default="Dress",
                               tooltip="Garment category: decides the length and hem regions (a dress reaches "
                                       "down the legs, a blouse ends at the hips). A connected design overrides it."),
                io.Int.Input("person", default=LARGEST, min=LARGEST, max=64,
                             tooltip="Which detected person to use: -1 = the largest, else the index."),
                advanced(io.Float.Input, "grow", default=DEFAULT_GROW, min=GROW_RANGE[0], max=GROW_RANGE[1], step=0.01,
                         tooltip="Grow (or shrink, negative) every region, in shoulder widths."),
                advanced(io.Float.Input, "feather", default=0.0, min=FEATHER_RANGE[0], max=FEATHER_RANGE[1], step=0.01,
                         tooltip="Soft edge outside each region, in shoulder widths."),
                advanced(io.Combo.Input, "coordinates", options=["auto", "normalized", "pixels"], default="auto",
                         tooltip="Coordinate space of pose_keypoint: OpenPose (controlnet_aux) writes 0-1, DWPose "
                                 "and SDPose write pixels. 'auto' decides per frame and reports it."),
                advanced(io.Combo.Input, "missing_keypoints", options=["estimate", "error"], default="estimate",
                         tooltip="When a needed keypoint is missing: estimate it from the others (reported in "
                                 "the report output and preview) or stop with an error."),
                advanced(io.Combo.Input, "external_mode", options=["union", "intersection"], default="union",
                         tooltip="How external_mask combines with every pose region."),
                POSE_KEYPOINT.Input("pose_keypoint", optional=True,
                                    tooltip="Keypoints from a pose estimator (OpenPose, DWPose, SDPose)."),
                io.Image.Input("image", optional=True,
                               tooltip="The image being edited: sets the canvas size and is shown under the regions."),
                DesignType.Input("design", optional=True,
                                 tooltip="The design: its category and target clothing length shape the regions."),
                io.Mask.Input("external_mask", optional=True,
                              tooltip="A mask from elsewhere (e.g. a garment segmentation), same size as the canvas. "
                                      "It is also the region of custom attributes."),
                io.Combo.Input("current_length", options=[UNKNOWN, *attribute_kind("clothing_length").values],
                               default=UNKNOWN, optional=True,
                               tooltip="How long the garment in the image is now. Known, the length region spans "
                                       "only the fabric between it and the design's length, and the hem region "
                                       "is a band at it; 'unknown' covers every length of the category."),
                io.Combo.Input("render_style", options=list(RENDER_STYLES), default=OFFICIAL_STYLE, optional=True,
                               tooltip="How pose_image is drawn: 'ControlNet 1.0' as the official detector (joints, "
                                       "then limbs blended at 0.6, and hands when the pose has them), for the "
                                       "official weights; 'ControlNet 1.1' as controlnet_aux (no hands)."),
            ],
            outputs=[
                BodyMasksType.Output(display_name="body_masks", tooltip="All regions, for HieraFash Attribute Edit."),
                io.Image.Output(display_name="pose_image", tooltip="The pose in OpenPose colours, for a ControlNet."),
                io.Mask.Output(display_name="length_mask", tooltip="Clothing-length region."),
                io.Mask.Output(display_name="sleeves_mask",
                               tooltip="Sleeve region, both arms (sleeve length and sleeve type)."),
                io.Mask.Output(display_name="collar_mask", tooltip="Collar / neckline region."),
                io.Mask.Output(display_name="hem_mask", tooltip="Hem region."),
                POSE_KEYPOINT.Output(display_name="pose_keypoint",
                                     tooltip="The chosen person per image, in pixels of the canvas."),
                io.String.Output(display_name="report",
                                 tooltip="Coordinate space per frame and every estimate or fallback used."),
            ],
        )

    @classmethod
    def execute(cls, preset, width, height, category, person, grow=DEFAULT_GROW, feather=0.0, coordinates="auto",
                missing_keypoints="estimate", external_mode="union", pose_keypoint=None, image=None, design=None,
                external_mask=None, current_length=UNKNOWN, render_style=OFFICIAL_STYLE) -> io.NodeOutput:
        with node_errors(BUILDER, "pose_keypoint" if pose_keypoint is not None else "preset"):
            source = pose_keypoint if pose_keypoint is not None else load_pose_preset(preset)
            frames = read_pose_keypoint(source, person, coordinates)
        images = None
        if image is not None:
            images, height, width = image.shape[:3]
        current = None if current_length == UNKNOWN else current_length
        settings = MaskSettings(category, current, grow, feather, missing_keypoints)
        with node_errors(BUILDER, "pose_keypoint"):
            built = build_body_masks(frames, (width, height), design, external_mask, external_mode,
                                     settings=settings, images=images)
            pose_image = render_pose(built.frames, render_style)
        by_kind = built.body_masks.by_kind
        backdrop = image[..., :3] if image is not None else pose_image
        overlay = overlay_regions(backdrop, {k: by_kind[k] for k in ("clothing_length", "hem", "sleeve_length",
                                                                    "collar")})
        return io.NodeOutput(
            built.body_masks, pose_image, by_kind["clothing_length"], by_kind["sleeve_length"], by_kind["collar"],
            by_kind["hem"], to_pose_keypoint(built.frames), "\n".join(built.report),
            ui=ui.PreviewImage(overlay, cls=cls),
        )


POSE_BANDS = ["all steps (official code)", "attribute stages (after the concept)", "custom percent"]


class ApplyPoseControlNet(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashApplyPoseControlNet",
            display_name=APPLY_POSE,
            category=f"{CATEGORY}/pose",
            search_aliases=["pose controlnet", "pose schedule", "openpose controlnet", "body pose", "garment pose",
                            "outfit pose", "dress pose", "skeleton"],
            description=(
                "Holds the figure in the pose from Pose Mask Builder, for all steps or only some, with the pose "
                "ControlNet. It guides the positive and negative prompts alike with one shared ControlNet, so "
                "sampling stays as fast as with one. The stock Apply ControlNet (Advanced) does the work."
            ),
            inputs=[
                io.Conditioning.Input("positive", tooltip="The positive prompt, e.g. from the prompt scheduler."),
                io.Conditioning.Input("negative", tooltip="The negative prompt (what the picture should not show)."),
                io.ControlNet.Input("control_net", tooltip="A pose (OpenPose) ControlNet."),
                io.Image.Input("pose_image", tooltip="The pose render from Pose Mask Builder."),
                io.Float.Input("strength", default=1.0, min=0.0, max=10.0, step=0.01,
                               tooltip="ControlNet strength; the official model uses 1.0."),
                io.Combo.Input("band", options=POSE_BANDS, default=POSE_BANDS[0],
                               tooltip="During which steps the pose holds: all (as the official code), only once "
                                       "the attributes join (as the paper's first version), or the range below."),
                advanced(io.Float.Input, "start_percent", default=0.0, min=0.0, max=1.0, step=0.001,
                         tooltip="For 'custom percent': where the pose starts (0 = the first step)."),
                advanced(io.Float.Input, "end_percent", default=1.0, min=0.0, max=1.0, step=0.001,
                         tooltip="For 'custom percent': where the pose ends (1 = the last step)."),
                ScheduleType.Input("schedule", optional=True,
                                   tooltip="The prompt scheduler's schedule; needed for 'attribute stages'."),
                io.Vae.Input("vae", optional=True, tooltip="Only for ControlNets that need a VAE."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip="Positive with the pose ControlNet."),
                io.Conditioning.Output(display_name="negative", tooltip="Negative with the same ControlNet."),
            ],
        )

    @classmethod
    def execute(cls, positive, negative, control_net, pose_image, strength, band, start_percent=0.0,
                end_percent=1.0, schedule=None, vae=None) -> io.NodeOutput:
        if band == POSE_BANDS[0]:
            start, end = 0.0, 1.0
        elif band == POSE_BANDS[1]:
            if schedule is None:
                raise input_error(APPLY_POSE, "schedule", "the 'attribute stages' band needs the schedule: "
                                                          "connect the scheduler's schedule output")
            start, end = schedule.cuts[0], 1.0
        else:
            if not start_percent < end_percent:
                raise input_error(APPLY_POSE, "end_percent", f"the band {start_percent}-{end_percent} is empty: "
                                                             "end_percent must be above start_percent")
            start, end = start_percent, end_percent
        positive, negative = comfy_nodes.ControlNetApplyAdvanced().apply_controlnet(
            positive, negative, control_net, pose_image, strength, start, end, vae=vae)
        return io.NodeOutput(positive, negative)


NODES = [PoseMaskBuilder, ApplyPoseControlNet]
