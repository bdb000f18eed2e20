"""Carry a Tacotron training run to a lent GPU machine and back, within the device tool's transfer limits.

The device tool sends the working tree plus at most 8 carried (git-ignored) paths, 64 MiB in all, per call,
and brings back at most 8 files of at most 16 MiB each. This tool shrinks what has to travel
(recipes/demo/README.md, "Training on a lent GPU", gives the whole sequence; ``device_trip.sh`` runs the steps
on the device):

``pack`` (here)
    A preprocessed folder (``vcframe train synthesizer preprocess``) becomes ``OUT/data/``: the mels quantised
    to ``--levels`` levels over the mel range, coded as planar-predictor residuals (second differences: along
    the mel bands, then along time, mod 256) and xz-compressed in chunks (in parallel); the embeddings as one
    array; the frame counts; the manifest without its ``audio`` field (xz); ``info.json``. A training
    checkpoint becomes ``OUT/checkpoint/checkpoint_light.pt``: model in float32, Adam's ``exp_avg`` dropped
    (restarted at zero), ``exp_avg_sq`` in bfloat16. The decoding is checked before anything is written.
    Each ``--valid-prep`` folder (a held-out corpus for ``fit --valid-data``) is coded the same way into
    ``OUT/data/valid/<folder name>/``.
``unpack`` (device)
    ``OUT/data/`` back into a preprocessed folder (manifest.jsonl, info.json, mels/*.npy float32, embeds/*.npy),
    its held-out folders into ``--valid-out/<name>/``, and the light checkpoint into a full one that
    ``fit --resume`` loads.
``snapshot`` (device)
    A checkpoint as ``meta.pt`` plus ``part_<i>.pt`` files of at most ``--part-mib`` MiB (light, as above).
``restore`` (here)
    A snapshot folder back into a full resumable checkpoint (``exp_avg`` zeros, ``exp_avg_sq`` float32).

Dropping ``exp_avg`` restarts Adam's first moment (it rebuilds within ~1/(1-beta1) = 10 steps); the second
moment keeps bfloat16's 8 significant bits, so the step sizes are unchanged to within about 0.4 %.

Besides numpy, torch and typer it imports only vcframe's errors, atomic files and checkpoint saving
(``vcframe.errors``, ``vcframe._io``, ``vcframe.checkpoints``), which the trainer itself imports, so it runs on
the device once ``device_trip.sh setup`` has installed the wheels and checked that the trainer imports; not
``vcframe.cli`` (rich is not on the device). ``--batch-size`` of ``pack`` and ``restore``, here, uses the
Tacotron plugin. Every file is written atomically (temporary name, then ``os.replace``).
"""

from __future__ import annotations

import json
import lzma
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import torch
import typer

from vcframe._io import atomic_write
from vcframe.checkpoints import save_torch
from vcframe.errors import InputError, VcframeError

DATA_FOLDER = "data"
VALID_FOLDER = "valid"  # inside DATA_FOLDER: one coded held-out folder per name
CHECKPOINT_FOLDER = "checkpoint"
LIGHT_CHECKPOINT = "checkpoint_light.pt"
MEL_CODING = "mel_coding.json"
MEL_FRAMES = "mel_frames.npy"
EMBEDS = "embeds.npy"
MANIFEST = "manifest.jsonl.xz"
INFO = "info.json"
SNAPSHOT_META = "meta.pt"
RESIDUAL_CODING = "second differences (mel bands, then time) of the level codes, mod 256, frames x bands, uint8"
MAX_LEVELS = 256  # the codes and their residuals are bytes
TRANSFER_LIMIT_MIB = 64.0

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


class TripError(InputError):
    """Bad input: reported as one line on stderr with exit status 2."""


# ----------------------------------------------------------------------------------------------- atomic files


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """``data`` into ``path`` atomically (``vcframe._io.atomic_write``), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as stream:
        stream.write(data)


def save_numpy_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as stream:
        np.save(stream, array)


def save_torch_atomic(path: Path, payload: Any) -> None:
    """``vcframe.checkpoints.save_torch``, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch(payload, path)


