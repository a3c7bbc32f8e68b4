"""Projection: find the latent that best reproduces a given image, by optimisation through G.

The idea follows the StyleGAN2 projector (Karras et al. 2020, appendix D): start from the
average latent w_avg, optimise w with Adam under a learning rate that ramps up briefly and
down with a cosine at the end, with gaussian noise added to w early on (it decays to zero at
3/4 of the steps) so the search does not settle in the first local minimum. Options:

- `w_plus`: one w per synthesis layer ([num_ws, w_dim]) instead of one w for all of them:
  more faithful reconstructions, latents a little less "typical" of the model.
- `optimize_noise`: the per-pixel noise buffers are optimised too, with the projector's
  regulariser (their autocorrelation at every scale is pushed to zero, and they are
  renormalised after each step) so they cannot carry the image themselves. The buffers are
  reported but a walk key keeps only w: walks render with the model's own noise.

The perceptual loss needs no download: it compares the MODEL'S OWN DISCRIMINATOR features
(the output of every DiscriminatorBlock, from fine to coarse) of the target and the
synthesis, each layer's squared error relative to the target's feature energy, plus pixel
L1 + L2 and the L2 of 2x, 4x... box-downsampled images (colour and layout without the
pixel-exact detail). On held-out images it gives reconstructions whose patch statistics
(SWD) are closer to the target's than the pixel terms alone, at about the same PSNR, once
the generator can draw the detail (tests/unit/test_project.py, docs/BENCHMARKS.md).
`loss='pixel'` uses the pixel and multi-scale terms only; a checkpoint without D (imported
generator-only models) falls back to them and the result says so in its `note`.

The given generator is never changed: gradients are taken with torch.autograd.grad with
respect to the optimised tensors only (no .grad on the model), and noise buffers are
optimised on a private copy of the synthesis network. `lock` (anything usable in `with`,
e.g. the server's device lock) is held for one optimisation step at a time.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from gan_core import rules

# Optimiser settings, as in the reference projector.
LEARNING_RATE = 0.1
RAMP_UP, RAMP_DOWN = 0.05, 0.25  # fractions of the run
W_NOISE_SCALE, W_NOISE_RAMP = 0.05, 0.75  # initial noise on w (times w's spread), gone at 3/4
NOISE_REG_WEIGHT = 1e5
W_SAMPLES = 2000  # z samples for w's spread (and w_avg when the model does not track it)
# Loss weights. D features dominate the dfeat loss; the pixel and multi-scale terms keep
# colours and layout anchored (D features are partly invariant to them).
FEATURE_WEIGHT = 1.0
PIXEL_WEIGHT = 1.0
MULTISCALE_WEIGHT = 1.0
MIN_MULTISCALE_SIDE = 4  # the multi-scale term stops at this side
NO_DISCRIMINATOR_NOTE = ("this model file holds no discriminator (a generator-only model, e.g. an import): "
                         "the projection used the pixel and multi-scale losses only")


class ProjectionError(ValueError):
    """Input to a projection that cannot be used; the message says why."""


class ProjectionStopped(Exception):
    """`should_stop()` asked the projection to end early (e.g. the server is stopping)."""


@dataclass
class ProjectionResult:
    ws: np.ndarray  # float32 [num_ws, w_dim]: the latent to render (W+ form in either mode)
    w: np.ndarray | None  # float32 [w_dim] when not w_plus (then every row of ws is this)
    w_plus: bool
    image: np.ndarray  # uint8 [H, W, 3]: the reconstruction (with the optimised noise, if any)
    target: np.ndarray  # uint8 [H, W, 3]: the target as compared (cropped and resized to the model)
    losses: list[float]  # the reconstruction loss at every step (noise regulariser left out)
    final_loss: float  # the loss of the returned latent (no w noise)
    loss: str  # the loss actually used: "dfeat" or "pixel"
    steps: int
    note: str | None = None
    noise: dict[str, np.ndarray] = field(default_factory=dict)  # optimised noise buffers by layer name

    @property
    def latent(self) -> np.ndarray:
        """What a walk key stores: w [w_dim], or ws [num_ws, w_dim] in W+ mode."""
        return self.ws if self.w_plus else self.w


# ----------------------------------------------------------------------------- inputs


def prepare_target(image, resolution: int) -> np.ndarray:
    """uint8 [H, W] / [H, W, 1|3|4] -> uint8 [resolution, resolution, 3]: alpha dropped, grey
    repeated, the centre square cropped, resized (Lanczos) to the model's side."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ProjectionError(f"the image must be uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or min(arr.shape[:2]) < 1:
        raise ProjectionError(f"the image must be [H, W, 3] (or grey, or RGBA), got shape {list(arr.shape)}")
    arr = arr[..., :3] if arr.shape[2] != 1 else np.repeat(arr, 3, axis=2)
    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    arr = arr[top:top + side, left:left + side]
    if side != resolution:
        arr = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((resolution, resolution),
                                                                          Image.Resampling.LANCZOS))
    return np.ascontiguousarray(arr)


