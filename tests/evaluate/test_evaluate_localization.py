import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dualanodiff.baselines import generate_baseline
from dualanodiff.data import load_source
from dualanodiff.errors import UserError
from dualanodiff.evaluate import localization
from dualanodiff.evaluate.localization import HeldOutImages, anomaly_scores, evaluate_localization, score_test_set
from dualanodiff.evaluate.metrics import METRIC_KEYS
from dualanodiff.evaluate.networks import DiscriminativeUNet, focal_loss
from dualanodiff.evaluate.settings import LocalizationSettings
from dualanodiff.io import read_json

TINY = LocalizationSettings(epochs=1, resolution=32, seeds=2, batch_size=8, base_width=2, learning_rate=1e-3)


def test_unet_maps_an_image_to_two_class_logits_of_the_same_size():
    network = DiscriminativeUNet(base_width=2)
    assert network(torch.zeros(1, 3, 64, 32)).shape == (1, 2, 64, 32)
    with pytest.raises(ValueError, match="multiple of 32"):
        network(torch.zeros(1, 3, 48, 48))


def test_focal_loss_is_cross_entropy_at_gamma_zero_and_down_weights_easy_pixels():
    logits = torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    target = (torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(1)) > 0.7).long()
    cross_entropy = torch.nn.functional.cross_entropy(logits, target)
    assert focal_loss(logits, target, gamma=0.0) == pytest.approx(float(cross_entropy))
    assert float(focal_loss(logits, target)) < float(cross_entropy)


def test_image_scores_are_the_maximum_of_the_mean_filtered_map():
    maps = np.zeros((2, 8, 8), np.float32)
    maps[0, 4, 4] = 9.0  # one hot pixel: its 3x3 mean is 1
    maps[1, 2:5, 2:5] = 2.0  # a 3x3 block: its centre's mean is 2
    assert anomaly_scores(maps, 3) == pytest.approx([1.0, 2.0])
    assert anomaly_scores(maps, 1) == pytest.approx([9.0, 2.0])


def _test_set() -> HeldOutImages:
    masks = np.zeros((4, 4, 4), bool)
    masks[0, :2, :2] = True  # crack
    masks[1, 2:, 2:] = True  # rust
    return HeldOutImages(images=np.zeros((4, 4, 4, 3), np.uint8), masks=masks, types=["crack", "rust", "good", "good"],
                   names=["a", "b", "c", "d"])


def test_perfect_maps_score_one_everywhere_and_types_are_scored_with_the_normal_images():
    test = _test_set()
    result = score_test_set(test.masks.astype(np.float32), test, filter_size=1)
    assert all(result[key] == 1.0 for key in METRIC_KEYS)
    assert set(result["per_type"]) == {"crack", "rust"}
    assert list(test.members("crack")) == [0, 2, 3]

    # A map that fires only on crack: rust is missed at pixel level, found by nothing at image level.
    maps = np.zeros((4, 4, 4), np.float32)
    maps[0] = test.masks[0]
    result = score_test_set(maps, test, filter_size=1)
    assert result["per_type"]["crack"]["pixel_auroc"] == 1.0
    assert result["per_type"]["rust"]["pixel_auroc"] == 0.5
    assert result["per_type"]["rust"]["image_auroc"] == 0.5


