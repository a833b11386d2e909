"""Build tiny, seeded, randomly initialised models that ComfyUI's stock loaders accept.

Runs inside the pinned ComfyUI (cwd = the ComfyUI tree):
    python build_tiny_models.py --out MODELS_DIR

- checkpoints/tiny_sd15.safetensors: detected as SD1.5 (UNet with model_channels 320 and
  context 768, as detection requires, but a single resolution level), a TAESD as the VAE, and a
  full-size CLIP-L (ComfyUI builds SD1.5's text encoder from a fixed config).
- controlnet/tiny_pose_cn.safetensors: a ControlNet with the same trunk, ldm `control_model.` keys.
"""

import argparse
import os
import sys

sys.path.insert(0, os.getcwd())

import comfy.cli_args  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402

comfy.cli_args.args.cpu = True  # before comfy.model_management is imported

import comfy.cldm.cldm  # noqa: E402
import comfy.ops  # noqa: E402
import comfy.sd1_clip  # noqa: E402
import comfy.taesd.taesd  # noqa: E402
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel  # noqa: E402

UNET_CONFIG = dict(
    image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[1], channel_mult=[1],
    transformer_depth=[1], transformer_depth_output=[1, 1], transformer_depth_middle=1, num_heads=8,
    num_head_channels=-1, context_dim=768, use_spatial_transformer=True, use_linear_in_transformer=False,
    legacy=False, adm_in_channels=None, use_checkpoint=False, use_temporal_resblock=False,
    use_temporal_attention=False,
)


def randomise(module, gen, std=0.02):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)


def prefixed(prefix, module, dtype, skip=()):
    return {prefix + k: v.to(dtype).contiguous() for k, v in module.state_dict().items()
            if not any(s in k for s in skip)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    dtype = torch.float16
    gen = torch.Generator().manual_seed(a.seed)
    ops = comfy.ops.disable_weight_init

    unet = UNetModel(**UNET_CONFIG, dtype=torch.float32, device="cpu", operations=ops)
    randomise(unet, gen)
    taesd = comfy.taesd.taesd.TAESD(latent_channels=4)
    randomise(taesd, gen, std=0.05)
    with torch.no_grad():
        taesd.vae_scale.fill_(1.0)
        taesd.vae_shift.fill_(0.0)
    clip = comfy.sd1_clip.SDClipModel(device="cpu", dtype=torch.float32, model_options={"custom_operations": ops})
    randomise(clip.transformer, gen)
    state = {
        **prefixed("model.diffusion_model.", unet, dtype),
        **prefixed("first_stage_model.", taesd, dtype),
        **prefixed("cond_stage_model.transformer.", clip.transformer, dtype, skip=("text_projection",)),
    }
    os.makedirs(os.path.join(a.out, "checkpoints"), exist_ok=True)
    safetensors.torch.save_file(state, os.path.join(a.out, "checkpoints", "tiny_sd15.safetensors"))

    cn_config = {k: v for k, v in UNET_CONFIG.items() if k not in ("out_channels", "transformer_depth_output")}
    controlnet = comfy.cldm.cldm.ControlNet(hint_channels=3, **cn_config, dtype=torch.float32, device="cpu",
                                            operations=ops)
    randomise(controlnet, gen)
    os.makedirs(os.path.join(a.out, "controlnet"), exist_ok=True)
    safetensors.torch.save_file(prefixed("control_model.", controlnet, dtype),
                                os.path.join(a.out, "controlnet", "tiny_pose_cn.safetensors"))


if __name__ == "__main__":
    main()
