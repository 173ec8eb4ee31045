"""The window canvas: samples drawn into windows of real normal images, on the object, remade from their record."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from dualanodiff.cli import main
from dualanodiff.data import load_rgb, object_position, read_mask, resized_mask, resized_rgb, to_uint8
from dualanodiff.errors import UserError
from dualanodiff.generation import DualAnoDiffPipeline, GenerateSettings, generate
from dualanodiff.generation.settings import (
    WINDOW_COLOURS,
    WINDOW_ORIENTATIONS,
    WINDOW_POSITION_WIDTH,
    WINDOW_SIZE_SPREAD,
    WINDOW_STRENGTH,
    WINDOW_TURNS,
    CanvasChoices,
)
from dualanodiff.generation.windows import FEATHER, ON_OBJECT_SLACK
from dualanodiff.model.config import DualConfig
from dualanodiff.training import Run, train
from helpers import micro_settings


@pytest.fixture(scope="module")
def window_run(synthetic_root, micro_base_dir, tmp_path_factory):
    """A briefly trained micro run with BCM on windows: 16-px windows of the 64-px synthetic washer."""
    settings = micro_settings(synthetic_root, micro_base_dir, canvas="window", resolution=16, working_resolution=64,
                              steps=3, model=DualConfig(bcm=True))
    return train(settings, tmp_path_factory.mktemp("window") / "run")


@pytest.fixture(scope="module")
def window_gen(window_run, tmp_path_factory):
    return generate(window_run, tmp_path_factory.mktemp("window-gen") / "gen",
                    GenerateSettings(num=6, steps=3, batch_size=3, seed=2, qc="off"))


def _normal(run: Run, name: str) -> tuple[np.ndarray, np.ndarray]:
    path = next((Path(run.settings.data_root) / run.settings.object / "train" / "good").glob(f"{name}.*"))
    image = resized_rgb(load_rgb(path), run.settings.working_side)
    return image, read_mask(run.object_mask_path("normal", name))


def test_a_window_run_keeps_its_windows_and_object_masks(window_run):
    windows = window_run.windows()
    assert windows["working_resolution"] == 64 and len(windows["sides"]) == len(window_run.split()["train"])
    assert all(16 <= side <= 64 for side in windows["sides"])
    assert window_run.object_mask_stems("normal")


def test_outside_the_grown_mask_every_pixel_is_the_normal_image_s_own(window_run, window_gen):
    samples = window_gen.samples()
    assert len(samples) == 6
    for sample in samples:
        image, part, mask = sample.load()
        assert image.shape == (64, 64, 3)  # the working resolution, not the model's 16 px
        normal, objects = _normal(window_run, sample.record["normal"])
        top, left, side = sample.record["window"]
        assert min(top, left) >= 0 and max(top, left) + side <= 64
        assert not (mask & ~objects).any()  # no mask pixel off the object
        grown = ndimage.distance_transform_edt(~mask) < max(2.0, FEATHER * side) if mask.any() else mask
        assert np.array_equal(image[~grown], normal[~grown])
        assert np.array_equal(part[~mask], np.zeros_like(part[~mask]))
        assert np.array_equal(part[mask], image[mask])


def test_a_windows_file_without_context_descriptors_is_refused_in_one_line(window_run, tmp_path):
    import shutil

    from dualanodiff.errors import ModelError

    old = tmp_path / "old"
    shutil.copytree(window_run.root, old)
    statistics = json.loads((old / "windows.json").read_text())
    del statistics["contexts"]
    (old / "windows.json").write_text(json.dumps(statistics))
    with pytest.raises(ModelError, match=r"windows\.json: no window sides and context descriptors"):
        Run.open(old).windows()


def test_windows_are_placed_on_the_object(window_run):
    pipe = DualAnoDiffPipeline.from_pretrained(window_run)
    for index in range(40):
        placement = pipe.canvas.place(index, seed=5)
        _, objects = _normal(window_run, placement["normal"])
        top, left, side = placement["window"]
        assert objects[top:top + side, left:left + side].any()
        assert placement == pipe.canvas.place(index, seed=5)  # a function of (seed, index) alone


def test_a_sample_s_record_is_enough_to_make_it_again(window_run, window_gen):
    meta = json.loads((window_gen.root / "meta.json").read_text())["settings"]
    sample = window_gen.samples()[4]
    record = sample.record
    pipe = DualAnoDiffPipeline.from_pretrained(window_run)
    again = pipe([record["index"]], seed=record["seed"], steps=meta["steps"], guidance=meta["guidance"],
                 placements=[record], progress=False)
    image, _, mask = sample.load()
    assert np.array_equal(again.images[0], image) and np.array_equal(again.masks[0], mask)
    moved = {**record, "window": [0, 0, record["window"][2]], "normal": window_run.object_mask_stems("normal")[0]}
    elsewhere = pipe([record["index"]], seed=record["seed"], steps=meta["steps"], guidance=meta["guidance"],
                     placements=[moved], progress=False)
    assert elsewhere.records[0]["window"] == moved["window"]


def test_the_cli_trains_and_generates_on_windows_and_refuses_a_working_resolution_without_them(
        synthetic_root, micro_base_dir, tmp_path, capsys):
    common = ["train", "--data", str(synthetic_root), "--object", "washer", "--anomaly", "rust",
              "--base-model", str(micro_base_dir), "--resolution", "16", "--steps", "2", "--batch-size", "2",
              "--rank", "4"]
    with pytest.raises(SystemExit) as exit_:
        main([*common, "--out", str(tmp_path / "bad"), "--canvas", "image", "--working-resolution", "64"])
    assert exit_.value.code == 2
    assert "--working-resolution needs --canvas window" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*common, "--out", str(tmp_path / "run"), "--canvas", "window", "--working-resolution", "64"])
    assert exit_.value.code == 0
    with pytest.raises(SystemExit) as exit_:
        main(["generate", str(tmp_path / "run"), "--out", str(tmp_path / "gen"), "--num", "2", "--steps", "2",
              "--qc", "off"])
    assert exit_.value.code == 0
    assert Image.open(tmp_path / "gen" / "image" / "0000.png").size == (64, 64)


def test_components_along_the_window_s_edge_are_dropped():
    from dualanodiff.generation.windows import _inside_the_window

    mask = np.zeros((16, 16), bool)
    mask[2:14, 0:2] = True  # a strip along the left edge
    mask[6:9, 6:9] = True  # a defect inside
    kept = _inside_the_window(mask)
    assert not kept[:, :2].any() and kept[6:9, 6:9].all()


def test_the_mask_grows_to_what_visibly_changed_around_the_drawn_anomaly():
    from dualanodiff.generation.windows import _what_changed

    normal = np.full((32, 32, 3), 120, np.uint8)
    out = normal.copy()
    out[10:20, 10:20] = 20  # the drawn anomaly: a change of 100
    out[9, 10:20] = 60  # its soft edge, outside the drawn mask: a change of 60, visible
    out[20, 10:20] = 100  # a faint fringe: a change of 20, under half the anomaly's
    out[2:4, 2:4] = 0  # a change that does not meet the anomaly
    drawn = np.zeros((32, 32), bool)
    drawn[10:20, 10:20] = True
    touched = np.ones((32, 32), bool)
    mask = _what_changed(out, normal, drawn, touched)
    assert mask[drawn].all() and mask[9, 10:20].all()
    assert not mask[20].any() and not mask[2:4, 2:4].any()
    untouched_edge = touched.copy()
    untouched_edge[9] = False  # a pixel the blend did not touch is never added
    assert not _what_changed(out, normal, drawn, untouched_edge)[9].any()


def test_the_fade_keeps_the_normal_image_s_detail_that_the_model_cannot_draw(window_run):
    """A model that draws the normal window as it sees it (at its 16-px input) but 4 levels brighter, and marks a
    square: in the fade around the square the output is the 64-px normal image plus at most those 4 levels, not
    a blend towards its 16-px blur."""
    canvas = DualAnoDiffPipeline.from_pretrained(window_run).canvas
    placement = {**canvas.place(0, seed=0), "window": [0, 0, 64]}  # the whole image: 4 pixels per model pixel
    image, _ = canvas._load(placement["normal"])
    seen = to_uint8(canvas.crop([image], [placement]))[0]
    drawn, drawn_mask = np.clip(seen.astype(int) + 4, 0, 255).astype(np.uint8), np.zeros(seen.shape[:2], bool)
    drawn_mask[2:5, 7:9] = True  # on the washer's ring
    out, _, mask = canvas.compose(placement, drawn, drawn_mask)
    top, left, side = placement["window"]
    core = np.zeros(image.shape[:2], bool)
    core[7:21, 27:37] = True  # the square (model pixels 2-4 and 7-8), and a pixel for the resize
    fade = (out != image).any(axis=-1) & ~core
    assert mask.any() and fade.sum() > 20
    change = out[fade].astype(int) - image[fade]
    assert change.min() >= 0 and change.max() <= 4
    blurred = resized_rgb(seen, side, Image.Resampling.BICUBIC)
    assert np.abs(blurred.astype(int) - image[top:top + side, left:left + side]).max() > 10  # there is detail


def test_a_start_is_a_training_anomaly_s_window_around_its_anomaly_on_the_object(window_run):
    pipe = DualAnoDiffPipeline.from_pretrained(window_run)
    canvas = pipe.canvas
    for index in range(12):
        placement = canvas.place(index, 3, CanvasChoices(strength=0.6))
        start = placement["start"]
        assert placement == canvas.place(index, 3, CanvasChoices(strength=0.6))  # a function of (seed, index) alone
        assert start["example"] == placement["example"] < len(window_run.split()["train"])
        assert start["window"][2] == placement["window"][2]  # the start is drawn at the placement's scale
        masks = canvas._training.masks
        anomaly = canvas._in_start(masks, start)
        assert anomaly.sum() == masks[start["example"]].sum()  # the whole anomaly is inside the window
        _, objects = _normal(window_run, placement["normal"])
        top, left, side = placement["window"]
        best = max((objects[t:t + side, c:c + side] & anomaly).sum()
                   for t in range(0, 64 - side + 1, 4) for c in range(0, 64 - side + 1, 4))
        assert (objects[top:top + side, left:left + side] & anomaly).sum() >= 0.5 * best
    pixels = canvas.start_windows([start])
    examples = canvas._training.pixels[start["example"]]  # (2, 3, W, W): image and anomaly part
    top, left, side = start["window"]
    expected = examples[:, :, top:top + side, left:left + side]
    for flipped, dim in zip(start["flip"], (-1, -2), strict=True):
        expected = expected.flip(dim) if flipped else expected
    assert pixels.shape == (1, 2, 3, 16, 16)
    resized = torch.nn.functional.interpolate(expected, size=16, mode="area")
    assert (pixels[0] - resized).abs().mean() < 0.05  # (roi_align's bilinear samples against area averages)


def test_a_start_noises_the_training_window_to_the_strength_s_timestep(window_run):
    pipe = DualAnoDiffPipeline.from_pretrained(window_run)
    records = pipe._place([0, 1], seed=4, placements=None, choices=CanvasChoices(strength=0.6))
    noise = torch.randn(2, 2, 48, 4, 4)
    latents, first = pipe._start(noise, records, [0, 1], steps=10, strength=0.3)
    assert first == 7
    clean = pipe.model.codec.encode(pipe.canvas.start_windows([r["start"] for r in records]).flatten(0, 1))
    alpha = pipe.noise_scheduler.alphas_cumprod[pipe.scheduler.timesteps[first]]
    assert torch.allclose(latents, alpha.sqrt() * clean.view_as(noise) + (1 - alpha).sqrt() * noise, atol=1e-5)


def test_windows_start_from_training_anomalies_by_default_and_whole_images_from_noise():
    settings = GenerateSettings(num=1)
    assert settings.for_run(bcm=False, windowed=True).strength == WINDOW_STRENGTH < 1
    assert settings.for_run(bcm=False, windowed=False).strength == 1
    assert GenerateSettings(num=1, strength=1.0).for_run(bcm=False, windowed=True).strength == 1
    assert "strength" not in settings.for_run(bcm=False, windowed=False).recorded(False)
    with pytest.raises(UserError, match="window-canvas run"):
        GenerateSettings(num=1, strength=0.5).for_run(bcm=False, windowed=False)


def test_a_started_sample_s_record_is_enough_to_make_it_again(window_run, tmp_path):
    gen = generate(window_run, tmp_path / "gen", GenerateSettings(num=3, steps=4, seed=1, qc="off", strength=0.5))
    meta = json.loads((gen.root / "meta.json").read_text())["settings"]
    assert meta["strength"] == 0.5
    sample = gen.samples()[2]
    assert {"example", "start"} <= sample.record.keys()
    pipe = DualAnoDiffPipeline.from_pretrained(window_run)
    again = pipe([sample.record["index"]], seed=1, steps=4, guidance=meta["guidance"],
                 canvas=CanvasChoices.resolve(True, strength=0.5),
                 placements=[sample.record], progress=False)
    image, _, mask = sample.load()
    assert np.array_equal(again.images[0], image) and np.array_equal(again.masks[0], mask)


def test_a_size_spread_scales_the_drawn_window_and_not_the_start_s(window_run):
    canvas = DualAnoDiffPipeline.from_pretrained(window_run).canvas
    ratios = []
    for index in range(24):
        plain = canvas.place(index, 3, CanvasChoices(strength=0.6))
        scaled = canvas.place(index, 3, CanvasChoices(strength=0.6, size_spread=0.5))
        assert scaled == canvas.place(index, 3, CanvasChoices(strength=0.6, size_spread=0.5))  # of (seed, index) alone
        assert scaled["start"] == plain["start"] and scaled["example"] == plain["example"]
        ratios.append(scaled["window"][2] / scaled["start"]["window"][2])
        top, left, side = scaled["window"]
        assert 0 <= top <= 64 - side and 0 <= left <= 64 - side
    assert all(2 ** -0.5 - 0.05 <= ratio <= 2 ** 0.5 + 0.05 for ratio in ratios)  # (sides are whole pixels)
    assert min(ratios) < 0.85 and max(ratios) > 1.15  # both ways, not one size


def test_windows_spread_the_sizes_by_default_and_whole_images_keep_them():
    settings = GenerateSettings(num=1)
    assert settings.for_run(bcm=False, windowed=True).size_spread == WINDOW_SIZE_SPREAD > 0
    assert settings.for_run(bcm=False, windowed=False).size_spread == 0
    assert GenerateSettings(num=1, size_spread=0.0).for_run(bcm=False, windowed=True).size_spread == 0
    assert settings.for_run(bcm=False, windowed=True).recorded(False)["size_spread"] == WINDOW_SIZE_SPREAD
    assert "size_spread" not in settings.for_run(bcm=False, windowed=False).recorded(False)


def test_a_scaled_sample_s_record_is_enough_to_make_it_again(window_run, tmp_path):
    gen = generate(window_run, tmp_path / "gen", GenerateSettings(num=3, steps=4, seed=1, qc="off", size_spread=1.0))
    meta = json.loads((gen.root / "meta.json").read_text())["settings"]
    assert meta["size_spread"] == 1.0
    sample = next(s for s in gen.samples() if s.record["window"][2] != s.record["start"]["window"][2])
    pipe = DualAnoDiffPipeline.from_pretrained(window_run)
    again = pipe([sample.record["index"]], seed=1, steps=4, guidance=meta["guidance"],
                 placements=[sample.record], progress=False)  # (the record holds both windows: no spread needed)
    image, _, mask = sample.load()
    assert np.array_equal(again.images[0], image) and np.array_equal(again.masks[0], mask)
    assert "size_spread" not in GenerateSettings(num=1).recorded(False)  # (unset, it is not recorded)


def test_turns_try_the_start_turned_and_keep_the_anomaly_on_the_object(window_run):
    canvas = DualAnoDiffPipeline.from_pretrained(window_run).canvas
    masks = canvas._training.masks

    def on_object(placement):
        _, objects = _normal(window_run, placement["normal"])
        top, left, side = placement["window"]
        anomaly = resized_mask(canvas._in_start(masks, placement["start"]), side)
        return (objects[top:top + side, left:left + side] & anomaly).sum()

    turns = []
    for index in range(16):
        plain = canvas.place(index, 3, CanvasChoices(strength=0.6))
        turned = canvas.place(index, 3, CanvasChoices(strength=0.6, turns=8))
        assert turned == canvas.place(index, 3, CanvasChoices(strength=0.6, turns=8))  # of (seed, index) alone
        assert "turn" not in plain["start"] and plain == canvas.place(index, 3, CanvasChoices(strength=0.6, turns=1))
        turn = turned["start"].pop("turn", 0)
        assert turned["start"] == plain["start"] and turn in [45 * k for k in range(8)]
        turns.append(turn)
        turned["start"]["turn"] = turn
        # the best of more turns keeps at least as much of the anomaly on the object as the unturned best would
        assert on_object(turned) >= (1 - ON_OBJECT_SLACK) * on_object(plain)
    assert any(turns)


def test_a_position_width_places_anomalies_where_their_training_anomalies_lie_on_the_object(window_run, tmp_path):
    canvas = DualAnoDiffPipeline.from_pretrained(window_run).canvas

    def gaps(width: float) -> list[float]:
        """How far each place (its window's centre) lies from its training anomaly's position on the object."""
        found = []
        for index in range(24):
            placement = canvas.place(index, 5, CanvasChoices(position_width=width))
            assert placement == canvas.place(index, 5, CanvasChoices(position_width=width))  # (seed, index) alone
            top, left, side = placement["window"]
            objects = _normal(window_run, placement["normal"])[1]
            position = object_position(objects, [top + side / 2, left + side / 2])[0]
            found.append(abs(position - canvas._positions[placement["example"]]))
        return found

    assert canvas.place(0, seed=5) == canvas.place(0, 5, CanvasChoices(position_width=0))  # 0: anywhere, as before
    assert np.median(gaps(0.02)) < 0.5 * np.median(gaps(0))
    gen = generate(window_run, tmp_path / "gen", GenerateSettings(num=2, steps=2, seed=3, qc="off",
                                                                  position_width=0.02))
    assert json.loads((gen.root / "meta.json").read_text())["settings"]["position_width"] == 0.02
    assert GenerateSettings(num=1).for_run(bcm=False, windowed=True).position_width == WINDOW_POSITION_WIDTH
    assert "position_width" not in GenerateSettings(num=1, position_width=0).recorded(False)


def test_a_turned_start_turns_its_pixels_and_its_masks_alike(window_run):
    canvas = DualAnoDiffPipeline.from_pretrained(window_run).canvas
    side = canvas.size  # a window of the model's own side is cut exactly, so a quarter turn is exact too
    start = {"example": 0, "window": [8, 8, side], "flip": [False, True]}
    quarter = {**start, "turn": 90}
    pixels, turned = canvas.start_windows([start, quarter])
    masks = canvas._training.masks
    # turned first, then flipped: the flip of the quarter-turned cut
    expected = torch.rot90(canvas.start_windows([{**start, "flip": [False, False]}])[0], k=-1, dims=(-2, -1))
    assert torch.allclose(turned, expected.flip(-2), atol=1e-5)
    plain = canvas._in_start(masks, {**start, "flip": [False, False]})
    assert np.array_equal(canvas._in_start(masks, quarter), np.flip(np.rot90(plain, k=-1), 0))
    assert not torch.equal(pixels, turned)


def test_any_orientation_turns_and_mirrors_the_start_by_quarter_turns_and_keeps_it_on_the_object(window_run):
    canvas = DualAnoDiffPipeline.from_pretrained(window_run).canvas
    masks = canvas._training.masks
    seen = set()
    for index in range(32):
        plain = canvas.place(index, 5, CanvasChoices(strength=0.6))
        turned = canvas.place(index, 5, CanvasChoices(strength=0.6, orientations="any"))
        assert turned == canvas.place(index, 5, CanvasChoices(strength=0.6, orientations="any"))  # (seed, index)
        start, own = turned["start"], plain["start"]
        assert (start["example"], start["window"], start["flip"][1]) == (own["example"], own["window"], own["flip"][1])
        turn = start.get("turn", 0)
        assert turn in (90, 180, 270) or "turn" not in start
        seen.add((turn, start["flip"][0] != own["flip"][0]))
        # placed by the turned start's layout: its anomaly lies on the object there
        _, objects = _normal(window_run, turned["normal"])
        top, left, side = turned["window"]
        anomaly = resized_mask(canvas._in_start(masks, start), side)
        assert (objects[top:top + side, left:left + side] & anomaly).sum() >= 0.5 * anomaly.sum()
    assert len(seen) == 8  # every quarter turn, mirrored and not


def test_any_orientation_needs_a_start_and_is_recorded(window_run):
    settings = GenerateSettings(num=1)
    assert settings.for_run(bcm=False, windowed=True).orientations == WINDOW_ORIENTATIONS == "training"
    assert settings.for_run(bcm=False, windowed=False).orientations == "training"
    assert GenerateSettings(num=1, strength=1.0).for_run(bcm=False, windowed=True).orientations == "training"
    assert GenerateSettings(num=1, orientations="any").for_run(False, True).recorded(False)["orientations"] == "any"
    assert "orientations" not in settings.for_run(False, True).recorded(False)
    with pytest.raises(UserError, match=r"--orientations any: .* needs a start"):
        CanvasChoices.resolve(True, strength=1.0, orientations="any")
    with pytest.raises(UserError, match=r"--orientations any: .* needs a window-canvas run"):
        CanvasChoices.resolve(False, orientations="any")
    with pytest.raises(UserError, match="--orientations must be one of training, any"):
        CanvasChoices.resolve(True, orientations="all")


def test_a_turned_sample_s_record_is_enough_to_make_it_again(window_run, tmp_path):
    gen = generate(window_run, tmp_path / "gen", GenerateSettings(num=4, steps=4, seed=3, qc="off", turns=8))
    meta = json.loads((gen.root / "meta.json").read_text())["settings"]
    assert meta["turns"] == 8
    sample = next(s for s in gen.samples() if s.record["start"].get("turn"))
    pipe = DualAnoDiffPipeline.from_pretrained(window_run)
    again = pipe([sample.record["index"]], seed=3, steps=4, guidance=meta["guidance"],
                 placements=[sample.record], progress=False)  # (the record holds the turn: no turns needed)
    image, _, mask = sample.load()
    assert np.array_equal(again.images[0], image) and np.array_equal(again.masks[0], mask)
    settings = GenerateSettings(num=1)
    assert settings.for_run(bcm=False, windowed=True).turns == WINDOW_TURNS
    assert settings.for_run(bcm=False, windowed=False).turns == 1
    assert "turns" not in GenerateSettings(num=1, turns=1).recorded(False)


def test_a_strength_below_one_training_colours_or_a_size_spread_need_a_window_run(synthetic_root, micro_base_dir,
                                                                                    tmp_path, capsys):
    run = train(micro_settings(synthetic_root, micro_base_dir, steps=1), tmp_path / "run")
    capsys.readouterr()
    for option, says in ((["--strength", "0.5"], "window-canvas run"), (["--strength", "0"], "--strength"),
                         (["--colours", "training"], "window-canvas run"), (["--colours", "red"], "--colours"),
                         (["--size-spread", "0.5"], "window-canvas run"), (["--size-spread", "-1"], "--size-spread"),
                         (["--turns", "4"], "window-canvas run"), (["--turns", "0"], "--turns"),
                         (["--position-width", "0.05"], "window-canvas run"),
                         (["--position-width", "-1"], "--position-width"),
                         (["--orientations", "any"], "window-canvas run")):
        with pytest.raises(SystemExit) as exit_:
            main(["generate", str(run.root), "--num", "1", "--steps", "2", "--out", str(tmp_path / "gen"),
                  "--qc", "off", *option])
        error = capsys.readouterr().err
        assert exit_.value.code == 2 and "Traceback" not in error
        assert says in error.strip().splitlines()[-1]  # one line, after the model's loading bar
    assert not list((tmp_path / "gen").glob("*"))  # refused before the GEN was written


def test_painting_by_rank_gives_the_palette_s_colours_in_the_drawn_brightness_order():
    from dualanodiff.generation.windows import _paint_by_rank

    image = np.full((24, 24, 3), 150, np.uint8)
    mask = np.zeros((24, 24), bool)
    mask[8:16, 4:20] = True
    image[8:16, 4:20] = 110  # a soft stroke: its rim mid-grey ...
    image[10:14, 6:18] = 60  # ... its core dark
    palette = np.array([[70, 60, 55]] * 3 + [[200, 190, 185]], np.uint8)  # three quarters crack, a quarter rim
    painted = _paint_by_rank(image, mask, palette)
    assert np.array_equal(painted[~mask], image[~mask])  # only the mask is painted
    colours, counts = np.unique(painted[mask], axis=0, return_counts=True)
    assert {tuple(colour) for colour in colours} == {(70, 60, 55), (200, 190, 185)}
    assert counts[0] / counts.sum() == pytest.approx(0.75, abs=0.02)  # the palette's shares
    assert (painted[10:14, 6:18] == [70, 60, 55]).all()  # the core takes the darkest colours
    core = np.zeros_like(mask)
    core[10:14, 6:18] = True
    assert not ((painted == [200, 190, 185]).all(axis=-1) & core).any()  # the palette's brightest, the rim


def test_windows_paint_start_colours_by_default_and_whole_images_keep_the_drawn_ones():
    settings = GenerateSettings(num=1)
    assert settings.for_run(bcm=False, windowed=True).colours == WINDOW_COLOURS == "start"
    assert settings.for_run(bcm=False, windowed=True).recorded(False)["colours"] == "start"
    without_start = GenerateSettings(num=1, strength=1.0).for_run(bcm=False, windowed=True)
    assert without_start.colours == "training"  # (no start to take them from: not refused, the rank's)
    assert settings.for_run(bcm=False, windowed=False).colours == "drawn"
    assert "colours" not in settings.for_run(bcm=False, windowed=False).recorded(False)
    with pytest.raises(UserError, match="window-canvas run"):
        GenerateSettings(num=1, colours="training").for_run(bcm=False, windowed=False)
    with pytest.raises(UserError, match="--colours must be one of drawn, training"):
        CanvasChoices.resolve(True, colours="red")  # (the Python API's way in, past GenerateSettings.validate)


def test_training_colours_are_the_matched_training_anomaly_s_and_only_inside_the_drawn_mask(window_run):
    canvas = DualAnoDiffPipeline.from_pretrained(window_run).canvas
    placement = {**canvas.place(0, seed=0), "window": [0, 0, 64]}  # the whole image: 4 pixels per model pixel
    normal = canvas._load(placement["normal"])[0]
    seen = to_uint8(canvas.crop([normal], [placement]))[0]
    drawn_mask = np.zeros(seen.shape[:2], bool)
    drawn_mask[2:5, 7:9] = True  # on the washer's ring
    drawn = seen.copy()
    drawn[1:6, 6:10] = np.clip(seen[1:6, 6:10].astype(int) - 70, 0, 255)  # a soft halo ...
    drawn[drawn_mask] = 30  # ... around a dark square
    _, _, faded_mask = canvas.compose(placement, drawn, drawn_mask, colours="drawn")
    painted, part, mask = canvas.compose(placement, drawn, drawn_mask, colours="training")
    assert mask.any() and (faded_mask & ~mask).sum() > 10  # the fade's mask grows over the halo, the painted not
    assert not (mask & ~faded_mask).any()
    assert np.array_equal(painted[~mask], normal[~mask])  # outside the mask: the normal image, the halo gone
    palette = {tuple(colour) for colour in canvas._palettes[placement["example"]]}
    assert {tuple(colour) for colour in painted[mask]} <= palette
    assert np.array_equal(part[mask], painted[mask]) and not part[~mask].any()


def test_start_colours_are_the_start_s_own_pixels_nearest_its_anomaly_and_only_inside_the_drawn_mask(window_run):
    canvas = DualAnoDiffPipeline.from_pretrained(window_run).canvas
    placement = canvas.place(0, 0, CanvasChoices(strength=0.6))
    side = placement["window"][2]
    start = canvas._from_start(placement["start"], side)
    real = to_uint8(canvas.start_windows([placement["start"]], side)[:, 0])[0]
    anomaly = resized_mask(canvas._in_start(canvas._training.masks, placement["start"]), side)
    assert anomaly.any() and np.array_equal(start[anomaly], real[anomaly])  # on its anomaly: the real pixels
    palette = {tuple(colour) for colour in real[anomaly]}
    assert {tuple(colour) for colour in start.reshape(-1, 3)} <= palette  # elsewhere its anomaly's nearest
    normal = canvas._load(placement["normal"])[0]
    top, left, _ = placement["window"]
    window = (slice(top, top + side), slice(left, left + side))
    size = canvas.size
    drawn = to_uint8(canvas.crop([normal], [placement]))[0]
    drawn_mask = resized_mask(anomaly, size)  # the model drew the start's anomaly where it was
    painted, part, mask = canvas.compose(placement, drawn, drawn_mask, colours="start")
    assert mask.any() and np.array_equal(painted[window][mask[window]], start[mask[window]])
    assert np.array_equal(painted[~mask], normal[~mask])  # outside the mask: the normal image, bit for bit
    assert np.array_equal(part[mask], painted[mask]) and not part[~mask].any()


def test_a_sample_painted_from_its_start_is_made_again_from_its_record(window_run, tmp_path):
    gen = generate(window_run, tmp_path / "gen", GenerateSettings(num=2, steps=3, seed=2, qc="off", colours="start"))
    meta = json.loads((gen.root / "meta.json").read_text())["settings"]
    assert meta["colours"] == "start" and meta["strength"] == WINDOW_STRENGTH
    sample = gen.samples()[1]
    again = DualAnoDiffPipeline.from_pretrained(window_run)(
        [sample.record["index"]], seed=2, steps=3, guidance=meta["guidance"], placements=[sample.record],
        canvas=CanvasChoices.resolve(True, colours="start"), progress=False)
    image, _, mask = sample.load()
    assert np.array_equal(again.images[0], image) and np.array_equal(again.masks[0], mask)


def test_start_colours_and_turns_need_a_start(window_run, tmp_path, capsys):
    assert CanvasChoices.resolve(True, colours="start").colours == "start"  # (the window canvas's strength < 1)
    assert GenerateSettings(num=1, colours="start").for_run(False, True).recorded(False)["colours"] == "start"
    for given, says in (({"colours": "start"}, "--colours start"), ({"turns": 4}, "--turns 4")):
        with pytest.raises(UserError, match=f"{says}: .* needs a start"):
            CanvasChoices.resolve(True, strength=1.0, **given)
    with pytest.raises(SystemExit) as exit_:
        main(["generate", str(window_run.root), "--num", "1", "--steps", "2", "--out", str(tmp_path / "gen"),
              "--qc", "off", "--colours", "start", "--strength", "1"])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and "needs a start (--strength below 1)" in error.strip().splitlines()[-1]
    assert not (tmp_path / "gen").exists()
