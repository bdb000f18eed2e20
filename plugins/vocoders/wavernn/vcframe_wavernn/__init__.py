"""WaveRNN vocoder for vcframe (RTVC-compatible, fast folded generation)."""
