"""Network state dicts match the original's key names and shapes, so released weights load."""

from importlib.resources import files

import pytest
import torch

from expodiff.errors import ConfigError
from expodiff.methods import MethodSpec
from expodiff.nets import build_net

SPECS = {
    "baseline": MethodSpec("unet", "baseline"),
    "ours": MethodSpec("unet", "ours"),
    "ours_concat": MethodSpec("unet", "ours", concat_origin=True),
}


def reference_shapes(name: str) -> dict[str, tuple[int, ...]]:
    text = (files("expodiff") / "resources" / "state_dicts" / f"{name}.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return {key: tuple(int(d) for d in shape.split("x")) for key, shape in rows}


@pytest.mark.parametrize("config", list(SPECS))
def test_unet_state_dict_matches_original(config):
    net = SPECS[config].build()
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    ref = reference_shapes(f"unet_{config}")
    assert list(got) == list(ref)
    assert got == ref


def test_released_style_state_dict_loads_strict():
    ref = reference_shapes("unet_ours_concat")
    state = {k: torch.randn(shape) for k, shape in ref.items()}
    net = SPECS["ours_concat"].build()
    net.load_state_dict(state, strict=True)
    assert torch.equal(net.conv1_1.weight, state["conv1_1.weight"])


def test_unet_shapes_and_leaky_relu():
    net = SPECS["ours"].build()
    out = net(torch.rand(2, 8, 32, 48))
    assert out.shape == (2, 9, 32, 48)


def test_unknown_backbone_is_named():
    with pytest.raises(ConfigError, match="resnet"):
        build_net("resnet", 4, 4)
    with pytest.raises(ConfigError, match="diffusion"):
        MethodSpec("unet", "diffusion")
