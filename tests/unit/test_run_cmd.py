"""`hierafash run` sends only what the command line names, only as images, and never overwrites an output.

The server side is a small HTTP server speaking the four ComfyUI routes involved (/object_info,
/upload/image, /view, /internal/folder_paths) and recording what it receives; the client code is the real one.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from hierafash_cli import run_cmd
from hierafash_cli.server import HOST, ComfyServer

OBJECT_INFO = {"LoadImage": {
    "input": {"required": {"image": [["already_there.png"], {"image_upload": True}]}},
    "input_order": {"required": ["image"]}, "output": ["IMAGE", "MASK"], "output_name": ["IMAGE", "MASK"],
    "display_name": "Load Image"}}


def load_image_workflow(value: str) -> dict:
    return {"version": 0.4, "links": [], "nodes": [
        {"id": 1, "type": "LoadImage", "mode": 0, "inputs": [], "widgets_values": [value, "image"]}]}


class ComfyRoutes(BaseHTTPRequestHandler):
    uploads: list  # (filename, bytes) per POST /upload/image
    views: dict  # (subfolder, filename) -> bytes served by /view

    def reply(self, body: bytes, content_type="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - the http.server API
        url = urllib.parse.urlparse(self.path)
        if url.path == "/view":
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            return self.reply(self.views[(query["subfolder"], query["filename"])], "image/png")
        listed = OBJECT_INFO["LoadImage"]["input"]["required"]["image"][0] + [name for name, _ in self.uploads]
        info = json.loads(json.dumps(OBJECT_INFO))
        info["LoadImage"]["input"]["required"]["image"][0] = listed
        self.reply(json.dumps(info if url.path == "/object_info" else {}).encode())

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        part = next(p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "image")
        self.uploads.append((part.get_filename(), part.get_payload(decode=True)))
        self.reply(json.dumps({"name": part.get_filename(), "subfolder": "", "type": "input"}).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def comfy_routes(tmp_path):
    routes = type("Routes", (ComfyRoutes,), {"uploads": [], "views": {}})
    http = ThreadingHTTPServer((HOST, 0), routes)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield ComfyServer(tmp_path / "home", port=http.server_address[1]), routes
    http.shutdown()
    http.server_close()


def png_file(path, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
    return path


# --- uploads ------------------------------------------------------------------------------------------------


def test_a_path_saved_in_the_workflow_is_never_uploaded(tmp_path, comfy_routes):
    server, routes = comfy_routes
    secret = tmp_path / "id_rsa"
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    for named in (secret, png_file(tmp_path / "even_an_image.png")):
        with pytest.raises(run_cmd.RunError, match="is not in"):  # reported as a missing input file instead
            run_cmd.prepare(server, load_image_workflow(str(named)), [], {})
    assert routes.uploads == []


def test_an_image_named_with_set_is_uploaded_and_used(tmp_path, comfy_routes):
    server, routes = comfy_routes
    design = png_file(tmp_path / "design.png")
    workflow, prompt = run_cmd.prepare(server, load_image_workflow("already_there.png"),
                                       [f"Load Image.image={design}"], {})
    assert routes.uploads == [("design.png", design.read_bytes())]
    assert prompt["1"]["inputs"]["image"] == "design.png"


@pytest.mark.parametrize("content", [b"-----BEGIN OPENSSH PRIVATE KEY-----", b"\x89PNG\r\n\x1a\n truncated"],
                         ids=["a key file", "a broken png"])
def test_a_file_that_is_not_an_image_is_refused_even_with_set(tmp_path, comfy_routes, content):
    server, routes = comfy_routes
    path = tmp_path / "secret.png"
    path.write_bytes(content)
    with pytest.raises(run_cmd.RunError, match="is not an image Pillow can decode.*only images are uploaded"):
        run_cmd.prepare(server, load_image_workflow("already_there.png"), [f"Load Image.image={path}"], {})
    assert routes.uploads == []


def test_a_missing_path_with_set_is_reported(tmp_path, comfy_routes):
    server, _ = comfy_routes
    with pytest.raises(run_cmd.RunError, match="is not a file"):
        run_cmd.prepare(server, load_image_workflow("already_there.png"),
                        [f"Load Image.image={tmp_path / 'absent.png'}"], {})


# --- outputs ------------------------------------------------------------------------------------------------


def history_entry(*images) -> dict:
    return {"outputs": {"9": {"images": [{"filename": name, "subfolder": sub, "type": "output"}
                                         for sub, name in images]}}}


def test_outputs_never_replace_existing_files(tmp_path, comfy_routes):
    server, routes = comfy_routes
    routes.views[("", "draft_00001_.png")] = b"new draft"
    out = tmp_path / "out"
    out.mkdir()
    (out / "draft_00001_.png").write_bytes(b"yesterday's draft")
    written = run_cmd.write_outputs(server, history_entry(("", "draft_00001_.png")), {}, out)
    assert (out / "draft_00001_.png").read_bytes() == b"yesterday's draft"
    assert [p.read_bytes() for p in written] == [b"new draft"] and written[0].parent == out


def test_same_names_in_different_subfolders_do_not_collide(tmp_path, comfy_routes):
    server, routes = comfy_routes
    routes.views[("front", "look_00001_.png")] = b"front"
    routes.views[("back", "look_00001_.png")] = b"back"
    routes.views[("../..", "escape.png")] = b"outside"
    out = tmp_path / "out"
    entry = history_entry(("front", "look_00001_.png"), ("back", "look_00001_.png"), ("../..", "escape.png"))
    written = run_cmd.write_outputs(server, entry, {}, out)
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in written} == {
        "look_00001_.png": b"front", "look_00001__2.png": b"back", "escape.png": b"outside"}


def test_text_outputs_never_replace_existing_files(tmp_path, comfy_routes):
    server, _ = comfy_routes
    out = tmp_path / "out"
    entry = {"outputs": {"3": {"text": ["editing collar"]}}}
    prompt = {"3": {"_meta": {"title": "Edit plan"}}}
    first = run_cmd.write_outputs(server, entry, prompt, out)
    second = run_cmd.write_outputs(server, entry, prompt, out)
    assert first != second and all(p.read_text() == "editing collar\n" for p in first + second)
