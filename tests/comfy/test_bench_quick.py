"""Smoke run of the benchmarks (`make bench QUICK=1`): the results file has every key and the invariants hold.

Correctness only: timings are never asserted (the quick mode's are meaningless, and CPUs are shared).
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# method.md 4.3 and 1.3, as independent data: the official starts, and the uniform DDIM timesteps t = 1 + k * 1000/N.
OFFICIAL_START_T = (911, 831, 751, 671, 591)
QUICK_EDIT_STEPS = 10  # run_bench.py --quick


def official_steps_run(steps: int) -> list[int]:
    """Per attribute, the DDIM steps the official code runs from its start (t <= t_start)."""
    timesteps = [1 + (1000 // steps) * k for k in range(steps)]
    return [sum(t <= start for t in timesteps) for start in OFFICIAL_START_T]


REQUIRED = ("overhead_wall_ratio", "overhead_unet_evals", "edit_unet_evals_ours", "edit_unet_evals_official",
            "mask_ms_512x704", "mask_ms_1024x1408", "preserve_max_abs_latent", "preserve_max_abs_pixels", "rss_ratio")


def test_quick_bench_writes_every_key_and_the_invariants_hold(comfy_base, tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run_bench.py"), "--quick", "--out", str(out),
         "--models-dir", str(comfy_base / "models"), "--work-dir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    r = json.loads(out.read_text())
    assert "overhead_wall_ratio" in done.stdout  # the table was printed

    missing = [k for k in REQUIRED if k not in r]
    assert not missing
    for key in ("nproc", "cpu_model", "torch", "device"):
        assert r["machine"][key]

    # 1. Equal UNet work in the overhead pair: same UNet calls, same calls with the pose ControlNet, same mask.
    hier, vanilla = r["overhead_unet_evals"]
    assert hier == vanilla > 0
    assert r["overhead_controlnet_evals"][0] == r["overhead_controlnet_evals"][1] > 0
    assert r["overhead_masks_equal"] is True
    # 'normal' at 6 steps visits t = 999, 799.2, ...: only the first lies above the edit start t = 911.
    assert r["overhead_vanilla_start_at_step"] == 1
    assert r["saving_unet_evals"][0] < r["saving_unet_evals"][1]  # the edit skips the steps before its start
    assert r["overhead_wall_ratio"] > 0

    # 2. One pass uses fewer UNet evaluations than the five sequential official runs.
    expected = official_steps_run(QUICK_EDIT_STEPS)  # [10, 9, 8, 7, 6]
    assert r["edit_official_start_steps"] == [QUICK_EDIT_STEPS - n for n in expected]
    calls_per_step = r["edit_unet_evals_ours"] // expected[0]  # cond and uncond: batched or not
    assert calls_per_step in (1, 2) and r["edit_unet_evals_ours"] == calls_per_step * expected[0]
    assert r["edit_unet_evals_official_runs"] == [calls_per_step * n for n in expected]
    assert r["edit_unet_evals_official"] == calls_per_step * sum(expected)

    # 3. Masks measured at both sizes.
    assert r["mask_ms_512x704"] > 0 and r["mask_ms_1024x1408"] > 0

    # 4. Exact preservation outside the mask, in the latent and (with Preserve Source) in pixels.
    assert r["preserve_max_abs_latent"] == 0
    assert r["preserve_max_abs_pixels"] == 0
    assert r["preserve_mean_abs_latent_change_inside"] > 0  # the edit did change the inside

    # 5. Peak RSS measured in fresh processes for both runs.
    assert r["rss_ratio"] > 0 and r["rss_peak_mib"]["edit"] > 0 and r["rss_peak_mib"]["vanilla"] > 0

    assert r["invariants_ok"] is True
