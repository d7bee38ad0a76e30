"""The evaluation protocols (config evaluation.protocols): bad values give one clear error
naming the key, from the config (load_config, as the CLI and Snakemake check it) and from the
library (evaluate_variant, the tables, the step figure)."""

from __future__ import annotations

import pytest

from expodiff.config import load_config
from expodiff.errors import ConfigError
from expodiff.evaluate import evaluate_variant
from expodiff.protocols import GT_FREE, ORACLE, PROTOCOLS, check_protocols, uses_ground_truth
from test_workflow import REPO, overlay

PAPER = REPO / "config.yaml"
VARIANT = {"name": "v", "backbone": "unet", "data": "pg", "method": "ours", "concat_origin": False}


def test_the_shipped_configs_run_both_protocols():
    for files in ([PAPER], [PAPER, REPO / "configs" / "demo.yaml"]):
        evaluation = load_config(files)["evaluation"]
        assert evaluation["protocols"] == [ORACLE, GT_FREE] == list(PROTOCOLS)
        assert evaluation["eld_ratio"] == "original"
    assert uses_ground_truth(ORACLE) and not uses_ground_truth(GT_FREE)
    assert check_protocols([GT_FREE, ORACLE]) == [ORACLE, GT_FREE]  # the canonical order


@pytest.mark.parametrize("protocols,message", [
    (["oracle", "ideal"], r"evaluation\.protocols: unknown protocol 'ideal'; known: oracle, gt-free"),
    ([], r"config key evaluation\.protocols: \[\] should be non-empty"),
    (["oracle", "oracle"], r"config key evaluation\.protocols: .* non-unique"),
    ("oracle", r"config key evaluation\.protocols: 'oracle' is not of type 'array'"),
])  # fmt: skip
def test_a_bad_protocol_list_in_the_config_names_the_key(tmp_path, protocols, message):
    bad = overlay(tmp_path, "bad", {"evaluation": {"protocols": protocols}})
    with pytest.raises(ConfigError, match=message) as err:
        load_config([PAPER, bad])
    assert str(err.value).count("evaluation.protocols") == 1  # one message, not a cascade


def test_an_unknown_eld_ratio_mode_names_the_key(tmp_path):
    bad = overlay(tmp_path, "bad", {"evaluation": {"eld_ratio": "floor"}})
    with pytest.raises(ConfigError, match=r"evaluation\.eld_ratio: unknown mode 'floor'; choose one of original, rounded"):
        load_config([PAPER, bad])


@pytest.mark.parametrize("protocols,message", [
    ([], r"^evaluation\.protocols: empty; name at least one protocol of oracle, gt-free$"),
    (["gt-free", "none"], r"^evaluation\.protocols: unknown protocol 'none'; known: oracle, gt-free$"),
    (True, r"^evaluation\.protocols: expected a list of protocol names \(oracle, gt-free\), got True$"),
    ("oracle", r"^evaluation\.protocols: expected a list of protocol names"),
    (["oracle", "oracle"], r"^evaluation\.protocols: \['oracle', 'oracle'\] names a protocol twice$"),
])  # fmt: skip
def test_the_library_refuses_bad_protocols_before_it_loads_anything(protocols, message):
    with pytest.raises(ConfigError, match=message):
        evaluate_variant("no-such.pt", "no-such-set", VARIANT, [1], protocols, 0, "no-such.json", "p.csv", "s.csv")


def test_tables_and_figure_refuse_an_unknown_protocol(tmp_path):
    from expodiff.report.plots import plot_step_curve
    from expodiff.report.tables import build_variant_table

    with pytest.raises(ConfigError, match=r"evaluation\.protocols: unknown protocol 'ideal'"):
        build_variant_table({}, {}, [100], 3, protocols=["ideal"])
    with pytest.raises(ConfigError, match=r"evaluation\.protocols: empty"):
        plot_step_curve("a.csv", "b.csv", "c.csv", 100, tmp_path / "s.png", tmp_path / "s.pdf", protocols=[])
