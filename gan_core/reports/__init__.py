"""Reports of a training run made from what its run folder holds: the time-lapse of its
sample grids (`timelapse`) and the chart of its progress (`chart`).

Torch-free on purpose: the server draws and serves these without loading a network, and
the training loop calls `timelapse.update_timelapse` at snapshot time only.
"""
