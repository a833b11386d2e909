"""Photos -> dataset: drawn figures through `prepare` come out as a dataset the training loader reads."""

import csv
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from hierafash_cli.__main__ import main as hierafash
from hierafash_core.dataset import caption_vocabulary_problems, check_dataset, read_split
from hierafash_core.dataset_prep import (
    LOG_NAME,
    PrepareError,
    caption_counts,
    caption_from_labels,
    export_columns,
    fit_photo,
    parse_size,
    prepare_dataset,
    read_labels,
    split_names,
)
from hierafash_core.errors import HieraFashError
from hierafash_core.pose import (
    OPENPOSE_COLORS,
    OPENPOSE_LIMBS,
    load_pose_preset,
    read_pose_keypoint,
    render_pose,
    rescale_frame,
)

SIZE = (256, 384)  # a small training size, multiples of 64
LABELS = {"category": "Dress", "style": "Elegant", "occasion": "Party", "effect": "Slimming",
          "feeling": "Drape Feeling", "A1": "Long", "A2": "Short Sleeve", "A3": "Puffed Sleeve", "A4": "V-Neck",
          "A5": "Ruffle Hem"}
# The paper's caption order: five concept items, then A1..A5; clothing length names the garment.
CAPTION = ("Dress, Elegant, Party, Slimming, Drape Feeling, Long Dress, Short Sleeve, Puffed Sleeve, V-Neck, "
           "Ruffle Hem")


class JointColourDetector:
    """A real detector for drawn figures: each OpenPose joint is the centre of its colour's pixels around
    their median (which ignores the odd resampled edge pixel that happens to fall near a joint colour)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, image: np.ndarray) -> dict:
        self.calls += 1
        rgb = image.astype(np.float32) / 255
        flat = []
        for colour in OPENPOSE_COLORS:  # limbs are drawn at 60 %, so no limb pixel is this close to a joint
            ys, xs = np.nonzero(np.abs(rgb - np.array(colour) / 255).max(axis=-1) < 0.2)
            if len(xs) == 0:
                flat += [0.0, 0.0, 0.0]
                continue
            near = np.hypot(xs - np.median(xs), ys - np.median(ys)) <= 4  # the disc, without stray pixels
            flat += [float(xs[near].mean()), float(ys[near].mean()), 1.0]
        found = any(flat[2::3])
        people = [{"pose_keypoints_2d": flat, "face_keypoints_2d": None, "hand_left_keypoints_2d": None,
                   "hand_right_keypoints_2d": None}] if found else []
        return {"people": people, "canvas_width": image.shape[1], "canvas_height": image.shape[0]}


def preset_frame(preset: str, width: int, height: int):
    [frame] = read_pose_keypoint(load_pose_preset(preset))
    return rescale_frame(frame, width, height, "contain")


def draw_figure(preset: str, width: int, height: int) -> Image.Image:
    """A 'photo': the preset's bones in grey and its joints as discs in their OpenPose colours, on white."""
    points = preset_frame(preset, width, height).keypoints.tolist()
    photo = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(photo)
    radius = max(2.0, 4 * min(width, height) / 512)
    for a, b in OPENPOSE_LIMBS:
        draw.line([tuple(points[a]), tuple(points[b])], fill=(128, 128, 128), width=3)
    for (x, y), colour in zip(points, OPENPOSE_COLORS):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    return photo


PHOTOS = {  # name -> (preset, photo width, photo height): taller, wider and smaller than the training size
    "front.jpg": ("front_standing", 400, 640),
    "walk.png": ("front_walking", 600, 700),
    "looks/three_quarter.png": ("three_quarter_left", 160, 240),
}


def write_labels_csv(path, rows: dict[str, dict]):
    columns = ["image", *LABELS]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for name, labels in rows.items():
            writer.writerow({"image": name, **labels})


