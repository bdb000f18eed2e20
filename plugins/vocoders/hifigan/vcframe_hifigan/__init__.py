"""HiFi-GAN vocoder plugin for vcframe (Kong et al. 2020; the original jik876/hifi-gan generator)."""
