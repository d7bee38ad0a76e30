"""P+G noise statistics (protocol §3)."""

import json
from importlib.resources import files

import numpy as np
import pytest
import torch

from expodiff.noise import DN_SCALE, PGParams, add_pg_noise, k_from_iso, sample_pg_params

CAMERA = json.loads((files("expodiff") / "resources" / "camera_params" / "SonyA7S2.json").read_text())


def _params(K, sigma, ratio, n=1):
    t = lambda v: torch.full((n,), float(v))  # noqa: E731
    return PGParams(K=t(K), sigma_g=t(sigma), ratio=t(ratio))


@pytest.mark.parametrize("signal_dn", [40.0, 150.0, 600.0])
@pytest.mark.parametrize("K,sigma", [(1.0, 2.0), (4.0, 6.0)])
def test_mean_and_variance_follow_k_s_plus_sigma2(signal_dn, K, sigma):
    clean_level = 0.4  # far from both clipping bounds
    ratio = clean_level * DN_SCALE / signal_dn  # the ratio at which s = signal_dn
    clean = torch.full((1, 4, 256, 256), clean_level)
    g = torch.Generator().manual_seed(0)
    x_t = add_pg_noise(clean, _params(K, sigma, ratio), g).double()
    x_dn = x_t * DN_SCALE / ratio  # back to short-exposure DN
    n = x_dn.numel()
    expected_var = K * signal_dn + sigma**2
    assert abs(x_dn.mean().item() - signal_dn) < 4 * np.sqrt(expected_var / n)
    assert x_dn.var().item() == pytest.approx(expected_var, rel=0.03)


def test_output_is_clipped_to_unit_range():
    clean = torch.cat([torch.zeros(1, 4, 64, 64), torch.ones(1, 4, 64, 64)])
    x_t = add_pg_noise(clean, _params(2.0, 10.0, 50.0, n=2), torch.Generator().manual_seed(1))
    assert x_t.min() == 0 and x_t.max() == 1
    assert (x_t[0] == 0).float().mean() > 0.3  # dark image: read noise pushes about half below 0
    assert (x_t[1] == 1).float().mean() > 0.3  # saturated image: about half above 1


def test_parameter_sampling_ranges_and_determinism():
    a = sample_pg_params(CAMERA, 2000, generator=torch.Generator().manual_seed(3))
    b = sample_pg_params(CAMERA, 2000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.K, b.K) and torch.equal(a.sigma_g, b.sigma_g)
    assert a.K.min() >= 0.1 - 1e-6 and a.K.max() <= 30 + 1e-4
    assert a.ratio.min() >= 20 and a.ratio.max() <= 300
    # log σ_g is linear in log K with the profile's slope and scatter
    line = CAMERA["Profile-1"]["g_scale"]
    slope, bias = np.polyfit(np.log(a.K.double().numpy()), np.log(a.sigma_g.double().numpy()), 1)
    assert slope == pytest.approx(line["slope"], abs=0.03)
    assert bias == pytest.approx(line["bias"], abs=0.06)
    resid = np.log(a.sigma_g.double().numpy()) - (line["slope"] * np.log(a.K.double().numpy()) + line["bias"])
    assert resid.std().item() == pytest.approx(line["sigma"], rel=0.08)


def test_k_from_iso_endpoints():
    assert k_from_iso(100, CAMERA) == pytest.approx(CAMERA["Kmin"])
    assert k_from_iso(6400, CAMERA) == pytest.approx(CAMERA["Kmax"])
