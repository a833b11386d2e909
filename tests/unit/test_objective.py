"""The hierarchical objective: C(t) against the official rule, and the per-sample loss step."""

import random
from pathlib import Path

import pytest
import torch

from hierafash_core.errors import HieraFashError
from hierafash_core.objective import (
    add_noise,
    caption_at,
    distinct_captions,
    drop_captions,
    hierarchical_loss,
    prediction_target,
)
from hierafash_core.vocab import CONCEPT_FIELDS, attribute_kinds, concept_values


def official_t_conditioning(caption: str, t: int) -> str:
    """`get_t_conditioning` as method.md §1.2 states it: cut to the first k comma items, re-joined with ","."""
    for low, high, k in ((900, 1000, 5), (800, 900, 6), (710, 800, 7), (630, 710, 8), (560, 630, 9), (500, 560, 10)):
        if low <= t < high:
            return ",".join(caption.split(",")[:k])
    return caption


def vocabulary_caption(n_items: int, rng: random.Random) -> str:
    """A caption as the dataset writes them: concepts, attributes A1..A5, then free-text items."""
    items = [rng.choice(concept_values(field)) for field in CONCEPT_FIELDS]
    items += [rng.choice(kind.values) for kind in attribute_kinds()]
    items += [f"detail {i}" for i in range(n_items - len(items))]
    return ", ".join(items[:n_items])


CAPTIONS = [vocabulary_caption(n, random.Random(n)) for n in range(5, 13)]


def items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",")]


@pytest.mark.parametrize("caption", CAPTIONS, ids=lambda c: f"{len(items(c))}items")
def test_caption_at_is_the_official_rule_for_every_timestep(caption):
    for t in range(1000):
        assert items(caption_at(caption, t)) == items(official_t_conditioning(caption, t)), t


@pytest.mark.parametrize("t, kept", [(999, 5), (900, 5), (899, 6), (800, 6), (799, 7), (710, 7), (709, 8),
                                     (630, 8), (629, 9), (560, 9), (559, 10), (500, 10), (499, 12), (0, 12)])
def test_band_boundaries_on_a_twelve_item_caption(t, kept):
    assert len(items(caption_at(CAPTIONS[-1], t))) == kept


def comfy_clip_tokenizer():
    transformers = pytest.importorskip("transformers")
    from hierafash_cli.runtime import comfyui_dir

    folder = Path(comfyui_dir()) / "comfy" / "sd1_tokenizer"
    return transformers.CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)


def test_same_clip_tokens_as_the_official_rule():
    tokenizer = comfy_clip_tokenizer()
    for caption in CAPTIONS:
        for t in range(1000):
            ours, official = caption_at(caption, t), official_t_conditioning(caption, t)
            if ours != official:
                assert tokenizer(ours).input_ids == tokenizer(official).input_ids, (t, ours, official)


def test_distinct_captions_are_all_truncations_noisiest_first():
    caption = CAPTIONS[-1]
    every_t = {caption_at(caption, t) for t in range(1000)}
    found = distinct_captions(caption)
    assert set(found) == every_t and len(found) == 7
    assert [len(items(c)) for c in found] == [5, 6, 7, 8, 9, 10, 12]
    assert len(distinct_captions(CAPTIONS[0])) == 1  # a concept-only caption never changes


def test_timestep_outside_the_axis_is_refused():
    with pytest.raises(HieraFashError, match="outside 0..999"):
        caption_at(CAPTIONS[0], 1000)


ALPHAS = torch.cumprod(1 - torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2, 0)


