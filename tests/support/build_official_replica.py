"""Build a small, seeded replica of the official `hfd_100epochs.ckpt`: same key layout, same pickled Lightning
wrapper, shrunk where ComfyUI's detection allows.

Runs inside the pinned ComfyUI (cwd = the ComfyUI tree), whose own modules give the exact key layouts:
    python build_official_replica.py --out PATH.ckpt

- `model.diffusion_model.*`: an SD 2.x UNet (context 1024, linear transformer projections, 64-channel heads),
  which ComfyUI detects as SD20. Detection fixes model_channels at 320; the rest is shrunk to three levels of
  three res blocks at channel multiplier 1. That keeps SD's 12 output blocks, so that
  `output_blocks.11.1.transformer_blocks.0.norm1.bias` exists, the weight ComfyUI reads to guess v-prediction.
  Its spread is set above ComfyUI's threshold: unpatched ComfyUI samples this replica as v, and only the eps
  patch can make it sample as ε. The final convolution is zero, as LDM initialises it: the UNet then predicts
  exactly 0, so ε-sampling leaves the initial noise unchanged while v-sampling shrinks it, which tests measure.
- `control_model.*`: a ControlNet of the same trunk (lllyasviel cldm layout, hint_channels 3).
- `first_stage_model.*`: the SD KL VAE, full size (ComfyUI builds it from a fixed config).
- `cond_stage_model.model.*`: the OpenCLIP ViT-H text encoder in open_clip key layout, full size (ComfyUI
  builds SD 2.x's text encoder from a fixed config), produced by ComfyUI's own SD 2.x saving conversion.
- the LDM noise-schedule buffers and training-only keys (`logvar`, `model_ema.*`): a superset of what the
  release can contain, to exercise the converter's dropping.
All weights fp16 (the release is fp32; the converter keeps dtypes), wrapped in a Lightning 1.5-style
checkpoint with epoch, global step, callback and optimizer states, saved with torch.save.
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.getcwd())

import comfy.cli_args  # noqa: E402
import torch  # noqa: E402

comfy.cli_args.args.cpu = True  # before comfy.model_management is imported

import comfy.cldm.cldm  # noqa: E402
import comfy.ops  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.text_encoders.sd2_clip  # noqa: E402
from comfy.ldm.models.autoencoder import AutoencoderKL  # noqa: E402
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel  # noqa: E402

# Three levels of three res blocks: 12 input and 12 output blocks, as in SD, with most of them at low resolution.
UNET_CONFIG = dict(
    image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[3, 3, 3], channel_mult=[1, 1, 1],
    transformer_depth=[1] + [0] * 8,
    transformer_depth_output=[1] + [0] * 11,  # listed from output_blocks.11 down to output_blocks.0
    transformer_depth_middle=1, num_heads=-1, num_head_channels=64, context_dim=1024, use_spatial_transformer=True,
    use_linear_in_transformer=True, legacy=False, adm_in_channels=None, use_checkpoint=False,
    use_temporal_resblock=False, use_temporal_attention=False,
)
VAE_CONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
              "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
V_PREDICTION_PROBE = "output_blocks.11.1.transformer_blocks.0.norm1.bias"


class Randomiser:
    """Seeded pseudo-random weights, fast: each tensor is a seeded window of one random pool, repeated as needed
    (drawing ~0.5 G independent normals with the CPU generator, in fp32 then cast, takes about a minute here)."""

    def __init__(self, seed: int, std: float, dtype: torch.dtype, pool_size: int = 1 << 22):
        self.gen = torch.Generator().manual_seed(seed)
        pool = (torch.randn(pool_size, generator=self.gen) * std).to(dtype)
        self.pool = torch.cat([pool, pool])  # any window of pool_size values is a plain slice

    def sample(self, shape) -> torch.Tensor:
        count, size = math.prod(shape), len(self.pool) // 2
        start = int(torch.randint(size, (1,), generator=self.gen))
        window = self.pool[start:start + size]
        return (window[:count] if count <= size else window.repeat(-(-count // size))[:count]).view(shape)

    def fill(self, module):
        with torch.no_grad():
            for name, p in module.named_parameters():
                if p.ndim >= 2:
                    p.copy_(self.sample(p.shape))
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    p.fill_(1.0)


def prefixed(prefix, state, dtype):
    return {prefix + k: v.to(dtype).contiguous() for k, v in state.items()}


def sd_schedule_buffers():
    """LDM's registered noise schedule for SD's scaled-linear betas (a subset of the buffers it keeps)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    return {"betas": betas, "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]]),
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(), "sqrt_one_minus_alphas_cumprod": (1 - alphas_cumprod).sqrt()}


