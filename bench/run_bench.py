"""HieraFashDiff benchmarks: cost of the hierarchy, one-pass editing vs the official sequential edits, mask
speed, exact preservation, peak memory. Prints a table and writes bench/results.json.

    make bench                     # tiny seeded test models, full repeats (about 15 min on a shared 2-core CPU)
    make bench QUICK=1             # smoke mode: correctness only, timings meaningless
    make bench CKPT=/path/sd15.safetensors CONTROLNET=/path/openpose.safetensors ARGS="--width 256 --height 352"

Everything timed runs in ONE process (ComfyUI in-process, PromptExecutor) as paired, interleaved runs
whose model loading and upstream nodes are cached by a warm-up run first; only the sampler (new seed)
and what follows it re-execute. Peak RSS is per process, so each memory run gets a fresh subprocess.
See BENCHMARKS.md for how every pair is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:
    # Appended, not prepended: the repository's `nodes/` package must not shadow ComfyUI's `nodes` module.
    sys.path.append(str(REPO))

import graphs  # noqa: E402
import torch  # noqa: E402

from hierafash_cli.runtime import comfyui_dir, comfyui_version, installed_runtime  # noqa: E402
from hierafash_cli.server import prepare_base  # noqa: E402
from hierafash_core.noise import as_float32, timestep_to_percent  # noqa: E402
from hierafash_core.schedule import PAPER_BOUNDARIES, cut_percent  # noqa: E402

PROBE_PACK = BENCH / "comfy_nodes" / "hierafash_bench_probe"
TINY_BUILDER = REPO / "tests" / "support" / "build_tiny_models.py"
TINY_CKPT, TINY_CN = "tiny_sd15.safetensors", "tiny_pose_cn.safetensors"
OFFICIAL_STARTS = (8, 16, 24, 32, 40)  # DDIM indices of 100 steps: t = 911/831/751/671/591 (method.md 4.3)
# Independent of the code measured: the descending DDIM list of 100 steps is t = 1 + 10 k (method.md 1.3).
OFFICIAL_START_T = tuple(1 + 10 * (99 - index) for index in OFFICIAL_STARTS)  # A1..A5
PRESERVE_SAMPLERS = ("euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "ddim")
REQUIRED_KEYS = ("overhead_wall_ratio", "overhead_unet_evals", "edit_unet_evals_ours", "edit_unet_evals_official",
                 "mask_ms_512x704", "preserve_max_abs_latent", "preserve_max_abs_pixels", "rss_ratio")


@dataclasses.dataclass
class Config:
    quick: bool
    device: str
    width: int
    height: int
    overhead_steps: int = 20
    overhead_sampler: str = "euler"
    overhead_scheduler: str = "normal"
    overhead_rounds: int = 15
    saving_rounds: int = 5
    edit_steps: int = 100
    edit_rounds: int = 3
    preserve_seeds: int = 10
    preserve_steps: int = 20
    rss_repeats: int = 2
    rss_steps: int = 20
    mask_repeats: int = 200
    cfg: float = 5.0
    threads: int = 1


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke mode: few repeats, small sizes (not for timings)")
    ap.add_argument("--out", default=str(BENCH / "results.json"), help="where to write the results JSON")
    ap.add_argument("--ckpt", help="an SD1.5-family checkpoint (default: the tiny seeded test model)")
    ap.add_argument("--controlnet", help="a pose ControlNet matching --ckpt (--ckpt without --controlnet: every "
                                         "graph runs without a ControlNet)")
    ap.add_argument("--image", help="source image to edit (default: seeded noise); scaled to --width x --height")
    ap.add_argument("--width", type=int, help="image width (default 64 with the tiny models, 512 with --ckpt)")
    ap.add_argument("--height", type=int, help="image height (default 88 with the tiny models, 704 with --ckpt)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: CUDA when present, else CPU")
    ap.add_argument("--threads", type=int, help="torch intra-op threads on CPU (default 1: stable paired timings on "
                                                "a shared machine; the ratios are what is reported)")
    ap.add_argument("--rounds", type=int, help="paired rounds for the overhead (default 15, quick 2)")
    ap.add_argument("--edit-rounds", type=int, help="paired rounds for the edit comparison (default 3, quick 1)")
    ap.add_argument("--models-cache", help="where the tiny models are built (default ~/.cache/hierafashdiff)")
    ap.add_argument("--models-dir", help="tiny models already built (checkpoints/, controlnet/ inside): no build")
    ap.add_argument("--work-dir", help="ComfyUI base directory to use (default: a temporary one, removed after)")
    ap.add_argument("--verbose", action="store_true", help="show ComfyUI's own log")
    ap.add_argument("--rss-child", choices=("edit", "vanilla"), help=argparse.SUPPRESS)
    ap.add_argument("--child-setup", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def make_config(a) -> Config:
    device = a.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    tiny = a.ckpt is None
    # The tiny UNet's cost is dominated by its weights, not the latent size: 64 x 88 (the official 512 x 704
    # aspect) keeps the 380-step official chain affordable on a CPU.
    width = a.width or (64 if tiny else 512)
    height = a.height or (88 if tiny else 704)
    if width % 8 or height % 8:
        raise SystemExit(f"--width and --height must be multiples of 8, not {width} x {height}")
    c = Config(quick=a.quick, device=device, width=width, height=height)
    c.threads = a.threads or (1 if device == "cpu" else torch.get_num_threads())
    if a.quick:
        c.overhead_steps, c.overhead_rounds, c.saving_rounds, c.edit_steps, c.edit_rounds = 6, 2, 1, 10, 1
        c.preserve_seeds, c.preserve_steps, c.rss_repeats, c.rss_steps, c.mask_repeats = 5, 4, 1, 4, 20
    c.overhead_rounds = a.rounds or c.overhead_rounds
    c.edit_rounds = a.edit_rounds or c.edit_rounds
    return c


# --- models, base directory, source image ------------------------------------------------------------------


def tiny_models(cache: Path | None) -> Path:
    """The seeded tiny checkpoint and pose ControlNet, built once per version of the builder script."""
    digest = hashlib.sha256(TINY_BUILDER.read_bytes()).hexdigest()[:12]
    root = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hierafashdiff"
    target = root / f"tiny-models-{digest}"
    if (target / "checkpoints" / TINY_CKPT).is_file() and (target / "controlnet" / TINY_CN).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="building-", dir=root))
    print(f"building the tiny test models into {target} ...", flush=True)
    subprocess.run([sys.executable, str(TINY_BUILDER), "--out", str(building)], cwd=comfyui_dir(), check=True)
    try:
        building.rename(target)
    except OSError:  # built concurrently by another run
        shutil.rmtree(building, ignore_errors=True)
    return target


def link_model(base: Path, folder: str, path: Path) -> str:
    dest = base / "models" / folder / path.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    dest.symlink_to(path.resolve())
    return path.name


def write_source(base: Path, c: Config, image: str | None) -> str:
    import numpy as np
    from PIL import Image

    if image:
        picture = Image.open(image).convert("RGB").resize((c.width, c.height), Image.LANCZOS)
    else:
        rng = np.random.default_rng(7)
        picture = Image.fromarray(rng.integers(0, 256, (c.height, c.width, 3), dtype=np.uint8))
    name = f"bench_source_{c.width}x{c.height}.png"
    picture.save(base / "input" / name)
    return name


def load() -> dict:
    """How busy the machine was: load averages and (Linux PSI) the share of time runnable tasks waited for a CPU."""
    out = {"loadavg": [round(x, 2) for x in os.getloadavg()]} if hasattr(os, "getloadavg") else {}
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        out["cpu_pressure_avg60_pct"] = float(dict(f.split("=") for f in some[1:])["avg60"])
    except (OSError, IndexError, KeyError, ValueError):
        pass
    return out


def machine(device_name: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device_name,
        "python": platform.python_version(),
        "comfyui": comfyui_version(),
        "runtime": installed_runtime().name,
        "platform": platform.platform(),
    }
    if device_name.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# --- 3. masks ----------------------------------------------------------------------------------------------


def bench_masks(c: Config) -> dict:
    saved = list(sys.path)
    try:
        import bench_masks  # a colleague's benchmark; it puts the repository first on sys.path
    finally:
        sys.path[:] = saved
    figures = bench_masks.measure(repeats=c.mask_repeats, warmup=3 if c.quick else 10)
    out = {"mask_figures": figures}
    for f in figures:
        key = f"mask_ms_{f['width']}x{f['height']}" + ("" if f["edge"] == "hard" else f"_{f['edge']}")
        out[key] = round(f["median_ms"], 3)
    return out


# --- shared helpers ----------------------------------------------------------------------------------------


def interleaved(rt, variants: dict, rounds: int, seed0: int) -> dict:
    """Run each variant once per round with the round's seed, rotating the order each round (two variants:
    AB, BA, AB, ...), so that slow drifts of the machine's load hit both alike.

    Returns per variant: wall seconds, process CPU seconds and seconds inside model evaluations per round,
    and the UNet counts per counter tag (checked to be the same every round).
    """
    names = list(variants)
    walls, cpus, model = ({n: [] for n in names} for _ in range(3))
    counts: dict = {}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            prompt = variants[name](seed0 + r)
            walls[name].append(rt.run(prompt))
            cpus[name].append(rt.last_cpu_s)
            model[name].append(sum(v for tag, v in rt.model_s.items() if tag_of(prompt, tag)))
            log(f"  round {r + 1}/{rounds} {name}: {walls[name][-1]:.3f} s (model {model[name][-1]:.3f} s)")
            got = {tag: dict(v) for tag, v in rt.counts.items() if tag_of(prompt, tag)}
            if name in counts and counts[name] != got:
                raise RuntimeError(f"{name}: UNet counts changed between rounds: {counts[name]} -> {got}")
            counts[name] = got
    return {"walls": walls, "cpus": cpus, "model": model, "counts": counts}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warmup(rt, prompt: dict, steps: int = 2) -> None:
    """Run `prompt` with every sampler stopped `steps` steps after its start: every node upstream of the
    samplers (model loads, text encodes, masks, ControlNet hint) is then cached for the timed runs, whose
    sampler inputs differ only by the seed and end_at_step."""
    short = json.loads(json.dumps(prompt))
    for node in short.values():
        if node["class_type"] == "KSamplerAdvanced":
            node["inputs"]["end_at_step"] = node["inputs"]["start_at_step"] + steps
    rt.run(short)


def tag_of(prompt: dict, tag: str) -> bool:
    return any(n["class_type"] == "HieraFashBenchCounter" and n["inputs"]["tag"] == tag for n in prompt.values())


def median(values) -> float:
    return statistics.median(values)


def skipped_steps(model_sampling, scheduler: str, steps: int, t_start: float = OFFICIAL_START_T[0]) -> int:
    """Steps whose noise level lies above DDPM timestep t_start, computed from the model's schedule,
    independently of the nodes. For t_start = 911 (A1): where Attribute Edit 'all' skips the UNet, and so
    where the equal-work vanilla run starts; for the five official starts: their step indices."""
    import comfy.samplers

    sigmas = as_float32(comfy.samplers.calculate_sigmas(model_sampling, scheduler, steps).tolist())[:-1]
    start = float(model_sampling.percent_to_sigma(timestep_to_percent(t_start + 0.5)))
    threshold = float(as_float32([start])[0])
    return int((sigmas > threshold).sum())


# --- 1. overhead -------------------------------------------------------------------------------------------


def bench_overhead(rt, s: graphs.Setup, c: Config) -> dict:
    steps, sampler, scheduler = c.overhead_steps, c.overhead_sampler, c.overhead_scheduler
    band_start = cut_percent(PAPER_BOUNDARIES[0])  # the "attribute stages" pose band: from t = 900 down
    common = {"steps": steps, "sampler": sampler, "scheduler": scheduler}

    def hier(seed):
        return graphs.hierarchical(s, tag="hier", seed=seed, band=graphs.BAND_ATTRIBUTES, **common)

    warmup(rt, hier(0))  # also keeps the model's model_sampling, for the schedule below
    k = skipped_steps(rt.model_sampling, scheduler, steps)

    def matched(seed):
        return graphs.vanilla(s, tag="vanilla", seed=seed, band_start=band_start, start_at_step=k, **common)

    def full(seed):
        return graphs.vanilla(s, tag="vanilla_full", seed=seed, band_start=band_start, **common)

    for make in (matched, full):
        warmup(rt, make(0))
    masks_equal = bool(torch.equal(rt.captured["hier"]["mask"], rt.captured["vanilla"]["mask"]))
    runs = interleaved(rt, {"hier": hier, "vanilla": matched}, c.overhead_rounds, seed0=100)
    walls, counts = runs["walls"], runs["counts"]
    med = {n: median(w) for n, w in walls.items()}
    cpu = {n: median(w) for n, w in runs["cpus"].items()}
    outside = {n: median(w - m for w, m in zip(walls[n], runs["model"][n])) for n in walls}
    per_pair = [h / v for h, v in zip(walls["hier"], walls["vanilla"])]
    n = {name: counts[name][name]["calls"] for name in walls}
    ctrl = {name: counts[name][name]["control_calls"] for name in walls}
    saving = interleaved(rt, {"hier": hier, "vanilla_full": full}, c.saving_rounds, seed0=500)
    return {
        "overhead_wall_ratio": round(med["hier"] / med["vanilla"], 4),
        "overhead_unet_evals": [n["hier"], n["vanilla"]],
        "overhead_controlnet_evals": [ctrl["hier"], ctrl["vanilla"]],
        "overhead_unet_rows": [counts["hier"]["hier"]["rows"], counts["vanilla"]["vanilla"]["rows"]],
        "overhead_masks_equal": masks_equal,
        "overhead_pair_ratio_median": round(median(per_pair), 4),
        "overhead_pair_ratios": [round(x, 4) for x in per_pair],
        "overhead_cpu_ratio": round(cpu["hier"] / cpu["vanilla"], 4),
        "overhead_median_s": {k_: round(v, 4) for k_, v in med.items()},
        # Time outside model evaluations (sampler loop, conds, masks, wrappers, executor): the part the
        # hierarchy can add, free of the UNet's timing noise on a shared CPU.
        "overhead_outside_model_ms": [round(1000 * outside["hier"], 1), round(1000 * outside["vanilla"], 1)],
        "overhead_ratio_outside_model": round(1 + (outside["hier"] - outside["vanilla"]) / med["vanilla"], 4),
        "overhead_vanilla_start_at_step": k,
        "overhead_rounds": c.overhead_rounds,
        "overhead_setup": f"{steps} steps {sampler}/{scheduler}, {s.width}x{s.height}, cfg {c.cfg}",
        "saving_wall_ratio": round(median(saving["walls"]["hier"]) / median(saving["walls"]["vanilla_full"]), 4),
        "saving_unet_evals": [saving["counts"]["hier"]["hier"]["calls"],
                              saving["counts"]["vanilla_full"]["vanilla_full"]["calls"]],
        "saving_rounds": c.saving_rounds,
    }


# --- 2. five-attribute edit --------------------------------------------------------------------------------


def bench_edit(rt, s: graphs.Setup, c: Config) -> dict:
    steps = c.edit_steps
    # The official starts are noise levels (t = 911/831/751/671/591): DDIM indices 8/16/24/32/40 at 100 steps.
    starts = tuple(skipped_steps(rt.model_sampling, "ddim_uniform", steps, t) for t in OFFICIAL_START_T)
    if steps == 100 and starts != OFFICIAL_STARTS:
        log(f"WARNING: this model's official start indices are {starts}, not {OFFICIAL_STARTS}")

    def ours(seed):
        return graphs.hierarchical(s, tag="ours", seed=seed, steps=steps, sampler="ddim", scheduler="ddim_uniform",
                                   band=graphs.BAND_ALL)

    def official(seed):
        return graphs.official_chain(s, tag="official", seed=seed, steps=steps, starts=starts)

    variants = {"ours": ours, "official": official}
    for make in variants.values():
        warmup(rt, make(0))
    runs = interleaved(rt, variants, c.edit_rounds, seed0=200)
    walls, counts = runs["walls"], runs["counts"]
    official_runs = [counts["official"][f"official_{i + 1}"]["calls"] for i in range(len(OFFICIAL_STARTS))]
    return {
        "edit_unet_evals_ours": counts["ours"]["ours"]["calls"],
        "edit_unet_evals_official": sum(official_runs),
        "edit_unet_evals_official_runs": official_runs,
        "edit_official_start_steps": list(starts),
        "edit_wall_ratio": round(median(walls["ours"]) / median(walls["official"]), 4),
        "edit_cpu_ratio": round(median(runs["cpus"]["ours"]) / median(runs["cpus"]["official"]), 4),
        "edit_median_s": {"ours": round(median(walls["ours"]), 4), "official": round(median(walls["official"]), 4)},
        "edit_rounds": c.edit_rounds,
        "edit_setup": f"{steps} steps ddim/ddim_uniform, official starts {list(starts)}, "
                      f"{s.width}x{s.height}, cfg {c.cfg}",
    }


# --- 4. preservation ---------------------------------------------------------------------------------------


def bench_preservation(rt, s: graphs.Setup, c: Config) -> dict:
    import comfy.utils

    worst_latent = worst_pixels = worst_raw = 0.0
    inside_change = []
    used = []
    for i in range(c.preserve_seeds):
        sampler = PRESERVE_SAMPLERS[i % len(PRESERVE_SAMPLERS)]
        used.append(sampler)
        prompt = graphs.hierarchical(s, tag="preserve", seed=300 + i, steps=c.preserve_steps, sampler=sampler,
                                          scheduler="normal", band=graphs.BAND_ATTRIBUTES, decode=True, preserve=True)
        rt.run(prompt)
        got = rt.captured["preserve"]
        out, src, mask = got["latent"], got["source_latent"], got["mask"].float().cpu()
        outside = comfy.utils.reshape_mask(mask, out.shape) == 0
        if not outside.any() or outside.all():
            raise RuntimeError("the edit mask must leave some latent outside and some inside")
        diff = (out - src).abs()
        worst_latent = max(worst_latent, float(diff[outside].max()))
        inside_change.append(float(diff[~outside].mean()))
        source = got["source_image"].float().cpu()
        keep = (mask.reshape(-1, *mask.shape[-2:]) == 0).unsqueeze(-1).expand_as(source)
        worst_pixels = max(worst_pixels, float((got["image"].float().cpu() - source).abs()[keep].max()))
        worst_raw = max(worst_raw, float((got["raw_image"].float().cpu() - source).abs()[keep].max()))
    return {
        "preserve_max_abs_latent": worst_latent,
        "preserve_max_abs_pixels": worst_pixels,
        "preserve_max_abs_pixels_without_preserve_node": round(worst_raw, 6),
        "preserve_mean_abs_latent_change_inside": round(statistics.mean(inside_change), 6),
        "preserve_seeds": c.preserve_seeds,
        "preserve_samplers": used,
        "preserve_setup": f"{c.preserve_steps} steps, scheduler normal, {s.width}x{s.height}",
    }


# --- 5. memory (one fresh process per run) -----------------------------------------------------------------


def peak_rss_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def rss_child(a) -> None:
    """Child process: start ComfyUI, run one edit or vanilla inpaint graph, print the peak RSS as JSON."""
    setup = json.loads(a.child_setup)
    s = graphs.Setup(**setup["setup"])
    c = Config(**setup["config"])
    torch.set_num_threads(c.threads)
    from comfy_inprocess import InProcessComfy

    rt = InProcessComfy(Path(setup["base"]), c.device, verbose=a.verbose)
    after_init = peak_rss_kib()
    common = {"seed": 1, "steps": c.rss_steps, "sampler": c.overhead_sampler,
              "scheduler": c.overhead_scheduler, "decode": True}
    if a.rss_child == "edit":
        prompt = graphs.hierarchical(s, tag="rss", band=graphs.BAND_ATTRIBUTES, preserve=True, **common)
    else:
        prompt = graphs.vanilla(s, tag="rss", band_start=cut_percent(PAPER_BOUNDARIES[0]), **common)
    rt.run(prompt)
    report = {"kind": a.rss_child, "vmhwm_kib_after_init": after_init, "vmhwm_kib": peak_rss_kib(),
              "unet_evals": rt.counts["rss"]["calls"]}
    if c.device == "cuda":
        report["cuda_peak_kib"] = torch.cuda.max_memory_allocated() // 1024
    print(json.dumps(report))


def bench_rss(a, s: graphs.Setup, c: Config, base: Path) -> dict:
    payload = json.dumps({"setup": dataclasses.asdict(s), "config": dataclasses.asdict(c), "base": str(base)})
    results: dict = {"edit": [], "vanilla": []}
    for _ in range(c.rss_repeats):
        # Peak RSS is per process and does not depend on timing, so each pair runs side by side.
        children = {}
        for kind in results:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", kind, "--child-setup", payload]
            children[kind] = subprocess.Popen(cmd + (["--verbose"] if a.verbose else []), stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True)
        for kind, child in children.items():
            stdout, stderr = child.communicate()
            if child.returncode:
                raise RuntimeError(f"memory run ({kind}) failed:\n{stderr[-4000:]}")
            results[kind].append(json.loads(stdout.strip().splitlines()[-1]))
    edit = median(x["vmhwm_kib"] for x in results["edit"])
    vanilla = median(x["vmhwm_kib"] for x in results["vanilla"])
    grow_edit = median(x["vmhwm_kib"] - x["vmhwm_kib_after_init"] for x in results["edit"])
    grow_vanilla = median(x["vmhwm_kib"] - x["vmhwm_kib_after_init"] for x in results["vanilla"])
    return {
        "rss_ratio": round(edit / vanilla, 4),
        "rss_peak_mib": {"edit": round(edit / 1024, 1), "vanilla": round(vanilla / 1024, 1)},
        "rss_growth_after_init_mib": {"edit": round(grow_edit / 1024, 1), "vanilla": round(grow_vanilla / 1024, 1)},
        "rss_unet_evals": {k: results[k][0]["unet_evals"] for k in results},
        **({"cuda_peak_ratio": round(median(x["cuda_peak_kib"] for x in results["edit"])
                                     / median(x["cuda_peak_kib"] for x in results["vanilla"]), 4)}
           if c.device == "cuda" else {}),
        "rss_repeats": c.rss_repeats,
    }


# --- report ------------------------------------------------------------------------------------------------


def table(r: dict) -> str:
    def fmt(v):
        return json.dumps(v) if isinstance(v, (list, dict, bool)) else f"{v:g}" if isinstance(v, float) else str(v)

    rows = [
        ("overhead_wall_ratio", "<= 1.02", "hierarchical / vanilla, median of paired runs, equal UNet work"),
        ("overhead_pair_ratio_median", "", "median of the per-pair ratios"),
        ("overhead_ratio_outside_model", "<= 1.02", "1 + extra time outside model evaluations / vanilla wall"),
        ("overhead_outside_model_ms", "", "median ms per run outside model evaluations [hier, vanilla]"),
        ("overhead_unet_evals", "equal", "UNet calls [hierarchical, vanilla]"),
        ("overhead_controlnet_evals", "equal", "UNet calls carrying the pose ControlNet"),
        ("saving_wall_ratio", "", "hierarchical edit / full-length vanilla inpaint (same steps)"),
        ("saving_unet_evals", "", "[hierarchical, full-length vanilla]"),
        ("edit_unet_evals_ours", "92 at 100 steps", "one pass, five attributes"),
        ("edit_unet_evals_official", "380 at 100 steps", "five sequential runs"),
        ("edit_unet_evals_official_runs", "", "per official run"),
        ("edit_wall_ratio", "", "ours / official, median of paired runs"),
        ("mask_ms_512x704", "< 5", "ms per person, all attribute masks"),
        ("mask_ms_512x704_feathered", "", "same, feathered edges"),
        ("mask_ms_1024x1408", "", "ms per person, all attribute masks"),
        ("mask_ms_1024x1408_feathered", "", "same, feathered edges"),
        ("preserve_max_abs_latent", "0", f"outside the mask, {r.get('preserve_seeds')} seeds"),
        ("preserve_max_abs_pixels", "0", "outside the mask, Preserve Source on"),
        ("preserve_max_abs_pixels_without_preserve_node", "", "VAE round trip alone, for scale"),
        ("rss_ratio", "<= 1.02", "peak RSS edit / vanilla inpaint, fresh process each"),
        ("rss_peak_mib", "", "peak RSS, MiB"),
    ]
    lines = ["| metric | value | target | what |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {fmt(r[k])} | {t} | {w} |" for k, t, w in rows if k in r]
    m = r["machine"]
    lines.append("")
    threads = f"{m['torch_threads']} intra-op thread" + ("s" if m["torch_threads"] != 1 else "")
    lines.append(f"machine: {m['nproc']} CPUs ({m['cpu_model']}), torch {m['torch']} ({threads}), "
                 f"device {m['device']}{' ' + m['gpu'] if 'gpu' in m else ''}, ComfyUI {m['comfyui']}, "
                 f"Python {m['python']}; load {m.get('load_at_start')} -> {m.get('load_at_end')}")
    return "\n".join(lines)


def check_invariants(r: dict) -> list[str]:
    problems = [f"missing key {k}" for k in REQUIRED_KEYS if k not in r]
    if not problems:
        a, b = r["overhead_unet_evals"]
        if a != b or a == 0:
            problems.append(f"overhead pair UNet counts differ: {a} vs {b}")
        if r["overhead_controlnet_evals"][0] != r["overhead_controlnet_evals"][1]:
            problems.append(f"overhead pair ControlNet counts differ: {r['overhead_controlnet_evals']}")
        if not r["overhead_masks_equal"]:
            problems.append("the vanilla union mask differs from Attribute Edit's edit_mask")
        if not r["edit_unet_evals_ours"] < r["edit_unet_evals_official"]:
            problems.append("one-pass editing did not use fewer UNet evaluations than the official chain")
        if r["preserve_max_abs_latent"] != 0 or r["preserve_max_abs_pixels"] != 0:
            problems.append("preservation is not exact outside the mask")
    return problems


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.rss_child:
        rss_child(a)
        return 0
    started = time.perf_counter()
    c = make_config(a)
    torch.set_num_threads(c.threads)
    load_at_start = load()
    temporary = a.work_dir is None
    work = Path(a.work_dir or tempfile.mkdtemp(prefix="hierafash-bench-")).resolve()
    try:
        base = prepare_base(work / "base", {"hierafash_bench_probe": PROBE_PACK})
        if a.ckpt:
            ckpt = link_model(base, "checkpoints", Path(a.ckpt))
            cn = link_model(base, "controlnet", Path(a.controlnet)) if a.controlnet else None
        else:
            if a.models_dir:
                models = Path(a.models_dir).resolve()
            else:
                models = tiny_models(Path(a.models_cache).resolve() if a.models_cache else None)
            ckpt = link_model(base, "checkpoints", models / "checkpoints" / TINY_CKPT)
            cn = link_model(base, "controlnet", Path(a.controlnet) if a.controlnet else models / "controlnet" / TINY_CN)
        s = graphs.Setup(ckpt=ckpt, controlnet=cn, source=write_source(base, c, a.image), width=c.width,
                         height=c.height, cfg=c.cfg)
        results: dict = {"quick": c.quick, "models": {"checkpoint": a.ckpt or f"tiny ({TINY_CKPT})",
                                                      "controlnet": a.controlnet or (cn and f"tiny ({TINY_CN})")}}
        phases = results["phase_s"] = {}

        def phase(name, message, fn, *args):
            print(message, flush=True)
            t0 = time.perf_counter()
            results.update(fn(*args))
            phases[name] = round(time.perf_counter() - t0, 1)

        phase("memory", f"[1/5] memory: {c.rss_repeats} pair(s) of fresh processes ...", bench_rss, a, s, c, base)
        phase("masks", "[2/5] masks ...", bench_masks, c)
        from comfy_inprocess import InProcessComfy

        t0 = time.perf_counter()
        rt = InProcessComfy(base, c.device, verbose=a.verbose)
        phases["comfyui_init"] = round(time.perf_counter() - t0, 1)
        results["machine"] = machine(rt.device_name)
        phase("overhead", f"[3/5] overhead: {c.overhead_rounds} interleaved rounds ...", bench_overhead, rt, s, c)
        phase("edit", f"[4/5] five-attribute edit: {c.edit_rounds} interleaved rounds ...", bench_edit, rt, s, c)
        phase("preservation", f"[5/5] preservation: {c.preserve_seeds} seeds ...", bench_preservation, rt, s, c)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    results["total_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_at_start"], results["machine"]["load_at_end"] = load_at_start, load()
    problems = check_invariants(results)
    results["invariants_ok"] = not problems
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))
    print(f"\nwrote {out} in {results['total_s']} s{' (QUICK: timings are not meaningful)' if c.quick else ''}")
    for p in problems:
        print(f"INVARIANT FAILED: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
