"""The ``expodiff`` command: what a person runs by hand. Snakemake rules call the same functions."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from expodiff.errors import ConfigError, ExpodiffError


def number(kind=float, *, above=None, at_least=None, whole=False):
    """An argparse ``type`` for a finite number in range; argparse names the flag in the error
    (``argument --K: must be a number > 0, got nan``) and exits 2."""
    bounds = " and ".join(b for b in (above is not None and f"> {above:g}", at_least is not None and f"≥ {at_least:g}") if b)
    want = ("a whole number" if whole or kind is int else "a number") + (f" {bounds}" if bounds else "")

    def parse(text: str):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}") from None
        if not math.isfinite(value) or (above is not None and value <= above) or (
                at_least is not None and value < at_least) or ((whole or kind is int) and not value.is_integer()):
            raise argparse.ArgumentTypeError(f"must be {want}, got {text}")
        return int(value) if kind is int or whole else value

    return parse


def _bundled_camera(name_or_path: str) -> Path:
    from expodiff.physics.camera import camera_params_path

    try:
        return camera_params_path(name_or_path)
    except ConfigError as err:
        raise ConfigError(f"--camera: {err}") from err


def cmd_make_demo_data(args) -> None:
    from expodiff.data.synthetic import make_camera_data, make_demo_data

    if args.camera == "sony":
        out = make_demo_data(args.out, seed=args.seed, preset=args.preset)
        print(f"demo dataset written to {out}")
    else:
        out = make_camera_data(args.out, camera=args.camera, seed=args.seed, preset=args.preset)
        print(f"{args.camera} calibration frames and pairs written to {out}")


def _npy_output(path: str, flag: str) -> Path:
    """An output path for a packed array: a file name ending in .npy (any case), not a folder."""
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"{flag} {out} is a folder; give a file name ending in .npy")
    if out.suffix.lower() != ".npy":
        raise ConfigError(f"{flag} must end in .npy, got {out}")
    return out


def cmd_pack(args) -> None:
    from expodiff.data.eval_sets import center_crop
    from expodiff.io.atomic import save_npy_atomic
    from expodiff.io.raw import pack, read_raw

    out = _npy_output(args.output, "--output")
    # packing needs no EXIF: a file without ISO packs as well
    packed = center_crop(pack(read_raw(args.input, require_exif=False)), args.crop, args.input)
    save_npy_atomic(out, packed.astype(np.float32))
    print(f"{args.input} → {out} {tuple(packed.shape)}")


def _load_input(path: str, flag: str, require_exif: bool = True):
    from expodiff.io.raw import load_packed

    try:
        array, frame = load_packed(path, require_exif=require_exif)
    except ExpodiffError as err:
        raise ExpodiffError(f"{flag}: {err}") from err
    return array, frame


class _RegisteredMethods:
    """argparse choices: the method names of ``expodiff.methods`` (imported only when a
    --method is checked or help is shown, so the other commands need no torch)."""

    def __contains__(self, name) -> bool:
        from expodiff.methods import METHODS

        return name in METHODS

    def __iter__(self):
        from expodiff.methods import METHODS

        return iter(list(METHODS))


def _denoise_spec(args):
    """The network of ``expodiff denoise``: the checkpoint's recorded spec, checked against
    --backbone/--method/--concat-origin where given; the flags alone for a released checkpoint.
    Returns (checkpoint state, spec)."""
    from expodiff.checkpoint import checkpoint_spec, load_checkpoint
    from expodiff.methods import MethodSpec

    state = load_checkpoint(args.checkpoint)
    trained = checkpoint_spec(state, args.checkpoint)
    flags = {"backbone": args.backbone, "method": args.method, "concat_origin": True if args.concat_origin else None}
    if trained is None:
        if args.backbone is None or args.method is None:
            raise ConfigError(f"--checkpoint {args.checkpoint} records no spec (a released checkpoint): "
                              "give --backbone and --method (and --concat-origin if it has 12 input channels)")
        return state, MethodSpec(args.backbone, args.method, args.concat_origin)
    differs = [(k, v) for k, v in flags.items() if v is not None and trained.as_dict()[k] != v]
    if differs:
        given = " ".join("--concat-origin" if k == "concat_origin" else f"--{k} {v}" for k, v in differs)
        raise ConfigError(f"checkpoint {args.checkpoint} was trained as {trained.describe()}; {given} says otherwise")
    return state, trained


def _compute(args, config_compute=None):
    """The config's ``compute`` section with --device/--precision/--channels-last over it,
    resolved (errors name the flag that gave the value, else compute.device/...)."""
    from expodiff.device import compute_settings

    return compute_settings(config_compute, device=args.device, precision=args.precision,
                            channels_last=args.channels_last, data_workers=getattr(args, "data_workers", None),
                            tile_size=getattr(args, "tile_size", None), tile_overlap=getattr(args, "tile_overlap", None))


def _add_compute_flags(p, default: str) -> None:
    """--device, --precision, --channels-last of a command that runs a network."""
    p.add_argument("--device", default=None,
                   help="where the network runs: auto (CUDA when present), cpu, cuda or cuda:N; "
                        f"default: {default}. On CUDA the random draws come from CUDA generators "
                        "(same seeds), so results differ from the CPU's")
    p.add_argument("--precision", default=None, choices=["fp32", "tf32", "bf16"],
                   help="fp32 (the paper's), tf32 (TF32 matmuls/convolutions on CUDA) or bf16 (bfloat16 "
                        f"autocast of the network forward only; noise, re-exposure and loss stay float32); default: {default}")
    p.add_argument("--channels-last", action="store_true", default=None,
                   help=f"network weights and inputs in channels-last (NHWC) memory layout; default: {default}")


def _add_tiling_flags(p, default: str) -> None:
    """--tile-size, --tile-overlap of a command that runs inference."""
    p.add_argument("--tile-size", type=number(int, at_least=0), default=None,
                   help="run the network on tiles of this many packed pixels (a multiple of 16; 0: whole frames) "
                        f"for a device too small for whole frames; changes results slightly; default: {default}")
    p.add_argument("--tile-overlap", type=number(int, at_least=0), default=None,
                   help=f"context in packed pixels around each tile (a multiple of 16); default: {default}")


def _denoise_form(args) -> None:
    """The two forms of ``expodiff denoise``: one --input with --output, or INPUT... with --out."""
    error = args.denoise_usage_error  # argparse's: usage, the message, exit 2
    if args.out is not None and args.output is not None:
        error("--out (a folder, for INPUT...) and --output (one file, for --input) are exclusive: give one")
    if args.out is not None:
        if args.input is not None:
            error("--input is the one-file form (with --output); with --out give the raw files as INPUT...")
        if not args.inputs:
            error("--out needs the raw files to denoise: expodiff denoise --camera NAME --checkpoint C "
                  "INPUT... --ratio R --out DIR")
        if args.camera is None:
            error("--out needs --camera NAME (a .json parameter file, results/cameras/NAME.json or a bundled "
                  "camera): K, the noise scale and the sensor check come from it")
        if args.gt is not None:
            error("--gt: the many-files form (--out) is GT-free; use --input/--output for one file with its "
                  "ground truth")
    elif args.output is not None:
        if args.inputs:
            error(f"INPUT... ({' '.join(args.inputs)}) is the many-files form (with --out DIR); "
                  "with --output give one file as --input")
        if args.input is None:
            error("--output needs --input FILE (or give INPUT... --out DIR for many files)")
    else:
        error("give --input FILE --output X.npy|X.png (one file), or INPUT... --out DIR (many raw files)")


def _denoise_files(args) -> None:
    """``expodiff denoise --camera NAME --checkpoint C INPUT... --ratio R --out DIR``."""
    from tqdm import tqdm

    from expodiff.denoise import denoise_files, resolve_camera

    compute = _compute(args)  # default: the CPU, fp32
    try:  # a .json path; results/cameras/NAME.json of the workflow; a bundled camera
        camera, origin = resolve_camera(args.camera, cameras_dir=Path("results") / "cameras")
    except ConfigError as err:
        raise ConfigError(f"--camera: {err}") from err
    _, spec = _denoise_spec(args)

    def report(done) -> None:
        iso = "--" if done.iso is None else f"{done.iso:g}"
        tqdm.write(f"{done.input}: ISO {iso}, K={done.K:.4f}, ratio={done.ratio} → {done.png}, {done.dng}")

    done = denoise_files(camera, args.checkpoint, args.inputs, args.ratio, args.out, iso=args.iso, K=args.K,
                         steps=args.steps, seed=args.seed, compute=compute, padding=args.padding, spec=spec,
                         report=report)
    print(f"wrote {len(done)} file(s) to {args.out} ({spec.describe()}, {args.steps} step(s) asked, camera {origin})")


def cmd_denoise(args) -> None:
    _denoise_form(args)
    if args.out is not None:
        return _denoise_files(args)
    args.camera = args.camera or "SonyA7S2"  # the one-file form's default
    from expodiff.checkpoint import network_from_state
    from expodiff.inference import enhance
    from expodiff.io.atomic import atomic_path, save_npy_atomic
    from expodiff.physics.camera import dn_scale
    from expodiff.physics.noise import k_from_iso
    from expodiff.report.render import packed_to_srgb

    compute = _compute(args)  # default: the CPU, fp32
    out = Path(args.output)
    if out.is_dir():
        raise ConfigError(f"--output {out} is a folder; give a file name ending in .npy or .png")
    if out.suffix.lower() not in (".npy", ".png"):
        raise ConfigError(f"--output must end in .npy or .png, got {out}")
    state, spec = _denoise_spec(args)
    net = network_from_state(state, spec, args.checkpoint)
    # EXIF ISO is needed only to compute K when neither --K nor --iso gives it
    x_short, frame = _load_input(args.input, "--input", require_exif=args.K is None and args.iso is None)
    camera = json.loads(_bundled_camera(args.camera).read_text())  # K from ISO, and the DN scale K is on
    if args.K is not None:
        K = args.K
    else:
        iso = args.iso if args.iso is not None else (frame.iso if frame is not None else None)
        if iso is None:
            raise ConfigError("--input is a .npy without EXIF: give --iso or --K")
        K = k_from_iso(iso, camera)
        if not (np.isfinite(K) and K > 0):
            raise ConfigError(f"--iso {iso:g} gives K = {K:.4g} for --camera {args.camera}: outside its gain range")
    gt = None
    if args.gt:
        gt, _ = _load_input(args.gt, "--gt", require_exif=False)
        if gt.shape != x_short.shape:
            raise ConfigError(f"--gt {args.gt} has shape {gt.shape}, --input has {x_short.shape}")
    generator = compute.generator(args.seed)
    try:
        preds = enhance(net, spec, x_short, args.ratio, K, args.steps, gt=gt, generator=generator, padding=args.padding,
                        compute=compute, dn_scale=dn_scale(camera))
    except ExpodiffError as err:
        raise type(err)(f"--input {args.input}: {err}") from err
    result = preds[-1]
    if out.suffix.lower() == ".npy":
        save_npy_atomic(out, result.astype(np.float32))
    else:
        import matplotlib.image

        with atomic_path(out) as tmp:
            matplotlib.image.imsave(tmp, packed_to_srgb(result), format="png")
    print(f"wrote {out} ({spec.describe()}, {args.steps} step(s) asked, {len(preds)} prediction(s), "
          f"K={K:.4f}, ratio={args.ratio})")


def cmd_noise(args) -> None:
    import torch

    from expodiff.io.atomic import save_npy_atomic
    from expodiff.physics.camera import dn_scale
    from expodiff.physics.noise import add_noise, sample_noise_params

    out = _npy_output(args.output, "--output")
    clean, _ = _load_input(args.input, "--input", require_exif=False)
    camera = json.loads(_bundled_camera(args.camera).read_text())
    generator = torch.Generator().manual_seed(args.seed)
    params = sample_noise_params(args.model, camera, 1, generator=generator, K=args.K)
    given = {"ratio": args.ratio, "sigma_g": args.sigma_g, "lam": args.lam, "sigma_tl": args.sigma_tl, "sigma_r": args.sigma_r}
    params = params.with_values(**{k: v for k, v in given.items() if v is not None})
    noisy = add_noise(args.model, torch.from_numpy(np.ascontiguousarray(clean))[None], params, generator,
                      dn_scale=dn_scale(camera))[0]
    save_npy_atomic(out, noisy.numpy().astype(np.float32))
    used = {k: round(float(getattr(params, k)[0]), 5) for k in ("K", "ratio", "sigma_g", "sigma_r", "sigma_tl", "lam")}
    print(f"wrote {args.output} ({args.model}; {used})")


def cmd_calibrate(args) -> None:
    from expodiff.physics.calibrate import calibrate

    params = calibrate(args.frames, args.camera, args.out, plots_dir=args.plots, dn_scale=args.dn_scale)
    for row in params["per_iso"]:
        print("ISO {iso:>6g}: K {K:.4f}  σ_r {sigma_r:.3f}  λ {lambda:+.3f}  σ_TL {sigma_TL:.3f}  σ_g {sigma_g:.3f}".format(**row))
    print(f"wrote {args.out}")


def cmd_download(args) -> None:
    from expodiff.io.download import download

    path = download(args.url, args.out, sha256=args.sha256, size=args.size)
    print(f"{path}: complete and verified")


def cmd_unpack(args) -> None:
    from expodiff.data.fetch import install_archive

    dest = install_archive(args.archive, args.dest, args.expected, sha256=args.sha256)
    checked = "verified and " if args.sha256 else ""
    print(f"{args.archive}: {checked}extracted to {dest}")


def cmd_plan(args) -> None:
    from expodiff.plan import plan

    print(plan(args.config, run_dir=args.run_dir, its=args.its, speeds=args.speeds, precision=args.precision))


def cmd_train(args) -> None:
    """As rule train, with the same inputs: the variant's data store (default: where the
    workflow builds it, from the data kinds table), patches.size, the camera file its data kind
    reads, PMN's dark-shading maps when pmn.dark_frames is set, training.save_every, and the
    settings of the variant's recipe (expodiff.recipes.training_settings)."""
    from expodiff.config import get_variant, load_config
    from expodiff.data.sources import DARK_SHADING, data_kind
    from expodiff.physics.camera import camera_params_path
    from expodiff.recipes import training_settings
    from expodiff.train import train_variant

    config = load_config(args.config)
    compute = _compute(args, config["compute"])
    variant = get_variant(config, args.variant)
    kind = data_kind(variant["data"])
    what = f"variant {args.variant!r} (data: {kind.name})"
    data = Path(args.data if args.data is not None else kind.store.path)
    if not data.is_dir():
        raise ConfigError(f"--data {data}: not a folder; {what} trains on the {kind.store.name} store "
                          f"(the workflow builds {kind.store.path}: snakemake {kind.store.output})")
    if args.noise_params is not None and not kind.noise_model:
        raise ConfigError(f"--noise-params: {what} trains on real pairs and reads no noise model "
                          "(K from each short's ISO and the release parameters of --camera)")
    if args.noise_params is not None:  # a synthetic-noise kind (refused above otherwise)
        flag, camera = "--noise-params", args.noise_params
    else:  # the bundled parameters: the paper's noise model, and the release ones for K from ISO
        flag, camera = "--camera", args.camera or config["camera"]
    try:
        camera_json = camera_params_path(camera)
    except ConfigError as err:
        raise ConfigError(f"{flag}: {err}") from err
    if args.dark_shading is not None and not kind.dark_shading:
        raise ConfigError(f"--dark-shading: {what} uses no dark-shading maps")
    if args.dark_shading is None and kind.uses_dark_shading(config):
        raise ConfigError(f"--dark-shading NPZ is required for {what} with pmn.dark_frames set: the maps fitted "
                          f"from those frames (the workflow's {DARK_SHADING.path}, rule {DARK_SHADING.rule})")
    save_every = args.save_every if args.save_every is not None else config["training"]["save_every"]
    path = train_variant(variant, training_settings(config, args.variant), data, camera_json, args.out,
                         save_every=save_every, max_iterations=args.max_iterations, patch_size=config["patches"]["size"],
                         dark_shading=args.dark_shading, compute=compute)
    print(f"checkpoint: {path}")