def test_noising_and_targets_follow_their_definitions():
    x0, eps = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    t = torch.tensor([0, 500, 999])
    for i, ti in enumerate(t.tolist()):
        a = ALPHAS[ti]
        assert torch.allclose(add_noise(x0, eps, t, ALPHAS)[i], a.sqrt() * x0[i] + (1 - a).sqrt() * eps[i])
        v = prediction_target(x0, eps, t, ALPHAS, "v_prediction")[i]
        assert torch.allclose(v, a.sqrt() * eps[i] - (1 - a).sqrt() * x0[i])
    assert torch.equal(prediction_target(x0, eps, t, ALPHAS, "epsilon"), eps)
    with pytest.raises(HieraFashError, match="prediction type"):
        prediction_target(x0, eps, t, ALPHAS, "sample")


class TinyEncoder(torch.nn.Module):
    """Captions -> one learned vector per item count, so the context shows which truncation was encoded."""

    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(16, 4)
        self.seen: list[str] = []

    def forward(self, captions):
        self.seen.extend(captions)
        return self.table(torch.tensor([len(items(c)) for c in captions]))


class TinyDenoiser(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.text = torch.nn.Linear(4, 4)

    def forward(self, noisy, t, context):
        return self.scale * noisy + self.text(context)[:, :, None, None]


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_loss_step_truncates_per_sample_and_trains_only_the_denoiser(prediction_type):
    encoder, denoiser = TinyEncoder(), TinyDenoiser()
    latents = torch.randn(4, 4, 2, 2)
    captions = [CAPTIONS[-1]] * 4
    loss, t = hierarchical_loss(denoiser, encoder, latents, captions, ALPHAS, prediction_type,
                                torch.Generator().manual_seed(3))
    assert encoder.seen == [caption_at(c, ti) for c, ti in zip(captions, t.tolist())]
    # the same draw, recomputed by hand from the definitions
    generator = torch.Generator().manual_seed(3)
    t_again = torch.randint(0, 1000, (4,), generator=generator)
    noise = torch.randn(latents.shape, generator=generator)
    assert torch.equal(t, t_again)
    with torch.no_grad():
        context = encoder(encoder.seen[:4])
        expected = torch.mean((denoiser(add_noise(latents, noise, t, ALPHAS), t, context)
                               - prediction_target(latents, noise, t, ALPHAS, prediction_type)) ** 2)
    assert torch.allclose(loss, expected)
    loss.backward()
    assert denoiser.scale.grad is not None and denoiser.text.weight.grad is not None
    assert encoder.table.weight.grad is None  # the text encoder is frozen: no gradient reaches it


def test_loss_step_refuses_mismatched_captions():
    with pytest.raises(HieraFashError, match="2 captions for a batch of 4"):
        hierarchical_loss(TinyDenoiser(), TinyEncoder(), torch.randn(4, 4, 2, 2), ["a", "b"], ALPHAS)


def test_caption_dropout_empties_its_share_and_without_it_draws_nothing():
    captions = [f"caption {i}" for i in range(4000)]
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    assert drop_captions(captions, 0.0, generator) == captions
    assert torch.equal(generator.get_state(), state)  # runs without dropout keep their random stream
    dropped = drop_captions(captions, 0.25, generator)
    kept = [(c, d) for c, d in zip(captions, dropped) if d]
    assert all(c == d for c, d in kept)
    assert abs(dropped.count("") / len(captions) - 0.25) < 0.03
    for bad in (1.0, -0.1):
        with pytest.raises(HieraFashError, match="must be in") as refused:
            drop_captions(captions, bad)
        assert refused.value.input_name == "empty_prompts"


def test_loss_step_with_caption_dropout_encodes_empty_prompts_for_the_dropped_samples():
    encoder = TinyEncoder()
    captions = [CAPTIONS[-1]] * 64
    _, t = hierarchical_loss(TinyDenoiser(), encoder, torch.randn(64, 4, 2, 2), captions, ALPHAS,
                             generator=torch.Generator().manual_seed(3), empty_prompts=0.5)
    truncated = [caption_at(c, ti) for c, ti in zip(captions, t.tolist())]
    assert 16 < encoder.seen.count("") < 48
    assert all(seen in ("", expected) for seen, expected in zip(encoder.seen, truncated))
