"""The official HieraFashDiff weights: read them without running pickled code, split them into two
safetensors files that ComfyUI's stock loaders accept, write those atomically and verify them.

`hfd_100epochs.ckpt` (Hugging Face `vmip-shu/HieraFashDiff`) is a pickled PyTorch Lightning checkpoint of an
LDM `ControlLDM` (method.md §2): an SD 2.x base under `model.diffusion_model.` (UNet), `first_stage_model.`
(KL VAE) and `cond_stage_model.` (OpenCLIP ViT-H text encoder), plus the trained ControlNet under
`control_model.`, with the training state (optimizer, callbacks, loops) beside the `state_dict`.

Reading: `torch.load(weights_only=True)`, torch's restricted unpickler, rebuilds only tensors, storages,
dtypes and plain containers, and imports or calls nothing else. Before it runs, the archive is checked (torch's
zip format only, every entry stored uncompressed, the pickle at most `MAX_PICKLE_BYTES`) and the pickle's
instructions are walked without building anything (`scan_pickle`): at most `MAX_PICKLE_OBJECTS` objects, no
object that expands to more (a tuple that doubles at each level costs exponential time to hash or print) and
nesting at most `MAX_PICKLE_DEPTH` deep. After it, every tensor must be dense and covered by its own storage
(no expanded, stride-0 tensor that would write more bytes than the file holds), and all tensors together
must not exceed the file's size. So a crafted file can cost at most about its own size in memory and disk.

Lightning also pickles some metadata that the restricted unpickler refuses: Lightning < 1.5 keys
callback states by the callback *class*, hyper-parameters sit in an `AttributeDict`, paths and numpy
scalars appear in callback states. Those few globals, by exact name, are bound through
`torch.serialization.safe_globals` to inert stand-ins defined here (`InertRecord`), so their modules are
never imported and their code never runs. Any other global is refused, naming it.

ε-prediction: HieraFashDiff predicts ε (method.md §2.1). ComfyUI 0.3.75 guesses v versus ε for SD 2.x from
one weight (`SD20.model_type`: the spread of `output_blocks.11.1.transformer_blocks.0.norm1.bias`) and
honours no key or file metadata that could override the guess for SD 2.x; changing that weight would
change the model. So the converted file keeps the trained weights unchanged, and workflows put the stock
`ModelSamplingDiscrete` node (sampling = eps) after the checkpoint loader. `comfyui_prediction_guess`
tells what ComfyUI would pick without that node.

Writing: our own streaming safetensors writer (the format is an 8-byte length, a JSON header, then the
raw little-endian tensor bytes), so that converting a multi-gigabyte checkpoint never holds a second copy
of it in memory. Each file is written to a hidden temporary file in the target folder, fsynced, verified by
reading it back through the `safetensors` library (names, dtypes, shapes and a SHA-256 over all of them and
the bytes), and only then given its name, with the mode the umask gives. "Identical" means the same
content digest: an existing output whose recorded digest matches, and whose bytes re-hash to it, is left
alone and reported as unchanged. `overwrite` replaces only a file this converter wrote (its bytes re-hash to
the digest it records), never a user's own file, and nothing is written unless the disk has room for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import pickletools
import re
import secrets
import shutil
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

DEFAULT_STEM = "hierafashdiff"
# The released weights (one file), where they come from.
OFFICIAL_REPO = "vmip-shu/HieraFashDiff"
OFFICIAL_CKPT = "hfd_100epochs.ckpt"
OFFICIAL_CKPT_URL = f"https://huggingface.co/{OFFICIAL_REPO}/resolve/main/{OFFICIAL_CKPT}"
OFFICIAL_CKPT_PAGE = f"https://huggingface.co/{OFFICIAL_REPO}/blob/main/{OFFICIAL_CKPT}"
CHECKPOINT_SUFFIX = "_sd21.safetensors"
CONTROLNET_SUFFIX = "_pose_controlnet.safetensors"

DIGEST_KEY = "hierafashdiff.content_sha256"


class WeightsError(Exception):
    """A checkpoint could not be converted; the message names the file and what to do."""


class CheckpointReadError(WeightsError):
    """The file is missing, truncated, corrupt or not a PyTorch checkpoint."""


class UnsafeCheckpointError(WeightsError):
    """The pickle asks for something other than tensors, plain containers and known training metadata."""


class CheckpointLayoutError(WeightsError):
    """The state dict is not the ControlLDM layout we convert."""


class CheckpointLimitError(CheckpointReadError):
    """The file exceeds a limit that bounds what reading it may cost (the message names the limit)."""


class OutputExistsError(WeightsError):
    """An output file already exists with other content and may not be replaced."""


class OutputWriteError(WeightsError):
    """An output could not be written (disk full, no permission); nothing was replaced."""


class VerificationError(WeightsError):
    """A written file does not read back as what was written."""


# --- reading ------------------------------------------------------------------------------------------------


class InertRecord:
    """Stands in for one piece of pickled training metadata: keeps what the pickle passed, runs nothing."""

    source = ""  # the global it stands in for, set per stand-in class

    def __new__(cls, *args):
        record = super().__new__(cls)
        record.args = args
        record.state = None
        return record

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {self.source}{self.args!r}>"


class _InertMapping:
    """Stands in for a dict subclass (hyper-parameter containers): it unpickles as a plain dict."""

    def __new__(cls, *args):
        return {}


_METADATA_RECORDS = (
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "argparse.Namespace",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
)
_METADATA_MAPPINGS = (
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
)


def _stand_in(qualified_name: str, base: type) -> tuple[type, str]:
    return type(qualified_name.rsplit(".", 1)[1], (base,), {"source": qualified_name}), qualified_name


INERT_STAND_INS = [_stand_in(name, InertRecord) for name in _METADATA_RECORDS] + [
    _stand_in(name, _InertMapping) for name in _METADATA_MAPPINGS
]

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format: a zip with data.pkl and one record per storage
PICKLE_PROTO = b"\x80"  # torch's legacy format starts with a pickle
TRAINING_INFO_KEYS = ("epoch", "global_step", "pytorch-lightning_version")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    state_dict: dict[str, torch.Tensor]
    training_info: dict[str, int | str]  # epoch, global step, Lightning version where recorded


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


_TORCH_BOILERPLATE = ("Weights only load failed", "Check the documentation", "Please file an issue", "(1)", "(2)")


def _refusal(path: Path, exc: pickle.UnpicklingError) -> UnsafeCheckpointError:
    # torch wraps the unpickler's one-line reason in advice (including how to load the file unsafely): keep the reason.
    detail = str(exc).split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    reason = next((line for line in lines if not line.startswith(_TORCH_BOILERPLATE)), _first_line(exc))
    reason = reason.split(" Please use", 1)[0]
    named = re.search(r"GLOBAL (\S+)|unrecognized function (\S+)", reason)
    what = f"the global '{named.group(1) or named.group(2)}'" if named else "an instruction outside the safe subset"
    return UnsafeCheckpointError(
        f"{path}: refused to load it: its pickle asks for {what}, which is neither a tensor, a plain container "
        f"nor known training metadata, so loading it could run code (nothing was run; torch: {reason}). "
        "Use a .safetensors or plain state-dict release of these weights instead."
    )


MAX_PICKLE_BYTES = 16 * 2**20  # about 100 bytes per tensor: the official checkpoint's data.pkl is under 1 MiB
MAX_PICKLE_OBJECTS = 1_000_000  # about 35 per tensor: the official checkpoint needs under 200 000
MAX_PICKLE_DEPTH = 64  # a Lightning checkpoint nests about 10 deep

# What each instruction of torch's restricted unpickler pops: "mark" pops down to the last MARK.
_BUILDS = {"TUPLE": "mark", "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "REDUCE": 2, "NEWOBJ": 2, "BINPERSID": 1}
_EXTENDS = {"APPEND": 1, "APPENDS": "mark", "SETITEM": 2, "SETITEMS": "mark", "BUILD": 1}
_LEAVES = {"NONE", "NEWFALSE", "NEWTRUE", "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BININT",
           "BININT1", "BININT2", "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING", "LONG1", "GLOBAL"}


_LEAF = (1, 1, None)  # shared by every leaf without a value, so that a flood of them costs one pointer each


def _storage_itemsize(global_name) -> int | None:
    """Bytes per element of a storage class named in a pickle ("torch FloatStorage"), None if not one."""
    module, _, name = str(global_name).partition(" ")
    storage = getattr(torch, name, None) if module == "torch" and name.endswith("Storage") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # typed storages are deprecated, yet torch.save still names them
        dtype = getattr(storage, "dtype", None)
    return dtype.itemsize if isinstance(dtype, torch.dtype) else None


def scan_pickle(path: Path, data: bytes) -> dict[str, int]:
    """Walk the pickle's instructions without building anything; raise CheckpointLimitError past the limits.
    Returns the bytes each storage record must hold, as the pickle declares them.

    Each stack entry is (objects it expands to, nesting depth, literal value or None); shared (memoised)
    objects count at every use, which is what hashing, comparing or printing them costs. Instructions outside
    torch's restricted subset end the walk: torch refuses them itself, before doing anything costly.
    """
    stack: list = []
    memo: dict[int, tuple] = {}
    storages: dict[str, int] = {}
    created = 0

    def pop(count):
        if count == "mark":
            index = len(stack) - 1 - stack[::-1].index(None)
            items = stack[index + 1:]
            del stack[index:]
            return items
        items = stack[len(stack) - count:]
        if len(items) != count or None in items:
            raise IndexError("stack underflow")
        del stack[len(stack) - count:]
        return items

    def combine(parts, value=None) -> tuple:
        size, depth = 1 + sum(p[0] for p in parts), 1 + max((p[1] for p in parts), default=0)
        if size > MAX_PICKLE_OBJECTS:
            raise CheckpointLimitError(f"{path}: refused: one object in its pickle expands to more than "
                                       f"{MAX_PICKLE_OBJECTS:,} objects (the limit), counting shared ones at each "
                                       "use; reading it could take hours or all memory")
        if depth > MAX_PICKLE_DEPTH:
            raise CheckpointLimitError(f"{path}: refused: its pickle nests objects more than {MAX_PICKLE_DEPTH} "
                                       "deep (the limit); a checkpoint nests about 10 deep")
        return size, depth, value

    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name in ("PROTO", "STOP"):
                continue
            created += 1
            if created > MAX_PICKLE_OBJECTS:
                raise CheckpointLimitError(f"{path}: refused: its pickle builds more than {MAX_PICKLE_OBJECTS:,} "
                                           "objects (the limit); the official checkpoint needs under 200 000")
            if name in _LEAVES:
                stack.append(_LEAF if arg is None else (1, 1, arg))
            elif name == "MARK":
                stack.append(None)
            elif name in _BUILDS:
                parts = pop(_BUILDS[name])
                literal = tuple(p[2] for p in parts) if name.startswith("TUPLE") and len(parts) <= 5 else None
                if name == "BINPERSID" and isinstance(parts[0][2], tuple) and len(parts[0][2]) == 5:
                    # torch's zip format: ("storage", storage class, record key, location, element count)
                    _, storage_class, key, _, count = parts[0][2]
                    itemsize = _storage_itemsize(storage_class)
                    if itemsize and isinstance(count, int):
                        storages[str(key)] = count * itemsize
                stack.append(combine(parts, literal))
            elif name in _EXTENDS:
                parts = pop(_EXTENDS[name])
                stack.append(combine(pop(1) + parts))
            elif name in ("BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            else:
                return storages
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise CheckpointReadError(f"{path}: cannot read it: its pickle is truncated or corrupt ({exc}). "
                                  "Download it again.") from None
    return storages


def check_archive(path: Path) -> None:
    """Refuse anything but torch's zip format with stored entries, a bounded pickle and storage records as
    large as the pickle declares them (torch would read past a short one into the rest of the file)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            names = [entry.filename for entry in entries]
            if not entries or len(set(names)) != len(names):
                raise zipfile.BadZipFile("no entries or duplicate entry names")
            compressed = [entry.filename for entry in entries if entry.compress_type != zipfile.ZIP_STORED]
            if compressed:
                raise CheckpointLimitError(
                    f"{path}: refused: archive entry '{compressed[0]}' is compressed; torch.save stores every "
                    "entry uncompressed (the limit: stored entries only), and a compressed pickle can unpack to "
                    "many times its size")
            folder = names[0].split("/", 1)[0]  # torch reads <folder of the first entry>/data.pkl
            pickle_entry = archive.getinfo(folder + "/data.pkl")
            if pickle_entry.file_size > MAX_PICKLE_BYTES:
                raise CheckpointLimitError(
                    f"{path}: refused: its pickle (data.pkl) is {pickle_entry.file_size / 2**20:,.1f} MiB, over the "
                    f"{MAX_PICKLE_BYTES // 2**20} MiB limit; the official checkpoint's is under 1 MiB")
            data = archive.read(pickle_entry)
            for key, declared in scan_pickle(path, data).items():
                held = archive.getinfo(f"{folder}/data/{key}").file_size
                if held < declared:
                    raise CheckpointReadError(f"{path}: cannot read it: storage record data/{key} holds {held:,} "
                                              f"bytes where its pickle declares {declared:,}: the file is corrupt "
                                              "or crafted. Download it again.")
    except (CheckpointLimitError, CheckpointReadError):
        raise
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise CheckpointReadError(f"{path}: cannot read it: the file is truncated or corrupt "
                                  f"({_first_line(exc)}). Download it again.") from None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The state dict of a torch checkpoint (nested under "state_dict" or not), read without running code."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointReadError(f"{path}: cannot open it ({_first_line(exc)})") from None
    if not head:
        raise CheckpointReadError(f"{path}: the file is empty")
    if head.startswith(PICKLE_PROTO):
        raise CheckpointReadError(
            f"{path}: saved in torch's legacy (before 1.6) format, which is refused: reading it allocates every "
            "storage at the size the file declares, before anything can check it. The official checkpoint uses "
            "torch's zip format; re-save this one with a current torch on a machine you trust.")
    if not head.startswith(ZIP_MAGIC):
        raise CheckpointReadError(f"{path}: not a PyTorch checkpoint (neither torch's zip format nor a pickle)")
    check_archive(path)
    try:
        with torch.serialization.safe_globals(INERT_STAND_INS):
            # mmap: tensors stay in the file until read, so a multi-gigabyte checkpoint is not copied to memory.
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        raise _refusal(path, exc) from None
    except Exception as exc:  # whatever a corrupt file makes torch raise, it is reported as the file's fault
        raise CheckpointReadError(
            f"{path}: cannot read it: the file is truncated or corrupt ({_first_line(exc)[:300]}). Download it again."
        ) from None
    checkpoint = _unwrap(path, loaded)
    check_tensor_sizes(checkpoint, size)
    return checkpoint


