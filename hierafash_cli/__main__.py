"""`hierafash`: serve the pinned ComfyUI with this pack, run workflows headless, convert the official weights.

Set-up (torch and the pinned ComfyUI runtimes) is `make setup`, i.e. `python -m hierafash_cli.runtime install`.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from . import convert_cmd, dataset_cmd, eval_cmd, run_cmd, train_cmd
from .server import DEFAULT_HOME, DEVICES, ComfyServer, prepare_base


def cmd_serve(args) -> int:
    base = prepare_base(Path(args.home))
    server = ComfyServer(base, port=args.port, log_path=base / "comfyui.log", device=args.device)
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop ComfyUI with us (finally below), not orphan it
    print(f"ComfyUI with HieraFashDiff is running at {server.url}  (log: {server.log_path})")
    print(f"Models go in {base / 'models'}/checkpoints and /controlnet. Stop with Ctrl-C.")
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="hierafash", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start ComfyUI with this pack on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8188)
    serve.add_argument("--home", default=str(DEFAULT_HOME), help="ComfyUI base directory (models, input, output)")
    serve.add_argument("--device", choices=DEVICES, default="auto",
                       help="the GPU when torch sees one (auto, the default), or cpu / cuda")
    serve.set_defaults(func=cmd_serve)
    run_cmd.add_parser(sub)
    convert_cmd.add_parser(sub)
    train_cmd.add_parser(sub)
    eval_cmd.add_parser(sub)
    dataset_cmd.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
