"""Training data: the table of data kinds, and the sources that make one training batch.

``DATA_KINDS`` is the one place that says, for each value of a variant's ``data``, which store
it trains on (the patch store or the pair store, and the workflow rule that builds it), whether
it crops ``patches.size`` squares at train time, whether it uses PMN's dark-shading maps, which
camera file it reads and which source class makes its batches. The workflow
(rules/common.smk), ``make_source``, ``expodiff train`` and the planner (``expodiff.plan``)
read it; a new kind of training data is a new entry (plus its source class).

- synthetic noise (``pg`` = P+g, ``eld`` = P+G+r+u, the models of ``physics.noise``): clean
  long-exposure patches from the patch store, noised per patch with parameters drawn from the
  camera's noise model;
- ``paired``: real SID (short, long) pairs from the pair store, in its windows (the fixed
  centre patches, or random crops: ``expodiff.data.pairs``);
- ``pmn``: the same pairs, dark-shading corrected and shot-noise augmented as PMN does.

Every source returns a ``TrainBatch``; a method's loss reads only that. Importing this module
loads nothing beyond the standard library, because Snakemake reads the table while it parses
the rules, where numpy and torch need not be installed; the sources import them when they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from expodiff.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import torch

# --- the table: data kind -> store, the rule that builds it, its parameters ----------------


@dataclass(frozen=True)
class Store:
    """A training input that one rule of rules/data.smk builds once per run."""

    name: str  # "patches", "pairs", "dark_shading"
    path: str  # where it lives, relative to the run folder
    rule: str  # the rule that builds it
    output: str  # what that rule declares (the patch store: its meta.json; else ``path``)


PATCH_STORE = Store("patches", "results/patches/sid_train", rule="patch_store",
                    output="results/patches/sid_train/meta.json")  # fmt: skip
PAIR_STORE = Store("pairs", "results/pairs/sid_train", rule="pair_store", output="results/pairs/sid_train")
DARK_SHADING = Store("dark_shading", "results/pmn/dark_shading.npz", rule="dark_shading",
                     output="results/pmn/dark_shading.npz")  # fmt: skip
STORES = {store.name: store for store in (PATCH_STORE, PAIR_STORE)}  # the data stores, {name: Store}


@dataclass(frozen=True)
class DataKind:
    """What a variant with ``data: <name>`` trains on."""

    name: str  # the config value (variants.NAME.data, table rows' data)
    store: Store  # PATCH_STORE or PAIR_STORE
    source: type  # makes its batches: source(directory, kind, camera, training, patch_size, dark_shading)
    # synthetic noise: the noise model (a key of physics.noise.NOISE_MODELS), whose parameters
    # the training reads from the camera noise-model file (results/calibration/{camera}.json);
    # None: real pairs, K from the short's ISO and the release parameters (results/cameras/)
    noise_model: str | None = None
    patch_size: bool = False  # crops patches.size squares at train time (the patch store is cut already)
    dark_shading: bool = False  # PMN's dark-shading maps, when pmn.dark_frames is set (training and evaluation)

    def uses_dark_shading(self, config: dict) -> bool:
        """Whether a training of this kind under ``config`` reads DARK_SHADING (PMN with
        pmn.dark_frames; without dark frames the correction is skipped)."""
        return self.dark_shading and bool(config["pmn"]["dark_frames"])


def data_kind(name: str) -> DataKind:
    """The entry of ``DATA_KINDS`` for a variant's ``data``; ConfigError naming the known ones."""
    if name not in DATA_KINDS:
        raise ConfigError(f"unknown training data {name!r}; known: {', '.join(DATA_KINDS)}")
    return DATA_KINDS[name]


# --- the sources ---------------------------------------------------------------------------


def draw_flips(rng) -> np.ndarray:
    """One sample's random (left-right, up-down, transpose) flags: ``augment``'s draws."""
    return rng.random(3) < 0.5


def augment(*patches, rng) -> list:
    """The same random horizontal/vertical flips and transpose for (4,p,p) patches (input and target)."""
    import numpy as np

    flips = draw_flips(rng)
    out = []
    for patch in patches:
        if flips[0]:
            patch = patch[:, :, ::-1]
        if flips[1]:
            patch = patch[:, ::-1, :]
        if flips[2]:
            patch = patch.transpose(0, 2, 1)
        out.append(np.ascontiguousarray(patch))
    return out


@dataclass(frozen=True)
class TrainBatch:
    clean: torch.Tensor  # (B,4,p,p) ground truth in [0,1]
    x_t: torch.Tensor  # (B,4,p,p) amplified noisy input X_T in [0,1]
    ratio: torch.Tensor  # (B,) exposure ratio
    K: torch.Tensor  # (B,) system gain, DN/e⁻
    # S, the DN a packed 1 stands for (the camera's: re-exposure must use the noise's scale); the
    # default is physics.camera.ORIGINAL_DN_SCALE, spelled out: importing physics.camera loads numpy
    dn_scale: float = 16383 - 800