def describe(value) -> str:
    """A short description of an unpickled value that never renders it (its str() can be huge or slow)."""
    if isinstance(value, str):
        return repr(value[:60] + ("..." if len(value) > 60 else ""))
    return f"a {type(value).__name__}"


def _unwrap(path: Path, loaded) -> Checkpoint:
    if not isinstance(loaded, Mapping):
        raise CheckpointLayoutError(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    info = {}
    state = loaded
    if isinstance(loaded.get("state_dict"), Mapping):  # Lightning: weights beside the training state
        state = loaded["state_dict"]
        info = {k: loaded[k] for k in TRAINING_INFO_KEYS
                if isinstance(loaded.get(k), int | str) and len(str(loaded[k])) < 100}
    odd = [f"{describe(k)} -> {describe(v)}" for k, v in state.items()
           if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if odd:
        raise CheckpointLayoutError(f"{path}: the state dict has entries that are not named tensors: "
                                    f"{'; '.join(odd[:5])}")
    return Checkpoint(path, dict(state), info)


def check_tensor_sizes(checkpoint: Checkpoint, file_size: int) -> None:
    """Every tensor dense and covered by its own storage, and all of them together no larger than the file."""
    total = 0
    for name, tensor in checkpoint.state_dict.items():
        label = f"{checkpoint.path}: tensor {describe(name)} ({tensor.dtype}, shape {list(tensor.shape)[:8]})"
        if tensor.layout != torch.strided or tensor.device.type != "cpu":
            raise CheckpointLayoutError(f"{label} is not a plain dense tensor ({tensor.layout}, {tensor.device})")
        needed = tensor.numel() * tensor.element_size()
        stored = tensor.untyped_storage().nbytes()
        if needed > stored:
            raise CheckpointLimitError(
                f"{label}: refused: it needs {needed:,} bytes but its storage holds {stored:,} (the limit: each "
                "tensor within its own storage); an expanded (stride-0) tensor would grow the output beyond the file")
        total += needed
    if total > file_size:
        raise CheckpointLimitError(
            f"{checkpoint.path}: refused: its tensors hold {total:,} bytes, more than the file's {file_size:,} "
            "(the limit: the output never exceeds the input); tensors sharing one storage would be written many times")


# --- splitting ----------------------------------------------------------------------------------------------

UNET_PREFIX = "model.diffusion_model."
CONTROLNET_PREFIX = "control_model."
CHECKPOINT_PARTS = {UNET_PREFIX: "UNet", "first_stage_model.": "VAE", "cond_stage_model.": "text encoder"}
# LDM keeps its noise schedule as buffers. Stock SD 2.x checkpoints carry them too; ComfyUI ignores them.
SCHEDULE_BUFFERS = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "scale_factor",
})
# Checked before the parts above: the VAE's loss lives under the VAE's prefix.
TRAINING_ONLY_PREFIXES = {
    "model_ema.": "EMA copy of the UNet (training only)",
    "first_stage_model.loss.": "VAE training loss (training only)",
}
TRAINING_ONLY_KEYS = {"logvar": "learned loss weighting (training only)"}
UNRECOGNISED = "unrecognised (in neither output)"


