"""Training step time: our hierarchical step (with and without --cache-text) versus a plain diffusers ControlNet
step with one fixed prompt, on the same tiny seeded models, paired and interleaved in one process.

    .venv-floor/bin/python bench/bench_train.py [--rounds 20] [--size 64] [--batch 4] [--device cpu|cuda]

The plain step is what diffusers' train_controlnet.py does per step: VAE posterior sample, t and noise,
text encoder on the (already tokenised) prompt, ControlNet, UNet, epsilon-MSE, backward, AdamW. Ours adds
drawing C(t) per sample and tokenising each truncation (or, with the cache, looking the embedding up).
Peak memory: each variant runs alone in a child process (peak RSS on the CPU, peak allocated on CUDA).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from train.tiny_models import CAPTIONS, build_base, build_dataset  # noqa: E402

from hierafash_train import models  # noqa: E402
from hierafash_train.data import SampleImages, TextEncoder, collate  # noqa: E402
from hierafash_train.loop import seeded_generator, training_loss  # noqa: E402
from hierafash_train.sampling import predict_noise  # noqa: E402

VARIANTS = ("plain", "ours", "ours_cached")


class Setup:
    """Models, optimizer and a fixed batch, as one training run would hold them."""

    def __init__(self, base_dir: Path, data_dir: Path, batch: int, device: str, cache: bool):
        from hierafash_core.dataset import read_split

        torch.manual_seed(0)
        self.base = models.load_base(base_dir)
        self.device = torch.device(device)
        for m in (self.base.unet, self.base.vae, self.base.text_encoder):
            m.to(self.device)
        self.controlnet = models.load_controlnet(self.base.unet).to(self.device).train()
        self.optimizer = torch.optim.AdamW(self.controlnet.parameters(), lr=1e-5)
        images = SampleImages(read_split(data_dir))
        self.batch = collate([images[i] for i in range(batch)])
        self.encode = TextEncoder(self.base.tokenizer, self.base.text_encoder, self.device, torch.float32, cache)
        if cache:
            self.encode.prefill(self.batch["caption"])
        self.prompt_ids = self.base.tokenizer([CAPTIONS[0]] * batch, padding="max_length", max_length=77,
                                              truncation=True, return_tensors="pt").input_ids.to(self.device)
        self.step_index = 0

    def ours(self) -> None:
        generator = seeded_generator(0, 2, self.step_index, 0)
        loss = training_loss(self.base, self.base.unet, self.controlnet, self.encode, self.batch, generator,
                             torch.float32, self.device)
        self._finish(loss)

    def plain(self) -> None:
        generator = seeded_generator(0, 2, self.step_index, 0)
        scheduler = self.base.noise_scheduler
        with torch.no_grad():
            posterior = self.base.vae.encode(self.batch["target"].to(self.device)).latent_dist
            latents = posterior.sample(generator=generator) * self.base.vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=generator).to(self.device)
        t = torch.randint(0, 1000, (latents.shape[0],), generator=generator).to(self.device)
        noisy = scheduler.add_noise(latents, noise, t)
        with torch.no_grad():
            context = self.base.text_encoder(self.prompt_ids)[0]
        prediction = predict_noise(self.base.unet, self.controlnet, noisy, t, context,
                                   self.batch["pose"].to(self.device), torch.float32)
        self._finish(torch.nn.functional.mse_loss(prediction.float(), noise.float()))

    def _finish(self, loss) -> None:
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.step_index += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_memory(variant: str, args, base_dir: Path, data_dir: Path) -> float:
    """MiB: peak RSS (CPU) or peak CUDA allocation of a child process running only this variant."""
    out = subprocess.run([sys.executable, __file__, "--memory-of", variant, "--base", str(base_dir),
                          "--data", str(data_dir), "--batch", str(args.batch), "--device", args.device,
                          "--rounds", "3"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds (each runs every variant once)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="image side in pixels (multiple of 64)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    ap.add_argument("--base", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--memory-of", choices=VARIANTS, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.memory_of:  # child: run one variant, report its peak
        setup = Setup(args.base, args.data, args.batch, args.device, args.memory_of == "ours_cached")
        step = setup.plain if args.memory_of == "plain" else setup.ours
        for _ in range(args.rounds):
            step()
        peak = (torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps({"peak_mib": round(peak, 1)}))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    base_dir = build_base(work / "base")
    data_dir = build_dataset(work / "data", n=max(8, args.batch), size=(args.size, args.size))
    setups = {v: Setup(base_dir, data_dir, args.batch, args.device, v == "ours_cached") for v in VARIANTS}
    steps = {"plain": setups["plain"].plain, "ours": setups["ours"].ours, "ours_cached": setups["ours_cached"].ours}
    for _ in range(args.warmup):
        for v in VARIANTS:
            steps[v]()
    times = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]  # alternate the order: no variant always runs first
        for v in order:
            times[v].append(timed(steps[v]))
    median = {v: statistics.median(ts) for v, ts in times.items()}
    result = {
        "device": args.device, "size": args.size, "batch": args.batch, "rounds": args.rounds,
        "step_ms_median": {v: round(1000 * m, 2) for v, m in median.items()},
        "ratio_ours_vs_plain": round(median["ours"] / median["plain"], 4),
        "ratio_ours_cached_vs_plain": round(median["ours_cached"] / median["plain"], 4),
        "pair_ratio_cached_median": round(statistics.median(
            c / p for c, p in zip(times["ours_cached"], times["plain"])), 4),
        "peak_mib": {v: peak_memory(v, args, base_dir, data_dir) for v in VARIANTS},
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
