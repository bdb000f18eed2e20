"""Griffin-Lim vocoder plugin for vcframe."""
