"""ADA augmentation pipeline (Karras et al. 2020) as a differentiable nn.Module with a settable p.

Every transform is applied to each image independently with probability `strength * p`.
Geometric transforms (x-flip, 90-degree rotations, integer translation, isotropic scaling,
arbitrary rotation, anisotropic scaling, fractional translation) are composed into ONE
inverse affine matrix per image and applied in a single `grid_sample` pass with bilinear
filtering and reflection padding. (The reference instead upsamples 2x with wavelet filters
around its sampling pass; grid_sample is cheaper and keeps the pipeline free of custom ops,
at the price of slightly more blur on fractional transforms.) Colour transforms are composed
into one 4x4 matrix per image and applied as one batched matmul. A transform whose
probability is zero is skipped entirely, so p = 0 costs nothing and is the exact identity.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from gan_core.rules import AUGMENT_PIPELINES


class AugmentError(ValueError):
    """Bad augmentation settings or input."""


# Per-transform strengths of the reference's "bgc" pipeline (blit + geometric + colour).
AUGMENT_PRESETS = {
    "bgc": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1),
    "bg": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1),
    "bgcc": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                 brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1, cutout=1),
}

assert tuple(AUGMENT_PRESETS) == AUGMENT_PIPELINES  # the rulebook lists the names

_GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
_COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")


def _eye(n: int, size: int, device) -> torch.Tensor:
    return torch.eye(size, device=device).unsqueeze(0).repeat(n, 1, 1)


def _scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0] = sx
    m[:, 1, 1] = sy
    return m


def _translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    m = _eye(theta.shape[0], 3, theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1] = c, -s
    m[:, 1, 0], m[:, 1, 1] = s, c
    return m


def _translate3d(t: torch.Tensor) -> torch.Tensor:
    m = _eye(t.shape[0], 4, t.device)
    m[:, :3, 3] = t.unsqueeze(1)
    return m


def _scale3d(s: torch.Tensor) -> torch.Tensor:
    m = _eye(s.shape[0], 4, s.device)
    for i in range(3):
        m[:, i, i] = s
    return m


def _rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rodrigues rotation about a unit axis (the luma axis here), as homogeneous 4x4."""
    x, y, z = axis[0], axis[1], axis[2]
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    m = _eye(theta.shape[0], 4, theta.device)
    m[:, 0, 0] = x * x * cc + c
    m[:, 0, 1] = x * y * cc - z * s
    m[:, 0, 2] = x * z * cc + y * s
    m[:, 1, 0] = y * x * cc + z * s
    m[:, 1, 1] = y * y * cc + c
    m[:, 1, 2] = y * z * cc - x * s
    m[:, 2, 0] = z * x * cc - y * s
    m[:, 2, 1] = z * y * cc + x * s
    m[:, 2, 2] = z * z * cc + c
    return m


