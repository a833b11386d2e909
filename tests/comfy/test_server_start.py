"""The harness starting a real ComfyUI: a port it chose that another process takes before ComfyUI binds it
is chosen again (free_port() can only say the port was free a moment ago)."""

from __future__ import annotations

import socket

from hierafash_cli.server import HOST, ComfyServer, prepare_base


def test_a_chosen_port_taken_before_comfyui_binds_it_is_chosen_again(tmp_path):
    server = ComfyServer(prepare_base(tmp_path / "base"), log_path=tmp_path / "comfyui.log", device="cpu")
    taken_port = server.port
    with socket.socket() as taken:  # listens but never answers, as a program racing for the port would
        taken.bind((HOST, taken_port))
        taken.listen()
        try:
            server.start()
            assert server.port != taken_port
            assert server.is_ours(server.get("/system_stats"))
        finally:
            server.stop()