def _to_tensor(image: np.ndarray, device) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [1, 3, H, W] in [-1, 1] (the networks' range)."""
    return torch.from_numpy(np.array(image, copy=True)).to(device).permute(2, 0, 1)[None].float() / 127.5 - 1


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    return (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


# ----------------------------------------------------------------------------- the loss


class DiscriminatorFeatures:
    """The output of each DiscriminatorBlock of D (fine to coarse) for a batch of images.

    Runs D's blocks in order exactly as Discriminator.forward does, and stops before the
    epilogue (its minibatch-std layer mixes images, and its output is a score, not a
    feature map), so nothing is hooked into the module and it stays safe to share."""

    def __init__(self, D):
        self.D = D
        for p in D.parameters():
            p.requires_grad_(False)

    def __call__(self, img: torch.Tensor) -> list[torch.Tensor]:
        x, feats = None, []
        for res in self.D.block_resolutions:
            x, img = getattr(self.D, f"b{res}")(x, img, force_fp32=True)
            feats.append(x.float())
        return feats


def feature_distance(feats: list[torch.Tensor], target_feats: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of each layer's squared error relative to the target's feature energy,
    so every layer counts alike whatever its scale. (Normalising each feature vector to unit
    length instead, as LPIPS does for VGG, drops the contrast that D's features carry: it
    did worse on the held-out discs of tests/unit/test_project.py.)"""
    terms = [(a - b).square().mean() / (b.square().mean() + 1e-8) for a, b in zip(feats, target_feats)]
    return torch.stack(terms).mean()


def pixel_distance(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    diff = x - t
    return diff.abs().mean() + diff.square().mean()


def multiscale_distance(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Mean L2 between 2x, 4x, ... box-downsampled copies, down to MIN_MULTISCALE_SIDE."""
    terms = []
    while x.shape[-1] // 2 >= MIN_MULTISCALE_SIDE:
        x, t = F.avg_pool2d(x, 2), F.avg_pool2d(t, 2)
        terms.append((x - t).square().mean())
    return torch.stack(terms).mean() if terms else x.new_zeros([])


class ReconstructionLoss:
    """loss(synthesis) against a fixed target; the target's features are computed once."""

    def __init__(self, target: torch.Tensor, D=None):
        self.target = target
        self.features = DiscriminatorFeatures(D) if D is not None else None
        if self.features is not None:
            with torch.no_grad():
                self.target_features = self.features(target)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        loss = PIXEL_WEIGHT * pixel_distance(img, self.target) + MULTISCALE_WEIGHT * multiscale_distance(img, self.target)
        if self.features is not None:
            loss = loss + FEATURE_WEIGHT * feature_distance(self.features(img), self.target_features)
        return loss


def noise_regularizer(buffers: list[torch.Tensor]) -> torch.Tensor:
    """Sum of squared autocorrelations (one pixel right, one down) of every noise buffer at
    every scale down to 8 px: zero for white noise, large when a buffer carries structure."""
    total = buffers[0].new_zeros([])
    for noise in buffers:
        x = noise[None, None]
        while True:
            total = total + (x * torch.roll(x, 1, dims=3)).mean().square()
            total = total + (x * torch.roll(x, 1, dims=2)).mean().square()
            if x.shape[-1] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total


# ----------------------------------------------------------------------------- schedule


def learning_rate(t: float, base: float = LEARNING_RATE) -> float:
    """Learning rate at progress t in [0, 1): linear ramp-up over RAMP_UP, cosine ramp-down over
    the last RAMP_DOWN of the run."""
    down = min(1.0, (1.0 - t) / RAMP_DOWN)
    down = 0.5 - 0.5 * math.cos(down * math.pi)
    return base * down * min(1.0, t / RAMP_UP)


def w_noise_scale(t: float, w_std: float) -> float:
    return w_std * W_NOISE_SCALE * max(0.0, 1.0 - t / W_NOISE_RAMP) ** 2


# ----------------------------------------------------------------------------- projection


def _generator(runner_or_G):
    G = getattr(runner_or_G, "G", runner_or_G)
    if not (hasattr(G, "synthesis") and hasattr(G, "mapping") and hasattr(G, "num_ws")):
        raise ProjectionError("projection needs a StyleGAN2 generator (or a ModelRunner holding one)")
    return G


def _device(G):
    return next(G.parameters()).device


@torch.no_grad()
def w_statistics(G, seed: int = 0, samples: int = W_SAMPLES) -> tuple[torch.Tensor, float]:
    """(w_avg [w_dim], w's spread: the root mean squared distance of w samples from w_avg).
    w_avg is the model's tracked G.mapping.w_avg; a model that never tracked it (all zeros,
    e.g. an untrained one) gets the mean of the samples instead."""
    device = _device(G)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([samples, G.z_dim], generator=gen).to(device)
    c = torch.zeros([samples, G.c_dim], device=device)
    w = G.mapping(z, c)[:, 0].float()
    w_avg = getattr(G.mapping, "w_avg", None)
    if w_avg is None or not bool(torch.any(w_avg != 0)):
        w_avg = w.mean(dim=0)
    w_avg = w_avg.float().to(device)
    return w_avg, float((w - w_avg).square().sum(dim=1).mean().sqrt())


def _noise_layers(synthesis) -> dict[str, torch.nn.Module]:
    return {name: m for name, m in synthesis.named_modules() if getattr(m, "use_noise", False)
            and isinstance(getattr(m, "noise_const", None), torch.Tensor)}


def project(runner_or_G, D, image, steps: int = rules.DEFAULT_PROJECTION_STEPS, w_plus: bool = False,
            optimize_noise: bool = False, loss: str = "dfeat", seed: int = 0, *, lr: float = LEARNING_RATE,
            on_progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
            lock=None) -> ProjectionResult:
    """Optimise a latent so that G renders `image` (uint8 [H, W, 3], any size: see
    prepare_target). `D` (the model's discriminator, or None) is needed for loss 'dfeat'.
    `on_progress({"step", "steps", "loss"})` after every step; `should_stop()` true raises
    ProjectionStopped. Seeded: the same inputs give the same result on the same build."""
    G = _generator(runner_or_G)
    try:
        steps = rules.check_int(steps, "steps", rules.MIN_PROJECTION_STEPS, rules.MAX_PROJECTION_STEPS)
        loss = rules.check_choice(loss, rules.PROJECTION_LOSSES, "loss")
        seed = rules.check_int(seed, "seed", 0, rules.MAX_SEED)
        lr = rules.check_number(lr, "learning rate", 1e-6, 10.0)
    except rules.RuleError as exc:
        raise ProjectionError(str(exc)) from None
    note = None
    if loss == "dfeat" and D is None:
        loss, note = "pixel", NO_DISCRIMINATOR_NOTE
    if D is not None and loss == "dfeat" and D.img_resolution != G.img_resolution:
        raise ProjectionError(f"the discriminator sees {D.img_resolution} px images, the generator makes "
                              f"{G.img_resolution} px: they are not from the same model")
    lock = lock if lock is not None else contextlib.nullcontext()
    device = _device(G)
    target_u8 = prepare_target(image, G.img_resolution)
    with lock:
        w_avg, w_std = w_statistics(G, seed)
        objective = ReconstructionLoss(_to_tensor(target_u8, device), D if loss == "dfeat" else None)
        synthesis = G.synthesis
        noise_bufs: dict[str, torch.Tensor] = {}
        if optimize_noise:  # a private copy: the shared model's noise stays as it is
            synthesis = copy.deepcopy(G.synthesis)
            for name, layer in _noise_layers(synthesis).items():  # starting from the model's own noise
                layer.noise_const = layer.noise_const.detach().float().clone().requires_grad_(True)
                noise_bufs[name] = layer.noise_const

    w_opt = (w_avg[None].repeat(G.num_ws, 1) if w_plus else w_avg.clone()).requires_grad_(True)
    params = [w_opt, *noise_bufs.values()]
    opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=lr)
    gen = torch.Generator().manual_seed(seed + 2)

    def render(w: torch.Tensor) -> torch.Tensor:
        ws = w[None] if w_plus else w[None, None].repeat(1, G.num_ws, 1)
        return synthesis(ws, noise_mode="const", force_fp32=True)

    losses: list[float] = []
    for step in range(steps):
        if should_stop is not None and should_stop():
            raise ProjectionStopped(f"stopped after {step} of {steps} steps")
        t = step / steps
        for group in opt.param_groups:
            group["lr"] = learning_rate(t, lr)
        jitter = torch.randn(w_opt.shape, generator=gen).to(device) * w_noise_scale(t, w_std)
        with lock:
            recon = objective(render(w_opt + jitter))
            total = recon + NOISE_REG_WEIGHT * noise_regularizer(list(noise_bufs.values())) if noise_bufs else recon
            grads = torch.autograd.grad(total, params)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        with torch.no_grad():  # keep the noise white: zero mean, unit variance
            for buf in noise_bufs.values():
                buf.sub_(buf.mean()).div_(buf.square().mean().sqrt().clamp_min(1e-8))
        losses.append(float(recon.detach()))
        if on_progress is not None:
            on_progress({"step": step + 1, "steps": steps, "loss": losses[-1]})

    with lock, torch.no_grad():
        img = render(w_opt)
        final_loss = float(objective(img))
    w_final = w_opt.detach().float().cpu().numpy()
    ws = w_final if w_plus else np.repeat(w_final[None], G.num_ws, axis=0)
    return ProjectionResult(
        ws=np.ascontiguousarray(ws, dtype=np.float32), w=None if w_plus else w_final.astype(np.float32),
        w_plus=bool(w_plus), image=_to_uint8(img), target=target_u8, losses=losses, final_loss=final_loss,
        loss=loss, steps=steps, note=note,
        noise={name: b.detach().cpu().numpy() for name, b in noise_bufs.items()})