class AugmentPipe(nn.Module):
    """ADA pipeline. `p` is the overall augmentation probability in [0, 1]; set it any time.

    Images are [N, C, H, W] float (any range; the networks use [-1, 1]). Colour transforms
    need C == 3. The output has the same shape and keeps gradients to the input.
    """

    def __init__(self, xflip=0, rotate90=0, xint=0, xint_max=0.125,
                 scale=0, rotate=0, aniso=0, xfrac=0,
                 scale_std=0.2, rotate_max=1.0, aniso_std=0.2, xfrac_std=0.125,
                 brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0,
                 brightness_std=0.2, contrast_std=0.5, hue_max=1.0, saturation_std=1.0,
                 cutout=0, cutout_size=0.5, p: float = 0.0):
        super().__init__()
        self.strengths = dict(xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate,
                              aniso=aniso, xfrac=xfrac, brightness=brightness, contrast=contrast,
                              lumaflip=lumaflip, hue=hue, saturation=saturation, cutout=cutout)
        for name, value in self.strengths.items():
            if not 0 <= float(value) <= 1:
                raise AugmentError(f"augmentation strength {name}={value} must be in [0, 1]")
        self.xint_max, self.scale_std, self.rotate_max = float(xint_max), float(scale_std), float(rotate_max)
        self.aniso_std, self.xfrac_std = float(aniso_std), float(xfrac_std)
        self.brightness_std, self.contrast_std = float(brightness_std), float(contrast_std)
        self.hue_max, self.saturation_std, self.cutout_size = float(hue_max), float(saturation_std), float(cutout_size)
        self.register_buffer("luma_axis", torch.tensor([1.0, 1.0, 1.0]) / math.sqrt(3), persistent=False)
        self._p = 0.0
        self.p = p

    @classmethod
    def from_preset(cls, name: str = "bgc", p: float = 0.0) -> "AugmentPipe":
        if name not in AUGMENT_PRESETS:
            raise AugmentError(f"unknown augmentation preset {name!r}: use one of {sorted(AUGMENT_PRESETS)}")
        return cls(**AUGMENT_PRESETS[name], p=p)

    # p is a plain float (not a buffer) so "is this transform active?" never needs a GPU sync.
    @property
    def p(self) -> float:
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        value = float(value)
        if not (0.0 <= value <= 1.0) or math.isnan(value):
            raise AugmentError(f"augmentation probability p={value} must be in [0, 1]")
        self._p = value

    def _prob(self, name: str) -> float:
        return float(self.strengths[name]) * self._p

    @staticmethod
    def _mask(n: int, prob: float, device) -> torch.Tensor:
        """Per-image 0/1 mask: which images get this transform."""
        return (torch.rand([n], device=device) < prob).float()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise AugmentError(f"expected images [N, C, H, W], got shape {tuple(images.shape)}")
        n, c, h, w = images.shape
        if any(self._prob(k) > 0 for k in _GEOMETRIC):
            images = self._geometric(images)
        if any(self._prob(k) > 0 for k in _COLOUR):
            if c != 3:
                raise AugmentError(f"colour augmentations need 3-channel images, got {c} channels")
            images = self._colour(images)
        if self._prob("cutout") > 0:
            images = self._cutout(images)
        return images

    def _geometric(self, images: torch.Tensor) -> torch.Tensor:
        """Compose an inverse (output -> input) affine per image in normalised [-1, 1] coords."""
        n, _, h, w = images.shape
        dev = images.device
        g_inv = _eye(n, 3, dev)
        one = torch.ones([n], device=dev)

        prob = self._prob("xflip")
        if prob > 0:
            flip = torch.floor(torch.rand([n], device=dev) * 2) * self._mask(n, prob, dev)
            g_inv = g_inv @ _scale2d(1 - 2 * flip, one)
        prob = self._prob("rotate90")
        if prob > 0:
            quarter = torch.floor(torch.rand([n], device=dev) * 4) * self._mask(n, prob, dev)
            g_inv = g_inv @ _rotate2d(-math.pi / 2 * quarter)
        prob = self._prob("xint")
        if prob > 0:
            t = (torch.rand([n, 2], device=dev) * 2 - 1) * self.xint_max
            t = t * self._mask(n, prob, dev).unsqueeze(1)
            # Whole pixels: round in pixel units, then convert (2 normalised units = full width).
            g_inv = g_inv @ _translate2d(torch.round(t[:, 0] * w) * 2 / w, torch.round(t[:, 1] * h) * 2 / h)
        prob = self._prob("scale")
        if prob > 0:
            s = torch.exp2(torch.randn([n], device=dev) * self.scale_std * self._mask(n, prob, dev))
            g_inv = g_inv @ _scale2d(1 / s, 1 / s)
        # Rotation is split into a pre- and a post-rotation around the anisotropic scaling, each
        # with the probability that makes "at least one of them" happen with probability prob.
        prob_rot = 1 - math.sqrt(max(0.0, 1 - self._prob("rotate")))
        if prob_rot > 0:
            theta = (torch.rand([n], device=dev) * 2 - 1) * math.pi * self.rotate_max * self._mask(n, prob_rot, dev)
            g_inv = g_inv @ _rotate2d(-theta)
        prob = self._prob("aniso")
        if prob > 0:
            s = torch.exp2(torch.randn([n], device=dev) * self.aniso_std * self._mask(n, prob, dev))
            g_inv = g_inv @ _scale2d(1 / s, s)
        if prob_rot > 0:
            theta = (torch.rand([n], device=dev) * 2 - 1) * math.pi * self.rotate_max * self._mask(n, prob_rot, dev)
            g_inv = g_inv @ _rotate2d(-theta)
        prob = self._prob("xfrac")
        if prob > 0:
            t = torch.randn([n, 2], device=dev) * self.xfrac_std * self._mask(n, prob, dev).unsqueeze(1)
            g_inv = g_inv @ _translate2d(t[:, 0] * 2, t[:, 1] * 2)

        theta = g_inv[:, :2, :].to(images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _colour(self, images: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        dev = images.device
        m = _eye(n, 4, dev)
        v = self.luma_axis.to(dev)
        v4 = torch.cat([v, torch.zeros([1], device=dev)])
        vv = torch.outer(v4, v4).unsqueeze(0)  # projector onto the luma axis

        prob = self._prob("brightness")
        if prob > 0:
            b = torch.randn([n], device=dev) * self.brightness_std * self._mask(n, prob, dev)
            m = _translate3d(b) @ m
        prob = self._prob("contrast")
        if prob > 0:
            s = torch.exp2(torch.randn([n], device=dev) * self.contrast_std * self._mask(n, prob, dev))
            m = _scale3d(s) @ m
        prob = self._prob("lumaflip")
        if prob > 0:
            flip = torch.floor(torch.rand([n, 1, 1], device=dev) * 2) * self._mask(n, prob, dev).view(n, 1, 1)
            m = (_eye(n, 4, dev) - 2 * vv * flip) @ m  # Householder reflection of luma
        prob = self._prob("hue")
        if prob > 0 and c > 1:
            theta = (torch.rand([n], device=dev) * 2 - 1) * math.pi * self.hue_max * self._mask(n, prob, dev)
            m = _rotate3d(v, theta) @ m
        prob = self._prob("saturation")
        if prob > 0:
            s = torch.exp2(torch.randn([n, 1, 1], device=dev) * self.saturation_std * self._mask(n, prob, dev).view(n, 1, 1))
            m = (vv + (_eye(n, 4, dev) - vv) * s) @ m

        m = m.to(images.dtype)
        flat = images.reshape(n, c, h * w)
        out = m[:, :3, :3] @ flat + m[:, :3, 3:]
        return out.reshape(n, c, h, w)

    def _cutout(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        dev = images.device
        size = torch.full([n, 1, 1, 1], self.cutout_size, device=dev) * self._mask(n, self._prob("cutout"), dev).view(n, 1, 1, 1)
        centre = torch.rand([n, 2, 1, 1], device=dev)
        ys = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
        inside_x = (xs.view(1, 1, 1, w) - centre[:, 0:1]).abs() < size / 2
        inside_y = (ys.view(1, 1, h, 1) - centre[:, 1:2]).abs() < size / 2
        keep = ~(inside_x & inside_y)
        return images * keep.to(images.dtype)
