"""The harness never mistakes another server for the ComfyUI it started (hierafash_cli.server)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hierafash_cli import server as harness
from hierafash_cli.server import ComfyError, ComfyServer, answering_base


def system_stats(base: str) -> dict:
    """What ComfyUI's /system_stats carries about its process: sys.argv among the system facts."""
    return {"system": {"os": "posix", "comfyui_version": "0.3.75",
                       "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--base-directory", base]},
            "devices": []}


@pytest.fixture
def other_comfyui(tmp_path):
    """An HTTP server on 127.0.0.1 answering /system_stats as a ComfyUI with another base directory would."""
    other_base = str(tmp_path / "someone_elses_home")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            body = json.dumps(system_stats(other_base)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http = ThreadingHTTPServer((harness.HOST, 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield http.server_address[1], other_base
    http.shutdown()
    http.server_close()


def test_start_refuses_a_port_where_another_comfyui_answers(tmp_path, other_comfyui, monkeypatch):
    port, other_base = other_comfyui
    launched = []
    monkeypatch.setattr(harness.subprocess, "Popen", lambda *a, **k: launched.append(a) or pytest.fail("launched"))
    server = ComfyServer(tmp_path / "ours", port=port)
    with pytest.raises(ComfyError, match=f"port {port} is already answered by another ComfyUI") as refused:
        server.start(timeout=10)
    assert other_base in str(refused.value) and "--port" in str(refused.value)
    assert not launched  # refused before starting anything


def test_start_refuses_a_port_taken_by_something_else(tmp_path):
    with socket.socket() as taken:
        taken.bind((harness.HOST, 0))
        taken.listen()
        server = ComfyServer(tmp_path / "ours", port=taken.getsockname()[1])
        with pytest.raises(ComfyError, match="another program"):
            server.start(timeout=10)


@pytest.mark.parametrize("argv, base", [
    (["main.py", "--base-directory", "/srv/comfy"], "/srv/comfy"),
    (["main.py", "--base-directory=/srv/comfy", "--cpu"], "/srv/comfy"),
    (["main.py", "--cpu"], None),
    ("not a list", None),
])
def test_the_answering_base_comes_from_the_servers_argv(argv, base):
    assert answering_base({"system": {"argv": argv}}) == base


def test_only_a_server_on_our_base_directory_is_ours(tmp_path):
    server = ComfyServer(tmp_path / "home", port=1)
    assert server.is_ours(system_stats(str(tmp_path / "home")))
    assert server.is_ours(system_stats(str(tmp_path / "x" / ".." / "home")))  # the same folder, spelt otherwise
    assert not server.is_ours(system_stats(str(tmp_path / "other")))
    assert not server.is_ours({"system": {}}) and not server.is_ours(None)


def test_a_port_we_choose_is_chosen_again_and_one_given_is_not(tmp_path):
    assert ComfyServer(Path(tmp_path), port=None).chosen_port
    assert not ComfyServer(Path(tmp_path), port=8188).chosen_port
