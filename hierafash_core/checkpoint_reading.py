"""Reading a pickled torch checkpoint (such as the official `hfd_100epochs.ckpt`, see hierafash_core.weights)
without running pickled code, at a cost bounded by the file's size.

`torch.load(weights_only=True)`, torch's restricted unpickler, rebuilds only tensors, storages,
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
"""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from .weights_errors import (
    CheckpointLayoutError,
    CheckpointLimitError,
    CheckpointReadError,
    UnsafeCheckpointError,
    first_line,
)


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


_TORCH_BOILERPLATE = ("Weights only load failed", "Check the documentation", "Please file an issue", "(1)", "(2)")


def _refusal(path: Path, exc: pickle.UnpicklingError) -> UnsafeCheckpointError:
    # torch wraps the unpickler's one-line reason in advice (including how to load the file unsafely): keep the reason.
    detail = str(exc).split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    reason = next((line for line in lines if not line.startswith(_TORCH_BOILERPLATE)), first_line(exc))
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
                                  f"({first_line(exc)}). Download it again.") from None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The state dict of a torch checkpoint (nested under "state_dict" or not), read without running code."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointReadError(f"{path}: cannot open it ({first_line(exc)})") from None
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
            f"{path}: cannot read it: the file is truncated or corrupt ({first_line(exc)[:300]}). Download it again."
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
