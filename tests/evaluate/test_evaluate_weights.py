import pytest
import torch
from safetensors.torch import save_file

from dualanodiff.errors import ModelError
from dualanodiff.evaluate import quality
from dualanodiff.evaluate.quality import LPIPS, pretrained_quality_networks
from dualanodiff.evaluate.weights import find_weights, load_state_dict_file


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache (and no lpips package), so nothing real is found."""
    directory = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(directory))
    monkeypatch.setattr(quality, "_lpips_package_weights", lambda: [])
    return directory


def test_weights_come_from_the_given_path_then_the_hub_cache(hub, tmp_path):
    given = tmp_path / "mine.pth"
    given.write_bytes(b"x")
    assert find_weights(given, ["a.pth"], what="A", option="--a-weights") == given
    cached = hub / "checkpoints" / "a.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert find_weights(None, ["a.pth"], what="A", option="--a-weights") == cached


def test_missing_weights_say_which_file_and_where_in_one_line(hub, tmp_path):
    with pytest.raises(ModelError, match=r"--inception-weights FILE, or put inception_v3_google-0cc3c7bd.pth in "
                                         r".*hub/checkpoints/") as error:
        pretrained_quality_networks()
    assert "\n" not in str(error.value)
    with pytest.raises(ModelError, match=r"nope.pth: VGG16 .* not found"):
        pretrained_quality_networks(inception_weights=__file__, vgg_weights=tmp_path / "nope.pth")


def test_state_dicts_load_from_safetensors_and_weights_only_torch_files(tmp_path):
    state = {"w": torch.arange(4.0)}
    save_file(state, str(tmp_path / "a.safetensors"))
    torch.save(state, tmp_path / "b.pth")
    torch.save({"state_dict": state}, tmp_path / "c.pth")
    for name in ("a.safetensors", "b.pth", "c.pth"):
        assert torch.equal(load_state_dict_file(tmp_path / name)["w"], state["w"])


class Payload:
    """A class a weights-only load must refuse to build (arbitrary pickled objects can run code)."""


def test_pickles_that_are_not_plain_weights_are_refused(tmp_path):
    torch.save({"w": Payload()}, tmp_path / "unsafe.pth")
    with pytest.raises(ModelError, match=r"unsafe.pth: cannot be read as safe weights"):
        load_state_dict_file(tmp_path / "unsafe.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ModelError, match="does not hold a state dict"):
        load_state_dict_file(tmp_path / "list.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError, match=r"junk.safetensors: cannot be read"):
        load_state_dict_file(tmp_path / "junk.safetensors")


def test_lpips_linear_layers_load_from_an_lpips_state_dict():
    lpips = LPIPS(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1)),
                  taps=(1, 2), channels=(4, 2))
    state = {"lin0.model.1.weight": torch.arange(4.0).view(1, 4, 1, 1),
             "lin1.model.1.weight": torch.tensor([0.5, 2.0]).view(1, 2, 1, 1)}
    lpips.load_linear(state, "vgg.pth")
    assert lpips.linear[0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert lpips.linear[1].tolist() == [0.5, 2.0]
    with pytest.raises(ModelError, match=r"vgg.pth: not LPIPS v0.1 VGG weights"):
        lpips.load_linear({"lin0.model.1.weight": torch.zeros(1, 4, 1, 1)}, "vgg.pth")
