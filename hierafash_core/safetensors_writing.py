"""Writing the converted safetensors files (hierafash_core.weights): streamed, atomic, verified, never over a
file this converter did not write.

The writer is our own, streaming (the safetensors format is an 8-byte length, a JSON header, then the
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
import secrets
import shutil
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .weights_errors import OutputExistsError, OutputWriteError, VerificationError, WeightsError, first_line

DIGEST_KEY = "hierafashdiff.content_sha256"

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
        raise VerificationError(f"{path}: does not read back as a safetensors file ({first_line(exc)})") from None


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


def unchanged_file(output: PlannedOutput) -> WrittenFile:
    """The report of an output whose file already holds its content."""
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
        return unchanged_file(output)
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
        raise OutputWriteError(f"{path}: cannot write it ({first_line(exc)}); nothing was replaced") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)  # an interrupted or failed write leaves nothing behind
    _fsync_dir(path.parent)
    status = "replaced" if existed else "written"
    return WrittenFile(output.kind, path, status, len(output.tensors), path.stat().st_size, output.digest)
