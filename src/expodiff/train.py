"""Training one variant (protocol §6), in one readable loop.

Resumable: ``model_latest.pt`` is rewritten every ``save_every`` iterations and at every epoch
end; a run killed mid-way continues from it (same config), and because every iteration draws
its randomness from (seed, iteration) the resumed run equals an uninterrupted one. The log
grows in ``train_log.partial.csv`` beside it (cut back to the checkpoint's iteration on
resume), so it survives Snakemake deleting the declared ``train_log.csv`` before a rerun.
When the run completes, ``model_final.pt`` and the log are written (the workflow's declared
outputs), then the partial log is removed: while it exists the run is unfinished, so a run
killed while writing the outputs finishes from its ``model_latest.pt`` at the last iteration
without training again, whereas a finished run that is rerun (Snakemake deleted its outputs
for a code change, say) trains anew. Identical trainings give byte-identical checkpoints.

Device and precision (``compute``, ``expodiff.device``): the network, the batches, the noise
parameters and every random draw live on the device; each iteration's torch generator is a
generator there seeded with the same derived seed. On the CPU with fp32 (the default) the
draws, their order and dtypes are those of the CPU-only code, so the results are bit-identical
to it; on CUDA they come from CUDA's generators and differ (as do the checkpoints). Only the
network forward runs in tf32/bf16 when asked; its output is float32 again before the loss.
Checkpoints hold CPU tensors wherever the network trained.

The feed (``expodiff.data.feed``): each iteration's patches are read and augmented ahead, in
``compute.data_workers`` DataLoader processes (0: here), and only the noise is made in the loop,
on the device; a batch depends on (seed, iteration) alone, so the worker count never changes a
result. Losses are read back (a device sync) once per ``LOG_EVERY`` iterations and before every
checkpoint, not every iteration.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import torch
from tqdm import tqdm

from expodiff import seeds
from expodiff.checkpoint import load_checkpoint, save_checkpoint
from expodiff.data.feed import iteration_feed
from expodiff.data.sources import make_source
from expodiff.device import compute_settings
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.atomic import atomic_path
from expodiff.methods import MethodSpec
from expodiff.recipes import resolve_K_range

LOG_FIELDS = ("iteration", "epoch", "lr", "loss", "seconds")
PARTIAL_LOG = "train_log.partial.csv"  # the resumable log, beside model_latest.pt
# log rows are written in groups, so that reading the losses (a device sync) happens once per
# group, not every iteration; always before a checkpoint is saved, so the log covers it
LOG_EVERY = 50
DEFAULT_SAVE_EVERY = 500  # training.save_every when a settings dict lacks it
# training settings that do not change what is learnt (left out of the run's fingerprint)
NOT_IN_FINGERPRINT = ("save_every",)


def lr_at(epoch: int, base_lr: float, schedule) -> float:
    """Learning rate during 0-based ``epoch``: base, then each [from_epoch, lr] once reached."""
    lr = base_lr
    for from_epoch, value in sorted(schedule):
        if epoch >= from_epoch:
            lr = value
    return lr


def fingerprint(variant: dict, training: dict, compute=None) -> str:
    """Identifies a run's settings, so a checkpoint is only resumed by the run that made it
    (settings that only say how often to save, such as save_every, are left out). ``compute``
    (a ``Compute``) counts only when it is not the default CPU fp32 (whose fingerprints are
    those of the CPU-only code): a GPU or bf16 run does not resume a CPU run, nor the reverse."""
    training = {k: v for k, v in training.items() if k not in NOT_IN_FINGERPRINT}
    what = {"variant": variant, "training": training}
    if compute is not None and not compute.is_default:
        what["compute"] = {"device": compute.device.type, "precision": compute.precision,
                           "channels_last": compute.channels_last}
    blob = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_variant(
    variant: dict,
    training: dict,
    patches_dir,
    camera_json,
    out_dir,
    log_csv=None,
    save_every: int | None = None,
    max_iterations: int | None = None,
    patch_size: int | None = None,
    dark_shading=None,
    compute=None,
) -> Path:
    """Train ``variant`` (config entry with "name") with ``training`` settings; return model_final.pt.

    ``patches_dir`` is the variant's training data: a patch store (synthetic noise) or a pair
    store (paired real data, cropped to ``patch_size``). ``max_iterations`` stops early (for
    tests of resuming), leaving model_latest.pt (and the log so far). ``save_every``: iterations
    between resumable checkpoints, default ``training["save_every"]`` (else 500).
    ``dark_shading``: PMN's maps (``.npz``). ``log_csv`` (default ``out_dir/train_log.csv``) is
    written atomically at the end from ``out_dir/train_log.partial.csv``.
    ``compute``: the config's ``compute`` section (or a ``Compute``; None: CPU fp32), resolved
    when the run starts (an unavailable device is a ConfigError naming compute.device).
    """
    compute = compute_settings(compute)
    if save_every is None:
        save_every = training.get("save_every", DEFAULT_SAVE_EVERY)
    if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
        raise ConfigError(f"save_every (training.save_every, --save-every) must be a positive integer, got {save_every!r}")
    if max_iterations is not None and (isinstance(max_iterations, bool) or not isinstance(max_iterations, int)
                                       or max_iterations < 1):
        raise ConfigError(f"max_iterations (--max-iterations) must be a positive integer, got {max_iterations!r}")
    spec = MethodSpec.from_variant(variant)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".model_*.part.pt"):  # temporaries of a save that a kill interrupted
        stale.unlink()
    log_csv = Path(log_csv) if log_csv else out_dir / "train_log.csv"
    partial_log = out_dir / PARTIAL_LOG
    camera = json.loads(Path(camera_json).read_text())
    training = resolve_K_range(training, camera)  # a camera model's "calibrated": its own span
    try:
        store = make_source(variant.get("data"), patches_dir, camera, training, patch_size, dark_shading)
    except ConfigError as err:
        raise ConfigError(f"variants.{variant.get('name')}.data: {err}") from err
    seed, batch = int(training["seed"]), int(training["batch_size"])
    iters_per_epoch = math.ceil(len(store) / batch)
    total_iters = int(training["epochs"]) * iters_per_epoch
    run_id = fingerprint(variant, training, compute)
    # the resolved settings of what is learnt, recorded in every checkpoint (not save_every); as
    # fresh objects through JSON, so that none is shared with the optimizer's (a resumed run's
    # come from the file) and pickle writes the same bytes either way
    settings = json.loads(json.dumps(
        {k: v for k, v in training.items() if k not in NOT_IN_FINGERPRINT} | {"patch_size": patch_size}, default=str))

    method = spec.impl
    torch.manual_seed(seed)  # network initialisation
    net = spec.build()  # on the CPU (the same initial weights anywhere), then to the device
    runner = compute.prepare(net)  # net itself on the CPU in fp32; else runs it in the precision asked
    # the method's own trainable tensors (ours: the step weights), same Adam, not part of netG
    extra = method.extra_parameters(spec, training)
    if compute.device.type != "cpu":
        extra = {key: torch.nn.Parameter(tensor.detach().to(compute.device)) for key, tensor in extra.items()}
    params = list(net.parameters()) + list(extra.values())
    optimizer = torch.optim.Adam(params, lr=float(training["lr"]), betas=(0.9, 0.999), weight_decay=0)

    start = 0
    latest = out_dir / "model_latest.pt"
    if latest.exists():
        state = load_checkpoint(latest)
        # at the last iteration only if unfinished (partial log still there): killed while
        # writing model_final.pt or the log, it only writes them
        unfinished = state["iterations"] < total_iters or (state["iterations"] == total_iters and partial_log.exists())
        if state.get("run_id") == run_id and unfinished:
            net.load_state_dict(state["netG"])
            optimizer.load_state_dict(state["opt_g"])
            for key, tensor in extra.items():
                tensor.data.copy_(state[key])
            start = int(state["iterations"])
    if start > 0 and not partial_log.exists() and log_csv.exists():
        partial_log.write_bytes(log_csv.read_bytes())  # a run begun before the partial log existed
    _truncate_log(partial_log, start)

    # recorded only when not the default, so that CPU fp32 checkpoints keep their bytes
    recorded = {} if compute.is_default else {"compute": compute.numerics()}

    def save(path, it):
        save_checkpoint(path, net, optimizer, epoch=it // iters_per_epoch, iterations=it,
                        **{key: tensor.detach().clone() for key, tensor in extra.items()}, run_id=run_id,
                        variant=dict(variant), spec=spec.as_dict(), training=settings, **recorded)

    net.train()
    t0 = time.time()
    end = total_iters if max_iterations is None else min(total_iters, max_iterations)
    feed = iteration_feed(store, seed, batch, start, end, workers=compute.data_workers,
                          pin_memory=compute.device.type == "cuda")
    pending = []  # log rows not yet written: [iteration, epoch, lr, loss (a tensor), seconds]
    with open(partial_log, "a", newline="") as log_file:
        log = csv.writer(log_file)

        def diverged(at: int, what: str) -> ExpodiffError:
            return ExpodiffError(f"variant {variant.get('name')}: training diverged by iteration {at} ({what}); "
                                 f"the checkpoints before it are kept: lower the learning rate (recipes.*.lr of the "
                                 f"variant's recipe, now {training['lr']:g})")

        def write_pending():
            if pending:
                losses = torch.stack([row[3] for row in pending]).tolist()  # one sync for the group
                bad = next((row[0] for row, loss in zip(pending, losses) if not math.isfinite(loss)), None)
                if bad is not None:  # before any save: a NaN network is never checkpointed
                    raise diverged(bad, "the loss is not finite")
                log.writerows([*row[:3], f"{loss:.6f}", row[4]] for row, loss in zip(pending, losses))
                log_file.flush()
                pending.clear()

        for it, loaded in zip(tqdm(range(start, end), initial=start, total=total_iters, desc=f"train {variant['name']}",
                                   unit="it"), feed):
            epoch, pos = divmod(it, iters_per_epoch)
            lr = lr_at(epoch, float(training["lr"]), training["lr_schedule"])
            for group in optimizer.param_groups:
                group["lr"] = lr
            generator = compute.generator(seeds.training_seed(seed, it))
            data = store.finish(loaded, generator)  # the synthetic noise, on the device
            try:
                loss = method.loss(runner, spec, data, extra=extra, training=training, generator=generator,
                                   rng=seeds.training_rng(seed, it))
            except RuntimeError as err:
                # ours re-exposes the prediction: a diverged network's NaN or infinite output is a
                # Poisson rate torch refuses ("invalid Poisson rate"), before any loss is seen
                if "Poisson rate" not in str(err) and all(torch.isfinite(p).all() for p in net.parameters()):
                    raise
                raise diverged(it + 1, f"the network's output is not finite: {err}") from err
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done = it + 1
            pending.append([done, epoch, lr, loss.detach(), f"{time.time() - t0:.2f}"])
            checkpoint_epoch = done % iters_per_epoch == 0 and (done // iters_per_epoch) in set(training["checkpoint_epochs"])
            resumable = done % save_every == 0 or done % iters_per_epoch == 0 or done == end
            if len(pending) >= LOG_EVERY or checkpoint_epoch or resumable:
                write_pending()
            if checkpoint_epoch:
                save(out_dir / f"model_{done // iters_per_epoch:03d}.pt", done)
            if resumable:
                save(latest, done)
    if end < total_iters:
        _write_log(partial_log, log_csv)
        return latest
    final = out_dir / "model_final.pt"
    save(final, total_iters)
    _write_log(partial_log, log_csv)
    if log_csv.resolve() != partial_log.resolve():
        partial_log.unlink()  # finished: a rerun from here trains anew
    return final


def _truncate_log(log_csv: Path, upto: int) -> None:
    """Keep the log's rows up to iteration ``upto`` (a resumed run rewrites what follows).

    Written atomically; a last row cut short by a kill (fewer fields) is dropped.
    """
    rows = []
    if log_csv.exists() and upto > 0:
        with open(log_csv, newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
        rows = [r for r in rows if len(r) == len(LOG_FIELDS) and r[0].isdigit() and int(r[0]) <= upto]
    with atomic_path(log_csv) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LOG_FIELDS)
        writer.writerows(rows)


def _write_log(partial_log: Path, log_csv: Path) -> None:
    """The declared log: a copy of the resumable one, renamed into place."""
    if log_csv.resolve() == partial_log.resolve():
        return
    with atomic_path(log_csv) as tmp:
        shutil.copyfile(partial_log, tmp)
