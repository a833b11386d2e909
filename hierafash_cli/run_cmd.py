"""`hierafash run`: execute a saved workflow in the pinned ComfyUI without a browser and write its outputs."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import mimetypes
import os
import re
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from PIL import Image

from . import workflow as wf
from .server import DEFAULT_HOME, DEVICES, ComfyError, ComfyServer, format_execution_errors, prepare_base

EXIT_FAILED = 1  # ComfyUI rejected or failed the prompt
EXIT_SETUP = 2  # the workflow, an override or a file is wrong before anything ran


class RunError(RuntimeError):
    def __init__(self, message: str, code: int = EXIT_SETUP):
        super().__init__(message)
        self.code = code


def parse_mapping(items: list[str]) -> dict[str, str]:
    mapping = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise RunError(f"--model {item!r}: write NAME=REPLACEMENT, e.g. {wf.CHECKPOINT_NAME}=my_copy.safetensors")
        mapping[old] = new
    return mapping


MAX_UPLOAD_BYTES = 200 * 2**20  # larger than any image an artist edits at the paper's sizes


def requested_uploads(workflow: dict, object_info: dict, overrides: list[str]) -> dict[int, Path]:
    """{index of the --set assignment: local file} for assignments that give an upload widget (Load Image) a
    path on disk. Only these are uploaded: a path saved in the workflow itself never is, since a shared
    workflow could name any file on the machine."""
    requests = {}
    for index, text in enumerate(overrides):
        try:
            selector, name, value = wf.parse_assignment(text)
            nodes = wf.find_nodes(workflow, object_info, selector)
        except wf.WorkflowError:
            continue  # reported by apply_overrides
        for node in nodes:
            widget = next((w for w in wf.widgets(object_info.get(node["type"]) or {}) if w.name == name), None)
            if widget is None or not widget.upload or value in (widget.choices or ()):
                continue
            path = Path(value).expanduser()
            if path.is_file():
                if widget.upload != "image":
                    raise RunError(f"--set {text!r}: only image files are uploaded, and {widget.name} takes "
                                   f"a {widget.upload}; put the file in ComfyUI's input folder yourself")
                requests[index] = path
            elif os.sep in value or "/" in value:
                raise RunError(f"--set {text!r}: {value!r} is not a file")
    return requests


def read_image(path: Path, assignment: str) -> bytes:
    """The file's bytes, once Pillow has decoded them as an image; RunError otherwise."""
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise RunError(f"--set {assignment!r}: {path} is {size / 2**20:,.0f} MiB, over the "
                       f"{MAX_UPLOAD_BYTES // 2**20} MiB upload limit")
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise RunError(f"--set {assignment!r}: {path} is not an image Pillow can decode ({exc}); only images "
                       "are uploaded to ComfyUI") from None
    return data