def load_torch(path: Path) -> Any:
    """``torch.load`` as the trainer does it (``weights_only``), onto the CPU."""
    if not path.is_file():
        raise TripError(f"no such file: {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def mebibytes(path: Path) -> float:
    return path.stat().st_size / 2**20


# ----------------------------------------------------------------------------------------------- mel coding


def mel_range(info: dict[str, Any]) -> tuple[float, float]:
    """The (low, high) bounds of the normalised mels of a preprocessed folder (its info.json's mel_spec)."""
    spec = info.get("mel_spec")
    if spec is None:
        return -4.0, 4.0  # RTVC's synthesizer mels
    bound = float(spec.get("max_abs_value", 4.0))
    normalization = spec.get("normalization", "symmetric")
    if normalization == "symmetric":
        return -bound, bound
    if normalization == "asymmetric":
        return 0.0, bound
    raise TripError(f"mels with normalization {normalization!r} have no fixed range to quantise over")


def dequantisation_table(levels: int, low: float, high: float) -> np.ndarray:
    """float32 mel value of each level code (code 0 is exactly ``low``, code ``levels - 1`` exactly ``high``)."""
    return (np.arange(levels, dtype=np.float64) / (levels - 1) * (high - low) + low).astype(np.float32)


def quantise_mel(mel: np.ndarray, levels: int, low: float, high: float) -> np.ndarray:
    """Level codes (frames x bands, uint8) of one (bands x frames) mel: the nearest of ``levels`` even steps."""
    values = mel.astype(np.float64)
    tolerance = 1e-3 * (high - low)
    if not np.isfinite(values).all() or values.min() < low - tolerance or values.max() > high + tolerance:
        raise TripError(f"mel values outside [{low}, {high}] (min {values.min():.4f}, max {values.max():.4f})")
    codes = np.rint((values - low) / (high - low) * (levels - 1))
    return np.clip(codes, 0, levels - 1).astype(np.uint8).T


def residuals_from_codes(codes: np.ndarray) -> np.ndarray:
    """Planar-predictor residuals of level codes (frames x bands, uint8): the difference to the band below,
    then the difference of that to the previous frame's, both mod 256 (the first band and frame predict 0)."""
    band_differences = codes.copy()
    band_differences[:, 1:] -= codes[:, :-1]  # uint8 arithmetic wraps mod 256
    residuals = band_differences.copy()
    residuals[1:] -= band_differences[:-1]
    return residuals


def codes_from_residuals(residuals: np.ndarray) -> np.ndarray:
    """Inverse of :func:`residuals_from_codes`: cumulative sums along time, then along the bands, mod 256."""
    band_differences = np.cumsum(residuals, axis=0, dtype=np.uint8)
    return np.cumsum(band_differences, axis=1, dtype=np.uint8)


Item = TypeVar("Item")


def in_parallel(function: Callable[[Item], bytes], items: list[Item]) -> list[bytes]:
    """``function`` over ``items`` in threads, one each (lzma releases the GIL while it works)."""
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        return list(pool.map(function, items))


def xz_compressor(preset: int) -> Callable[[bytes], bytes]:
    def compress(blob: bytes) -> bytes:
        return lzma.compress(blob, preset=preset | lzma.PRESET_EXTREME)

    return compress


def read_manifest_rows(prep: Path) -> list[dict[str, Any]]:
    manifest = prep / "manifest.jsonl"
    if not manifest.is_file():
        raise TripError(f"no manifest.jsonl in {prep} (a folder from 'vcframe train synthesizer preprocess')")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    if not rows:
        raise TripError(f"{manifest} lists no clips")
    return rows


def pack_data(prep: Path, out: Path, levels: int, chunks: int, xz_preset: int) -> None:
    """Code a preprocessed folder into ``out`` (see the module docstring); checks the decoding first."""
    if not 2 <= levels <= MAX_LEVELS:
        raise TripError(f"--levels must be within 2..{MAX_LEVELS}, got {levels}")
    rows = read_manifest_rows(prep)
    info_text = (prep / INFO).read_text() if (prep / INFO).is_file() else "{}"
    low, high = mel_range(json.loads(info_text))
    table = dequantisation_table(levels, low, high)
    clip_codes: list[np.ndarray] = []
    embeds: list[np.ndarray] = []
    frames: list[int] = []
    largest_error = 0.0
    for row in rows:
        mel = np.load(prep / row["mel"])
        if mel.ndim != 2 or (clip_codes and mel.shape[0] != clip_codes[0].shape[1]):
            raise TripError(f"{row['mel']}: mel of shape {mel.shape}, expected (bands, frames) like the others")
        if "frames" in row and int(row["frames"]) != mel.shape[1]:
            raise TripError(f"{row['mel']}: {mel.shape[1]} frames, the manifest says {row['frames']}")
        codes = quantise_mel(mel, levels, low, high)
        largest_error = max(largest_error, float(np.abs(table[codes.T] - mel).max(initial=0.0)))
        clip_codes.append(codes)
        frames.append(mel.shape[1])
        embeds.append(np.load(prep / row["embed"]))
    if len({(embed.shape, embed.dtype) for embed in embeds}) != 1:
        raise TripError("the embeddings differ in shape or dtype")
    codes = np.concatenate(clip_codes)
    residuals = residuals_from_codes(codes)
    boundaries = np.linspace(0, len(residuals), chunks + 1).round().astype(int)
    blobs = in_parallel(
        xz_compressor(xz_preset),
        [residuals[start:end].tobytes() for start, end in zip(boundaries[:-1], boundaries[1:], strict=True)],
    )
    decoded = np.frombuffer(b"".join(in_parallel(lzma.decompress, blobs)), np.uint8).reshape(codes.shape)
    if not np.array_equal(codes_from_residuals(decoded), codes):
        raise TripError("the coded mels do not decode to their levels (nothing written)")
    if largest_error > (high - low) / (levels - 1) / 2 + 1e-6:
        raise TripError(f"quantisation error {largest_error} above half a step (nothing written)")

    out.mkdir(parents=True, exist_ok=True)
    chunk_names = [f"mel_residuals_{index}.xz" for index in range(chunks)]
    for stale in out.glob("mel_residuals_*.xz"):
        if stale.name not in chunk_names:
            stale.unlink()
    for name, blob in zip(chunk_names, blobs, strict=True):
        write_bytes_atomic(out / name, blob)
    save_numpy_atomic(out / MEL_FRAMES, np.asarray(frames, dtype=np.int64))
    save_numpy_atomic(out / EMBEDS, np.stack(embeds))
    manifest_text = "".join(json.dumps({k: v for k, v in row.items() if k != "audio"}) + "\n" for row in rows)
    write_bytes_atomic(out / MANIFEST, lzma.compress(manifest_text.encode(), preset=9 | lzma.PRESET_EXTREME))
    write_bytes_atomic(out / INFO, info_text.encode())
    coding = {
        "levels": levels,
        "low": low,
        "high": high,
        "bands": int(codes.shape[1]),
        "frames": int(codes.shape[0]),
        "clips": len(rows),
        "chunks": chunk_names,
        "coding": RESIDUAL_CODING,
        "largest_error": largest_error,
    }
    write_bytes_atomic(out / MEL_CODING, (json.dumps(coding, indent=1) + "\n").encode())
    step = (high - low) / (levels - 1)
    typer.echo(
        f"mels: {len(rows)} clips, {codes.shape[0]:,} frames x {codes.shape[1]} bands, {levels} levels "
        f"(step {step:.4f}); largest quantisation error {largest_error:.4f}{decibels_note(info_text, largest_error)}"
    )


def decibels_note(info_text: str, error: float) -> str:
    """`` (= x dB)`` for a symmetric/asymmetric dB mel spec, else ``""``."""
    spec = json.loads(info_text).get("mel_spec") or {}
    if spec.get("amplitude_scale", "db") != "db" or "min_level_db" not in spec:
        return ""
    low, high = mel_range({"mel_spec": spec})
    return f" (= {error * -float(spec['min_level_db']) / (high - low):.2f} dB)"


def unpack_data(trip_data: Path, prep: Path) -> None:
    """Decode ``trip_data`` (from :func:`pack_data`) into a preprocessed folder ``prep``."""
    if not (trip_data / MEL_CODING).is_file():
        raise TripError(f"no {MEL_CODING} in {trip_data} (made by 'device_trip.py pack --prep')")
    coding = json.loads((trip_data / MEL_CODING).read_text())
    blobs = in_parallel(lambda name: lzma.decompress((trip_data / name).read_bytes()), coding["chunks"])
    residuals = np.frombuffer(b"".join(blobs), np.uint8)
    if residuals.size != coding["frames"] * coding["bands"]:
        raise TripError(f"{trip_data}: {residuals.size} mel residuals, expected {coding['frames']} x {coding['bands']}")
    codes = codes_from_residuals(residuals.reshape(coding["frames"], coding["bands"]))
    table = dequantisation_table(coding["levels"], coding["low"], coding["high"])
    frames = np.load(trip_data / MEL_FRAMES)
    embeds = np.load(trip_data / EMBEDS)
    rows = [json.loads(line) for line in lzma.decompress((trip_data / MANIFEST).read_bytes()).decode().splitlines()]
    if not len(rows) == len(frames) == len(embeds) or int(frames.sum()) != coding["frames"]:
        raise TripError(f"{trip_data}: manifest, frame counts and embeddings do not match")
    root = prep.resolve()
    start = 0
    for row, count, embed in zip(rows, frames, embeds, strict=True):
        mel_path, embed_path = (root / row["mel"]).resolve(), (root / row["embed"]).resolve()
        if not (mel_path.is_relative_to(root) and embed_path.is_relative_to(root)):
            raise TripError(f"manifest path outside the folder: {row['mel']!r} / {row['embed']!r}")
        save_numpy_atomic(mel_path, np.ascontiguousarray(table[codes[start : start + count].T]))
        save_numpy_atomic(embed_path, embed)
        start += int(count)
    write_bytes_atomic(root / INFO, (trip_data / INFO).read_bytes())
    write_bytes_atomic(root / "manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows).encode())
    typer.echo(f"decoded {len(rows)} clips, {coding['frames']:,} frames, {coding['levels']} levels into {prep}")


# ----------------------------------------------------------------------------------------------- checkpoints


def optimizer_states(checkpoint: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    """The per-parameter Adam states of a training checkpoint (each with ``exp_avg_sq``)."""
    try:
        states: dict[Any, dict[str, Any]] = checkpoint["optimizer_state"]["state"]
        checkpoint["model_state"]
    except (KeyError, TypeError):
        raise TripError("not a training checkpoint (needs model_state and optimizer_state)") from None
    if not all("exp_avg_sq" in state for state in states.values()):
        raise TripError("the optimizer state has no exp_avg_sq (not Adam)")
    return states


def lighten(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``checkpoint`` with the model in float32, no ``exp_avg`` and ``exp_avg_sq`` in bfloat16."""
    states = optimizer_states(checkpoint)
    light = dict(checkpoint)
    light["model_state"] = {name: tensor.float() for name, tensor in checkpoint["model_state"].items()}
    light["optimizer_state"] = {
        **checkpoint["optimizer_state"],
        "state": {
            index: {
                **{key: value for key, value in state.items() if key not in ("exp_avg", "exp_avg_sq")},
                "exp_avg_sq": state["exp_avg_sq"].to(torch.bfloat16),
            }
            for index, state in states.items()
        },
    }
    return light


def expand(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A resumable copy of a light checkpoint: ``exp_avg_sq`` in float32, missing ``exp_avg`` as zeros."""
    states = optimizer_states(checkpoint)
    full = dict(checkpoint)
    full["optimizer_state"] = {**checkpoint["optimizer_state"], "state": {}}
    for index, state in states.items():
        second_moment = state["exp_avg_sq"].float()
        first_moment = state["exp_avg"].float() if "exp_avg" in state else torch.zeros_like(second_moment)
        full["optimizer_state"]["state"][index] = {**state, "exp_avg": first_moment, "exp_avg_sq": second_moment}
    return full


def set_batch_size(checkpoint: dict[str, Any], batch_size: int) -> None:
    """Give every stage of the schedule ``batch_size``; a changed epoch batch size starts a fresh epoch (the
    trainer's batch order of the running epoch depends on the batch size), as the trainer's
    ``set_epoch_batch_size`` does for ``fit --resume --schedule``. Here only (pack, restore): it imports the
    Tacotron plugin, which the device lacks until ``device_trip.sh setup``."""
    from vcframe_tacotron.train import set_epoch_batch_size

    if batch_size < 1:
        raise TripError(f"--batch-size must be positive, got {batch_size}")
    try:
        schedule = checkpoint["train"]["schedule"]
    except (KeyError, TypeError):
        raise TripError("the checkpoint has no train schedule to set the batch size in") from None
    checkpoint["train"] = {**checkpoint["train"], "schedule": [[*stage[:3], batch_size] for stage in schedule]}
    set_epoch_batch_size(checkpoint, batch_size)


def describe(checkpoint: dict[str, Any]) -> str:
    schedule = checkpoint.get("train", {}).get("schedule", [])
    return (
        f"step {checkpoint.get('step')}, epoch {checkpoint.get('epoch')}, "
        f"batch {checkpoint.get('epoch_batch_size')}, schedule {schedule}"
    )


def write_snapshot(checkpoint: dict[str, Any], out: Path, part_bytes: int) -> list[Path]:
    """``checkpoint`` (light) as ``part_<i>.pt`` files of at most ``part_bytes`` tensor bytes each, then
    ``meta.pt`` (everything else, and the list of parts) last, so a complete ``meta.pt`` means a complete
    snapshot. Returns the files written."""
    light = lighten(checkpoint)
    tensors = [("model_state", name, tensor) for name, tensor in light["model_state"].items()]
    tensors += [
        ("exp_avg_sq", index, state["exp_avg_sq"]) for index, state in light["optimizer_state"]["state"].items()
    ]
    parts: list[dict[str, dict[Any, torch.Tensor]]] = []
    part_size = part_bytes  # start a new part at the first tensor
    for kind, key, tensor in tensors:
        size = tensor.numel() * tensor.element_size()
        if size > part_bytes:
            typer.echo(f"warning: {key} alone takes {size / 2**20:.1f} MiB, more than a part's limit", err=True)
        if part_size + size > part_bytes:
            parts.append({"model_state": {}, "exp_avg_sq": {}})
            part_size = 0
        parts[-1][kind][key] = tensor.contiguous()
        part_size += size
    names = [f"part_{index}.pt" for index in range(len(parts))]
    for name, part in zip(names, parts, strict=True):
        save_torch_atomic(out / name, part)
    meta = {key: value for key, value in light.items() if key != "model_state"}
    meta["optimizer_state"] = {
        **light["optimizer_state"],
        "state": {
            index: {key: value for key, value in state.items() if key != "exp_avg_sq"}
            for index, state in light["optimizer_state"]["state"].items()
        },
    }
    meta["snapshot"] = {"parts": names, "model_keys": list(light["model_state"])}
    save_torch_atomic(out / SNAPSHOT_META, meta)
    return [out / name for name in names] + [out / SNAPSHOT_META]


def read_snapshot(folder: Path) -> dict[str, Any]:
    """The light checkpoint of a snapshot folder (from :func:`write_snapshot`)."""
    meta = load_torch(folder / SNAPSHOT_META)
    layout = meta.pop("snapshot")
    model_state: dict[str, torch.Tensor] = {}
    second_moments: dict[Any, torch.Tensor] = {}
    for name in layout["parts"]:
        part = load_torch(folder / name)
        model_state.update(part["model_state"])
        second_moments.update(part["exp_avg_sq"])
    states = meta["optimizer_state"]["state"]
    missing = [key for key in layout["model_keys"] if key not in model_state]
    missing += [f"exp_avg_sq of parameter {index}" for index in states if index not in second_moments]
    if missing:
        raise TripError(f"snapshot {folder} lacks {', '.join(map(str, missing[:3]))}")
    checkpoint = dict(meta)
    checkpoint["model_state"] = {key: model_state[key] for key in layout["model_keys"]}
    checkpoint["optimizer_state"] = {
        **meta["optimizer_state"],
        "state": {index: {**state, "exp_avg_sq": second_moments[index]} for index, state in states.items()},
    }
    return checkpoint


def append_log(snapshot_log: Path, run_log: Path, last_step: int) -> int:
    """Append to ``run_log`` the lines of ``snapshot_log`` past ``run_log``'s last step and up to ``last_step``
    (the snapshot's checkpoint: later lines belong to steps that resuming repeats). Returns how many."""
    kept = run_log.read_text() if run_log.is_file() else ""
    if kept and not kept.endswith("\n"):
        kept += "\n"
    steps = [json.loads(line)["step"] for line in kept.splitlines() if line.strip()]
    after = max(steps, default=-1)
    new = [line for line in snapshot_log.read_text().splitlines() if line.strip()]
    new = [line for line in new if after < json.loads(line)["step"] <= last_step]
    write_bytes_atomic(run_log, (kept + "".join(line + "\n" for line in new)).encode())
    return len(new)


# ----------------------------------------------------------------------------------------------- commands


def run(action: Callable[[], None]) -> None:
    """Run a command's body; a :class:`TripError` (any ``VcframeError``) becomes one line on stderr and exit
    status 2."""
    try:
        action()
    except VcframeError as error:  # TripError, or vcframe's own (an unwritable output folder, say)
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def print_sizes(folder: Path) -> None:
    total = 0.0
    for path in sorted(folder.iterdir()):
        if path.is_file():
            total += mebibytes(path)
            typer.echo(f"  {path.name:<24} {mebibytes(path):8.2f} MiB")
    typer.echo(f"  {folder} in all: {total:.2f} MiB")


@app.command()
def pack(
    out: Annotated[Path, typer.Option(help="Trip folder (git-ignored, e.g. .gpu/trip): data/ and checkpoint/.")],
    prep: Annotated[Path | None, typer.Option(help="Preprocessed folder to code into OUT/data.")] = None,
    valid_prep: Annotated[
        list[Path] | None,
        typer.Option(help="Held-out preprocessed folder (repeatable) to code into OUT/data/valid/<its name>."),
    ] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Training checkpoint to lighten into OUT/checkpoint.")] = None,
    levels: Annotated[int, typer.Option(help="Quantisation levels of the mels over their range (2-256).")] = 96,
    batch_size: Annotated[
        int | None, typer.Option(help="Rewrite the schedule's batch sizes (a changed one starts a fresh epoch).")
    ] = None,
    chunks: Annotated[int, typer.Option(help="Mel chunks, xz-compressed in parallel.")] = 2,
    xz_preset: Annotated[int, typer.Option(help="xz preset (0-9, always 'extreme').")] = 9,
) -> None:
    """Here: code a preprocessed folder and/or lighten a checkpoint for the trip; prints the sizes."""

    def body() -> None:
        held_out = valid_prep or []
        names = [folder.name for folder in held_out]
        if len(set(names)) != len(names):
            raise TripError(f"--valid-prep folders need different names, got {', '.join(names)}")
        if held_out and prep is None:
            raise TripError("--valid-prep needs --prep (the held-out folders travel with the training data)")
        if prep is None and checkpoint is None:
            raise TripError("nothing to pack: give --prep and/or --checkpoint")
        if not 1 <= chunks <= 16 or not 0 <= xz_preset <= 9:
            raise TripError("--chunks must be within 1..16 and --xz-preset within 0..9")
        light = None
        if checkpoint is not None:  # read and check before the slow mel coding
            light = lighten(load_torch(checkpoint))
            if batch_size is not None:
                set_batch_size(light, batch_size)
        elif batch_size is not None:
            raise TripError("--batch-size needs --checkpoint")
        if prep is not None:
            pack_data(prep, out / DATA_FOLDER, levels, chunks, xz_preset)
            stale = out / DATA_FOLDER / VALID_FOLDER
            if stale.is_dir():
                shutil.rmtree(stale)
            for folder in held_out:
                pack_data(folder, out / DATA_FOLDER / VALID_FOLDER / folder.name, levels, 1, xz_preset)
            print_sizes(out / DATA_FOLDER)
            for folder in held_out:
                print_sizes(out / DATA_FOLDER / VALID_FOLDER / folder.name)
            if held_out:
                carried = sum(mebibytes(path) for path in (out / DATA_FOLDER).rglob("*") if path.is_file())
                typer.echo(f"  {out / DATA_FOLDER} with its held-out folders: {carried:.2f} MiB")
        if light is not None:
            save_torch_atomic(out / CHECKPOINT_FOLDER / LIGHT_CHECKPOINT, light)
            typer.echo(f"checkpoint: {describe(light)}")
            print_sizes(out / CHECKPOINT_FOLDER)
        typer.echo(
            f"carry {DATA_FOLDER}/ and {CHECKPOINT_FOLDER}/ in different calls: each call's carried paths and "
            f"working tree must stay under {TRANSFER_LIMIT_MIB:.0f} MiB in all"
        )

    run(body)


@app.command()
def unpack(
    trip: Annotated[Path, typer.Option(help="Trip folder from 'pack' (its data/ and/or checkpoint/).")],
    out: Annotated[Path | None, typer.Option(help="Preprocessed folder to decode TRIP/data into.")] = None,
    valid_out: Annotated[
        Path | None, typer.Option(help="Folder to decode TRIP/data/valid/<name> into, as <name>/ each.")
    ] = None,
    checkpoint_out: Annotated[
        Path | None, typer.Option(help="Full resumable checkpoint to expand TRIP/checkpoint into.")
    ] = None,
) -> None:
    """Device: decode the mels into a preprocessed folder and/or expand the light checkpoint."""

    def body() -> None:
        if out is None and checkpoint_out is None:
            raise TripError("nothing to unpack: give --out and/or --checkpoint-out")
        if out is not None:
            unpack_data(trip / DATA_FOLDER, out)
        held_out = trip / DATA_FOLDER / VALID_FOLDER
        if valid_out is not None and held_out.is_dir():
            for folder in sorted(held_out.iterdir()):
                unpack_data(folder, valid_out / folder.name)
        if checkpoint_out is not None:
            full = expand(load_torch(trip / CHECKPOINT_FOLDER / LIGHT_CHECKPOINT))
            save_torch_atomic(checkpoint_out, full)
            typer.echo(f"checkpoint {checkpoint_out}: {describe(full)}")

    run(body)


@app.command()
def snapshot(
    checkpoint: Annotated[Path, typer.Option(help="Training checkpoint (the run's checkpoint.pt).")],
    out: Annotated[Path, typer.Option(help="Folder for meta.pt and part_<i>.pt (the device's $OUT).")],
    part_mib: Annotated[float, typer.Option(help="Largest part, in MiB of tensor data.")] = 15.0,
) -> None:
    """Device: a checkpoint as light parts small enough to come back (model float32, exp_avg_sq bfloat16)."""

    def body() -> None:
        if part_mib <= 0:
            raise TripError("--part-mib must be positive")
        saved = load_torch(checkpoint)
        written = write_snapshot(saved, out, int(part_mib * 2**20))
        typer.echo(f"snapshot of {describe(saved)}")
        for path in written:
            typer.echo(f"  {path.name:<24} {mebibytes(path):8.2f} MiB")

    run(body)


@app.command()
def restore(
    snapshot: Annotated[Path, typer.Option(help="Snapshot folder (meta.pt and its parts).")],
    out: Annotated[Path, typer.Option(help="Full resumable checkpoint to write.")],
    batch_size: Annotated[
        int | None, typer.Option(help="Rewrite the schedule's batch sizes (a changed one starts a fresh epoch).")
    ] = None,
    log_into: Annotated[
        Path | None,
        typer.Option(help="Append SNAPSHOT/log.jsonl to this run log (steps after its last, up to the checkpoint's)."),
    ] = None,
) -> None:
    """Here: a snapshot back into a full checkpoint for 'fit --resume' (exp_avg zeros, exp_avg_sq float32)."""

    def body() -> None:
        if log_into is not None and not (snapshot / "log.jsonl").is_file():
            raise TripError(f"no log.jsonl in {snapshot} to append to {log_into}")
        full = expand(read_snapshot(snapshot))
        if batch_size is not None:
            set_batch_size(full, batch_size)
        save_torch_atomic(out, full)
        typer.echo(f"restored {out}: {describe(full)}")
        if log_into is not None:
            added = append_log(snapshot / "log.jsonl", log_into, int(full["step"]))
            typer.echo(f"appended {added} log lines to {log_into}")

    run(body)


if __name__ == "__main__":
    app()
