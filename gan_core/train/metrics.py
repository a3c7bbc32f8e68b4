"""Image-distribution metrics: sliced Wasserstein distance (SWD) and FID/KID feature statistics.

SWD (Karras et al. 2018, progressive GAN) compares the distributions of small patches taken
from each level of a Laplacian pyramid, so it sees both fine texture and coarse layout. It
needs no pretrained network, so it runs anywhere, also during training on a CPU.

FID and KID need the Inception-v3 feature network of the reference metrics as a TorchScript
file; nothing is downloaded. Point LATENT_STUDIO_INCEPTION at the file (or pass its path);
without it `load_inception` raises `MetricUnavailableError` with that instruction.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

INCEPTION_ENV = "LATENT_STUDIO_INCEPTION"


class MetricError(ValueError):
    """Bad input to a metric."""


class MetricUnavailableError(MetricError):
    """A metric needs something that is not on this machine (e.g. Inception weights)."""


# ---------------------------------------------------------------------------------------
# Sliced Wasserstein distance
# ---------------------------------------------------------------------------------------

_GAUSS_1D = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _as_float_images(images) -> torch.Tensor:
    """uint8 NHWC numpy/tensor or float NCHW tensor in [-1, 1] -> float32 NCHW tensor."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise MetricError("images must be a 4-D array: uint8 [N, H, W, C] or float [N, C, H, W]")
    if images.dtype == torch.uint8:
        images = images.permute(0, 3, 1, 2).float() / 127.5 - 1
    return images.detach().float()


def _blur(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = torch.outer(_GAUSS_1D, _GAUSS_1D).to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, [2, 2, 2, 2], mode="reflect"), k, groups=c)


def laplacian_pyramid(images: torch.Tensor, min_resolution: int = 16) -> list[torch.Tensor]:
    """Band-pass levels from full resolution down to `min_resolution`; the last is low-pass."""
    levels = []
    x = images
    while x.shape[-1] > min_resolution:
        down = _blur(x)[:, :, ::2, ::2]
        up = F.interpolate(down, scale_factor=2, mode="bilinear", align_corners=False)
        levels.append(x - up)
        x = down
    levels.append(x)
    return levels


def patch_descriptors(level: torch.Tensor, patches_per_image: int, patch_size: int,
                      generator: torch.Generator) -> torch.Tensor:
    """Random patch_size x patch_size patches, flattened: [N * patches_per_image, C * ps * ps]."""
    n, c, h, w = level.shape
    ps = min(patch_size, h, w)
    ys = torch.randint(0, h - ps + 1, [n, patches_per_image], generator=generator)
    xs = torch.randint(0, w - ps + 1, [n, patches_per_image], generator=generator)
    offs = torch.arange(ps)
    rows = (ys.unsqueeze(-1) + offs).unsqueeze(-1)  # [n, k, ps, 1]
    cols = (xs.unsqueeze(-1) + offs).unsqueeze(-2)  # [n, k, 1, ps]
    idx_n = torch.arange(n).view(n, 1, 1, 1)
    patches = level.permute(0, 2, 3, 1)[idx_n, rows, cols]  # [n, k, ps, ps, c]
    return patches.reshape(n * patches_per_image, -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, num_projections: int = 128, repeats: int = 4,
                       generator: torch.Generator | None = None) -> float:
    """Mean 1-D Wasserstein distance between the two point sets along random unit directions."""
    if a.shape[1] != b.shape[1]:
        raise MetricError("both descriptor sets need the same dimension")
    n = min(a.shape[0], b.shape[0])
    a, b = a[:n], b[:n]
    results = []
    for _ in range(repeats):
        dirs = torch.randn([a.shape[1], num_projections], generator=generator)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        pa = torch.sort(a @ dirs, dim=0).values
        pb = torch.sort(b @ dirs, dim=0).values
        results.append((pa - pb).abs().mean())
    return float(torch.stack(results).mean())


