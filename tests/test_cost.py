"""Table 5b counts: thop parameters and MACs of every (arch, config) equal resources/cost.tsv
(thop 0.1.1.post2209072238 on the original networks), and the timing helper's contract."""

import sys
from importlib.resources import files

import pytest
import torch

from expodiff.report.cost import count_cost, measure_inference_time
from expodiff.errors import ExpodiffError
from expodiff.methods import MethodSpec
from expodiff.nets import build_net

pytest.importorskip("thop")

ARCHS = {"unet": "unet", "naf": "naf1", "naf2": "naf2"}  # cost.tsv's arch → our backbone


def reference_rows() -> dict[tuple[str, str], dict]:
    lines = (files("expodiff") / "resources" / "cost.tsv").read_text().splitlines()
    lines = [line for line in lines if line and not line.startswith("#")]
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    return {(r["arch"], r["config"]): {k: (v if k in ("arch", "config") else int(v)) for k, v in r.items()} for r in rows}


REFERENCE = reference_rows()


# small inputs: one thread is fast, and immune to OpenMP stalls on a busy machine
pytestmark = pytest.mark.usefixtures("one_thread")


def macs_at_512(backbone, in_ch, out_ch):
    """thop MACs at 512² from counts at 32² and 64² (multiples of 16, so every level is exact).

    They are affine in H·W, not proportional: a conv's MACs scale with its output size, but a
    NAFBlock's channel attention adds a size-independent C² (its 1×1 conv on the pooled vector)
    plus C for thop's AdaptiveAvgPool2d rule ((kernel + 1)·outputs).
    """
    small, big = (count_cost(backbone, in_ch, out_ch, size=s)["thop_macs"] for s in (32, 64))
    slope, rest = divmod(big - small, 64**2 - 32**2)
    assert rest == 0
    return big + slope * (512**2 - 64**2)


def test_reference_has_the_nine_rows():
    assert sorted(REFERENCE) == sorted((a, c) for a in ARCHS for c in ("baseline", "ours", "ours_concat"))


@pytest.mark.parametrize("arch,config", sorted(REFERENCE))
def test_counts_match_reference(arch, config):
    ref = REFERENCE[arch, config]
    spec = MethodSpec(ARCHS[arch], "baseline" if config == "baseline" else "ours", concat_origin=config == "ours_concat")
    assert (spec.in_channels, spec.out_channels) == (ref["in_ch"], ref["out_ch"])
    got = count_cost(spec.backbone, spec.in_channels, spec.out_channels, size=32)
    assert got["thop_params"] == ref["thop_params"]
    assert got["params_numel"] == ref["params_numel"]
    assert macs_at_512(spec.backbone, spec.in_channels, spec.out_channels) == ref["thop_macs_1xCx512x512"]


def test_paper_table5b_values():
    """The 'ours' rows are the paper's 7.762M/55.17G, 4.697K/1.124G, 6.871M/15.32G."""
    assert REFERENCE["unet", "ours"]["thop_params"] == 7761801
    assert REFERENCE["unet", "ours"]["thop_macs_1xCx512x512"] == 55171874816
    assert REFERENCE["naf", "ours"]["thop_params"] == 4697
    assert REFERENCE["naf", "ours"]["thop_macs_1xCx512x512"] == 1124073744
    assert REFERENCE["naf2", "ours"]["thop_params"] == 6871369
    assert REFERENCE["naf2", "ours"]["thop_macs_1xCx512x512"] == 15318517056


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["naf", "naf2", "unet"])
def test_counts_at_512_directly(arch):
    ref = REFERENCE[arch, "ours"]
    got = count_cost(ARCHS[arch], 8, 9, size=512)
    assert (got["thop_params"], got["thop_macs"], got["params_numel"]) == (
        ref["thop_params"], ref["thop_macs_1xCx512x512"], ref["params_numel"])


def test_thop_buffers_do_not_leak_into_new_nets():
    count_cost("naf1", 8, 9, size=16)
    net = build_net("naf1", 8, 9)
    assert not [k for k in net.state_dict() if "total_" in k]


def test_missing_thop_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "thop", None)  # makes `import thop` raise ImportError
    with pytest.raises(ExpodiffError, match="thop"):
        count_cost("naf1", 8, 9, size=16)


def test_measure_inference_time_leaves_the_net_alone():
    net = build_net("naf1", 8, 9).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    t = measure_inference_time(net, 8, size=32, repeats=3, warmup=1, device="cpu")
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert t["device"].startswith("cpu") and t["repeats"] == 3 and t["warmup"] == 1
    assert 0 < t["seconds_per_pass"] and t["seconds_per_run"] == pytest.approx(3 * t["seconds_per_pass"])
    with pytest.raises(ExpodiffError, match="repeats"):
        measure_inference_time(net, 8, size=32, repeats=0)
