import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file

from dualanodiff.data import load_source
from dualanodiff.errors import ModelError, UserError
from dualanodiff.evaluate.classification import ClassificationSettings, confusion_matrix, evaluate_classification
from dualanodiff.evaluate.networks import resnet18_classifier
from dualanodiff.io import read_json

TINY = ClassificationSettings(epochs=1, resolution=32, batch_size=8)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_classification_reports_accuracy_per_type_and_the_confusion_matrix(synthetic_root, washer_gens, tmp_path):
    gens = [washer_gens["croppaste-crack"], washer_gens["perlin-crack"], washer_gens["croppaste-rust"]]
    metrics = evaluate_classification(load_source(synthetic_root), gens, tmp_path, settings=TINY, device="cpu")
    assert metrics["kind"] == "classification" and metrics["classes"] == ["crack", "rust"]
    assert metrics["backbone"] == "scratch"
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum(axis=1).tolist() == [8, 8]  # 8 held-out real images of each type
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / 16)
    assert metrics["per_type"] == {"crack": pytest.approx(matrix[0, 0] / 8), "rust": pytest.approx(matrix[1, 1] / 8)}
    assert metrics["test_images"]["rust"] == read_json(gens[2] / "meta.json")["split"]["test"]
    assert (tmp_path / "confusion.png").stat().st_size > 0
    assert read_json(tmp_path / "metrics.json") == metrics


def test_classification_needs_two_types(synthetic_root, washer_gens, tmp_path):
    with pytest.raises(UserError, match="at least 2 anomaly types of washer; got only 'crack'"):
        evaluate_classification(load_source(synthetic_root), [washer_gens["croppaste-crack"]], tmp_path,
                                settings=TINY)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_resnet_backbone_weights_load_from_a_local_file(tmp_path, suffix):
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file({key: value.contiguous() for key, value in reference.items()}, str(path))
    else:
        torch.save(reference, path)
    model, description = resnet18_classifier(3, path)
    assert description == f"pretrained:{path}"
    assert torch.equal(model.conv1.weight, reference["conv1.weight"])
    assert model.fc.out_features == 3


def test_weights_of_another_network_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(2)}, path)
    with pytest.raises(ModelError, match="not a torchvision ResNet-18 state dict"):
        resnet18_classifier(2, path)
