"""How closely a golden test must match the RTVC fixtures (``../shared/rtvc/fixtures``, README section 7).

The fixtures were made on one CPU with one thread. Floating-point results that go through BLAS, FFT or
numpy's vectorised ``exp``/``log``/``power`` differ in the last bits between CPUs (AVX2 against AVX-512/AMX
kernels): "bit for bit" means exact on the CPU that made the fixtures and within these tolerances elsewhere.
Only computations that are exact on every CPU are compared exactly: integer outputs (text ids, mu-law labels,
slices), copies and slices of stored tensors (folds, collate windows), and the float64 cross-fade, which uses
only correctly rounded operations (``+``, ``*``, ``sqrt``).

Each tolerance is the README's criterion where it gives one; for the model-independent DSP features it gives
none, so the margin is chosen as the README does (at least 4x the largest drift seen; measured on an Intel
Xeon with AVX-512 and AMX against the stored features).
"""

from __future__ import annotations

LOG_MEL_ATOL = 1e-5
"""Symmetric log mels in [-4, 4] (``syn_mel_80``, every synthesizer mel): README section 7, "all mels"."""

POWER_MEL_RTOL = 1e-5
"""The encoder's power mel (``enc_mel_40``, \\|STFT\\|² through the mel basis, no log), per element relative:
the drift is relative at every magnitude (measured at most 3.4e-7, from 1e-7 to 12)."""

SAMPLES_RTOL = 1e-6
"""float32 samples scaled by a computed gain (volume normalisation), per element relative: one float32 ulp of
the gain is 1.2e-7 relative."""

WAVEFORM_ATOL = 1e-9
"""float64 sample-domain outputs (mu-law decoding, de-emphasis, generated waveforms): README section 7, "exact
(atol 1e-9)" (measured at most 1.4e-17 for the mu-law decoding)."""
