"""Two processes on the CPU (gloo) through torch.distributed.run: both ranks end with identical weights."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")
REPO = Path(__file__).resolve().parents[2]


def test_two_ranks_end_with_identical_weights(tiny_base, tiny_dataset, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(WORKER), str(tiny_dataset), str(tiny_base), str(out), "3"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rank 0 of 2" in run.stdout and "rank 1 of 2" in run.stdout
    rank0, rank1 = load_file(out / "rank0.safetensors"), load_file(out / "rank1.safetensors")
    start = load_file(out / "checkpoints" / "step-000001" / "model.safetensors")
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert any(not torch.equal(rank0[k], start[k]) for k in rank0)  # they trained on after the checkpoint
    assert (out / "controlnet.safetensors").is_file()  # the main rank alone exports
