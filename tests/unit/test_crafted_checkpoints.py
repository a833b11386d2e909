"""Crafted checkpoints, built here at test time: each must end in the converter's own error (WeightsError),
fast and in little memory, and write nothing.

All cases run in one child process, under an address-space limit so that a regression cannot take the
machine's memory; it reports per case the error, the seconds taken and its peak resident memory."""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from unit.test_weights import ExecCall, SystemCall, controlldm_state, lightning

from hierafash_core import checkpoint_reading as reading
from hierafash_core import weights
from hierafash_core import weights_errors as errors

ROOT = Path(__file__).resolve().parents[2]
SECONDS_PER_CASE = 5.0
MEMORY_PER_CASE = 200 * 2**20  # above the resident memory of the child after a warm-up conversion
WHOLE_SET_SECONDS = 60


def rezip(source: Path, target: Path, replace: dict[str, bytes] | None = None, deflate: bool = False) -> Path:
    """Rewrite a torch zip archive, replacing entries (named below its top folder) or compressing them all."""
    with zipfile.ZipFile(source) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in entries:
            archive.writestr(name, (replace or {}).get(name.split("/", 1)[1], data),
                             compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return target


def doubling_key_pickle(depth: int) -> bytes:
    """{"state_dict": {key: 0}} where key = (t, t) of (t, t) ... of ("a",): 2**depth leaves in a few bytes each
    level (each level refers twice to the memoised one below). Hashing or printing it takes 2**depth steps."""
    out = bytearray(b"\x80\x02}q\x00X\x0a\x00\x00\x00state_dict}q\x01X\x01\x00\x00\x00a\x85r\x02\x00\x00\x00")
    for level in range(depth):
        out += b"j" + struct.pack("<I", level + 2) + b"\x86r" + struct.pack("<I", level + 3)  # GET, TUPLE2, PUT
    return bytes(out + b"K\x00ss.")


def nested_lists_pickle(depth: int) -> bytes:
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."  # EMPTY_LIST x depth, then APPEND each inward


def object_flood_pickle(count: int) -> bytes:
    return b"\x80\x02](" + b"}" * count + b"e."  # a list of `count` empty dicts: 1 byte each


def build_cases(folder: Path) -> list[tuple[str, Path, type]]:
    """(name, file, the WeightsError subclass it must end in)."""
    cases = []

    def save(name, obj, expected):
        path = folder / f"{name}.ckpt"
        torch.save(obj, path)
        cases.append((name, path, expected))
        return path

    base = save("plain", lightning(controlldm_state()), None)  # the warm-up: converts
    state = controlldm_state()
    save("expanded tensor", lightning({**state, "model.diffusion_model.big": torch.zeros(1).expand(2**27)}),
         errors.CheckpointLimitError)
    shared = torch.randn(2**16)
    save("tensors sharing one storage",
         lightning({**state, **{f"model.diffusion_model.view{i}": shared for i in range(2000)}}),
         errors.CheckpointLimitError)

    def crafted(name, expected, **rezip_args):
        cases.append((name, rezip(base, folder / f"{name}.ckpt", **rezip_args), expected))

    crafted("compressed pickle", errors.CheckpointLimitError, deflate=True)
    oversized = reading.MAX_PICKLE_BYTES + 1
    crafted("oversized pickle", errors.CheckpointLimitError,
            replace={"data.pkl": b"\x80\x02X" + struct.pack("<I", oversized) + b"a" * oversized + b"."})
    for depth in (18, 24, 60):
        crafted(f"doubling key, depth {depth}",
                errors.CheckpointLayoutError if depth == 18 else errors.CheckpointLimitError,
                replace={"data.pkl": doubling_key_pickle(depth)})
    crafted("nested 10 000 deep", errors.CheckpointLimitError, replace={"data.pkl": nested_lists_pickle(10_000)})
    crafted("object flood", errors.CheckpointLimitError,
            replace={"data.pkl": object_flood_pickle(reading.MAX_PICKLE_OBJECTS + 1000)})
    crafted("storage record cut short", errors.CheckpointReadError, replace={"data/0": b"\0" * 4})
    data = base.read_bytes()
    (folder / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    cases.append(("truncated file", folder / "truncated.ckpt", errors.CheckpointReadError))
    marker = folder / "payload_ran"
    save("os.system payload", {"state_dict": state, "x": SystemCall(f"touch {marker}")},
         errors.UnsafeCheckpointError)
    save("exec payload", {"state_dict": state, "x": ExecCall(f"open({str(marker)!r}, 'w').close()")},
         errors.UnsafeCheckpointError)
    save("non-tensor entry", lightning({**state, "model.diffusion_model.x": [1, 2]}), errors.CheckpointLayoutError)
    path = folder / "raw pickle.ckpt"
    path.write_bytes(pickle.dumps({"x": SystemCall(f"touch {marker}")}, protocol=2))
    cases.append(("raw pickle (legacy format)", path, errors.CheckpointReadError))
    return cases


CHILD = r"""
import json, resource, sys, time
from pathlib import Path

from hierafash_core import weights

# Bound the address space: a regression then fails here instead of taking the machine's memory.
pages = int(open("/proc/self/statm").read().split()[0])
resource.setrlimit(resource.RLIMIT_AS, (pages * resource.getpagesize() + 3 * 2**30,) * 2)

out = Path(sys.argv[1])
for index, (name, path) in enumerate(json.loads(sys.argv[2])):
    start = time.perf_counter()
    try:
        weights.convert_checkpoint(path, out / str(index) / "checkpoints", out / str(index) / "controlnet")
        error, message = None, ""
    except BaseException as exc:
        error, message = [c.__name__ for c in type(exc).__mro__], str(exc)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"name": name, "error": error, "message": message[:2000], "length": len(message),
                      "seconds": time.perf_counter() - start, "peak": peak}), flush=True)
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crafted")
    cases = build_cases(folder)
    out = folder / "models"
    child = subprocess.run([sys.executable, "-c", CHILD, str(out), json.dumps([(n, str(p)) for n, p, _ in cases])],
                           cwd=ROOT, capture_output=True, text=True, timeout=WHOLE_SET_SECONDS)
    reports = {r["name"]: r for r in map(json.loads, child.stdout.splitlines())}
    assert len(reports) == len(cases), f"the child stopped early:\n{child.stderr[-3000:]}"
    return cases, reports, out, folder


def test_the_warm_up_converts(outcomes):
    _, reports, out, _ = outcomes
    assert reports["plain"]["error"] is None
    assert (out / "0" / "checkpoints" / weights.output_names()[0]).is_file()


CASE_NAMES = ["expanded tensor", "tensors sharing one storage", "compressed pickle", "oversized pickle",
              "doubling key, depth 18", "doubling key, depth 24", "doubling key, depth 60", "nested 10 000 deep",
              "object flood", "storage record cut short", "truncated file", "os.system payload", "exec payload",
              "non-tensor entry", "raw pickle (legacy format)"]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_each_crafted_file_ends_in_the_converters_error_within_budget(outcomes, name):
    cases, reports, out, folder = outcomes
    (index, expected), = [(i, e) for i, (n, _, e) in enumerate(cases) if n == name]
    report = reports[name]
    assert report["error"] and expected.__name__ in report["error"], report
    assert "WeightsError" in report["error"]
    assert report["length"] < 1500, report["message"][:300]  # short: no rendering of crafted objects
    assert report["seconds"] < SECONDS_PER_CASE, report
    assert report["peak"] < reports["plain"]["peak"] + MEMORY_PER_CASE, report
    assert not (out / str(index)).exists() or not any((out / str(index)).rglob("*.safetensors"))
    assert not (folder / "payload_ran").exists()


def test_limits_are_named_in_the_messages(outcomes):
    _, reports, _, _ = outcomes
    assert f"{reading.MAX_PICKLE_BYTES // 2**20} MiB limit" in reports["oversized pickle"]["message"]
    assert f"{reading.MAX_PICKLE_OBJECTS:,}" in reports["doubling key, depth 24"]["message"]
    assert f"{reading.MAX_PICKLE_OBJECTS:,}" in reports["object flood"]["message"]
    assert f"{reading.MAX_PICKLE_DEPTH} deep (the limit)" in reports["nested 10 000 deep"]["message"]
    assert "stored entries only" in reports["compressed pickle"]["message"]
    assert "within its own storage" in reports["expanded tensor"]["message"]
    assert "never exceeds the input" in reports["tensors sharing one storage"]["message"]
    assert "a tuple ->" in reports["doubling key, depth 18"]["message"]
