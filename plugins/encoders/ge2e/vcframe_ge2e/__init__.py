"""GE2E speaker encoder for vcframe (RTVC-compatible)."""
