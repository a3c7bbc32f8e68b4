"""The networks: StyleGAN2-ADA generator and discriminator (networks) and their ops (layers). Nothing of training or files."""
