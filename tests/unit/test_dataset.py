"""The dataset layout (train.json / test.json) and the validator's messages."""

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from hierafash_core.dataset import DatasetError, Sample, check_dataset, read_split

CAPTION = ("Dress, Elegant, Party, Elongate Neck, Sense of Agility and Elegance, Long Dress, Short Sleeve, "
           "Regular Sleeve, V-Neck, Draped Hem")


def write_dataset(root: Path, entries_by_split: dict, sizes: dict) -> None:
    """Images named in `sizes` (relative path -> (w, h)) and one JSON file per split."""
    for rel, size in sizes.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (255, 255, 255)).save(root / rel)
    for split, entries in entries_by_split.items():
        (root / f"{split}.json").write_text(json.dumps(entries))


def entry(name: str, caption: str = CAPTION) -> dict:
    return {"gt": f"train_images/{name}.jpg", "pose": f"train_pose/pose_images/{name}.png", "caption": caption}


def images(name: str, size=(128, 192), pose_size=None) -> dict:
    return {f"train_images/{name}.jpg": size, f"train_pose/pose_images/{name}.png": pose_size or size}


def test_a_clean_dataset_reads_and_checks_without_problems(tmp_path):
    write_dataset(tmp_path, {"train": [entry("a"), entry("b")], "test": [entry("c")]},
                  images("a") | images("b") | images("c"))
    samples = read_split(tmp_path)
    assert samples[0] == Sample(tmp_path / "train_images/a.jpg", tmp_path / "train_pose/pose_images/a.png", CAPTION)
    report = check_dataset(tmp_path)
    assert report.problems == [] and report.ok
    assert report.samples == {"train": 2, "test": 1} and report.sizes == {(128, 192): 3}


def test_missing_split_file_names_the_file_and_the_layout(tmp_path):
    (tmp_path / "train_pose.json").write_text("[]")
    with pytest.raises(DatasetError) as err:
        read_split(tmp_path, "train")
    message = str(err.value)
    assert str(tmp_path / "train.json") in message and "train_pose.json" in message and '"pose"' in message


@pytest.mark.parametrize("text, expected", [
    ("{not json", "is not valid JSON"),
    ('{"gt": "a.jpg"}', "not a list of samples"),
    ('[{"gt": "a.jpg", "caption": "Dress"}]', "entry 0 lacks the text field(s) pose"),
])
def test_unreadable_split_files_say_what_to_fix(tmp_path, text, expected):
    (tmp_path / "train.json").write_text(text)
    with pytest.raises(DatasetError, match=re.escape(expected)):
        read_split(tmp_path)
    report = check_dataset(tmp_path, splits=("train",))
    assert [p.path for p in report.errors] == [tmp_path / "train.json"] and expected in report.errors[0].message


def test_each_image_problem_is_reported_against_its_file(tmp_path):
    sizes = images("mismatch", pose_size=(128, 128)) | images("odd", size=(100, 150))
    sizes |= {"train_pose/pose_images/nogt.png": (128, 192)}
    write_dataset(tmp_path, {"train": [entry("mismatch"), entry("odd"), entry("nogt")]}, sizes)
    (tmp_path / "train_pose/pose_images/odd.png").write_bytes(b"not an image")
    report = check_dataset(tmp_path, splits=("train",))
    by_file = {(p.path.name, p.severity): p.message for p in report.problems}
    assert "pose map is 128x128 but its image mismatch.jpg is 128x192" in by_file[("mismatch.png", "error")]
    assert "not a multiple of 64" in by_file[("odd.jpg", "error")] and "128x128" in by_file[("odd.jpg", "error")]
    assert "cannot be read as an image" in by_file[("odd.png", "error")]
    assert "file is missing" in by_file[("nogt.jpg", "error")]
    assert "2 sizes" in by_file[(tmp_path.name, "warning")]
    assert not report.ok


def test_free_text_caption_items_warn_but_do_not_fail(tmp_path):
    caption = CAPTION.replace("Party", "Gala").replace("Long Dress", "Long Coat")
    write_dataset(tmp_path, {"train": [entry("a", caption)]}, images("a"))
    report = check_dataset(tmp_path, splits=("train",))
    assert report.ok and report.errors == []
    messages = [p.message for p in report.warnings]
    assert any("'Gala' is not a known occasion" in m for m in messages)
    assert any("'Long Coat' is not a known clothing length" in m for m in messages)  # a Dress caption
    assert len(messages) == 2


def test_captions_over_77_clip_tokens_are_errors_with_a_tokenizer(tmp_path):
    transformers = pytest.importorskip("transformers")
    from hierafash_cli.runtime import comfyui_dir

    tokenizer = transformers.CLIPTokenizer.from_pretrained(str(Path(comfyui_dir()) / "comfy" / "sd1_tokenizer"),
                                                           local_files_only=True)
    long_caption = CAPTION + ", " + ", ".join(f"extra detail number {i}" for i in range(20))
    write_dataset(tmp_path, {"train": [entry("short"), entry("long", long_caption)]},
                  images("short") | images("long"))
    assert check_dataset(tmp_path, splits=("train",)).ok  # without a tokenizer length is not checked
    report = check_dataset(tmp_path, splits=("train",), tokenizer=tokenizer)
    assert [(p.path.name, p.severity) for p in report.errors] == [("long.jpg", "error")]
    assert "over the 77" in report.errors[0].message
