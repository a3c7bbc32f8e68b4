"""Latent Studio's GAN library: StyleGAN2-ADA networks, training, datasets and latent tools."""

__version__ = "0.1.0"