class SlicedWassersteinDistance:
    """SWD against a fixed real set: build once from real images, then score fake batches.

    Descriptors of both sets are normalised with the REAL set's per-level mean/std (the
    progressive-GAN code normalises each set by its own stats, which hides global colour
    shifts; using the real stats makes a colour mismatch count).
    """

    def __init__(self, real_images, patch_size: int = 7, patches_per_image: int = 64,
                 num_projections: int = 128, repeats: int = 4, min_resolution: int = 16, seed: int = 0):
        real = _as_float_images(real_images)
        if real.shape[0] < 2:
            raise MetricError("SWD needs at least 2 real images")
        self.patch_size, self.patches_per_image = patch_size, patches_per_image
        self.num_projections, self.repeats = num_projections, repeats
        self.min_resolution = min(min_resolution, real.shape[-1])
        self.seed = seed
        gen = torch.Generator().manual_seed(seed)
        self._real = []
        self._stats = []
        for level in laplacian_pyramid(real, self.min_resolution):
            desc = patch_descriptors(level, patches_per_image, patch_size, gen)
            mean, std = desc.mean(0, keepdim=True), desc.std(0, keepdim=True).clamp_min(1e-8)
            self._stats.append((mean, std))
            self._real.append((desc - mean) / std)

    def __call__(self, fake_images) -> dict:
        fake = _as_float_images(fake_images)
        gen = torch.Generator().manual_seed(self.seed + 1)
        levels = laplacian_pyramid(fake, self.min_resolution)
        if len(levels) != len(self._real):
            raise MetricError("fake images must have the resolution of the real ones")
        per_level = []
        for level, real_desc, (mean, std) in zip(levels, self._real, self._stats):
            desc = (patch_descriptors(level, self.patches_per_image, self.patch_size, gen) - mean) / std
            per_level.append(sliced_wasserstein(real_desc, desc, self.num_projections, self.repeats, gen))
        return {"swd": float(np.mean(per_level)), "swd_levels": per_level}


# ---------------------------------------------------------------------------------------
# FID / KID on feature vectors
# ---------------------------------------------------------------------------------------

def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise MetricError("features must be a [N >= 2, D] array")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    Tr((S1 S2)^(1/2)) equals Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), whose argument is symmetric PSD,
    so two symmetric eigendecompositions suffice (no scipy.linalg.sqrtm needed).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricError("feature statistics of different dimensions")
    root1 = _sqrtm_psd(sigma1)
    inner = _sqrtm_psd(root1 @ sigma2 @ root1)
    value = np.square(mu1 - mu2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(inner)
    return float(max(value, 0.0))


def kernel_inception_distance(real_features: np.ndarray, fake_features: np.ndarray, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over subsets."""
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise MetricError("KID needs two [N, D] feature arrays of the same D")
    d = real.shape[1]
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise MetricError("KID needs at least 2 samples per set")
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        total += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(total / num_subsets / m)


def inception_path(path: str | os.PathLike | None = None) -> Path:
    """Where the Inception TorchScript file is, or MetricUnavailableError saying how to provide it."""
    candidate = path or os.environ.get(INCEPTION_ENV)
    if not candidate:
        raise MetricUnavailableError(
            f"FID/KID need the Inception-v3 feature network (TorchScript 'inception-2015-12-05.pt'); "
            f"it is not downloaded automatically: set {INCEPTION_ENV} to its path")
    p = Path(candidate)
    if not p.is_file():
        raise MetricUnavailableError(f"Inception weights not found at {p} (from {INCEPTION_ENV} or the given path)")
    return p


def load_inception(path: str | os.PathLike | None = None, device="cpu"):
    """Load the TorchScript Inception feature extractor (never a plain pickle)."""
    p = inception_path(path)
    try:
        return torch.jit.load(str(p), map_location=device).eval()
    except Exception as exc:  # torch raises various types for a file that is not TorchScript
        raise MetricUnavailableError(f"{p} is not a TorchScript Inception network: {exc}") from exc


@torch.no_grad()
def inception_features(detector, images_uint8_nhwc: np.ndarray, batch_size: int = 64, device="cpu") -> np.ndarray:
    """2048-d pool features of uint8 NHWC images, as the reference metrics call the detector."""
    feats = []
    for i in range(0, len(images_uint8_nhwc), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images_uint8_nhwc[i:i + batch_size])).to(device)
        batch = batch.permute(0, 3, 1, 2)
        feats.append(detector(batch, return_features=True).cpu().numpy())
    return np.concatenate(feats, axis=0)


def fid_from_features(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    return frechet_distance(*feature_statistics(real_features), *feature_statistics(fake_features))
