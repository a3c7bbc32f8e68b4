"""The public StyleGAN2-ADA reference (NVlabs/stylegan2-ada-pytorch) driven one training step
at a time, for side-by-side timings against ours (bench_training.py --reference DIR,
bench_generator.py --reference DIR).

The reference is an unpacked snapshot in a git-ignored folder (docs/BENCHMARKS.md says how to
get it); nothing of it is copied here. This module builds its networks, loss, augmentation,
optimisers and data loader from its own classes and runs the phases of its training loop
(Gmain, Greg every 4 steps, Dmain, Dreg every 16, then the G EMA and the ADA heuristic) in
the order and with the settings its train.py uses for the 'auto' config.
"""

from __future__ import annotations

import copy
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import torch

# train.py's 'bgc' pipeline: the default augmentations (blit, geometric, colour).
BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1, lumaflip=1,
           hue=1, saturation=1)
ADA_INTERVAL = 4  # the reference adjusts p every 4 steps


class ReferenceError(RuntimeError):
    """The reference folder is missing or cannot be imported."""


def _distutils_shim() -> None:
    """dnnlib/util.py imports distutils.util.strtobool, gone from Python 3.12's standard
    library (setuptools may or may not provide it): give it the one function it uses."""
    try:
        import distutils.util  # noqa: F401
    except ImportError:
        util = types.ModuleType("distutils.util")

        def strtobool(value: str) -> int:
            value = value.lower()
            if value in ("y", "yes", "t", "true", "on", "1"):
                return 1
            if value in ("n", "no", "f", "false", "off", "0"):
                return 0
            raise ValueError(f"invalid truth value {value!r}")

        util.strtobool = strtobool
        package = types.ModuleType("distutils")
        package.util = util
        sys.modules.update({"distutils": package, "distutils.util": util})
        print("reference_trainer: no distutils here; dnnlib gets a strtobool shim", file=sys.stderr)


def load(ref_dir) -> types.SimpleNamespace:
    """The reference's modules, imported from `ref_dir` (its repository root)."""
    ref_dir = Path(ref_dir).resolve()
    if not (ref_dir / "training" / "networks.py").is_file() or not (ref_dir / "torch_utils").is_dir():
        raise ReferenceError(f"{ref_dir} is not an unpacked stylegan2-ada-pytorch snapshot "
                             "(no training/networks.py); see docs/BENCHMARKS.md")
    _distutils_shim()
    # Its gradfix ops warn at every call on a torch they do not know; once is enough for the log.
    warnings.filterwarnings("once", message=".*gradfix not supported on PyTorch")
    if str(ref_dir) not in sys.path:
        sys.path.insert(0, str(ref_dir))
    try:
        from torch_utils import custom_ops, misc, training_stats
        from torch_utils.ops import bias_act, conv2d_gradfix, grid_sample_gradfix, upfirdn2d
        from training import augment, dataset, loss, networks
    except Exception as exc:  # an import error of theirs: say which folder
        raise ReferenceError(f"cannot import the reference from {ref_dir}: {type(exc).__name__}: {exc}") from exc
    custom_ops.verbosity = "full"  # the build log shows whether its CUDA kernels compiled
    # As its training loop does; both fall back to stock torch on PyTorch >= 1.10.
    conv2d_gradfix.enabled = True
    grid_sample_gradfix.enabled = True
    return types.SimpleNamespace(networks=networks, loss=loss, augment=augment, dataset=dataset, misc=misc,
                                 training_stats=training_stats, bias_act=bias_act, upfirdn2d=upfirdn2d,
                                 conv2d_gradfix=conv2d_gradfix, path=str(ref_dir))


def plugin_status(ref) -> dict:
    """Whether its custom CUDA kernels are in use (False: its slow fallback)."""
    return {"bias_act": ref.bias_act._plugin is not None, "upfirdn2d": ref.upfirdn2d._plugin is not None}


def build_generator(ref, G_kwargs: dict, state_dict: dict | None = None):
    kwargs = {k: copy.deepcopy(v) for k, v in G_kwargs.items() if k != "class_name"}
    G = ref.networks.Generator(**kwargs)
    if state_dict is not None:  # strict: the same keys and shapes prove the same config
        G.load_state_dict(state_dict, strict=True)
    return G


def _infinite_sampler(ref, dataset, seed: int):
    """Its InfiniteSampler (its windowed shuffle, its __iter__). Its __init__ passes the dataset
    to torch's Sampler.__init__, which takes no argument since torch 2.2: on such a torch the
    object is made without that call and given the attributes its __init__ sets."""
    cls = ref.misc.InfiniteSampler
    try:
        return cls(dataset=dataset, seed=seed)
    except TypeError:
        print("reference_trainer: its InfiniteSampler.__init__ fails on this torch; made without it",
              file=sys.stderr)
        sampler = cls.__new__(cls)
        sampler.dataset, sampler.rank, sampler.num_replicas = dataset, 0, 1
        sampler.shuffle, sampler.seed, sampler.window_size = True, seed, 0.5
        return sampler


