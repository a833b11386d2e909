"""The synthetic benchmark's small model: built here, trained by `hierafash train --mode base`, loaded by stock ComfyUI.

    python bench/quality_model.py build FOLDER            a diffusers folder of seeded, untrained models
    python bench/quality_model.py to-comfy FOLDER OUT     (inside the ComfyUI tree) FOLDER as one checkpoint
    python bench/quality_model.py compare FOLDER CKPT OUT.json   (inside the ComfyUI tree) ComfyUI vs diffusers

What stock ComfyUI detects fixes most of the shapes (its CheckpointLoaderSimple has no "tiny" family):
- UNet: SD 1.5 detection needs 320 model channels and context 768, so the UNet is the comfy tier's tiny_sd15
  trunk (one resolution level, one res block, one transformer per block: 25.8 M parameters). SD 1.5 rather
  than SD 2.x because ComfyUI builds SD 2.x's text encoder as OpenCLIP-H (24 x 1024), three times CLIP-L's
  cost per prompt on this CPU; the UNet is the same size either way.
- Text encoder: ComfyUI always builds the full CLIP-L (12 layers). Ours has one real, seeded random layer; the
  other eleven have zero output projections, so each is exactly the identity in the residual stream. Training
  runs the one-layer model (12 x cheaper per caption); the checkpoint carries the twelve, with equal outputs.
  Frozen and random, as a featurizer of the caption's words: nothing here is CLIP's pretrained meaning.
- VAE: a TAESD (what ComfyUI detects in a checkpoint's first_stage_model) whose weights are set, not learned:
  the encoder is an exact 8 x 8 box average of the colour, the decoder upsamples it (nearest, then a [1 2 1]
  smoothing per doubling). Training a TAESD costs ~5 s per batch here, so a learned one was out of reach; this
  one makes the "latent" the figure's colours at 1/8 size, and caps what any model can draw: the benchmark
  measures that cap (the oracles on round-tripped ground truth) beside the model's own scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

LATENT_GAIN = 0.5  # latent = GAIN * (colour - CENTRE): small, so the TAESD decoder's tanh clamp stays ~linear
LATENT_CENTRE = 0.9  # about the figures' mean colour (mostly white background)
SCALING_FACTOR = 10.0  # diffusers side: x SCALING gives the UNet roughly unit-variance latents on the figures
SD15_LATENT_SCALE = 0.18215  # ComfyUI's SD 1.5 latent format multiplies by this; vae_scale makes the two agree
UNET_CONFIG = dict(  # ComfyUI's UNetModel config of the same trunk (what to-comfy maps the keys with)
    image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[1], channel_mult=[1],
    transformer_depth=[1], transformer_depth_output=[1, 1], transformer_depth_middle=1, num_heads=8,
    num_head_channels=-1, context_dim=768, use_spatial_transformer=True, use_linear_in_transformer=False,
    legacy=False, adm_in_channels=None, use_checkpoint=False, use_temporal_resblock=False,
    use_temporal_attention=False)
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
              max_position_embeddings=77, hidden_act="quick_gelu", bos_token_id=49406, eos_token_id=49407,
              pad_token_id=49407, projection_dim=768)
CLIP_L_LAYERS = 12


def _centre_tap(conv: torch.nn.Conv2d, pairs, value) -> None:
    for out_c, in_c in pairs:
        conv.weight[out_c, in_c, 1, 1] = value


def set_box_vae(vae) -> None:
    """diffusers AutoencoderTiny weights: encoder = 8x8 box mean of 'ink' (1 - colour), decoder = its upsampling.

    Colours travel as ink so that white is 0: the convs' zero padding then reads as white background.
    """
    rgb = [(c, c) for c in range(3)]
    smooth = torch.tensor([1.0, 2.0, 1.0])
    smooth = torch.outer(smooth, smooth) / 16
    with torch.no_grad():
        for p in vae.parameters():
            p.zero_()
        enc, dec = list(vae.encoder.layers), list(vae.decoder.layers)
        _centre_tap(enc[0], rgb, -1.0)  # ink = 1 - colour (the encoder sees colour in [0, 1])
        enc[0].bias[:3] = 1.0
        for layer in enc[1:-1]:
            if isinstance(layer, torch.nn.Conv2d):  # stride 2: the mean of the 2x2 cell at taps (1..2, 1..2)
                for c in range(3):
                    layer.weight[c, c, 1:, 1:] = 0.25
        _centre_tap(enc[-1], rgb, -LATENT_GAIN)  # latent = GAIN * (colour - CENTRE) = GAIN * (1 - CENTRE - ink)
        enc[-1].bias[:3] = LATENT_GAIN * (1 - LATENT_CENTRE)
        _centre_tap(dec[0], rgb, -1 / LATENT_GAIN)  # back to ink
        dec[0].bias[:3] = 1 - LATENT_CENTRE
        for layer in dec[2:-1]:
            if isinstance(layer, torch.nn.Conv2d):  # after each nearest doubling: smooth
                for c in range(3):
                    layer.weight[c, c] = smooth
        _centre_tap(dec[-1], rgb, -1.0)  # colour = 1 - ink
        dec[-1].bias[:3] = 1.0
    # the blocks stay identities: their convs are zero, so each is ReLU(0 + x) = x on the non-negative ink


def build(folder: Path, seed: int = 0) -> Path:
    """A diffusers folder (unet, vae, text_encoder, scheduler, tokenizer) of seeded, untrained models."""
    from diffusers import AutoencoderTiny, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from hierafash_train.models import default_tokenizer_dir, save_base_folder

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=24, block_out_channels=(320,), layers_per_block=1, down_block_types=("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",), cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderTiny(latent_channels=4, scaling_factor=SCALING_FACTOR)
    set_box_vae(vae)
    text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_L, num_hidden_layers=1))
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, prediction_type="epsilon", clip_sample=False)
    return save_base_folder(folder, {"unet": unet, "vae": vae, "text_encoder": text_encoder, "scheduler": scheduler},
                            default_tokenizer_dir())


def comfy_state(folder: Path) -> dict[str, torch.Tensor]:
    """The diffusers folder as one ldm-layout state dict ComfyUI's CheckpointLoaderSimple reads (needs comfy)."""
    import comfy.utils
    from safetensors.torch import load_file

    unet = load_file(folder / "unet" / "diffusion_pytorch_model.safetensors")
    to_ldm = comfy.utils.unet_to_diffusers(UNET_CONFIG)
    state = {f"model.diffusion_model.{to_ldm[k]}": v for k, v in unet.items()}
    assert len(state) == len(unet), "a UNet key has no ldm counterpart"
    vae = load_file(folder / "vae" / "diffusion_pytorch_model.safetensors")
    for key, value in vae.items():
        part, _, rest = key.partition(".layers.")
        index, _, name = rest.partition(".")
        index = int(index) + (1 if part == "decoder" else 0)  # ComfyUI's decoder starts with its Clamp module
        state[f"first_stage_model.taesd_{part}.{index}.{name}"] = value
    scaling = json.loads((folder / "vae" / "config.json").read_text())["scaling_factor"]
    state["first_stage_model.vae_scale"] = torch.tensor(SD15_LATENT_SCALE / scaling)
    state["first_stage_model.vae_shift"] = torch.tensor(0.0)
    text = {k.removeprefix("text_model."): v for k, v in
            load_file(folder / "text_encoder" / "model.safetensors").items()}  # transformers 5 drops the prefix
    prefix = "cond_stage_model.transformer.text_model."
    for key, value in text.items():
        state[prefix + key] = value
    for k in range(1, CLIP_L_LAYERS):  # identity layers: layer norms as the first, every other weight zero
        for key, value in text.items():
            if key.startswith("encoder.layers.0."):
                rest = key.removeprefix("encoder.layers.0.")
                copy = value.clone() if "layer_norm" in rest else torch.zeros_like(value)
                state[f"{prefix}encoder.layers.{k}.{rest}"] = copy
    state["cond_stage_model.transformer.text_projection.weight"] = torch.eye(CLIP_L["hidden_size"])  # unused by SD
    state["cond_stage_model.logit_scale"] = torch.tensor(4.6052)  # CLIP's log(100); unused by SD
    return {k: v.contiguous() for k, v in state.items()}