def test_evaluation_writes_metrics_per_type_and_per_seed_and_resumes(synthetic_root, washer_gens, tmp_path,
                                                                      monkeypatch):
    source = load_source(synthetic_root)
    gens = [washer_gens["croppaste-crack"], washer_gens["perlin-crack"], washer_gens["croppaste-rust"]]
    metrics = evaluate_localization(source, gens, tmp_path / "out", settings=TINY, device="cpu")

    assert metrics["kind"] == "localization" and metrics["object"] == "washer"
    assert metrics["methods"] == ["croppaste", "perlin"]
    assert len(metrics["per_seed"]) == 2 and [r["seed"] for r in metrics["per_seed"]] == [0, 1]
    for key in METRIC_KEYS:
        values = [result[key] for result in metrics["per_seed"]]
        assert metrics[key] == pytest.approx(np.mean(values))
        assert metrics["std"][key] == pytest.approx(np.std(values, ddof=1))
        assert 0.0 <= metrics[key] <= 1.0
    assert set(metrics["per_type"]) == {"crack", "rust"}
    assert metrics["test_images"]["crack"] == read_json(gens[0] / "meta.json")["split"]["test"]
    assert len(metrics["test_images"]["good"]) == 8
    assert metrics["train_images"] == {"generated": 30, "normal": 60}
    assert read_json(tmp_path / "out" / "metrics.json") == metrics
    assert (tmp_path / "out" / "examples.png").stat().st_size > 0

    # A second run with the same inputs reuses the finished seeds instead of training again.
    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(localization, "train", no_training)
    assert evaluate_localization(source, gens, tmp_path / "out", settings=TINY, device="cpu") == metrics
    # Fewer seeds than were trained reuse them too: a seed's result does not depend on how many there are.
    fewer = evaluate_localization(source, gens, tmp_path / "out", settings=replace(TINY, seeds=1), device="cpu")
    assert fewer["per_seed"] == metrics["per_seed"][:1]


def test_a_network_trained_on_croppaste_finds_real_held_out_rust(synthetic_root, tmp_path):
    source = load_source(synthetic_root)
    gen = generate_baseline("croppaste", source, "washer", "rust", 30, tmp_path / "gen", resolution=64).root
    settings = LocalizationSettings(epochs=6, resolution=32, base_width=8, learning_rate=1e-3)
    metrics = evaluate_localization(source, [gen], tmp_path / "out", settings=settings, device="cpu")
    assert metrics["pixel_auroc"] > 0.9
    assert metrics["image_auroc"] > 0.9


@pytest.mark.parametrize(("settings", "message"), [
    (dict(resolution=48), "multiple of 32"), (dict(seeds=0), "--seeds"), (dict(epochs=0), "--epochs"),
])
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(UserError, match=message):
        LocalizationSettings(**settings).validate()


def test_vanishing_test_masks_are_reported(synthetic_root, washer_gens, tmp_path, monkeypatch):
    monkeypatch.setattr(localization, "load_anomalies",
                        lambda samples, size, description: (np.zeros((len(samples), size, size, 3), np.uint8),
                                                            np.zeros((len(samples), size, size), bool)))
    with pytest.raises(UserError, match="every test mask vanishes at 32 px"):
        evaluate_localization(load_source(synthetic_root), [washer_gens["croppaste-rust"]], Path(tmp_path),
                              settings=TINY, device="cpu")


def test_a_seed_gives_the_same_result_in_any_process_and_older_seed_files_are_trained_again(
        synthetic_root, washer_gens, tmp_path, monkeypatch):
    source = load_source(synthetic_root)
    gens = [washer_gens["croppaste-crack"], washer_gens["croppaste-rust"]]
    one = replace(TINY, seeds=1)
    torch.manual_seed(1)  # another process's global generator
    first = evaluate_localization(source, gens, tmp_path / "a", settings=one, device="cpu")
    torch.manual_seed(2)
    again = evaluate_localization(source, gens, tmp_path / "b", settings=one, device="cpu")
    assert again["per_seed"] == first["per_seed"]

    # A seed file from before the initial weights were seeded does not stand for its seed.
    seed_file = tmp_path / "b" / "seeds" / "seed_0.json"
    saved = read_json(seed_file)
    saved["fingerprint"].pop("initial_weights")
    seed_file.write_text(json.dumps(saved))
    trained = []
    monkeypatch.setattr(localization, "train", lambda *args, **kwargs: trained.append(1) or [0.0])
    evaluate_localization(source, gens, tmp_path / "b", settings=one, device="cpu")
    assert trained == [1]