@dataclass(frozen=True)
class SplitCheckpoint:
    checkpoint: dict[str, torch.Tensor]  # UNet, VAE, text encoder (+ schedule buffers), for CheckpointLoaderSimple
    controlnet: dict[str, torch.Tensor]  # control_model.*, for ControlNetLoader
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> keys


def _training_only_reason(key: str) -> str | None:
    for prefix, reason in TRAINING_ONLY_PREFIXES.items():
        if key.startswith(prefix):
            return reason
    return TRAINING_ONLY_KEYS.get(key)


def split_state_dict(state_dict: Mapping[str, torch.Tensor], source: str | os.PathLike = "checkpoint"):
    """Route every key of a ControlLDM state dict: SD 2.x checkpoint, ControlNet, or dropped with a reason."""
    checkpoint, controlnet, dropped = {}, {}, {}
    for key, tensor in state_dict.items():
        reason = _training_only_reason(key)
        if reason:
            dropped.setdefault(reason, []).append(key)
        elif key.startswith(CONTROLNET_PREFIX):
            controlnet[key] = tensor
        elif key.startswith(tuple(CHECKPOINT_PARTS)) or key in SCHEDULE_BUFFERS:
            checkpoint[key] = tensor
        else:
            dropped.setdefault(UNRECOGNISED, []).append(key)
    present = {name for prefix, name in CHECKPOINT_PARTS.items() if any(k.startswith(prefix) for k in checkpoint)}
    if controlnet:
        present.add("ControlNet")
    missing = [name for name in [*CHECKPOINT_PARTS.values(), "ControlNet"] if name not in present]
    if missing:
        raise CheckpointLayoutError(
            f"{source}: not a HieraFashDiff (ControlLDM) checkpoint: no {', no '.join(missing)} weights "
            f"(expected keys under {', '.join([*CHECKPOINT_PARTS, CONTROLNET_PREFIX])})"
        )
    return SplitCheckpoint(checkpoint, controlnet, dropped)