@pytest.fixture
def photo_folder(tmp_path):
    src = tmp_path / "photos"
    for name, (preset, w, h) in PHOTOS.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        # full-resolution chroma: JPEG's subsampled colour would blur the joints' colours together
        draw_figure(preset, w, h).save(src / name, quality=100, subsampling=0)
    Image.new("RGB", (300, 400), "white").save(src / "empty_studio.png")  # nobody in it
    (src / "broken.jpg").write_bytes(b"not a jpeg at all")
    draw_figure("front_hands_on_hips", 300, 420).save(src / "typo.png")
    draw_figure("front_standing", 300, 420).save(src / "unlabelled.png")
    rows = {name: LABELS for name in [*PHOTOS, "empty_studio.png", "broken.jpg"]}
    rows["typo.png"] = {**LABELS, "A2": "Shrot Sleeve"}
    labels = tmp_path / "labels.csv"
    write_labels_csv(labels, rows)
    return src, labels


def digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def expected_points(preset, photo_w, photo_h) -> torch.Tensor:
    """Where the preset's joints land after the photo is fitted into SIZE (centred, scaled to fit)."""
    frame = preset_frame(preset, photo_w, photo_h)
    scale = min(SIZE[0] / photo_w, SIZE[1] / photo_h)
    offset = torch.tensor([(SIZE[0] - round(photo_w * scale)) // 2, (SIZE[1] - round(photo_h * scale)) // 2])
    return (frame.keypoints + 0.5) * scale - 0.5 + offset


def test_drawn_figures_become_a_dataset_the_training_loader_reads(photo_folder, tmp_path):
    src, labels = photo_folder
    before = digests(src)
    dst = tmp_path / "dataset"
    report = prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, test_ratio=0.34, seed=3,
                             progress=False)
    assert sorted(report.detected) == sorted(PHOTOS)
    assert set(report.skipped) == {"empty_studio.png", "broken.jpg", "typo.png", "unlabelled.png"}
    assert "nobody found" in report.skipped["empty_studio.png"]
    assert "cannot be read as an image" in report.skipped["broken.jpg"]
    assert report.skipped["typo.png"].startswith("label 'A2': value 'Shrot Sleeve' is not a sleeve length value")
    assert "no labels row" in report.skipped["unlabelled.png"]
    assert report.splits == {"train": 2, "test": 1}
    assert digests(src) == before  # no photo touched

    samples = read_split(dst, "train") + read_split(dst, "test")
    assert sorted(s.gt.relative_to(dst).as_posix() for s in samples) == sorted(
        f"images/{name.rsplit('.', 1)[0]}.png" for name in PHOTOS)
    check = check_dataset(dst)
    assert check.ok and not check.warnings, [str(p) for p in check.problems]
    assert dict(check.sizes) == {SIZE: 3}
    walk = np.asarray(Image.open(dst / "images" / "walk.png"))  # wider than SIZE: white bands above and below
    assert walk[0].min() == 255 and walk[-1].min() == 255 and walk[SIZE[1] // 2].min() < 255
    for sample in samples:
        assert sample.caption == CAPTION
        with Image.open(sample.gt) as gt, Image.open(sample.pose) as pose:
            assert gt.size == pose.size == SIZE


def test_keypoints_land_where_the_fitted_photo_puts_the_joints(photo_folder, tmp_path):
    src, labels = photo_folder
    dst = tmp_path / "dataset"
    prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, progress=False)
    for name, (preset, w, h) in PHOTOS.items():
        stem = name.rsplit(".", 1)[0]
        [frame] = read_pose_keypoint(json.loads((dst / "keypoints" / f"{stem}.json").read_text()))
        assert (frame.width, frame.height) == SIZE
        expected = expected_points(preset, w, h)
        visible = ~expected.isnan().any(dim=-1)
        error = (frame.keypoints[visible] - expected[visible]).norm(dim=-1) / min(SIZE[0] / w, SIZE[1] / h)
        assert float(error.max()) < 1.5, (name, error.max())  # within 1.5 pixels of the photo
        pose_map = np.asarray(Image.open(dst / "poses" / f"{stem}.png"))  # the pack's render of those keypoints
        drawn = (render_pose([frame])[0].numpy() * 255).round().astype(np.uint8)
        assert np.array_equal(pose_map, drawn)


def test_a_rerun_skips_what_is_done_and_redoes_a_changed_photo(photo_folder, tmp_path):
    src, labels = photo_folder
    dst = tmp_path / "dataset"
    first = prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, test_ratio=0.34,
                            progress=False)
    outputs = digests(dst / "images")
    detector = JointColourDetector()
    again = prepare_dataset(src, dst, read_labels(labels), detector, SIZE, test_ratio=0.34, progress=False)
    assert detector.calls == 0
    assert sorted(again.reused) == sorted(first.detected) and again.skipped == first.skipped
    assert (dst / "train.json").read_text() == json.dumps(
        [{"pose": s.pose.relative_to(dst).as_posix(), "gt": s.gt.relative_to(dst).as_posix(), "caption": s.caption}
         for s in read_split(dst, "train")], indent=1)
    draw_figure("front_walking", 400, 640).save(src / "front.jpg")  # the photo changed
    third = prepare_dataset(src, dst, read_labels(labels), detector, SIZE, test_ratio=0.34, progress=False)
    assert detector.calls == 1 and third.detected == ["front.jpg"]
    changed = {p.name for p, d in digests(dst / "images").items() if outputs.get(p) != d}
    assert changed == {"front.png"}
    assert len((dst / LOG_NAME).read_text().splitlines()) == 5 + 1  # 5 photos handled once, one redone