def build_state_dict(rand: Randomiser, dtype):
    ops = comfy.ops.disable_weight_init
    unet = UNetModel(**UNET_CONFIG, dtype=dtype, device="cpu", operations=ops)
    rand.fill(unet)
    with torch.no_grad():
        unet.out[2].weight.zero_()
        unet.out[2].bias.zero_()
        probe = unet.get_parameter(V_PREDICTION_PROBE)
        probe.copy_(rand.sample(probe.shape) * 10)  # spread ~0.2, above ComfyUI's 0.09 v-prediction threshold

    cn_config = {k: v for k, v in UNET_CONFIG.items() if k not in ("out_channels", "transformer_depth_output")}
    controlnet = comfy.cldm.cldm.ControlNet(hint_channels=3, **cn_config, dtype=dtype, device="cpu", operations=ops)
    rand.fill(controlnet)

    vae = AutoencoderKL(ddconfig=VAE_CONFIG, embed_dim=4).to(dtype)
    rand.fill(vae)

    clip = comfy.text_encoders.sd2_clip.SD2ClipModel(device="cpu", dtype=dtype,
                                                     model_options={"custom_operations": ops})
    rand.fill(clip)
    sd20 = comfy.supported_models.SD20({"in_channels": 4})
    text_encoder = sd20.process_clip_state_dict_for_saving(clip.state_dict())  # -> cond_stage_model.model.*

    return {
        **prefixed("model.diffusion_model.", unet.state_dict(), dtype),
        **prefixed("control_model.", controlnet.state_dict(), dtype),
        **prefixed("first_stage_model.", vae.state_dict(), dtype),
        **prefixed("", text_encoder, dtype),
        **prefixed("", sd_schedule_buffers(), torch.float32),
        "logvar": torch.zeros(1000),
        "model_ema.decay": torch.tensor(0.9999),
        "model_ema.num_updates": torch.tensor(0, dtype=torch.int32),
    }


def lightning_checkpoint(state_dict):
    """The wrapper Lightning 1.5's ModelCheckpoint writes around the weights (save_weights_only=False)."""
    callback_key = ("ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 50000, "
                    "'every_n_epochs': None, 'train_time_interval': None, 'save_on_train_epoch_end': True}")
    return {
        "epoch": 99,
        "global_step": 460000,
        "pytorch-lightning_version": "1.5.0",
        "state_dict": state_dict,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 100, "completed": 99}}}},
        "callbacks": {callback_key: {"monitor": None, "best_model_score": None, "best_model_path": "",
                                     "current_score": None, "dirpath": "./hiera_logs", "best_k_models": {},
                                     "kth_best_model_path": "", "kth_value": torch.tensor(float("inf")),
                                     "last_model_path": "./hiera_logs/last.ckpt"}},
        "optimizer_states": [{"state": {0: {"step": 460000, "exp_avg": torch.zeros(8), "exp_avg_sq": torch.zeros(8)}},
                              "param_groups": [{"lr": 1e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01,
                                                "amsgrad": False, "params": [0]}]}],
        "lr_schedulers": [],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    dtype = torch.float16
    torch.save(lightning_checkpoint(build_state_dict(Randomiser(a.seed, 0.02, dtype), dtype)), a.out)


if __name__ == "__main__":
    main()