def cmd_evaluate(args) -> None:
    """As rule evaluate: the variant's method's step counts, its recipe's padding (or
    --padding), and for a PMN variant the dark-shading maps of pmn.dark_frames; every protocol
    of evaluation.protocols, the ELD ratio handling of evaluation.eld_ratio."""
    from expodiff.config import get_variant, load_config
    from expodiff.data.sources import data_kind
    from expodiff.evaluate import evaluate_variant
    from expodiff.methods import MethodSpec
    from expodiff.recipes import eval_padding

    config = load_config(args.config)
    compute = _compute(args, config["compute"])
    ev = config["evaluation"]
    variant = get_variant(config, args.variant)
    out = Path(args.out)
    dark_shading = args.dark_shading
    kind = data_kind(variant["data"])
    if dark_shading is not None and not kind.dark_shading:
        raise ConfigError(f"--dark-shading: variant {args.variant!r} is not trained on dark-shading corrected data "
                          f"(data: {variant['data']})")
    if dark_shading is None and kind.uses_dark_shading(config):  # as rule dark_shading: from pmn.dark_frames
        from expodiff.data.pmn import fit_dark_shading

        out.mkdir(parents=True, exist_ok=True)
        dark_shading = fit_dark_shading(config["pmn"]["dark_frames"], out / "dark_shading.npz")
    steps = MethodSpec.from_variant(variant).impl.eval_steps(ev)
    summary = evaluate_variant(args.checkpoint, args.eval_set, variant, steps, ev["protocols"], ev["seed"],
                               _bundled_camera(args.camera), out / "per_image.csv", out / "summary.csv",
                               padding=args.padding or eval_padding(config, args.variant),
                               dark_shading=dark_shading, compute=compute, eld_ratio=ev["eld_ratio"])
    print(summary.to_string(index=False))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="expodiff", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-demo-data", help="write the embedded synthetic raw dataset (DNG files)")
    p.add_argument("out", help="output directory")
    p.add_argument("--seed", type=int, default=0, help="random seed of the generated scenes and noise")
    p.add_argument("--preset", default="demo", help="dataset size preset: demo, mini, tiny (gen12: demo, tiny)")
    p.add_argument("--camera", default="sony", choices=["sony", "gen12"],
                   help="sony: the SID/ELD/calibration demo dataset of the SonyA7S2 (default); gen12: a second, "
                        "12-bit GRBG camera (black 256, white 4095, ISO 200-3200): calibration/dark, "
                        "calibration/flat, calibration/true_params.json and ELD-layout pairs/scene-K")
    p.set_defaults(func=cmd_make_demo_data)

    p = sub.add_parser("pack", help="pack one raw file to a 4×H/2×W/2 float32 .npy in [0,1]")
    p.add_argument("input", help="raw file (.ARW, .DNG, ...)")
    p.add_argument("--output", "-o", required=True, help="packed .npy to write (float32, 4×H/2×W/2)")
    p.add_argument("--crop", type=number(int, above=0), default=None, help="centre crop side in packed pixels (SID: 512)")
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("denoise", help="enhance short exposures with a checkpoint (any method): one file "
                                        "(--input, --output) or many raw files (INPUT... --out DIR)")
    p.add_argument("--checkpoint", required=True,
                   help="model_final.pt of a training (records its network) or a released checkpoint")
    p.add_argument("--backbone", default=None,
                   help="network family (unet, naf1, naf2, ...): needed for a released checkpoint; "
                        "otherwise checked against the checkpoint's")
    p.add_argument("--method", default=None, choices=_RegisteredMethods(),
                   help="baseline, ours (ExposureDiffusion) or ddim: needed for a released checkpoint; "
                        "otherwise checked against the checkpoint's")
    p.add_argument("--concat-origin", action="store_true",
                   help="ours: the network also sees X_T (12 input channels); read from a checkpoint that records it")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="raw files (ARW, NEF, CR2/CR3, DNG, ...; Bayer) to denoise into --out: a DNG and an sRGB "
                        "PNG each, named after the file (GT-free; K from each file's EXIF ISO or --iso)")
    p.add_argument("--input", default=None,
                   help="one file (with --output): raw file, or .npy packed 4×H×W short exposure in [0,1]")
    p.add_argument("--ratio", type=number(int, above=1), required=True,
                   help="exposure ratio, a whole number > 1 (the exposure ladder is integer, as in the original)")
    p.add_argument("--steps", type=number(int, at_least=1), default=3,
                   help="network evaluations (ours; 3 in the paper) or sampler steps (ddim); the baseline runs once")
    p.add_argument("--output", default=None, help="one file (with --input): .npy (packed float32) or .png (sRGB)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="many files (with INPUT...): folder for <stem>.dng (linear, denoised, the source's CFA, "
                        "levels, colour matrix, white balance and EXIF) and <stem>.png (developed by LibRaw with "
                        "the file's white balance); every input is checked before anything is written")
    p.add_argument("--iso", type=number(above=0), default=None, help="ISO of the input (default: from EXIF)")
    p.add_argument("--K", type=number(above=0), default=None, help="system gain in DN/e- (overrides --iso)")
    p.add_argument("--gt", default=None, help="ground truth: enables the paper's oracle illumination correction")
    p.add_argument("--camera", default=None,
                   help="camera parameters for K from ISO and the DN scale of re-exposure: a .json, else (with "
                        "--out) results/cameras/NAME.json when present, whose sensor block refuses other cameras' "
                        "files, else a bundled name; required with --out, default SonyA7S2 with --input")
    p.add_argument("--padding", default="original", choices=["original", "minimal", "none"],
                   help="reflect padding to a multiple of 16: original (as the original code: 16 more "
                        "when already divisible, as the evaluation does), minimal, or none (the ELD code's; "
                        "the image must be a multiple of 16)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random draws (re-exposure noise of ours, initial noise of ddim)")
    _add_compute_flags(p, "cpu, fp32")
    _add_tiling_flags(p, "0 (whole frames), overlap 64")
    p.set_defaults(func=cmd_denoise, denoise_usage_error=p.error)

    p = sub.add_parser("noise", help="apply a noise model to a clean packed image, as training sees it")
    p.add_argument("--model", required=True, choices=["P+g", "P+G+r+u"],
                   help="noise model: P+g (paper P+G, data pg) or P+G+r+u (the ELD model, data eld)")
    p.add_argument("--input", required=True, help="clean packed 4×H×W .npy in [0,1] (or a raw file)")
    p.add_argument("--ratio", type=number(above=1), required=True, help="exposure ratio r (> 1; may be fractional)")
    p.add_argument("--output", required=True,
                   help="amplified noisy .npy: clip(x·r/S, 0, 1), S the camera's DN scale (15583 for SonyA7S2)")
    p.add_argument("--camera", default="SonyA7S2",
                   help="camera parameters the others are sampled from, and its DN scale S")
    p.add_argument("--K", type=number(above=0), default=None, help="system gain in DN/e- (default: sampled)")
    p.add_argument("--sigma-g", type=number(at_least=0), default=None, help="P+g read noise σ in DN (default: sampled)")
    p.add_argument("--lambda", dest="lam", type=number(), default=None, help="ELD Tukey-lambda shape (default: sampled)")
    p.add_argument("--sigma-tl", type=number(at_least=0), default=None, help="ELD Tukey-lambda scale in DN (default: sampled)")
    p.add_argument("--sigma-r", type=number(at_least=0), default=None, help="ELD row noise σ in DN (default: sampled)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the noise draws")
    p.set_defaults(func=cmd_noise)

    p = sub.add_parser("calibrate", help="fit the ELD noise model from dark/ and flat/ raw frames")
    p.add_argument("--frames", required=True, help="directory holding dark/ and flat/ raw frames")
    p.add_argument("--camera", required=True, help="camera name written into the parameter file")
    p.add_argument("--out", required=True, help="parameter JSON (ELD release format + per-ISO table)")
    p.add_argument("--plots", default=None, help="directory for ptc.png, ppcc.png, scales.png")
    p.add_argument("--dn-scale", type=number(above=0), default=None,
                   help="DN that a packed value of 1 stands for, recorded as sensor.dn_scale "
                        "(default: white - black of the frames; 15583 keeps the original's SonyA7S2 numbers)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("download", help="download one file: resumable, verified, renamed into place")
    p.add_argument("url", help="http(s) URL, or gdrive:FILE_ID")
    p.add_argument("--out", required=True, help="final path; the transfer goes to OUT.part first")
    p.add_argument("--sha256", default=None, help="expected SHA-256 (hex)")
    p.add_argument("--size", type=number(int, above=0), default=None, help="expected size in bytes")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("unpack", help="verify and safely extract a dataset archive (as the workflow's install rules do)")
    p.add_argument("archive", help="zip archive, e.g. a hand-downloaded Sony.zip or the ELD archive")
    p.add_argument("--dest", required=True, help="folder to extract into (must not exist or be empty)")
    p.add_argument("--sha256", default=None, help="expected SHA-256 of the archive (hex); a mismatch extracts nothing")
    p.add_argument("--expected", default=None,
                   help="entry that must end up at DEST's top (e.g. Sony_test_list.txt), found at the archive's top "
                        "or one folder down (default: extract the archive as it is)")
    p.set_defaults(func=cmd_unpack)

    p = sub.add_parser("plan", help="jobs of a config and estimated GPU-hours per variant")
    p.add_argument("config", nargs="+", help="config.yaml, then overlays")
    p.add_argument("--run-dir", default=None, help="a finished run (benchmarks/out, results/) to measure iterations/s from")
    p.add_argument("--its", type=number(above=0), default=None,
                   help="training iterations per second to assume for every variant (default: measured in --run-dir)")
    p.add_argument("--speeds", nargs="+", default=(), metavar="JSON",
                   help="measured training speeds: benchmarks/out/gpu_check.json (benchmarks/gpu_check.py on the GPU) "
                        "or benchmarks/train_step.py --json files; each variant takes its backbone/method's")
    p.add_argument("--precision", default=None, choices=["fp32", "tf32", "bf16"],
                   help="which --speeds precision to plan for (default: compute.precision of the config)")
    p.set_defaults(func=cmd_plan)

    from expodiff.data.sources import DATA_KINDS  # the table only: no numpy/torch

    def kinds(test) -> str:
        return ", ".join(k.name for k in DATA_KINDS.values() if test(k))

    stores: dict[str, list[str]] = {}  # store folder -> the data kinds training on it
    for kind in DATA_KINDS.values():
        stores.setdefault(kind.store.path, []).append(kind.name)
    p = sub.add_parser("train", help="train one variant of a config, with the inputs rule train gives it")
    p.add_argument("--config", nargs="+", default=["config.yaml"], help="config.yaml, then overlays")
    p.add_argument("--variant", required=True, help="variant of the config (its backbone, data and method)")
    p.add_argument("--data", "--patches", dest="data", default=None, metavar="DIR",
                   help="the variant's training data store; default: where the workflow builds it for the "
                        "variant's data (expodiff.data.sources.DATA_KINDS): "
                        + "; ".join(f"{path} ({', '.join(names)})" for path, names in stores.items()))
    p.add_argument("--noise-params", default=None, metavar="JSON",
                   help=f"camera noise-model file of the synthetic-noise data ({kinds(lambda k: k.noise_model)}); "
                        "the workflow passes results/calibration/{camera}.json (calibrated from cameras.{camera}.frames, "
                        "or exported from cameras.{camera}.params); default: the bundled parameters of --camera")
    p.add_argument("--camera", default=None,
                   help="camera parameters (bundled name or .json) for K from each short's ISO of the real-pair data "
                        f"({kinds(lambda k: not k.noise_model)}), and the default --noise-params; default: `camera` "
                        "of the config (the workflow passes results/cameras/{camera}.json, exported from the bundled "
                        "file)")
    p.add_argument("--dark-shading", default=None, metavar="NPZ",
                   help=f"PMN's dark-shading maps: required for the {kinds(lambda k: k.dark_shading)} variants when "
                        "pmn.dark_frames is set (the workflow passes results/pmn/dark_shading.npz of rule "
                        "dark_shading)")
    p.add_argument("--out", required=True,
                   help="output folder: model_final.pt, model_latest.pt, model_NNN.pt, train_log.csv "
                        "(the workflow: results/train/{variant})")
    p.add_argument("--save-every", type=number(int, at_least=1), default=None,
                   help="iterations between resumable checkpoints (default: training.save_every of the config)")
    p.add_argument("--max-iterations", type=number(int, at_least=1), default=None,
                   help="stop early (the run stays resumable)")
    _add_compute_flags(p, "compute of the config")
    p.add_argument("--data-workers", type=number(int, at_least=0), default=None,
                   help="processes that read and augment the batches ahead (0: in the training process); "
                        "never changes the result; default: compute.data_workers of the config")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="per-step evaluation of one checkpoint on a packed evaluation set "
                                         "(as rule evaluate)")
    p.add_argument("--config", nargs="+", default=["config.yaml"], help="config.yaml, then overlays")
    p.add_argument("--variant", required=True,
                   help="variant of the config: its method gives the step counts (evaluation.steps, "
                        "evaluation.ddim_steps or 1), the checkpoint must be its network")
    p.add_argument("--checkpoint", required=True, help="the variant's model_final.pt (or a released checkpoint)")
    p.add_argument("--eval-set", required=True, help="directory with index.csv (pack_eval_set)")
    p.add_argument("--camera", default="SonyA7S2",
                   help="camera parameters for K from each input's ISO (name or .json; the workflow uses the "
                        "dataset's camera)")
    p.add_argument("--out", required=True, help="folder for per_image.csv and summary.csv")
    p.add_argument("--padding", default=None, choices=["original", "minimal", "none"],
                   help="reflect padding to a multiple of 16 (none: no padding, the image must be a multiple "
                        "of 16); default: the variant's recipe's eval_padding, as the workflow")
    p.add_argument("--dark-shading", default=None,
                   help="PMN variants: dark-shading maps (.npz, rule dark_shading); default: fitted from "
                        "pmn.dark_frames of the config into OUT/dark_shading.npz, none if that is null")
    _add_compute_flags(p, "compute of the config")
    _add_tiling_flags(p, "compute.tile_size / compute.tile_overlap of the config")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ExpodiffError as err:
        print(f"expodiff {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
