"""The latent-space explorer: POST /explore answers an N x N grid of neighbours of a centre
latent (gan_core.explore) with each cell's z and w, rendered on the generation thread."""