def test_a_larger_size_redoes_every_photo(photo_folder, tmp_path):
    src, labels = photo_folder
    dst = tmp_path / "dataset"
    prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, progress=False)
    detector = JointColourDetector()
    prepare_dataset(src, dst, read_labels(labels), detector, (320, 448), progress=False)
    assert detector.calls == len(PHOTOS) + 1  # the labelled, readable photos (the empty one included)
    assert check_dataset(dst).sizes == {(320, 448): 3}


def test_the_dataset_folder_may_not_overlap_the_photos(photo_folder):
    src, labels = photo_folder
    for dst in (src, src / "out"):
        with pytest.raises(PrepareError, match="overlap") as caught:
            prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, progress=False)
        assert caught.value.input_name == "dst"


def test_caption_follows_the_paper_and_the_training_validator_accepts_it():
    assert caption_from_labels({"image": "a.jpg", **LABELS}) == CAPTION
    assert caption_vocabulary_problems(CAPTION) == []
    without_sleeve_type = caption_from_labels({**LABELS, "A3": ""})
    assert without_sleeve_type == CAPTION.replace("Puffed Sleeve, ", "")
    concept = {k: v for k, v in LABELS.items() if not k.startswith("A")}
    by_name = {**concept, "clothing length": "Short", "hem": "Slit Hem"}
    assert caption_from_labels(by_name) == "Dress, Elegant, Party, Slimming, Drape Feeling, Short Dress, Slit Hem"


@pytest.mark.parametrize(("labels", "column", "message"), [
    ({**LABELS, "style": "Gothic"}, "style", "style 'Gothic' is not in the vocabulary"),
    ({k: v for k, v in LABELS.items() if k != "feeling"}, "feeling", "no feeling"),
    ({**LABELS, "A4": "Long Sleeve"}, "A4", "'Long Sleeve' is not a collar value"),
    ({**LABELS, "colour": "red"}, "colour", "unknown label column 'colour'"),
])
def test_bad_labels_name_their_column(labels, column, message):
    with pytest.raises(HieraFashError, match=message) as caught:
        caption_from_labels(labels)
    assert caught.value.input_name == column


