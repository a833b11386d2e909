"""CLIP image and text features for evaluation, from a local model, preprocessed as the paper's code.

The model is a `transformers.CLIPModel` read from an HF folder, or built from an OpenAI / Lightning
state dict (e.g. a fashion-tuned `.ckpt` whose keys start with `model.`). Images are resized with PIL
bicubic so the short side is 224, centre-cropped to 224 × 224 and CLIP-normalised, as clean-fid's
`img_preprocess_clip` + `CLIP_fx` (not `CLIPImageProcessor`, which gives slightly different features).
Folder features are cached on disk, keyed on the files' names, sizes and mtimes and the model's hash;
the same cache serves any `FeatureModel` (the Inception of `inception_features` too).
transformers and tqdm are the `eval` extra, imported where they are used.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from .errors import HieraFashError

CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
PREPROCESSING = "pil-bicubic-short224-centrecrop224-clipnorm/v1"  # part of the cache key
STATE_DICT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".safetensors")
PREFETCH_BATCHES = 4  # decoded batches waiting for the model
OPENAI_MARKER = "visual.conv1.weight"
OPENAI_METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")  # in jit state dicts, not weights


def list_images(folder: Path | str, input_name: str = "folder") -> list[Path]:
    """The image files of a folder, sorted by name (the pairing order of the official scripts)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HieraFashError(f"{folder} is not a folder: give the folder that holds the images", input_name)
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise HieraFashError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})", input_name)
    return images


def clip_crop(image: Image.Image) -> np.ndarray:
    """uint8 (224, 224, 3): PIL bicubic resize of the short side to 224, then a centre crop (torchvision's rounding)."""
    image = image.convert("RGB")
    width, height = image.size
    if width <= height:
        size = (CLIP_SIZE, int(CLIP_SIZE * height / width))
    else:
        size = (int(CLIP_SIZE * width / height), CLIP_SIZE)
    image = image.resize(size, Image.Resampling.BICUBIC)
    left = int(round((size[0] - CLIP_SIZE) / 2.0))
    top = int(round((size[1] - CLIP_SIZE) / 2.0))
    return np.array(image.crop((left, top, left + CLIP_SIZE, top + CLIP_SIZE)), dtype=np.uint8)


def load_clip_crop(path: Path) -> np.ndarray:
    """Read one image file and crop it for CLIP."""
    with Image.open(path) as image:
        return clip_crop(image)


def crop_batch(paths: Sequence[Path]) -> np.ndarray:
    """(B, 224, 224, 3) uint8 crops of the given files."""
    return np.stack([load_clip_crop(p) for p in paths])


