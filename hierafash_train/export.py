"""Weights in the layouts stock ComfyUI loads: the ControlNet in the ldm layout (`control_model.*`, which
ControlNetLoader reads at any size; a tiny ControlNet in diffusers keys makes ComfyUI raise TypeError), and a
UNet LoRA in the kohya layout (`lora_unet_*`, which LoraLoader maps). The ControlNet map works both ways,
so a ControlNet exported here, or the pack's converted pose ControlNet, can be trained further.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

LDM_PREFIX = "control_model."
RESNET_NAMES = {"norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "time_emb_proj.": "emb_layers.1.",
                "norm2.": "out_layers.0.", "conv2.": "out_layers.3.", "conv_shortcut.": "skip_connection."}


def _module_map(config) -> dict[str, tuple[str, bool]]:
    """diffusers module prefix -> (ldm module prefix, is a resnet), for a ControlNet with this config."""
    per_block = config.layers_per_block
    blocks = len(config.block_out_channels)
    hint_blocks = 2 * (len(config.conditioning_embedding_out_channels) - 1)
    out: dict[str, tuple[str, bool]] = {
        "time_embedding.linear_1.": ("time_embed.0.", False),
        "time_embedding.linear_2.": ("time_embed.2.", False),
        "conv_in.": ("input_blocks.0.0.", False),
        "controlnet_cond_embedding.conv_in.": ("input_hint_block.0.", False),
        "controlnet_cond_embedding.conv_out.": (f"input_hint_block.{2 * (hint_blocks + 1)}.", False),
        "controlnet_mid_block.": ("middle_block_out.0.", False),
        "mid_block.resnets.0.": ("middle_block.0.", True),
        "mid_block.attentions.0.": ("middle_block.1.", False),
        "mid_block.resnets.1.": ("middle_block.2.", True),
    }
    for k in range(hint_blocks):
        out[f"controlnet_cond_embedding.blocks.{k}."] = (f"input_hint_block.{2 * (k + 1)}.", False)
    zero_conv = 0
    out["controlnet_down_blocks.0."] = ("zero_convs.0.0.", False)
    for i in range(blocks):
        for j in range(per_block):
            n = 1 + i * (per_block + 1) + j
            out[f"down_blocks.{i}.resnets.{j}."] = (f"input_blocks.{n}.0.", True)
            out[f"down_blocks.{i}.attentions.{j}."] = (f"input_blocks.{n}.1.", False)
            zero_conv += 1
            out[f"controlnet_down_blocks.{zero_conv}."] = (f"zero_convs.{zero_conv}.0.", False)
        if i < blocks - 1:
            n = (i + 1) * (per_block + 1)
            out[f"down_blocks.{i}.downsamplers.0.conv."] = (f"input_blocks.{n}.0.op.", False)
            zero_conv += 1
            out[f"controlnet_down_blocks.{zero_conv}."] = (f"zero_convs.{zero_conv}.0.", False)
    return out


def _rename(key: str, mapping: Mapping[str, tuple[str, bool]], inner: Mapping[str, str]) -> str:
    prefix = max((p for p in mapping if key.startswith(p)), key=len, default=None)
    if prefix is None:
        raise KeyError(f"ControlNet key {key!r} has no ldm counterpart")
    target, is_resnet = mapping[prefix]
    rest = key[len(prefix):]
    if is_resnet:
        rest = next((new + rest[len(old):] for old, new in inner.items() if rest.startswith(old)), rest)
    return target + rest


def controlnet_to_ldm(state: Mapping[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """diffusers ControlNetModel state -> ldm `control_model.*` state (same tensors)."""
    mapping = _module_map(config)
    return {LDM_PREFIX + _rename(k, mapping, RESNET_NAMES): v for k, v in state.items()}


def controlnet_from_ldm(state: Mapping[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """ldm ControlNet state (`control_model.*` or bare) -> diffusers ControlNetModel keys."""
    mapping = {ldm: (diffusers, is_resnet) for diffusers, (ldm, is_resnet) in _module_map(config).items()}
    inner = {new: old for old, new in RESNET_NAMES.items()}
    return {_rename(k.removeprefix(LDM_PREFIX), mapping, inner): v for k, v in state.items()}


def is_ldm_controlnet(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.removeprefix(LDM_PREFIX).startswith("input_hint_block.") for k in state)


def lora_to_kohya(peft_state: Mapping[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """peft UNet LoRA state (`<module>.lora_A.weight`, `.lora_B.weight`) -> kohya `lora_unet_<module>.lora_down`."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in peft_state.items():
        module, _, kind = key.rpartition(".lora_")
        name = "lora_unet_" + module.removeprefix("unet.").replace(".", "_")
        if kind == "A.weight":
            out[f"{name}.lora_down.weight"] = tensor
            out[f"{name}.alpha"] = torch.tensor(float(alpha))
        elif kind == "B.weight":
            out[f"{name}.lora_up.weight"] = tensor
        else:
            raise KeyError(f"LoRA key {key!r} is not a lora_A/lora_B weight")
    return out