def test_labels_read_the_same_from_csv_and_json(tmp_path):
    rows = {"a.jpg": LABELS, "sub/b.png": {**LABELS, "A1": ""}}
    write_labels_csv(tmp_path / "labels.csv", rows)
    (tmp_path / "labels.json").write_text(json.dumps([{"image": n, **r} for n, r in rows.items()]))
    from_csv, from_json = read_labels(tmp_path / "labels.csv"), read_labels(tmp_path / "labels.json")
    assert {n: caption_from_labels(r) for n, r in from_csv.items()} == {
        n: caption_from_labels(r) for n, r in from_json.items()}
    (tmp_path / "twice.json").write_text(json.dumps([{"image": "a.jpg", **LABELS}] * 2))
    with pytest.raises(PrepareError, match="a.jpg is labelled twice"):
        read_labels(tmp_path / "twice.json")


def test_fit_pads_with_the_background_and_keeps_the_photo_centred():
    photo = Image.new("RGB", (200, 100), (10, 20, 30))  # wide: bands above and below
    fitted = np.asarray(fit_photo(photo, (256, 384)))
    assert fitted.shape == (384, 256, 3)
    rows = np.nonzero((fitted != 255).any(axis=(1, 2)))[0]
    assert (rows.min(), rows.max()) == (128, 255)  # 128 px tall, centred
    assert fitted[200, 128].tolist() == [10, 20, 30]
    transparent = Image.new("RGBA", (64, 96), (0, 0, 0, 0))
    assert np.asarray(fit_photo(transparent, (64, 96))).min() == 255  # transparency becomes the pad colour


def test_area_shrinking_averages_fine_detail():
    stripes = np.zeros((768, 512, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: an area filter turns them into even grey
    fitted = np.asarray(fit_photo(Image.fromarray(stripes), (256, 384)))
    assert np.abs(fitted[10:-10, 10:-10].astype(int) - 127.5).max() <= 1


def test_split_is_by_seed_and_ratio():
    names = [f"p{i:03d}.png" for i in range(50)]
    train, test = split_names(names, 0.2, seed=1)
    assert len(test) == 10 and sorted(train + test) == names
    assert split_names(names, 0.2, seed=1) == (train, test)
    assert split_names(names, 0.2, seed=2)[1] != test
    assert len(split_names(names[:3], 0.1, seed=0)[1]) == 1  # a ratio above 0 keeps a test sample
    assert split_names(names[:3], 0.0, seed=0)[1] == []


def test_size_must_be_multiples_of_64():
    assert parse_size("512x704") == (512, 704)
    with pytest.raises(PrepareError, match="multiples of 64") as caught:
        parse_size("500x700")
    assert caught.value.input_name == "size"


def test_export_columns_links_the_files_and_writes_the_three_columns(photo_folder, tmp_path):
    src, labels = photo_folder
    dst = tmp_path / "dataset"
    prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, test_ratio=0.34, progress=False)
    samples = {"train": read_split(dst, "train"), "test": read_split(dst, "test")}
    out = tmp_path / "columns"
    assert export_columns(samples, out, progress=False) == {"train": 2, "test": 1}
    for split, split_samples in samples.items():
        rows = [json.loads(line) for line in (out / split / "metadata.jsonl").read_text().splitlines()]
        assert [sorted(r) for r in rows] == [["conditioning_image", "image", "text"]] * len(split_samples)
        for row, sample in zip(rows, split_samples):
            assert row["text"] == sample.caption
            assert (out / split / row["image"]).read_bytes() == sample.gt.read_bytes()
            assert (out / split / row["conditioning_image"]).read_bytes() == sample.pose.read_bytes()
    with pytest.raises(PrepareError, match="not empty"):
        export_columns(samples, out, progress=False)


def test_caption_counts_per_field_and_attribute(photo_folder, tmp_path):
    src, labels = photo_folder
    dst = tmp_path / "dataset"
    prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, progress=False)
    counts = caption_counts(read_split(dst, "train") + read_split(dst, "test"))
    assert counts["category"] == {"Dress": 3}
    assert counts["clothing length"] == {"Long Dress": 3} and counts["hem"] == {"Ruffle Hem": 3}
    assert "free text" not in counts