V_PREDICTION_PROBE = UNET_PREFIX + "output_blocks.11.1.transformer_blocks.0.norm1.bias"


def comfyui_prediction_guess(checkpoint: Mapping[str, torch.Tensor]) -> str:
    """"eps" or "v_prediction": what ComfyUI 0.3.75 picks for this SD 2.x checkpoint with no node overriding it.

    Mirrors `comfy/supported_models.py` SD20.model_type, which we cannot import here.
    """
    first = checkpoint.get(UNET_PREFIX + "input_blocks.0.0.weight")
    in_channels = first.shape[1] if first is not None and first.ndim > 1 else None
    probe = checkpoint.get(V_PREDICTION_PROBE)
    if in_channels == 4 and probe is not None and probe.numel() and torch.std(probe.float(), correction=0) > 0.09:
        return "v_prediction"
    return "eps"


# --- writing ------------------------------------------------------------------------------------------------

SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def _dtype_code(name: str, dtype: torch.dtype) -> str:
    try:
        return SAFETENSORS_DTYPES[dtype]
    except KeyError:
        raise WeightsError(f"tensor '{name}' has dtype {dtype}, which safetensors cannot store") from None


def _raw_bytes(tensor: torch.Tensor):
    """The tensor's bytes in memory order, without a copy where it is already contiguous."""
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy()


