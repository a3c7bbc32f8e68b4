"""Latent Studio Blender extension: train StyleGAN models on renders, use them as textures."""

from . import preferences

_modules = (preferences,)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