def to_comfy(folder: Path, out: Path) -> Path:
    """Write FOLDER as a single-file checkpoint (fp32) for ComfyUI's checkpoints folder."""
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(comfy_state(folder), str(out))
    return out


PARITY_TEXT = "Dress, Elegant, Party, Tall, Crisp Feeling, Long Dress"


def compare(folder: Path, checkpoint: Path, text: str = PARITY_TEXT) -> dict:
    """What ComfyUI's checkpoint loader builds from CHECKPOINT against the diffusers FOLDER (needs comfy): model
    classes, and the largest difference of the text encoding, the UNet's prediction and the VAE's round trip."""
    import comfy.sd

    from hierafash_train import models

    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(checkpoint), output_vae=True, output_clip=True)
    ours = models.load_base(folder)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        theirs_text = clip.encode_from_tokens(clip.tokenize(text)).float()
        ids = ours.tokenizer([text], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        ours_text = ours.text_encoder(ids.input_ids).last_hidden_state
        x = torch.randn(1, 4, 24, 16, generator=generator)
        t = torch.tensor([500.0])
        theirs_eps = model.model.diffusion_model(x, t, context=ours_text)
        ours_eps = ours.unet(x, t, encoder_hidden_states=ours_text).sample
        image = torch.rand(1, 192, 128, 3, generator=generator)
        theirs_latent = vae.encode(image) * SD15_LATENT_SCALE  # what ComfyUI's SD 1.5 latent format feeds the UNet
        ours_latent = models.encode_latents(ours.vae, image.permute(0, 3, 1, 2) * 2 - 1, generator)
        theirs_image = vae.decode(vae.encode(image))
        ours_image = ((ours.vae.decode(ours_latent / ours.vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)
    return {"model": type(model.model.model_config).__name__, "vae": type(vae.first_stage_model).__name__,
            "text_max_diff": float((theirs_text - ours_text).abs().max()),
            "text_max_abs": float(ours_text.abs().max()),
            "unet_max_diff": float((theirs_eps - ours_eps).abs().max()), "unet_max_abs": float(ours_eps.abs().max()),
            "latent_max_diff": float((theirs_latent - ours_latent).abs().max()),
            "image_max_diff": float((theirs_image - ours_image.permute(0, 2, 3, 1)).abs().max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("folder", type=Path)
    b.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("to-comfy")
    c.add_argument("folder", type=Path)
    c.add_argument("out", type=Path)
    m = sub.add_parser("compare")
    m.add_argument("folder", type=Path)
    m.add_argument("checkpoint", type=Path)
    m.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "build":
        print(build(args.folder, args.seed))
        return 0
    sys.path.insert(0, os.getcwd())
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management is imported
    if args.command == "to-comfy":
        print(to_comfy(args.folder, args.out))
    else:
        args.out.write_text(json.dumps(compare(args.folder, args.checkpoint), indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