def test_cli_check_summarises_and_lists_problems_by_file(photo_folder, tmp_path, capsys):
    src, labels = photo_folder
    dst = tmp_path / "dataset"
    prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, test_ratio=0.34, progress=False)
    assert hierafash(["dataset", "check", str(dst)]) == 0
    out = capsys.readouterr().out
    assert "train 2, test 1 samples" in out and "sizes: 256x384 (3)" in out
    assert "category: Dress (3)" in out and "sleeve type: Puffed Sleeve (3)" in out
    (dst / "images" / "walk.png").unlink()
    assert hierafash(["dataset", "check", str(dst)]) == 1
    out = capsys.readouterr().out
    assert "  images/walk.png\n    error: gt image file is missing" in out


def test_cli_export_columns(photo_folder, tmp_path, capsys):
    src, labels = photo_folder
    dst = tmp_path / "dataset"
    prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, test_ratio=0.34, progress=False)
    assert hierafash(["dataset", "export-columns", str(dst), str(tmp_path / "cols")]) == 0
    assert "train/metadata.jsonl: 2 rows" in capsys.readouterr().out
    assert hierafash(["dataset", "export-columns", str(dst), str(tmp_path / "cols")]) == 2
    assert "hierafash dataset export-columns: OUT:" in capsys.readouterr().err


def test_cli_prepare_without_weights_names_the_file_and_folder(photo_folder, tmp_path, capsys):
    src, labels = photo_folder
    code = hierafash(["dataset", "prepare", str(src), str(tmp_path / "ds"), "--labels", str(labels),
                      "--weights", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("hierafash dataset prepare: --weights: the OpenPose weights file body_pose_model.pth")
    assert str(tmp_path / "nowhere") in err and not (tmp_path / "ds").exists()


def test_cli_prepare_runs_the_openpose_detector_and_lists_who_was_not_found(tmp_path, capsys):
    pytest.importorskip("controlnet_aux")
    from support.openpose_weights import write_random_openpose

    weights = tmp_path / "openpose"
    write_random_openpose(weights)
    src = tmp_path / "photos"
    src.mkdir()
    draw_figure("front_standing", 128, 192).save(src / "a.png")
    write_labels_csv(tmp_path / "labels.csv", {"a.png": LABELS})
    code = hierafash(["dataset", "prepare", str(src), str(tmp_path / "ds"), "--labels", str(tmp_path / "labels.csv"),
                      "--weights", str(weights), "--size", "128x192", "--no-hands"])
    captured = capsys.readouterr()
    assert code == 1  # random weights find nobody: listed, and no default pose is made up
    assert "skipped a.png: nobody found by the pose detector" in captured.out
    assert json.loads((tmp_path / "ds" / "train.json").read_text()) == []


def test_cli_check_counts_clip_tokens_with_a_tokenizer(photo_folder, tmp_path, capsys):
    pytest.importorskip("transformers")
    from hierafash_train.models import default_tokenizer_dir

    src, labels = photo_folder
    dst = tmp_path / "dataset"
    prepare_dataset(src, dst, read_labels(labels), JointColourDetector(), SIZE, test_ratio=0.34, progress=False)
    tokenizer = ["--tokenizer", str(default_tokenizer_dir())]
    assert hierafash(["dataset", "check", str(dst), *tokenizer]) == 0
    capsys.readouterr()
    entries = json.loads((dst / "test.json").read_text())
    entries[0]["caption"] += ", " + ", ".join(["Ruffle Hem"] * 30)  # far over 77 tokens
    (dst / "test.json").write_text(json.dumps(entries))
    assert hierafash(["dataset", "check", str(dst), *tokenizer]) == 1
    assert "over the 77 the text encoder reads" in capsys.readouterr().out
