"""Tacotron (CBHG) synthesizer for vcframe (RTVC-compatible)."""