def normalise(crops: np.ndarray) -> torch.Tensor:
    """(B, 224, 224, 3) uint8 -> (B, 3, 224, 224) float32, CLIP-normalised."""
    pixels = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def file_digest(paths: Sequence[Path]) -> str:
    """sha256 over the bytes of the given files, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


class FeatureModel(Protocol):
    """What the folder cache needs of a feature extractor (LocalClip, inception_features.LocalInception)."""

    kind: str  # named in errors: "CLIP", "Inception"
    preprocessing: str
    digest: str
    projection_dim: int

    def load_batch(self, paths: Sequence[Path]) -> np.ndarray: ...

    def encode_crops(self, crops: np.ndarray) -> np.ndarray: ...


@dataclass
class LocalClip:
    model: object  # transformers.CLIPModel, eval mode, on `device`
    tokenizer: object | None  # transformers.CLIPTokenizer; needed only for text (CLIP-S)
    digest: str  # sha256 of the weight (and config) files: identifies the model in caches and reports
    source: str
    device: torch.device
    kind = "CLIP"
    preprocessing = PREPROCESSING

    @property
    def projection_dim(self) -> int:
        return int(self.model.visual_projection.out_features)

    @property
    def logit_scale(self) -> float:
        """exp(logit_scale): the CLIP-S multiplier (100 for OpenAI CLIP, 14.29 for a fresh one)."""
        return float(self.model.logit_scale.detach().exp())

    def load_batch(self, paths: Sequence[Path]) -> np.ndarray:
        """(B, 224, 224, 3) uint8 crops of the given files."""
        return crop_batch(paths)

    @torch.no_grad()
    def encode_crops(self, crops: np.ndarray) -> np.ndarray:
        """Projected image embeddings (not normalised, as clean-fid's CLIP features) of uint8 crops."""
        pixels = normalise(crops).to(self.device)
        pooled = self.model.vision_model(pixel_values=pixels).pooler_output
        return self.model.visual_projection(pooled).float().cpu().numpy()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Projected text embeddings, truncated to the model's context (77 tokens) as clip.tokenize(truncate=True)."""
        if self.tokenizer is None:
            raise HieraFashError(f"the CLIP at {self.source} has no tokenizer: give a folder holding vocab.json and "
                                 "merges.txt (ComfyUI's comfy/sd1_tokenizer is the OpenAI CLIP vocabulary)",
                                 "tokenizer")
        tokens = self.tokenizer(list(texts), padding="max_length", truncation=True, return_tensors="pt",
                                max_length=self.model.config.text_config.max_position_embeddings)
        output = self.model.text_model(input_ids=tokens["input_ids"].to(self.device),
                                       attention_mask=tokens["attention_mask"].to(self.device))
        return self.model.text_projection(output.pooler_output).float().cpu().numpy()


def pick_device(device: str | None = None) -> torch.device:
    """The requested device, else CUDA when torch sees one, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_clip(path: Path | str, tokenizer: Path | str | None = None, device: str | None = None) -> LocalClip:
    """A CLIP from an HF folder or an OpenAI / Lightning state-dict file, with a tokenizer when one is at hand."""
    from transformers import CLIPModel, CLIPTokenizer

    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise HieraFashError(f"{path} has no config.json: give an HF CLIP folder or a state-dict file", "clip")
        model = CLIPModel.from_pretrained(path, local_files_only=True)
        weights = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin"))
        digest = file_digest([path / "config.json", *weights])
        tokenizer = tokenizer or (path if (path / "vocab.json").is_file() else None)
    elif path.is_file() and path.suffix in STATE_DICT_SUFFIXES:
        model = clip_from_openai_state_dict(read_state_dict(path))
        digest = file_digest([path])
    else:
        raise HieraFashError(f"{path} is neither an HF CLIP folder nor a state-dict file "
                             f"({', '.join(STATE_DICT_SUFFIXES)})", "clip")
    target = pick_device(device)
    model = model.float().eval().to(target)
    loaded_tokenizer = None
    if tokenizer is not None:
        if not (Path(tokenizer) / "vocab.json").is_file():
            raise HieraFashError(f"{tokenizer} holds no vocab.json / merges.txt of a CLIP tokenizer", "tokenizer")
        loaded_tokenizer = CLIPTokenizer.from_pretrained(tokenizer, local_files_only=True)
    return LocalClip(model, loaded_tokenizer, digest, str(path), target)


def read_state_dict(path: Path, input_name: str = "clip") -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file (Lightning's `state_dict` entry if present), read without running code."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors come in many types; all mean the same to the user
        raise HieraFashError(f"cannot read {path} as a weights-only checkpoint ({exc})", input_name) from exc
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise HieraFashError(f"{path} holds a {type(loaded).__name__}, not a state dict", input_name)
    return {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}


def strip_prefix(state_dict: dict[str, torch.Tensor], marker: str = OPENAI_MARKER) -> dict[str, torch.Tensor]:
    """The keys under the prefix that precedes `marker` (e.g. Lightning's `model.`), with that prefix removed."""
    prefixes = [key[: -len(marker)] for key in state_dict if key.endswith(marker)]
    if not prefixes:
        raise HieraFashError(f"no '{marker}' key: this is not an OpenAI-layout CLIP state dict "
                             "(an HF CLIP must be given as its folder, with config.json)", "clip")
    prefix = min(prefixes, key=len)
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}


def _count_blocks(state_dict: dict, tower: str) -> int:
    pattern = re.compile(rf"^{re.escape(tower)}transformer\.resblocks\.(\d+)\.")
    return 1 + max(int(m.group(1)) for key in state_dict if (m := pattern.match(key)))


def _tower_config(state_dict: dict, tower: str, width: int) -> dict:
    return {
        "hidden_size": width,
        "num_hidden_layers": _count_blocks(state_dict, tower),
        "num_attention_heads": width // 64,  # OpenAI's rule for both towers
        "intermediate_size": int(state_dict[f"{tower}transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
        "hidden_act": "quick_gelu",
    }


def _copy_blocks(state_dict: dict, tower: str, target: str, layers: int) -> dict:
    out = {}
    for i in range(layers):
        src, dst = f"{tower}transformer.resblocks.{i}.", f"{target}.encoder.layers.{i}."
        for kind in ("weight", "bias"):
            q, k, v = state_dict[f"{src}attn.in_proj_{kind}"].chunk(3, dim=0)  # nn.MultiheadAttention's packing
            out.update({f"{dst}self_attn.q_proj.{kind}": q, f"{dst}self_attn.k_proj.{kind}": k,
                        f"{dst}self_attn.v_proj.{kind}": v,
                        f"{dst}self_attn.out_proj.{kind}": state_dict[f"{src}attn.out_proj.{kind}"],
                        f"{dst}layer_norm1.{kind}": state_dict[f"{src}ln_1.{kind}"],
                        f"{dst}layer_norm2.{kind}": state_dict[f"{src}ln_2.{kind}"],
                        f"{dst}mlp.fc1.{kind}": state_dict[f"{src}mlp.c_fc.{kind}"],
                        f"{dst}mlp.fc2.{kind}": state_dict[f"{src}mlp.c_proj.{kind}"]})
    return out


def clip_from_openai_state_dict(state_dict: dict[str, torch.Tensor]):
    """A transformers CLIPModel holding the weights of an OpenAI-layout ViT CLIP state dict (prefix stripped here)."""
    from transformers import CLIPConfig, CLIPModel

    sd = strip_prefix(state_dict)
    try:
        patch_width, _, patch, _ = sd["visual.conv1.weight"].shape
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        vocab, text_width = sd["token_embedding.weight"].shape
        vision = _tower_config(sd, "visual.", int(patch_width)) | {"patch_size": int(patch),
                                                                    "image_size": int(patch * grid)}
        text = _tower_config(sd, "", int(text_width)) | {"vocab_size": int(vocab),
                                                         "max_position_embeddings":
                                                             int(sd["positional_embedding"].shape[0])}
        config = CLIPConfig(text_config=text, vision_config=vision,
                            projection_dim=int(sd["text_projection"].shape[1]))
        hf = {
            "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
            "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
            "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
            "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
            "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
            "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
            "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
            "visual_projection.weight": sd["visual.proj"].t(),  # OpenAI computes x @ proj
            "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
            "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
            "text_model.final_layer_norm.weight": sd["ln_final.weight"],
            "text_model.final_layer_norm.bias": sd["ln_final.bias"],
            "text_projection.weight": sd["text_projection"].t(),
            "logit_scale": sd["logit_scale"].reshape(()),
        }
        hf |= _copy_blocks(sd, "visual.", "vision_model", vision["num_hidden_layers"])
        hf |= _copy_blocks(sd, "", "text_model", text["num_hidden_layers"])
    except (KeyError, ValueError) as exc:
        raise HieraFashError(f"the OpenAI-layout CLIP state dict lacks or misshapes {exc}", "clip") from exc
    model = CLIPModel(config)
    missing, unexpected = model.load_state_dict(hf, strict=False)
    missing = [key for key in missing if not key.endswith("position_ids")]
    leftover = set(sd) - set(OPENAI_METADATA_KEYS) - _used_openai_keys(sd)
    if missing or leftover:
        raise HieraFashError(f"the CLIP state dict does not fit a ViT CLIP: missing {missing[:5]}, "
                             f"not understood {sorted(leftover)[:5]}", "clip")
    return model


def _used_openai_keys(sd: dict) -> set[str]:
    """The OpenAI keys the conversion reads (a ViT CLIP has no others)."""
    blocks = re.compile(r"^(visual\.)?transformer\.resblocks\.\d+\.(attn\.(in_proj|out_proj)|ln_[12]|mlp\.c_(fc|proj))")
    singles = {"visual.class_embedding", "visual.conv1.weight", "visual.positional_embedding", "visual.proj",
               "visual.ln_pre.weight", "visual.ln_pre.bias", "visual.ln_post.weight", "visual.ln_post.bias",
               "token_embedding.weight", "positional_embedding", "ln_final.weight", "ln_final.bias",
               "text_projection", "logit_scale"}
    return {key for key in sd if key in singles or blocks.match(key)}


def image_features(model: FeatureModel, paths: Sequence[Path], batch_size: int = 32, workers: int = 4,
                   progress: Callable | None = None) -> np.ndarray:
    """(n, projection_dim) float32 features; decoding runs in threads ahead of the batched forward."""
    if batch_size < 1:
        raise HieraFashError(f"batch size must be at least 1, got {batch_size}", "batch_size")
    batches = [paths[i:i + batch_size] for i in range(0, len(paths), batch_size)]
    out = []

    def encode_oldest():
        crops = pending.popleft().result()
        out.append(model.encode_crops(crops))
        if progress is not None:
            progress(len(crops))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending = deque()
        for batch in batches:
            pending.append(pool.submit(model.load_batch, batch))
            if len(pending) > PREFETCH_BATCHES:  # bounded: a 5,000-image folder never sits in memory at once
                encode_oldest()
        while pending:
            encode_oldest()
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.projection_dim), np.float32)


def folder_key(model: FeatureModel, paths: Sequence[Path]) -> str:
    """Cache key: the model's hash, the preprocessing, and each file's name, size and mtime."""
    listing = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    text = json.dumps([model.preprocessing, model.digest, listing])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class FolderFeatures:
    names: tuple[str, ...]
    features: np.ndarray  # (n, width) float32
    cache_file: Path | None
    from_cache: bool


def read_features_file(path: Path, model: FeatureModel, input_name: str) -> FolderFeatures:
    """Features saved by `folder_features`, checked against the model now in use."""
    with np.load(path, allow_pickle=False) as data:
        features, names, digest = data["features"], tuple(str(n) for n in data["names"]), str(data["model_digest"])
    if features.ndim != 2 or features.shape[1] != model.projection_dim:
        raise HieraFashError(f"the features in {path} have width {features.shape[-1]} but the {model.kind} projects to "
                             f"{model.projection_dim}: they come from another model; delete {path} to recompute "
                             f"them, or pass the {model.kind} they were computed with", input_name)
    if digest != model.digest:
        raise HieraFashError(f"the features in {path} were computed with {model.kind} {digest[:12]}, not "
                             f"{model.digest[:12]}: delete {path} to recompute them", input_name)
    return FolderFeatures(names, features, path, True)


def folder_features(model: FeatureModel, paths: Sequence[Path], cache_dir: Path | None, input_name: str = "folder",
                    batch_size: int = 32, progress: Callable | None = None) -> FolderFeatures:
    """Features of the given images, read from `cache_dir` when the same files and model were seen before."""
    names = tuple(p.name for p in paths)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{paths[0].parent.name}-{folder_key(model, paths)[:20]}.npz"
        if cache_file.is_file():
            return read_features_file(cache_file, model, input_name)
    features = image_features(model, paths, batch_size=batch_size, progress=progress)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(".partial.npz")
        np.savez(partial, features=features, names=np.array(names), model_digest=np.array(model.digest))
        partial.replace(cache_file)  # a killed run never leaves a truncated cache entry
    return FolderFeatures(names, features, cache_file, False)