def to_device(loaded: dict, device) -> dict:
    """The tensors of a ``load`` result on ``device`` (asynchronous copies from pinned memory
    on CUDA; on the CPU the same tensors)."""
    return {key: value.to(device, non_blocking=True) for key, value in loaded.items()}


class Source:
    """Makes one training batch in two parts, so that the first can run in DataLoader workers
    (``expodiff.data.feed``) while the device trains:

    - ``load(indices, rng)``: everything drawn from the numpy ``rng`` (reading the stores,
      crops, flips, PMN's augmentation), on the CPU; returns a dict of CPU tensors;
    - ``finish(loaded, generator)``: everything drawn from the torch ``generator`` (the
      synthetic noise), on the generator's device; returns the ``TrainBatch``.

    Each part depends only on its own random stream, so a batch is the same whichever process
    loads it."""

    def __len__(self) -> int:
        return len(self.store)

    def load(self, indices, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def finish(self, loaded: dict, generator: torch.Generator | None) -> TrainBatch:
        raise NotImplementedError

    def batch(self, indices, rng: np.random.Generator, generator: torch.Generator | None) -> TrainBatch:
        """Both parts in this process."""
        return self.finish(self.load(indices, rng), generator)


class SyntheticNoiseSource(Source):
    """Clean long-exposure patches + a noise model with per-patch parameters (P+G or ELD).

    ``training["noise_order"]``: "original" (default), as the ELD and ExposureDiffusion code
    make their samples: the noise is added to the patch as stored, then input and target are
    flipped and transposed together, so a transposed ELD sample carries column banding;
    "augment-first": the clean patch is flipped first and then noised (row banding always).
    Both draw the same flips (``augment``'s draws) and the same noise."""

    NOISE_ORDERS = ("original", "augment-first")

    def __init__(self, directory, kind: DataKind, camera: dict, training: dict, patch_size=None, dark_shading=None):
        from expodiff.data.patches import PatchStore

        self.store, self.noise, self.camera = PatchStore(directory), kind.noise_model, camera
        self.K_range, self.ratio_range = tuple(training["K_range"]), tuple(training["ratio_range"])
        self.noise_order = training.get("noise_order", "original")
        if self.noise_order not in self.NOISE_ORDERS:
            raise ConfigError(f"training.noise_order must be one of {', '.join(self.NOISE_ORDERS)}, "
                              f"got {self.noise_order!r}")

    def load(self, indices, rng: np.random.Generator) -> dict:
        import numpy as np
        import torch

        if self.noise_order == "augment-first":
            return {"clean": torch.from_numpy(np.stack([augment(self.store[i], rng=rng)[0] for i in indices]))}
        flips = np.stack([draw_flips(rng) for _ in indices])  # augment()'s draws, applied in finish
        return {"clean": torch.from_numpy(np.stack([self.store[i] for i in indices])), "flips": torch.from_numpy(flips)}

    def finish(self, loaded: dict, generator: torch.Generator | None) -> TrainBatch:
        from expodiff.physics.camera import dn_scale
        from expodiff.physics.noise import add_noise, sample_noise_params

        clean = loaded["clean"]
        if generator is not None:  # noise is made where the generator is (CPU: the same tensor)
            clean = clean.to(generator.device, non_blocking=True)
        params = sample_noise_params(self.noise, self.camera, len(clean), K_range=self.K_range,
                                     ratio_range=self.ratio_range, generator=generator)
        x_t = add_noise(self.noise, clean, params, generator, dn_scale=dn_scale(self.camera))
        if "flips" in loaded:  # noise first: now flip input and target together
            clean, x_t = flip_pairs(clean, x_t, loaded["flips"].tolist())
        return TrainBatch(clean, x_t, params.ratio, params.K, dn_scale=dn_scale(self.camera))


def flip_pairs(clean: torch.Tensor, x_t: torch.Tensor, flips: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample of the (B,4,p,p) batches flipped as ``augment`` flips it: ``flips[b]`` =
    (left-right, up-down, transpose)."""
    import torch

    def one(t, lr, ud, tr):
        if lr:
            t = t.flip(-1)
        if ud:
            t = t.flip(-2)
        return t.transpose(-1, -2) if tr else t

    pairs = [(one(c, *f), one(x, *f)) for c, x, f in zip(clean, x_t, flips)]
    return (torch.stack([c for c, _ in pairs]).contiguous(), torch.stack([x for _, x in pairs]).contiguous())


class PairedSource(Source):
    """Real (short, long) pairs: the store's windows (fixed centre patches, or random crops:
    ``expodiff.data.pairs``), X_T = clip(short·r, 0, 1), K from the short's EXIF ISO.

    The whole batch is made in ``load`` (numpy randomness only); ``finish`` moves it to the
    generator's device."""

    def __init__(self, directory, kind: DataKind, camera: dict, training: dict, patch_size: int, dark_shading=None):
        from expodiff.data.pairs import PairStore

        self.store, self.camera, self.size = PairStore(directory), camera, int(patch_size)

    def finish(self, loaded: dict, generator: torch.Generator | None) -> TrainBatch:
        from expodiff.physics.camera import dn_scale

        if generator is not None:
            loaded = to_device(loaded, generator.device)
        return TrainBatch(**loaded, dn_scale=dn_scale(self.camera))

    def load(self, indices, rng: np.random.Generator) -> dict:
        import numpy as np
        import torch

        from expodiff.physics.noise import k_from_iso

        shorts, longs, ratios, Ks = [], [], [], []
        for i in indices:
            short, long = augment(*self.store.crop(i, self.size, rng), rng=rng)
            rec = self.store.record(i)
            shorts.append(np.clip(short * rec["ratio"], 0, 1))
            longs.append(long)
            ratios.append(float(rec["ratio"]))
            Ks.append(k_from_iso(rec["iso"], self.camera))
        as_t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        return {"clean": torch.from_numpy(np.stack(longs)), "x_t": torch.from_numpy(np.stack(shorts)),
                "ratio": as_t(ratios), "K": as_t(Ks)}


class PMNSource(PairedSource):
    """Real pairs with PMN's dark-shading correction and shot-noise augmentation (protocol §3).

    X_T = clip(x', 0, 1) as every ExposureDiffusion input; without dark-shading maps the
    correction is skipped (the shot-noise augmentation still runs).
    """

    SIGMAS = (0.25, 0.5)  # SNA strength, drawn once per batch

    def __init__(self, directory, kind: DataKind, camera: dict, training: dict, patch_size: int, dark_shading=None):
        from expodiff.data.pmn import DarkShading

        super().__init__(directory, kind, camera, training, patch_size)
        self.dark_shading = DarkShading(dark_shading) if dark_shading else None

    def load(self, indices, rng: np.random.Generator) -> dict:
        import numpy as np
        import torch

        from expodiff.data.pmn import sample_sna_strength, shot_noise_augment
        from expodiff.physics.noise import k_from_iso

        sigma = self.SIGMAS[int(rng.integers(len(self.SIGMAS)))]
        inputs, targets, ratios, Ks = [], [], [], []
        for i in indices:
            rec = self.store.record(i)
            short_dn, long_dn, (top, left) = self.store.crop_dn(i, self.size, rng)
            if self.dark_shading is not None:  # DSC on both frames in training
                short_dn = short_dn - self.dark_shading.window(rec["iso"], top, left, self.size, self.size)
                long_dn = long_dn - self.dark_shading.window(rec["long_iso"], top, left, self.size, self.size)
            s = self.store.scale(i)
            clean = np.clip(long_dn / s, 0, 1)
            a = sample_sna_strength(rec["ratio"], sigma, rng)
            x, y = shot_noise_augment(short_dn, clean, rec["ratio"], rec["iso"], s, a, rng)
            x, y = augment(np.clip(x, 0, 1), y, rng=rng)
            inputs.append(x)
            targets.append(y)
            ratios.append(float(rec["ratio"]))
            Ks.append(k_from_iso(rec["iso"], self.camera))
        as_t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        return {"clean": torch.from_numpy(np.stack(targets)), "x_t": torch.from_numpy(np.stack(inputs)),
                "ratio": as_t(ratios), "K": as_t(Ks)}


# pg and eld are the noise models of physics.noise.NOISE_MODELS (tests/test_cli_train.py holds
# the two equal; that module imports torch, which the table must not)
DATA_KINDS: dict[str, DataKind] = {
    kind.name: kind
    for kind in (
        DataKind("pg", PATCH_STORE, SyntheticNoiseSource, noise_model="pg"),  # P+g: the paper's P+G
        DataKind("eld", PATCH_STORE, SyntheticNoiseSource, noise_model="eld"),  # P+G+r+u: the ELD model
        DataKind("paired", PAIR_STORE, PairedSource, patch_size=True),  # real SID (short, long) pairs
        DataKind("pmn", PAIR_STORE, PMNSource, patch_size=True, dark_shading=True),  # pairs made learnable by PMN
    )
}


def make_source(data: str, directory, camera: dict, training: dict, patch_size: int | None, dark_shading=None):
    """The training data of a variant (``data``: a key of ``DATA_KINDS``) from its store
    ``directory``: a synthetic noise model on clean patches, or real pairs (as they are, or made
    more learnable as PMN does)."""
    kind = data_kind(data)
    if kind.patch_size and not patch_size:
        raise ConfigError(f"{data} training needs patch_size (config patches.size)")
    if dark_shading and not kind.dark_shading:
        users = [k.name for k in DATA_KINDS.values() if k.dark_shading]
        raise ConfigError(f"{data} training uses no dark-shading maps (only {', '.join(users)} does)")
    return kind.source(directory, kind, camera, training, patch_size, dark_shading)
