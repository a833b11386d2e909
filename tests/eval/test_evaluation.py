"""Captions for CLIP-S as extra_txt.py cuts them, attribute sets, and pairing by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from hierafash_core.errors import HieraFashError
from hierafash_core.evaluation import attribute_ids, caption_items, check_same_names, first_items, read_captions
from hierafash_core.objective import caption_at
from hierafash_core.schedule import PAPER_BOUNDARIES

CAPTION = ("Coat, British Style, Office, Youthful, Drape Feeling, "
           "Long Coat, Long Sleeve, Regular Sleeve, Lapel Collar, Flat Hem")


def test_k_is_five_plus_the_attributes_edited():
    assert [caption_items(n) for n in (0, 1, 2, 5)] == [5, 6, 7, 10]


def test_attribute_sets_accept_ids_kinds_and_labels_in_paper_order():
    assert attribute_ids("A4+A2") == ("A2", "A4")
    assert attribute_ids("collar + sleeve_length") == ("A2", "A4")
    with pytest.raises(HieraFashError, match="joined by '\\+'"):
        attribute_ids("A2+pocket")


def test_captions_from_a_split_file_match_gt_or_gt_0_and_are_cut(tmp_path, test_json):
    split = test_json(tmp_path, ["000001", "000002_0"], [CAPTION, "Dress, Sweet, Date, Slimming, Playful Feeling"])
    images = [Path("000001_0.png"), Path("000002_0.png")]
    assert read_captions(images, split, k=6) == [
        "Coat, British Style, Office, Youthful, Drape Feeling, Long Coat",
        "Dress, Sweet, Date, Slimming, Playful Feeling",  # a caption shorter than k stays whole
    ]


def test_captions_from_text_files_are_paired_by_stem(tmp_path):
    (tmp_path / "a_0.txt").write_text(CAPTION + "\n", encoding="utf-8")
    (tmp_path / "b_0.txt").write_text("Skirt,Vintage,Party,Tall,Crisp Feeling,Long Skirt", encoding="utf-8")
    assert read_captions([Path("x/b_0.jpg"), Path("x/a_0.png")], tmp_path, k=5) == [
        "Skirt, Vintage, Party, Tall, Crisp Feeling", "Coat, British Style, Office, Youthful, Drape Feeling"]
    with pytest.raises(HieraFashError, match="no caption file .* e.g. c_0.txt"):
        read_captions([Path("c_0.png")], tmp_path, k=5)


def test_an_image_without_its_test_entry_is_an_error(tmp_path, test_json):
    split = test_json(tmp_path, ["000001"], [CAPTION])
    with pytest.raises(HieraFashError, match="1 images match no `gt`.*000009_0") as error:
        read_captions([Path("000001_0.png"), Path("000009_0.png")], split, k=10)
    assert error.value.input_name == "captions"


def test_pairing_ignores_extensions_and_names_the_strays():
    check_same_names([Path("a.png"), Path("b.png")], [Path("a.jpg"), Path("b.webp")], "--source", "--edited")
    with pytest.raises(HieraFashError, match=r"missing \['b'\], unmatched \['c'\]"):
        check_same_names([Path("a.png"), Path("b.png")], [Path("a.png"), Path("c.png")], "--source", "--edited")


def test_the_cut_is_trainings_caption_at_the_band_of_the_last_attribute_edited():
    band_timesteps = [999, *(int(b) - 1 for b in PAPER_BOUNDARIES)]  # noisiest t of each band: P_C, +A1, ..
    for edited, t in enumerate(band_timesteps[:6]):
        assert first_items(CAPTION, caption_items(edited)) == caption_at(CAPTION, t)
