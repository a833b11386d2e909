"""Start the pinned ComfyUI headless on 127.0.0.1 with this pack loaded, talk to it, stop it by PID."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from .runtime import comfyui_dir

HOST = "127.0.0.1"
PACK_DIR = Path(__file__).resolve().parent.parent
PACK_NAME = "hierafashdiff"
DEFAULT_HOME = PACK_DIR / "comfyui_home"  # the ComfyUI base directory of `make run` and `hierafash run`
BASE_SUBDIRS = ("custom_nodes", "models", "input", "output", "temp", "user")
DEVICES = ("auto", "cpu", "cuda")


class ComfyError(RuntimeError):
    pass


# How ComfyUI reports a taken port: the OS error (0.3.75) or its own message (0.30: "Port N is already in use").
BIND_FAILURES = ("address already in use", "is already in use", "errno 98", "errno 10048",
                 "only one usage of each socket address")


def answering_base(stats) -> str | None:
    """The --base-directory of the ComfyUI that sent this /system_stats reply (from its argv), if any."""
    argv = ((stats or {}).get("system") or {}).get("argv") if isinstance(stats, dict) else None
    if not isinstance(argv, list):
        return None
    for index, arg in enumerate(argv):
        if arg == "--base-directory" and index + 1 < len(argv):
            return str(argv[index + 1])
        if isinstance(arg, str) and arg.startswith("--base-directory="):
            return arg.split("=", 1)[1]
    return None


def free_port() -> int:
    """A port that was free a moment ago (ComfyServer.start picks again if it is taken before the bind)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def choose_device(requested: str = "auto") -> tuple[str, str]:
    """'cuda' when torch sees a GPU (or when asked), else 'cpu'; with the reason, for the log."""
    if requested not in DEVICES:
        raise ComfyError(f"device {requested!r}: choose one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu", "asked for"
    import torch  # only the harness process pays for this import, once

    if torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name(0)
    if requested == "cuda":
        raise ComfyError("device 'cuda': torch sees no CUDA GPU here; use 'auto' or 'cpu'")
    return "cpu", "torch sees no CUDA GPU"


def prepare_base(base: Path, extra_packs: dict[str, Path] | None = None) -> Path:
    """A ComfyUI base directory whose custom_nodes/ links to this working tree (and any extra packs)."""
    for sub in BASE_SUBDIRS:
        (base / sub).mkdir(parents=True, exist_ok=True)
    for name, target in {PACK_NAME: PACK_DIR, **(extra_packs or {})}.items():
        link = base / "custom_nodes" / name
        if link.is_symlink() and link.resolve() != target.resolve():
            link.unlink()
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return base


class ComfyServer:
    """A ComfyUI server process; use as a context manager."""

    def __init__(self, base: Path, port: int | None = None, log_path: Path | None = None,
                 env: dict[str, str] | None = None, extra_args: tuple[str, ...] = (), device: str = "auto"):
        self.base = Path(base)
        self.device = device
        self.chosen_port = port is None  # a port we picked may be taken before ComfyUI binds it: pick again
        self.port = port or free_port()
        self.log_path = log_path or self.base / "comfyui.log"
        self.env = env or {}
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        device, why = choose_device(self.device)
        print(f"ComfyUI device: {device} ({why})", file=sys.stderr)
        cpu = ("--cpu",) if device == "cpu" else ()
        return [sys.executable, "main.py", *cpu, "--listen", HOST, "--port", str(self.port),
                "--disable-auto-launch", "--base-directory", str(self.base),
                "--database-url", "sqlite:///:memory:", *self.extra_args]

    def start(self, timeout: float = 180, attempts: int = 3) -> ComfyServer:
        """Launch ComfyUI and wait until it answers as this server (its argv names our base directory)."""
        if not self.chosen_port:
            self.refuse_occupied_port()
        for attempt in range(1, attempts + 1):
            if self._launch(timeout):
                return self
            if not (self.chosen_port and attempt < attempts):
                break
            self.port = free_port()  # another process took the port between free_port() and ComfyUI's bind
        raise ComfyError(f"ComfyUI exited during start-up; see {self.log_path}:\n{self.log_tail()}")

    def _launch(self, timeout: float) -> bool:
        """True once ComfyUI answers as ours; False if it exited on a taken port we may replace; else raises."""
        log = open(self.log_path, "w")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.command(), cwd=comfyui_dir(), stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env})
        self._log = log
        foreign = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                if foreign is not None and not self.chosen_port:
                    raise ComfyError(self.occupied_message(foreign))
                if self.chosen_port and any(m in self.log_tail().lower() for m in BIND_FAILURES):
                    return False
                raise ComfyError(f"ComfyUI exited during start-up; see {self.log_path}:\n{self.log_tail()}")
            try:
                stats = self.get("/system_stats", timeout=2)
            except (OSError, ComfyError, ValueError):
                stats = None
            if stats is not None:
                if self.is_ours(stats):
                    return True
                foreign = stats  # someone else's ComfyUI answers: ours will fail to bind and exit
            time.sleep(0.25)
        self.stop()
        raise ComfyError(f"ComfyUI did not answer within {timeout}s; see {self.log_path}")

    def is_ours(self, stats) -> bool:
        """Whether a /system_stats reply comes from a ComfyUI serving this base directory."""
        base = answering_base(stats)
        return base is not None and Path(base).resolve() == self.base.resolve()

    def refuse_occupied_port(self) -> None:
        """Raise ComfyError if anything already listens on the port we were asked to use."""
        try:
            socket.create_connection((HOST, self.port), timeout=1).close()
        except OSError:
            return  # nothing listens: the port is free
        try:
            stats = self.get("/system_stats", timeout=5)
        except (OSError, ComfyError, ValueError):
            stats = None
        raise ComfyError(self.occupied_message(stats))

    def occupied_message(self, stats) -> str:
        if stats is None:
            who = "another program (not a ComfyUI)"
        else:
            who = f"another ComfyUI (base directory {answering_base(stats) or 'unknown'})"
            if self.is_ours(stats):
                who = f"another ComfyUI serving this same base directory {self.base}"
        return (f"port {self.port} is already answered by {who}, not by the ComfyUI started here: stop that one, "
                "or choose another port (--port)")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> ComfyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- HTTP -------------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, timeout: float = 60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, path: str, timeout: float = 60):
        status, body = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise ComfyError(f"GET {path} -> {status}: {body}")
        return body

    def queue(self, prompt: dict, workflow: dict | None = None) -> dict:
        """POST /prompt; returns the reply (prompt_id, node_errors) or raises with the validation errors."""
        body = {"prompt": prompt, "client_id": str(uuid.uuid4())}
        if workflow is not None:
            body["extra_data"] = {"extra_pnginfo": {"workflow": workflow}}
        status, reply = self.request("POST", "/prompt", body)
        if status != 200:
            raise ComfyError(f"prompt rejected ({status}): {json.dumps(reply, indent=1)}")
        return reply

    def wait(self, prompt_id: str, timeout: float = 600) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            history = self.get(f"/history/{prompt_id}")
            entry = history.get(prompt_id) if history else None
            if entry and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status["status_str"] != "success" or status["completed"]:
                    return entry
            time.sleep(0.1)
        raise ComfyError(f"prompt {prompt_id} did not finish within {timeout}s")

    def run(self, prompt: dict, workflow: dict | None = None, timeout: float = 600) -> dict:
        """Queue a prompt and wait; raises ComfyError with ComfyUI's own message on failure."""
        reply = self.queue(prompt, workflow)
        if reply.get("node_errors"):
            raise ComfyError(f"node errors: {json.dumps(reply['node_errors'], indent=1)}")
        entry = self.wait(reply["prompt_id"], timeout)
        if entry["status"]["status_str"] != "success":
            errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
            raise ComfyError(format_execution_errors(errors))
        return entry

    def view(self, image: dict) -> bytes:
        query = urllib.parse.urlencode({k: image[k] for k in ("filename", "subfolder", "type")})
        with urllib.request.urlopen(f"{self.url}/view?{query}", timeout=60) as r:
            return r.read()


def format_execution_errors(errors: list[dict]) -> str:
    return "\n".join(
        f"{e.get('node_type')} (node {e.get('node_id')}): {e.get('exception_type')}: {e.get('exception_message')}"
        for e in errors
    ) or "execution failed"