def _digest(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    digest = hashlib.sha256()
    for name, tensor in named_tensors:
        digest.update(json.dumps([name, _dtype_code(name, tensor.dtype), list(tensor.shape)]).encode() + b"\n")
        digest.update(_raw_bytes(tensor))
    return digest.hexdigest()


def content_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the sorted names, dtypes, shapes and bytes: equal digests mean identical outputs."""
    return _digest((name, tensors[name]) for name in sorted(tensors))


def _header(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> bytes:
    entries: dict = {"__metadata__": dict(metadata)}
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name]
        size = tensor.numel() * tensor.element_size()
        entries[name] = {"dtype": _dtype_code(name, tensor.dtype), "shape": list(tensor.shape),
                         "data_offsets": [offset, offset + size]}
        offset += size
    header = json.dumps(entries, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the tensor data starts 8-byte aligned, as safetensors writes it
    return struct.pack("<Q", len(header)) + header


def _write_tensor(file, tensor: torch.Tensor) -> None:
    file.write(_raw_bytes(tensor))


def verify_safetensors(path: str | os.PathLike, layout: Mapping[str, tuple[torch.dtype, tuple]], digest: str):
    """Raise VerificationError unless the file reads back with exactly these names, dtypes, shapes and digest."""
    path = Path(path)

    def read_back(f):
        for name in sorted(layout):
            tensor = f.get_tensor(name)
            if (tensor.dtype, tuple(tensor.shape)) != tuple(layout[name]):
                raise VerificationError(f"{path}: tensor '{name}' reads back as {tensor.dtype} "
                                        f"{tuple(tensor.shape)}, expected {layout[name][0]} {layout[name][1]}")
            yield name, tensor

    try:
        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            if names != set(layout):
                missing, unexpected = sorted(set(layout) - names)[:5], sorted(names - set(layout))[:5]
                raise VerificationError(f"{path}: tensor names differ from what was written (missing {missing}, "
                                        f"unexpected {unexpected})")
            if (f.metadata() or {}).get(DIGEST_KEY) != digest:
                raise VerificationError(f"{path}: the recorded content digest is not this content's")
            if _digest(read_back(f)) != digest:
                raise VerificationError(f"{path}: the tensor bytes read back differ from what was written")
    except (SafetensorError, OSError) as exc:
        raise VerificationError(f"{path}: does not read back as a safetensors file ({_first_line(exc)})") from None


@dataclass(frozen=True)
class PlannedOutput:
    kind: str  # "checkpoint" or "controlnet"
    path: Path
    tensors: Mapping[str, torch.Tensor]
    metadata: Mapping[str, str]
    digest: str

    @property
    def layout(self) -> dict[str, tuple[torch.dtype, tuple]]:
        return {name: (t.dtype, tuple(t.shape)) for name, t in self.tensors.items()}


@dataclass(frozen=True)
class WrittenFile:
    kind: str
    path: Path
    status: str  # "written", "replaced" or "unchanged"
    tensors: int
    size: int
    digest: str


def plan_output(kind: str, path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                metadata: Mapping[str, str] | None = None) -> PlannedOutput:
    return PlannedOutput(kind, Path(path), tensors, dict(metadata or {}), content_digest(tensors))


def holds(output: PlannedOutput) -> bool:
    """Whether the file at the output's path already holds exactly this content (re-read and re-hashed)."""
    try:
        verify_safetensors(output.path, output.layout, output.digest)
    except VerificationError:
        return False
    return True


def written_by_us(path: str | os.PathLike) -> bool:
    """Whether the file is a safetensors file this converter wrote, unchanged since: its bytes re-hash to the
    content digest recorded in its metadata."""
    try:
        with safe_open(str(path), framework="pt") as f:
            recorded = (f.metadata() or {}).get(DIGEST_KEY)
            return recorded is not None and _digest((name, f.get_tensor(name)) for name in sorted(f.keys())) == recorded
    except (SafetensorError, OSError, WeightsError, ValueError):
        return False


def data_size(output: PlannedOutput) -> int:
    """The bytes of the output's tensor data."""
    return sum(t.numel() * t.element_size() for t in output.tensors.values())


def output_size(output: PlannedOutput) -> int:
    """The bytes the output file will take."""
    return len(_header(output.tensors, {**output.metadata, DIGEST_KEY: output.digest})) + data_size(output)


DISK_MARGIN = 64 * 2**20  # left free beyond the outputs, for the file system's own needs


def check_free_space(outputs: Iterable[PlannedOutput]) -> None:
    """Raise OutputWriteError unless each disk has room for the outputs to be written on it (plus a margin)."""
    needed: dict[int, list] = {}
    for output in outputs:
        folder = output.path.parent
        while not folder.exists():
            folder = folder.parent
        entry = needed.setdefault(folder.stat().st_dev, [folder, 0])
        entry[1] += output_size(output)
    for folder, size in needed.values():
        free = shutil.disk_usage(folder).free
        if size + DISK_MARGIN > free:
            raise OutputWriteError(
                f"{folder}: not enough free disk space: the outputs need {size / 2**20:,.1f} MiB plus a "
                f"{DISK_MARGIN // 2**20} MiB margin (the limit), {free / 2**20:,.1f} MiB are free; nothing was "
                "written. Free some space or write elsewhere.")


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # takes the name only while it is free: never replaces a file that appeared meanwhile
    except FileExistsError:
        raise OutputExistsError(f"{path} appeared while converting; not replacing it without overwrite") from None
    except OSError:  # a file system without hard links
        if path.exists():
            raise OutputExistsError(f"{path} appeared while converting; not replacing it without overwrite") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its renames are durable without this
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unchanged(output: PlannedOutput) -> WrittenFile:
    return WrittenFile(output.kind, output.path, "unchanged", len(output.tensors), output.path.stat().st_size,
                       output.digest)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new hidden file beside `path`, created with the mode the umask gives (mkstemp's would be 0600)."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.partial"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.open(tmp, flags, 0o666), tmp


def refuse_foreign(path: Path) -> None:
    """Raise OutputExistsError unless the existing file at `path` is one this converter wrote."""
    if not written_by_us(path):
        raise OutputExistsError(
            f"{path} already exists and was not written by this converter (it carries no content digest of ours "
            "that matches its bytes), so it is never replaced, even with overwrite. Move or delete it yourself, "
            "or choose another output name")


def write_output(output: PlannedOutput, overwrite: bool = False,
                 advance: Callable[[int], None] | None = None) -> WrittenFile:
    """Write one safetensors file atomically and verified; an identical existing file is left as it is, and
    overwrite replaces only a file this converter wrote. `advance(bytes)` follows the tensor data written."""
    path = output.path
    existed = path.exists()
    if existed and holds(output):
        return _unchanged(output)
    if existed and not overwrite:
        raise OutputExistsError(f"{path} already exists with other content; not replacing it without overwrite")
    if existed:
        refuse_foreign(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path)
        with os.fdopen(fd, "wb") as file:
            file.write(_header(output.tensors, {**output.metadata, DIGEST_KEY: output.digest}))
            for name in sorted(output.tensors):
                _write_tensor(file, output.tensors[name])
                if advance:
                    advance(output.tensors[name].numel() * output.tensors[name].element_size())
            file.flush()
            os.fsync(file.fileno())
        verify_safetensors(tmp, output.layout, output.digest)
        _publish(tmp, path, overwrite)
    except OSError as exc:
        raise OutputWriteError(f"{path}: cannot write it ({_first_line(exc)}); nothing was replaced") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)  # an interrupted or failed write leaves nothing behind
    _fsync_dir(path.parent)
    status = "replaced" if existed else "written"
    return WrittenFile(output.kind, path, status, len(output.tensors), path.stat().st_size, output.digest)


# --- the conversion -----------------------------------------------------------------------------------------

_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def output_names(stem: str = DEFAULT_STEM) -> tuple[str, str]:
    """The checkpoint and ControlNet file names for an output stem; the stem must be a plain file name."""
    if not _STEM.fullmatch(stem or ""):
        raise WeightsError(f"output name {stem!r} is not a plain file name: use letters, digits, '.', '_' "
                           "or '-' (no folders), starting with a letter or digit")
    return stem + CHECKPOINT_SUFFIX, stem + CONTROLNET_SUFFIX


@dataclass(frozen=True)
class ConversionReport:
    source: Path
    outputs: tuple[WrittenFile, ...]
    dropped: dict[str, list[str]]
    comfyui_guess: str
    training_info: dict[str, int | str]

    def summary(self) -> str:
        info = ", ".join(f"{k} {v}" for k, v in self.training_info.items())
        lines = [f"HieraFashDiff conversion of {self.source.name}" + (f" ({info})" if info else "")]
        for out in self.outputs:
            lines.append(f"  {out.kind:<10} {out.status:<9} {out.path}  ({out.tensors} tensors, "
                         f"{out.size / 2**20:,.1f} MiB, sha256 {out.digest[:12]})")
        for reason, keys in self.dropped.items():
            shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
            lines.append(f"  dropped    {len(keys)} key(s), {reason}: {shown}")
        guess = ("v-prediction for this file and sample it wrongly" if self.comfyui_guess == "v_prediction"
                 else "eps for this file too, but that guess is a heuristic")
        lines.append("  sampling   epsilon-prediction: put ModelSamplingDiscrete (sampling eps) after the checkpoint "
                     f"loader. Without it ComfyUI would guess {guess}.")
        return "\n".join(lines)


def convert_checkpoint(source: str | os.PathLike, checkpoints_dir: str | os.PathLike,
                       controlnet_dir: str | os.PathLike, stem: str = DEFAULT_STEM,
                       overwrite: bool = False, progress: Callable[[int, int], None] | None = None
                       ) -> ConversionReport:
    """Convert a ControlLDM checkpoint into `<checkpoints_dir>/<stem>_sd21.safetensors` and
    `<controlnet_dir>/<stem>_pose_controlnet.safetensors`; `progress(bytes written, bytes to write)` follows
    the writing.

    Nothing is written unless both outputs can be: an existing output with other content stops the
    conversion before either file is touched, unless `overwrite` is set and the file is one this converter
    wrote; nor when the disk lacks room for both. Every failure is a WeightsError.
    """
    try:
        return _convert(Path(source), Path(checkpoints_dir), Path(controlnet_dir), stem, overwrite, progress)
    except WeightsError:
        raise
    except Exception as exc:  # a crafted file may find a failure no check above names: it is still ours to report
        raise WeightsError(f"{source}: cannot convert it ({type(exc).__name__}: {_first_line(exc)[:300]})") from None


def _convert(source: Path, checkpoints_dir: Path, controlnet_dir: Path, stem: str, overwrite: bool,
             progress: Callable[[int, int], None] | None) -> ConversionReport:
    checkpoint_name, controlnet_name = output_names(stem)
    loaded = load_checkpoint(source)
    parts = split_state_dict(loaded.state_dict, loaded.path)
    provenance = {"hierafashdiff.source": loaded.path.name, "hierafashdiff.prediction": "epsilon"}
    outputs = [
        plan_output("checkpoint", Path(checkpoints_dir) / checkpoint_name, parts.checkpoint, provenance),
        plan_output("controlnet", Path(controlnet_dir) / controlnet_name, parts.controlnet, provenance),
    ]
    identical = {out.path for out in outputs if out.path.exists() and holds(out)}
    conflicts = [str(out.path) for out in outputs if out.path.exists() and out.path not in identical]
    if conflicts and not overwrite:
        raise OutputExistsError(f"{' and '.join(conflicts)} already exist(s) with other content; "
                                "not replacing without overwrite")
    for conflict in conflicts:
        refuse_foreign(Path(conflict))
    pending = [out for out in outputs if out.path not in identical]
    check_free_space(pending)
    total, done = sum(data_size(out) for out in pending), 0

    def advance(nbytes: int) -> None:
        nonlocal done
        done += nbytes
        progress(done, total)

    written = tuple(_unchanged(out) if out.path in identical else write_output(out, overwrite, progress and advance)
                    for out in outputs)
    return ConversionReport(loaded.path, written, parts.dropped, comfyui_prediction_guess(parts.checkpoint),
                            loaded.training_info)