def upload(server: ComfyServer, filename: str, data: bytes) -> str:
    """POST /upload/image (multipart) into the server's input folder; returns the name Load Image uses."""
    boundary = uuid.uuid4().hex
    filename = re.sub(r'["\r\n]', "_", filename)  # it goes inside a quoted header value
    mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\nfalse\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\ninput\r\n'.encode(),
        (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
         f"Content-Type: {mime}\r\n\r\n").encode() + data + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    request = urllib.request.Request(f"{server.url}/upload/image",
                                     data=b"".join(parts), method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        body = json.loads(reply.read())
    return f"{body['subfolder']}/{body['name']}" if body.get("subfolder") else body["name"]


def upload_requested(server: ComfyServer, workflow: dict, object_info: dict, overrides: list[str]) -> list[str]:
    """The overrides, with each requested image uploaded and its path replaced by the uploaded name."""
    overrides = list(overrides)
    for index, path in requested_uploads(workflow, object_info, overrides).items():
        selector, name, _ = wf.parse_assignment(overrides[index])
        uploaded = upload(server, path.name, read_image(path, overrides[index]))
        overrides[index] = f"{selector}.{name}={uploaded}"
    return overrides


def prepare(server: ComfyServer, workflow: dict, overrides: list[str], models: dict[str, str]) -> tuple[dict, dict]:
    """The workflow with model mapping, --set overrides and their uploads applied, and its API prompt."""
    object_info = server.get("/object_info")
    try:
        workflow = wf.map_models(workflow, object_info, models) if models else workflow
        uploaded = upload_requested(server, workflow, object_info, overrides)
        if uploaded != overrides:
            object_info = server.get("/object_info")  # lists the uploaded files
        workflow = wf.apply_overrides(workflow, object_info, uploaded)
        missing = wf.missing_files(workflow, object_info)
        prompt = wf.to_api(workflow, object_info)
    except wf.WorkflowError as exc:
        raise RunError(str(exc)) from None
    if missing:
        try:
            folders = server.get("/internal/folder_paths")
        except (ComfyError, OSError):
            folders = {}
        raise RunError("\n".join(m.describe(folders) for m in missing))
    return workflow, prompt


def execute(server: ComfyServer, workflow: dict, prompt: dict, timeout: float) -> dict:
    """Queue the prompt (with the workflow embedded, as the editor does) and wait for it."""
    status, reply = server.request("POST", "/prompt", {"prompt": prompt, "client_id": str(uuid.uuid4()),
                                                        "extra_data": {"extra_pnginfo": {"workflow": workflow}}})
    if status != 200 or reply.get("node_errors"):
        raise RunError(format_validation_error(reply, prompt), EXIT_FAILED)
    try:
        entry = server.wait(reply["prompt_id"], timeout)
    except ComfyError as exc:
        raise RunError(str(exc), EXIT_FAILED) from None
    if entry["status"]["status_str"] != "success":
        errors = [m[1] for m in entry["status"].get("messages", []) if m[0] == "execution_error"]
        raise RunError("ComfyUI failed to run the workflow:\n" + format_execution_errors(errors), EXIT_FAILED)
    return entry


def format_validation_error(reply, prompt: dict) -> str:
    """ComfyUI's own validation message, node by node."""
    if not isinstance(reply, dict):
        return f"ComfyUI rejected the workflow: {reply}"
    lines = ["ComfyUI rejected the workflow:"]
    error = reply.get("error") or {}
    if error and not reply.get("node_errors"):
        lines.append(f"  {error.get('message', '')} {error.get('details', '')}".rstrip())
    for node_id, node_error in (reply.get("node_errors") or {}).items():
        title = prompt.get(node_id, {}).get("_meta", {}).get("title", node_id)
        for e in node_error.get("errors", []):
            lines.append(f"  node {node_id} ({node_error.get('class_type')} {title!r}): {e.get('message')}: "
                         f"{e.get('details')}")
    return "\n".join(lines)


def write_new(path: Path, data: bytes) -> Path:
    """Write `data` to a file that did not exist: `path`, else `path` with _2, _3, ... before the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for number in itertools.count(1):
        candidate = path if number == 1 else path.with_name(f"{path.stem}_{number}{path.suffix}")
        try:
            with open(candidate, "xb") as file:  # exclusive: never replaces a file, even one made meanwhile
                file.write(data)
            return candidate
        except FileExistsError:
            continue


def write_outputs(server: ComfyServer, entry: dict, prompt: dict, out_dir: Path, previews: bool = False) -> list[Path]:
    """Saved images (and, with previews, preview images) into out_dir; text outputs as .txt files. Existing
    files are never replaced: a taken name gets a number."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for node_id, output in sorted(entry.get("outputs", {}).items(), key=lambda kv: int(kv[0])):
        for image in output.get("images", []):
            if image.get("type") != "output" and not previews:
                continue
            # Flat in out_dir, as the server's subfolders are the workflow's business: write_new numbers a name
            # taken by an earlier file or by the same prefix saved in another subfolder.
            written.append(write_new(out_dir / Path(image["filename"]).name, server.view(image)))
        texts = [t for t in output.get("text", []) if isinstance(t, str)]
        if texts:
            title = prompt.get(node_id, {}).get("_meta", {}).get("title", node_id)
            path = out_dir / f"{node_id}_{re.sub(r'[^A-Za-z0-9._-]+', '_', title).strip('_')}.txt"
            written.append(write_new(path, ("\n".join(texts) + "\n").encode()))
    return written


def run(server: ComfyServer, workflow: dict, out_dir: Path, overrides=(), models=None, previews=False,
        timeout: float = 3600) -> list[Path]:
    """Everything `hierafash run` does once a server is up; raises RunError with the message to print."""
    workflow, prompt = prepare(server, workflow, list(overrides), dict(models or {}))
    entry = execute(server, workflow, prompt, timeout)
    return write_outputs(server, entry, prompt, Path(out_dir), previews)


def cmd_run(args) -> int:
    started = time.time()
    try:
        workflow = wf.load(args.workflow)
        models = parse_mapping(args.models)
    except (wf.WorkflowError, RunError) as exc:
        print(f"hierafash run: error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    server = None
    try:
        if args.attach:
            server = ComfyServer(Path(args.home), port=args.attach)
            server.get("/system_stats", timeout=10)
        else:
            base = prepare_base(Path(args.home))
            server = ComfyServer(base, log_path=base / "comfyui-run.log", device=args.device)
            print(f"starting ComfyUI (log: {server.log_path}) ...", file=sys.stderr)
            server.start()
        written = run(server, workflow, Path(args.out), args.overrides, models, args.previews, args.timeout)
    except RunError as exc:
        print(f"hierafash run: error: {exc}", file=sys.stderr)
        return exc.code
    except (ComfyError, OSError) as exc:
        print(f"hierafash run: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if server is not None and not args.attach:
            server.stop()
    for path in written:
        print(path)
    print(f"{len(written)} file(s) written to {args.out} in {time.time() - started:.1f}s", file=sys.stderr)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `run` on the `hierafash` command's subparsers."""

    parser = subparsers.add_parser(
        "run", help="run a saved workflow headless and write its outputs",
        description="Execute a workflow saved by the ComfyUI editor (for example one of this pack's workflows/) "
                    "in the pinned ComfyUI, without a browser, and write the images it saves into --out. "
                    "Exits 1 with ComfyUI's error if the workflow fails, 2 if a model or input file is missing "
                    "(naming the file, the folder it goes in and where to get it) or an override is wrong.",
        epilog="example: hierafash run \"workflows/Fashion garment edit - new sleeves and collar on a dress.json\" "
               "--set 'Load Image.image=~/drafts/dress.png' --set KSampler.seed=7 --out out/")
    parser.add_argument("workflow", type=Path, help="a workflow .json saved by the editor (UI format)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="set a widget before running; NODE is a node id, title or type (every node of that "
                             "title or type). A file path for Load Image's image is uploaded once Pillow has "
                             "decoded it (only paths given here, never ones saved in the workflow). Repeatable.")
    parser.add_argument("--model", dest="models", action="append", default=[], metavar="NAME=REPLACEMENT",
                        help="use model file REPLACEMENT wherever the workflow names NAME. Repeatable.")
    parser.add_argument("--out", type=Path, default=Path("hierafash_output"),
                        help="folder for the outputs; existing files are never replaced (default: %(default)s)")
    parser.add_argument("--home", default=str(DEFAULT_HOME),
                        help="ComfyUI base directory with models/, input/, output/ (default: %(default)s, the one "
                             "`hierafash serve` uses)")
    parser.add_argument("--attach", type=int, metavar="PORT",
                        help="use the ComfyUI already running on 127.0.0.1:PORT (e.g. `hierafash serve`) "
                             "instead of starting one")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where ComfyUI runs: the GPU when torch sees one (auto, the default), or cpu / cuda")
    parser.add_argument("--previews", action="store_true", help="also write preview images, not only saved ones")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the run (default: 3600)")
    parser.set_defaults(func=cmd_run)
    return parser
