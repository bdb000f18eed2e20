"""A mel spectrogram as a PNG image, with numpy and zlib only (no matplotlib on the server)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

# Anchor colours of a perceptually ordered dark-blue -> green -> yellow map (viridis' endpoints and midpoints).
_ANCHORS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
    dtype=np.float64,
)
_PALETTE = np.stack(
    [np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)], axis=1
).astype(np.uint8)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 array as PNG bytes (8-bit RGB, no filtering)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"encode_png needs an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def mel_png(mel: np.ndarray, *, max_width: int = 1600, band_height: int = 3) -> bytes:
    """An (n_mels, frames) mel as a PNG: low bands at the bottom, values scaled to the colour map.

    Wide mels are reduced to ``max_width`` columns by taking each group's maximum.
    """
    if mel.ndim != 2 or mel.shape[0] == 0 or mel.shape[1] == 0:
        raise ValueError(f"mel_png needs an (n_mels, frames) array with frames, got shape {mel.shape}")
    values = np.nan_to_num(np.asarray(mel, dtype=np.float64))
    frames = values.shape[1]
    if frames > max_width:
        group = -(-frames // max_width)
        padded = np.pad(values, ((0, 0), (0, group * max_width - frames)), mode="edge")
        values = padded.reshape(values.shape[0], max_width, group).max(axis=2)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    indices = np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)[::-1]
    image = _PALETTE[np.repeat(indices, band_height, axis=0)]
    return encode_png(np.ascontiguousarray(image))