class ReferenceTrainer:
    """One reference training run on `device`; `step()` = one iteration of its loop."""

    def __init__(self, ref, *, data: str, G_kwargs: dict, D_kwargs: dict, batch: int, device, gamma: float,
                 lr: float, ema_kimg: float, ema_rampup: float | None, aug_p: float | None, ada_target: float = 0.6,
                 ada_kimg: float = 500, style_mixing: float = 0.9, pl_weight: float = 2.0, r1_interval: int = 16,
                 pl_interval: int = 4, workers: int = 0, state_dicts: dict | None = None, seed: int = 0):
        self.ref, self.device, self.batch = ref, torch.device(device), batch
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup
        self.G = build_generator(ref, G_kwargs).train().requires_grad_(False).to(self.device)
        self.D = ref.networks.Discriminator(**{k: copy.deepcopy(v) for k, v in D_kwargs.items()
                                              if k != "class_name"}).train().requires_grad_(False).to(self.device)
        if state_dicts is not None:  # start from our weights: same networks, same numbers
            self.G.load_state_dict(state_dicts["G"], strict=True)
            self.D.load_state_dict(state_dicts["D"], strict=True)
        self.G_ema = copy.deepcopy(self.G).eval()

        self.augment_pipe = None
        self.ada_stats = None
        if aug_p is not None:
            self.augment_pipe = ref.augment.AugmentPipe(**BGC).train().requires_grad_(False).to(self.device)
            self.augment_pipe.p.copy_(torch.as_tensor(aug_p))
            self.ada_target, self.ada_kimg = ada_target, ada_kimg
            self.ada_stats = ref.training_stats.Collector(regex="Loss/signs/real")
        self.loss = ref.loss.StyleGAN2Loss(device=self.device, G_mapping=self.G.mapping, G_synthesis=self.G.synthesis,
                                           D=self.D, augment_pipe=self.augment_pipe, style_mixing_prob=style_mixing,
                                           r1_gamma=gamma, pl_weight=pl_weight)
        self.phases = []
        for name, module, interval in (("G", self.G, pl_interval if pl_weight > 0 else None),
                                       ("D", self.D, r1_interval if gamma > 0 else None)):
            ratio = interval / (interval + 1) if interval else 1.0
            opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=[0 ** ratio, 0.99 ** ratio], eps=1e-8)
            if interval:
                self.phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
            else:
                self.phases += [(name + "both", module, opt, 1)]

        self.dataset = ref.dataset.ImageFolderDataset(path=str(data), use_labels=False, max_size=None, xflip=False)
        sampler = _infinite_sampler(ref, self.dataset, seed)
        loader_kwargs = dict(pin_memory=self.device.type == "cuda", num_workers=workers)
        if workers > 0:
            loader_kwargs["prefetch_factor"] = 2
        self.loader = iter(torch.utils.data.DataLoader(dataset=self.dataset, sampler=sampler, batch_size=batch,
                                                       **loader_kwargs))
        self.batch_idx, self.nimg = 0, 0

    def step(self) -> None:
        dev, batch, n_phases = self.device, self.batch, len(self.phases)
        real_img, real_c = next(self.loader)
        real_img = real_img.to(dev).to(torch.float32) / 127.5 - 1
        real_c = real_c.to(dev)
        # Fresh z and labels for every phase, drawn as its loop draws them (labels on the host).
        all_z = torch.randn([n_phases * batch, self.G.z_dim], device=dev).split(batch)
        all_c = [self.dataset.get_label(np.random.randint(len(self.dataset))) for _ in range(n_phases * batch)]
        all_c = torch.from_numpy(np.stack(all_c)).pin_memory() if dev.type == "cuda" else \
            torch.from_numpy(np.stack(all_c))
        all_c = all_c.to(dev).split(batch)
        for (name, module, opt, interval), gen_z, gen_c in zip(self.phases, all_z, all_c):
            if self.batch_idx % interval != 0:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(phase=name, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c,
                                           sync=True, gain=interval)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    self.ref.misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        with torch.no_grad():  # G_ema
            ema_nimg = self.ema_kimg * 1000
            if self.ema_rampup is not None:
                ema_nimg = min(ema_nimg, self.nimg * self.ema_rampup)
            beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        self.nimg += batch
        self.batch_idx += 1
        if self.ada_stats is not None and self.batch_idx % ADA_INTERVAL == 0:
            self.ada_stats.update()
            adjust = np.sign(self.ada_stats["Loss/signs/real"] - self.ada_target) * (batch * ADA_INTERVAL) / (
                self.ada_kimg * 1000)
            self.augment_pipe.p.copy_((self.augment_pipe.p + adjust).max(torch.zeros([], device=dev)))

    @property
    def augment_p(self) -> float:
        return float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0
