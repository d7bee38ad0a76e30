"""P+G noise statistics (protocol §3)."""

import numpy as np
import pytest
import torch

from expodiff.physics import noise
from expodiff.physics.camera import k_from_iso, k_range, load_camera_params, profile_log_sigma
from expodiff.physics.noise import DN_SCALE, NoiseParams, add_noise, quantise, sample_noise_params, shot_noise

CAMERA = load_camera_params("SonyA7S2")


def _params(K, sigma, ratio, n=1):
    return NoiseParams.of(n, K=K, sigma_g=sigma, ratio=ratio)


@pytest.mark.parametrize("signal_dn", [40.0, 150.0, 600.0])
@pytest.mark.parametrize("K,sigma", [(1.0, 2.0), (4.0, 6.0)])
def test_mean_and_variance_follow_k_s_plus_sigma2(signal_dn, K, sigma):
    clean_level = 0.4  # far from both clipping bounds
    ratio = clean_level * DN_SCALE / signal_dn  # the ratio at which s = signal_dn
    clean = torch.full((1, 4, 256, 256), clean_level)
    g = torch.Generator().manual_seed(0)
    x_t = add_noise("P+g", clean, _params(K, sigma, ratio), g).double()
    x_dn = x_t * DN_SCALE / ratio  # back to short-exposure DN
    n = x_dn.numel()
    expected_var = K * signal_dn + sigma**2
    assert abs(x_dn.mean().item() - signal_dn) < 4 * np.sqrt(expected_var / n)
    assert x_dn.var().item() == pytest.approx(expected_var, rel=0.03)


def test_output_is_clipped_to_unit_range():
    clean = torch.cat([torch.zeros(1, 4, 64, 64), torch.ones(1, 4, 64, 64)])
    x_t = add_noise("P+g", clean, _params(2.0, 10.0, 50.0, n=2), torch.Generator().manual_seed(1))
    assert x_t.min() == 0 and x_t.max() == 1
    assert (x_t[0] == 0).float().mean() > 0.3  # dark image: read noise pushes about half below 0
    assert (x_t[1] == 1).float().mean() > 0.3  # saturated image: about half above 1


def test_parameter_sampling_ranges_and_determinism():
    a = sample_noise_params("pg", CAMERA, 2000, generator=torch.Generator().manual_seed(3))
    b = sample_noise_params("pg", CAMERA, 2000, generator=torch.Generator().manual_seed(3))
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
    assert noise.k_from_iso is k_from_iso  # one definition, also importable from physics.noise


def test_k_range_inverts_k_from_iso():
    slope = (CAMERA["Kmax"] - CAMERA["Kmin"]) / (6400 - 100)
    assert k_range(slope, CAMERA["Kmin"] - 100 * slope) == pytest.approx((CAMERA["Kmin"], CAMERA["Kmax"]))
    assert k_from_iso(3250, CAMERA) == pytest.approx((CAMERA["Kmin"] + CAMERA["Kmax"]) / 2)


def test_formulas_are_array_agnostic():
    """quantise, shot_noise and profile_log_sigma give the same numbers on numpy and torch
    (the demo-data generator calls them with numpy draws)."""
    rng = np.random.default_rng(0)
    signal, u = rng.uniform(-1, 20, (8, 8)), rng.uniform(-0.5, 0.5, (8, 8))
    q = quantise(signal, u)
    assert q.min() >= 0 and np.array_equal(quantise(torch.from_numpy(signal), torch.from_numpy(u)).numpy(), q)
    counts = rng.poisson(q / 2.5)
    same = lambda rate: counts  # noqa: E731  (a fixed draw: compare the formula alone)
    assert np.array_equal(shot_noise(torch.from_numpy(q), 2.5, lambda r: torch.from_numpy(same(r))).numpy(),
                          shot_noise(q, 2.5, same))
    line = CAMERA["Profile-1"]["G_scale"]
    log_k = np.log([0.5, 2.0, 9.0])
    assert np.array_equal(profile_log_sigma(line, torch.from_numpy(log_k)).numpy(), profile_log_sigma(line, log_k))


# --- ELD noise model (P+G+r+u) ---------------------------------------------------------


def _eld(clean, seed=0, **values):
    params = NoiseParams.of(clean.shape[0], **values)
    return add_noise("P+G+r+u", clean, params, torch.Generator().manual_seed(seed)).double()


def test_row_noise_is_shared_along_mosaic_rows():
    ratio, level = 20.0, 0.3
    clean = torch.full((1, 4, 64, 4096), level)
    x = _eld(clean, K=0.5, ratio=ratio, sigma_r=6.0, sigma_tl=1.0, lam=0.0) * DN_SCALE / ratio
    row_means = x[0].mean(-1)  # (4, 64): per channel, per packed row
    corr = np.corrcoef(row_means.numpy())
    assert corr[0, 1] > 0.95 and corr[2, 3] > 0.95  # R/G1 share mosaic row 2j, B/G2 row 2j+1
    assert abs(corr[0, 2]) < 0.35 and abs(corr[1, 3]) < 0.35  # different mosaic rows: independent
    assert row_means[0].std().item() == pytest.approx(6.0, rel=0.25)


@pytest.mark.parametrize("lam", [-0.14, 0.0, 0.13])
def test_tukey_lambda_shape_recovered_by_ppcc(lam):
    from scipy import stats

    ratio = 20.0
    clean = torch.full((1, 4, 128, 128), 0.2)
    x = _eld(clean, seed=3, K=1e-3, ratio=ratio, sigma_tl=4.0, lam=lam) * DN_SCALE / ratio
    residual = (x - clean.double() * DN_SCALE / ratio).flatten().numpy()
    # K·Poisson(s/K) with tiny K is the signal plus ~K·√(s/K) ≈ 0.05 DN: the read noise dominates
    assert stats.ppcc_max(residual[:60000], brack=(-0.5, 0.5)) == pytest.approx(lam, abs=0.05)
    assert residual.std() == pytest.approx(4.0 * stats.tukeylambda(lam).std(), rel=0.05)


@pytest.mark.parametrize("signal_dn", [30.0, 300.0])
def test_eld_variance_against_signal(signal_dn):
    from scipy import stats

    K, sigma_r, sigma_tl, lam = 2.0, 1.5, 3.0, -0.05
    ratio = 0.4 * DN_SCALE / signal_dn
    clean = torch.full((2, 4, 256, 256), 0.4)
    x = _eld(clean, seed=1, K=K, ratio=ratio, sigma_r=sigma_r, sigma_tl=sigma_tl, lam=lam) * DN_SCALE / ratio
    expected = K * signal_dn + 1 / 12 + sigma_r**2 + (sigma_tl * stats.tukeylambda(lam).std()) ** 2
    assert x.var().item() == pytest.approx(expected, rel=0.05)
    assert x.mean().item() == pytest.approx(signal_dn, rel=0.01)


def test_eld_parameter_sampling_follows_profile():
    p = sample_noise_params("eld", CAMERA, 4000, generator=torch.Generator().manual_seed(0))
    assert set(np.unique(p.lam.numpy()).round(6)) <= set(np.round(np.float32(CAMERA["G_shape"]), 6))
    for field, line in (("sigma_tl", "G_scale"), ("sigma_r", "R_scale")):
        spec = CAMERA["Profile-1"][line]
        slope, bias = np.polyfit(np.log(p.K.double().numpy()), np.log(getattr(p, field).double().numpy()), 1)
        assert slope == pytest.approx(spec["slope"], abs=0.03)
        assert bias == pytest.approx(spec["bias"], abs=0.06)
    assert torch.all(p.sigma_g == 0)
