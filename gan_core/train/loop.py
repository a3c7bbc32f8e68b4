"""The StyleGAN2-ADA training loop: `train(config, on_progress, should_stop)`.

One step = one minibatch of reals through D (plus lazy R1 every `r1_interval` steps), then
the G update (plus lazy path-length regularisation every `pl_interval` steps), then the G
EMA update and, with ADA, the augmentation-probability controller. Snapshots (exported
network, resumable state, sample grid, index.json last; then the grid's time-lapse frame,
gan_core.reports.timelapse) at step 0, every `snapshot_every` steps and at the end. Knows
nothing of Flask: the server talks to it through the callbacks.
"""

from __future__ import annotations

import copy
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_core.data import ZipDataset
from gan_core.device import compile_module, resolve_device
from gan_core.fileio import append_line, atomic_write_bytes
from gan_core.generate import image_grid
from gan_core.models.checkpoint import load_network, save_network, save_training_state
from gan_core.nn.networks import build_discriminator, build_generator, preset_kwargs, set_precision
from gan_core.reports.timelapse import disk_usage as timelapse_disk_usage, update_timelapse
from gan_core.train import distributed
from gan_core.train.ada import AdaController
from gan_core.train.augment import AugmentPipe
from gan_core.train.config import TrainingConfig, TrainingConfigError, save_config
from gan_core.train.estimate import MEASURED_STEPS, estimate
from gan_core.train.loss import StyleGAN2Loss
from gan_core.train.metrics import (
    SlicedWassersteinDistance,
    fid_from_features,
    inception_features,
    kernel_inception_distance,
    load_inception,
)
from gan_core.train.tileable import set_seamless
from gan_core.train.snapshots import (
    STATE_FORMAT,
    capture_rng_state,
    latest_snapshot,
    list_snapshots,
    load_resumable,
    prune_snapshots,
    record_snapshot,
    restore_rng_state,
    snapshot_bytes,
    snapshot_files,
    write_index,
)

__all__ = ["TrainingConfig", "TrainingConfigError", "train", "latest_snapshot", "list_snapshots"]

ADAM_BETAS = (0.0, 0.99)
ADAM_EPS = 1e-8


# ------------------------------------------------------------------ data

class _StepBatchSampler(torch.utils.data.Sampler):
    """Index batches for one rank, continuing from global image `start`.

    The global order is a fresh permutation per epoch seeded by (seed, epoch), so resuming
    at image `start` replays exactly the batches an uninterrupted run would have seen.
    """

    def __init__(self, n: int, batch: int, rank: int, world: int, seed: int, start: int):
        self.n, self.batch, self.rank, self.world, self.seed, self.pos = n, batch, rank, world, seed, start
        self._epoch, self._perm = None, None

    def _index(self, i: int) -> int:
        epoch = i // self.n
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return int(self._perm[i % self.n])

    def __iter__(self):
        local = self.batch // self.world
        while True:
            first = self.pos + self.rank * local
            yield [self._index(i) for i in range(first, first + local)]
            self.pos += self.batch

    def __len__(self):  # infinite in practice; DataLoader only needs a number
        return 2 ** 62


def _make_loader(dataset, config: TrainingConfig, device, info, start_nimg: int):
    sampler = _StepBatchSampler(len(dataset), config.batch, info.rank, info.world_size, config.seed, start_nimg)
    workers = config.workers if config.workers is not None else (3 if device.type == "cuda" else 0)
    # Own generator: creating a DataLoader iterator draws a seed, which must not shift the
    # global RNG (a resumed run would otherwise diverge from an uninterrupted one).
    generator = torch.Generator().manual_seed(config.seed * info.world_size + info.rank)
    kwargs = dict(batch_sampler=sampler, num_workers=workers, pin_memory=device.type == "cuda",
                  generator=generator)
    if workers > 0:
        kwargs.update(prefetch_factor=2, persistent_workers=True)
    return iter(torch.utils.data.DataLoader(dataset, **kwargs))


# ------------------------------------------------------------------ networks

def _auto_preset(resolution: int) -> str:
    return "small" if resolution <= 128 else "stylegan2"


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build_networks(config: TrainingConfig, facts: dict, device):
    """(G, D, G_ema, provenance) from the base checkpoint or a preset."""
    res, c_dim = facts["dataset"]["resolution"], facts["dataset"]["label_dim"]
    channels = facts["dataset"]["num_channels"]
    if config.base:
        available = facts["base"].get("parts") or ["G_ema"]
        parts = tuple(p for p in ("G_ema", "G", "D") if p in available)
        try:
            loaded = load_network(config.base, device="cpu", parts=parts)
        except ValueError as exc:
            raise TrainingConfigError(f"base {Path(config.base).name} cannot be loaded: {exc}") from None
        G_ema = loaded["G_ema"]
        G = loaded.get("G") or copy.deepcopy(G_ema)
        D = loaded.get("D")
        if D is None:  # generator-only checkpoints: a fresh D with the generator's channel widths
            syn = G_ema.init_kwargs.get("synthesis_kwargs", {})
            d_kw = preset_kwargs(res, "stylegan2", c_dim=c_dim, img_channels=channels)["D"]
            d_kw.update(channel_base=syn.get("channel_base", 32768), channel_max=syn.get("channel_max", 512),
                        num_fp16_res=syn.get("num_fp16_res", 0), conv_clamp=syn.get("conv_clamp"))
            D = build_discriminator(d_kw)
        provenance = {"base": str(config.base), "base_config": facts["base"]}
    else:
        preset = config.preset if config.preset != "auto" else _auto_preset(res)
        kw = preset_kwargs(res, preset, c_dim=c_dim, img_channels=channels)
        for part, override in (config.network_kwargs or {}).items():
            kw[part] = _merge(kw[part], override)
        try:
            G, D = build_generator(kw["G"]), build_discriminator(kw["D"])
        except ValueError as exc:
            raise TrainingConfigError(f"bad network options: {exc}") from None
        G_ema = copy.deepcopy(G)
        provenance = {"preset": preset}
    for net in (G, D, G_ema):
        net.train().requires_grad_(False).to(device)
    G_ema.eval()
    return G, D, G_ema, provenance


def _frozen_d_params(D, freeze_d: int) -> set:
    """Parameters of the first `freeze_d` D blocks, counted from the highest resolution."""
    frozen_prefixes = tuple(f"b{res}." for res in D.block_resolutions[:freeze_d])
    return {id(p) for name, p in D.named_parameters() if name.startswith(frozen_prefixes)}


def _set_trainable(module, flag: bool, frozen: set = frozenset()) -> None:
    for p in module.parameters():
        p.requires_grad_(flag and id(p) not in frozen)


def _make_optimizer(module, lr: float, reg_interval: int | None):
    """Adam with the reference betas; lazy regularisation shrinks lr/betas by interval/(interval+1)
    because the regulariser adds one extra optimiser step every `reg_interval` steps."""
    betas = ADAM_BETAS
    if reg_interval:
        ratio = reg_interval / (reg_interval + 1)
        lr = lr * ratio
        betas = tuple(b ** ratio for b in betas)
    # torch's default implementation (a loop over parameters on the CPU, foreach on CUDA):
    # foreach and fused measured no faster on the CPU (docs/BENCHMARKS.md, the levers), and
    # fused=True's CPU results depend on where the state tensors lie in memory, so a resumed
    # run would drift from an uninterrupted one (tests/unit/test_training.py caught it).
    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, eps=ADAM_EPS)


def _finish_gradients(module) -> None:
    params = [p for p in module.parameters() if p.grad is not None]
    if distributed.is_active():
        distributed.average_gradients(params)
    else:
        for p in params:  # one NaN/inf batch must not wreck the weights (reference does the same)
            torch.nan_to_num_(p.grad, nan=0, posinf=1e5, neginf=-1e5)


@torch.no_grad()
def _update_ema(G, G_ema, nimg: int, batch: int, ema_kimg: float, rampup: float | None) -> None:
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, nimg * rampup)
    beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
    ema_params, params = list(G_ema.parameters()), [p.detach() for p in G.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - beta)  # ema = p.lerp(ema, beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


# ------------------------------------------------------------------ grid and metrics

def _grid_inputs(G, grid_size, seed: int, device):
    cols, rows = grid_size
    z = torch.from_numpy(np.random.RandomState(seed).randn(cols * rows, G.z_dim).astype(np.float32)).to(device)
    c = torch.zeros([cols * rows, G.c_dim], device=device)
    if G.c_dim:
        c[torch.arange(cols * rows), torch.arange(cols * rows) % G.c_dim] = 1
    return z, c


@torch.no_grad()
def _render(G_ema, z, c, batch: int = 16) -> np.ndarray:
    out = []
    for i in range(0, z.shape[0], batch):
        img = G_ema(z[i:i + batch], c[i:i + batch], noise_mode="const")
        out.append((img.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def _write_grid(path: Path, images: np.ndarray, cols: int) -> None:
    """Tile uint8 [N, H, W, C] into rows of `cols` and write a PNG atomically."""
    grid = image_grid(images, cols)
    buf = io.BytesIO()
    Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


class _Metrics:
    """Metrics computed at snapshots on G_ema against a fixed sample of real images."""

    def __init__(self, names, dataset, count: int, seed: int, device):
        self.names, self.device = tuple(names), device
        self._swd = None
        n = min(count, len(dataset))
        self.count = n
        if not self.names:
            return
        idx = np.random.default_rng([seed, 7]).choice(len(dataset), n, replace=False)
        reals = torch.stack([dataset[int(i)][0] for i in idx])  # uint8 [N, C, H, W]
        self._reals_nhwc = reals.permute(0, 2, 3, 1).numpy()
        if "swd" in self.names:
            self._swd = SlicedWassersteinDistance(self._reals_nhwc, seed=seed)
        if "fid" in self.names or "kid" in self.names:
            self._detector = load_inception(device=device)
            self._real_feats = inception_features(self._detector, self._reals_nhwc, device=device)

    def __call__(self, G_ema, seed: int) -> dict:
        if not self.names:
            return {}
        g = torch.Generator().manual_seed(seed)
        z = torch.randn([self.count, G_ema.z_dim], generator=g).to(self.device)
        c = torch.zeros([self.count, G_ema.c_dim], device=self.device)
        fakes = _render(G_ema, z, c)
        out = {}
        if self._swd is not None:
            out["swd"] = self._swd(fakes)["swd"]
        if "fid" in self.names or "kid" in self.names:
            feats = inception_features(self._detector, fakes, device=self.device)
            if "fid" in self.names:
                out["fid"] = fid_from_features(self._real_feats, feats)
            if "kid" in self.names:
                out["kid"] = kernel_inception_distance(self._real_feats, feats)
        return out


# ------------------------------------------------------------------ the run

class _Run:
    """State of one training run on one rank."""

    def __init__(self, config: TrainingConfig, on_progress, should_stop):
        self.config, self.on_progress, self.should_stop = config, on_progress, should_stop
        self.info = distributed.env_dist_info()
        facts = config.validate(world_size=self.info.world_size)
        self.facts = facts
        device = resolve_device(config.device)
        if device.type == "cuda" and self.info.enabled:
            device = torch.device("cuda", self.info.local_rank)
            torch.cuda.set_device(device)
        self.device = device
        self.owns_process_group = distributed.init_process_group(self.info, device)
        if device.type == "cuda" and config.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.run_dir = Path(config.run_dir)
        self.res = facts["dataset"]["resolution"]

    def log(self, event: dict) -> None:
        """progress.jsonl line + on_progress callback, rank 0 only."""
        if not self.info.is_main:
            return
        append_line(self.run_dir / "progress.jsonl", json.dumps(event))
        if self.on_progress is not None:
            self.on_progress(dict(event))

    def setup(self) -> None:
        cfg, dev = self.config, self.device
        self.dataset = ZipDataset(cfg.data, xflip=cfg.mirror)
        # Seed before building networks: same seed, same initial weights (rank 0's are broadcast).
        seed = cfg.seed * self.info.world_size + self.info.rank
        torch.manual_seed(seed)
        np.random.seed(seed % (2 ** 32))
        resume_entry, state = (None, None)
        self._unusable = []
        if self.info.is_main:  # half-written temp files of a killed run: never complete, drop them
            for tmp in snapshot_files(self.run_dir, 0)["state"].parent.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        if list_snapshots(self.run_dir):
            resume_entry, state = load_resumable(self.run_dir)
            if state is None:  # every snapshot is damaged: start afresh with a clean index
                self._unusable = [s["step"] for s in list_snapshots(self.run_dir)]
                if self.info.is_main:
                    write_index(self.run_dir, [])
        if self.info.enabled:  # several machines: each must see the same run folder, or they diverge
            seen = distributed.gather_objects(resume_entry["step"] if resume_entry else None)
            if len(set(seen)) > 1:
                raise TrainingConfigError(
                    f"the processes of this run see different snapshots in {self.run_dir} (newest step per rank: "
                    f"{seen}); every machine must see the same run folder (a shared filesystem)")
        self.resumed_from = resume_entry
        self._skipped_list = state["skipped_snapshots"] if state is not None else []
        if state is not None:
            self.G = build_generator(state["G_kwargs"]).to(dev)
            self.D = build_discriminator(state["D_kwargs"]).to(dev)
            self.G_ema = build_generator(state["G_kwargs"]).to(dev)
            for name in ("G", "D", "G_ema"):
                getattr(self, name).load_state_dict(state[name])
                getattr(self, name).requires_grad_(False)
            self.G_ema.eval()
            self.provenance = state.get("provenance", {})
        else:
            self.G, self.D, self.G_ema, self.provenance = _build_networks(cfg, self.facts, dev)
            for net in (self.G, self.D, self.G_ema):  # every rank starts from rank 0's weights
                distributed.broadcast_module(net)
        if self.G.img_resolution != self.res:
            raise TrainingConfigError(
                f"the run's networks make {self.G.img_resolution} px images but the dataset is {self.res} px")
        self.precision = self.facts["precision"]
        for net in (self.G, self.D, self.G_ema):
            set_precision(net, self.precision)
        for net in (self.G, self.G_ema):  # tileable: every synthesis (losses, grids, metrics) wraps
            set_seamless(net, cfg.tileable)
        if cfg.channels_last and dev.type == "cuda":
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)

        self.frozen = _frozen_d_params(self.D, cfg.freeze_d)
        lr = cfg.lr if cfg.lr is not None else (0.002 if self.res >= 1024 else 0.0025)
        self.lr = lr
        self.G_reg = cfg.pl_interval if cfg.pl_weight > 0 else None
        self.D_reg = cfg.r1_interval
        self.G_opt = _make_optimizer(self.G, lr, self.G_reg)
        self.D_opt = _make_optimizer(self.D, lr, self.D_reg)
        self.gamma = cfg.gamma if cfg.gamma is not None else 0.0002 * self.res ** 2 / cfg.batch
        self.ema_kimg = cfg.ema_kimg if cfg.ema_kimg is not None else cfg.batch * 10 / 32

        self.augment = None
        if cfg.aug != "off":
            self.augment = AugmentPipe.from_preset(cfg.augment_preset, p=cfg.aug_p).to(dev)
        self.ada = None
        if cfg.aug == "ada":
            self.ada = AdaController(cfg.batch, target=cfg.ada_target, ada_kimg=cfg.ada_kimg, p=cfg.aug_p,
                                     all_reduce=distributed.all_reduce_sum)
        compiled_D, self.compile_note = compile_module(self.D, dev) if cfg.compile else (None, None)
        self.loss = StyleGAN2Loss(self.G, self.D, self.augment, r1_gamma=self.gamma,
                                  style_mixing_prob=cfg.style_mixing, pl_weight=cfg.pl_weight,
                                  roll_views=cfg.tileable, compiled_D=compiled_D)

        self.step, self.nimg = 0, 0
        if state is not None:
            self._restore(state)
        self.loader = _make_loader(self.dataset, cfg, dev, self.info, self.nimg)
        self.grid = _grid_inputs(self.G, cfg.grid_size, cfg.seed, dev) if cfg.grid_size else None
        self.metrics = _Metrics(cfg.metrics, self.dataset, cfg.metric_images, cfg.seed, dev) \
            if (cfg.metrics and self.info.is_main) else None

    def _restore(self, state: dict) -> None:
        for opt, saved in ((self.G_opt, state["G_opt"]), (self.D_opt, state["D_opt"])):
            wanted = [(g["lr"], g["betas"]) for g in opt.param_groups]
            opt.load_state_dict(saved)
            for g, (lr, betas) in zip(opt.param_groups, wanted):  # options may change on resume
                g["lr"], g["betas"] = lr, betas
        self.step, self.nimg = int(state["step"]), int(state["nimg"])
        self.loss.pl_mean.copy_(state["pl_mean"].to(self.device))
        if self.augment is not None:
            p = float(state["augment_p"]) if self.config.aug == "ada" else float(self.config.aug_p)
            self.augment.p = p
        if self.ada is not None:
            self.ada.load_state_dict(state["ada"] or {"p": state["augment_p"]})
        self._restore_rank_state(state)
        # Entries after the one we resumed from are damaged: drop them so the index tells the truth.
        if self.info.is_main:
            keep = [e for e in list_snapshots(self.run_dir) if e["step"] <= self.step]
            write_index(self.run_dir, keep)

    def _rank_state(self) -> dict:
        """What differs between ranks and a bit-exact resume needs: each rank's RNG streams,
        its path-length mean and its ADA partial sums (the sums are all-reduced only every
        `interval` steps)."""
        return {"rng": capture_rng_state(), "pl_mean": self.loss.pl_mean.detach().cpu(),
                "ada": self.ada.state_dict() if self.ada else None}

    def _restore_rank_state(self, state: dict) -> None:
        """Each rank takes its own entry of state["ranks"] (saved by every rank at the snapshot).
        A state saved by another number of processes (or by one process) has no entry per rank:
        rank 0 takes the saved rank-0 RNG and the others start fresh seeded streams, so the run
        goes on correctly but is no longer bit-exact with an uninterrupted one."""
        ranks = state.get("ranks")
        self.saved_world_size = len(ranks) if isinstance(ranks, list) and ranks else 1
        if ranks and self.saved_world_size == self.info.world_size:
            mine = ranks[self.info.rank]
            restore_rng_state(mine["rng"])
            self.loss.pl_mean.copy_(mine["pl_mean"].to(self.device))
            if self.ada is not None and mine.get("ada"):
                self.ada.load_state_dict(mine["ada"])
        elif self.info.is_main:
            restore_rng_state(state["rng"])
        else:
            torch.manual_seed(self.config.seed * self.info.world_size + self.info.rank + 7919 * self.step)

    # -------------------------------------------------------------- one step

    def _next_batch(self):
        img, c = next(self.loader)
        img = img.to(self.device, non_blocking=True).to(torch.float32) / 127.5 - 1
        c = c.to(self.device, non_blocking=True)
        if self.config.channels_last and self.device.type == "cuda":
            img = img.contiguous(memory_format=torch.channels_last)
        return img, c

    def _gen_inputs(self, n: int, real_c):
        z = torch.randn([n, self.G.z_dim], device=self.device)
        if self.G.c_dim:  # fake labels drawn from the real label distribution
            c = real_c[torch.randperm(real_c.shape[0], device=self.device)[:n]]
        else:
            c = torch.zeros([n, 0], device=self.device)
        return z, c

    def train_step(self) -> dict:
        cfg, loss = self.config, self.loss
        real, real_c = self._next_batch()
        n = real.shape[0]
        stats = {}

        # D: main loss every step, lazy R1 every r1_interval steps (also on step 0, as the reference).
        _set_trainable(self.G, False)
        _set_trainable(self.D, True, self.frozen)
        self.D_opt.zero_grad(set_to_none=True)
        z, c = self._gen_inputs(n, real_c)
        out = loss.d_main(real, real_c, z, c)
        _finish_gradients(self.D)
        self.D_opt.step()
        stats["D"] = out["D"]
        if self.ada is not None:
            self.ada.accumulate(out["real_logits"])
        if self.gamma > 0 and self.step % self.D_reg == 0:
            self.D_opt.zero_grad(set_to_none=True)
            out = loss.d_r1(real, real_c, gain=self.D_reg)
            _finish_gradients(self.D)
            self.D_opt.step()
            stats["r1"] = out["r1"]
            if self.ada is not None:  # the reference's r_t counts the R1 phase's reals too
                self.ada.accumulate(out["real_logits"])

        # G: main loss every step, lazy path-length regularisation every pl_interval steps.
        _set_trainable(self.D, False)
        _set_trainable(self.G, True)
        self.G_opt.zero_grad(set_to_none=True)
        z, c = self._gen_inputs(n, real_c)
        stats.update(loss.g_main(z, c))
        _finish_gradients(self.G)
        self.G_opt.step()
        if self.G_reg and self.step % self.G_reg == 0:
            self.G_opt.zero_grad(set_to_none=True)
            z, c = self._gen_inputs(n, real_c)
            stats.update(loss.g_pl(z, c, gain=self.G_reg))
            _finish_gradients(self.G)
            self.G_opt.step()
        _set_trainable(self.G, False)

        _update_ema(self.G, self.G_ema, self.nimg, cfg.batch, self.ema_kimg, cfg.ema_rampup)
        self.nimg += cfg.batch
        self.step += 1
        if self.ada is not None and self.ada.end_step():
            self.augment.p = self.ada.p
        return stats

    # -------------------------------------------------------------- snapshots

    def snapshot(self) -> dict | None:
        distributed.barrier()
        # Every rank's own resumable state, gathered into rank 0's state file (collective: all ranks).
        ranks = distributed.gather_objects(self._rank_state()) if self.info.enabled else None
        entry = None
        if self.info.is_main:
            files = snapshot_files(self.run_dir, self.step)
            kimg = self.nimg / 1000
            meta = {"dataset": self.facts["dataset"], "training": self.config.to_dict(), "step": self.step,
                    "kimg": kimg, "augment_p": self.augment.p if self.augment else 0.0, **self.provenance}
            save_network(files["network"], self.G_ema, G=self.G, D=self.D, meta=meta, step=self.step, kimg=kimg,
                         tileable=self.config.tileable)
            state = self._state_dict(ranks)
            save_training_state(files["state"], state)
            self._saved_state = (files["state"].stat().st_size, _tensor_bytes(state))  # for the estimate
            if self.grid is not None:
                _write_grid(files["grid"], _render(self.G_ema, *self.grid), self.config.grid_size[0])
            metrics = self.metrics(self.G_ema, self.config.seed) if self.metrics else {}
            entry = record_snapshot(self.run_dir, self.step, kimg, metrics)  # last: marks it complete
            if self.config.keep_snapshots:
                prune_snapshots(self.run_dir, self.config.keep_snapshots)
            self.log({"event": "snapshot", "step": self.step, "kimg": kimg, "network": entry["network"],
                      "state": entry["state"], "grid": entry["grid"],
                      **metrics})
            media = update_timelapse(self.run_dir, list_snapshots(self.run_dir))  # never raises: a note instead
            if media["note"]:
                self.log({"event": "timelapse", "step": self.step, "note": media["note"]})
        distributed.barrier()
        return entry

    def _log_estimate(self, sec_per_step: float) -> None:
        if not self.info.is_main:
            return
        entries = list_snapshots(self.run_dir)
        cfg = self.config
        # The newest snapshot's files, with its state grown by the tensors added since (the
        # optimisers' moments exist only after the first step, so a step-0 state is too small).
        size = snapshot_bytes(entries[-1]) if entries else 0
        saved_file, saved_tensors = getattr(self, "_saved_state", (0, 0))
        if saved_file:
            size += max(0, _tensor_bytes(self._state_dict()) - saved_tensors)
        frames, frame_bytes = timelapse_disk_usage(self.run_dir)
        self.log(estimate(step=self.step, steps=cfg.steps, sec_per_step=sec_per_step, snapshot_bytes=size,
                          snapshot_every=cfg.snapshot_every, snapshots_now=len(entries), keep=cfg.keep_snapshots,
                          keeps_best=bool(cfg.metrics), device_type=self.device.type,
                          timelapse_frames=frames, timelapse_bytes=frame_bytes))

    def _state_dict(self, ranks: list | None = None) -> dict:
        state = {
            "format": STATE_FORMAT, "format_version": 1,
            "step": self.step, "nimg": self.nimg, "kimg": self.nimg / 1000,
            "G_kwargs": self.G.init_kwargs, "D_kwargs": self.D.init_kwargs,
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "G_opt": self.G_opt.state_dict(), "D_opt": self.D_opt.state_dict(),
            "augment_p": float(self.augment.p) if self.augment else 0.0,
            "ada": self.ada.state_dict() if self.ada else None,
            "pl_mean": self.loss.pl_mean.detach().cpu(),
            "rng": capture_rng_state(),
            "provenance": json.loads(json.dumps(self.provenance, default=str)),
        }
        if ranks is not None:  # several processes: [rank 0's, rank 1's, ...] (_rank_state)
            state["ranks"] = ranks
        return state

    # -------------------------------------------------------------- the loop

    def _stop_requested(self) -> bool:
        # Any rank may ask (Ctrl-C reaches the ranks of the machine it was pressed on); the server's
        # workers give only rank 0 a should_stop.
        flag = bool(self.should_stop()) if self.should_stop is not None else False
        if distributed.is_active():  # every rank must agree, or the collectives would hang
            t = torch.tensor([1.0 if flag else 0.0], device=self.device)
            flag = bool(distributed.all_reduce_sum(t).item() > 0)
        return flag

    def run(self) -> dict:
        cfg = self.config
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.json")
        self.setup()
        start_step = self.step
        self.log({"event": "start", "step": self.step, "steps": cfg.steps, "resolution": self.res,
                  "device": str(self.device), "world_size": self.info.world_size, "batch": cfg.batch,
                  "gamma": self.gamma, "lr": self.lr, "ema_kimg": self.ema_kimg, "aug": cfg.aug,
                  "precision": self.precision, "compiled": self.loss.compiled_D is not None,
                  **({"compile_note": self.compile_note} if self.compile_note else {}),
                  "G_params": sum(p.numel() for p in self.G.parameters()),
                  "D_params": sum(p.numel() for p in self.D.parameters()),
                  **{k: v for k, v in self.provenance.items() if k in ("preset", "base")}})
        if self.resumed_from is not None:
            self.log({"event": "resumed", "step": self.step, "kimg": self.nimg / 1000,
                      "skipped_snapshots": [s["step"] for s in self._skipped_list],
                      "saved_world_size": self.saved_world_size})
        if self._unusable:
            self.log({"event": "resume_failed", "step": 0, "skipped_snapshots": self._unusable})
        last_snapshot = self.step if self.resumed_from is not None else None
        if last_snapshot is None:
            self.snapshot()
            last_snapshot = self.step
        stopped = False
        sums, counts = {}, {}
        t_report, step_report = time.perf_counter(), self.step
        timing = _EstimateTimer(start_step, cfg.steps)
        while self.step < cfg.steps:
            if self._stop_requested():
                stopped = True
                break
            stats = self.train_step()
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            if self.step % cfg.report_every == 0 or self.step == cfg.steps:
                now = time.perf_counter()
                images = (self.step - step_report) * cfg.batch
                elapsed = max(now - t_report, 1e-9)
                ips = images / elapsed
                losses = {k: float(sums[k]) / counts[k] for k in sums}
                self.log({"event": "progress", "step": self.step, "steps": cfg.steps, "kimg": self.nimg / 1000,
                          "losses": losses, "ada_p": self.augment.p if self.augment else 0.0,
                          "r_t": self.ada.r_t if self.ada else None,
                          "sec_per_kimg": elapsed / images * 1000, "images_per_s": ips,
                          "eta_s": (cfg.steps - self.step) * cfg.batch / ips})
                sums, counts = {}, {}
                t_report, step_report = now, self.step
            if self.step % cfg.snapshot_every == 0 or self.step == cfg.steps:
                t_snap = time.perf_counter()
                self.snapshot()
                last_snapshot = self.step
                t_report += time.perf_counter() - t_snap  # sec/kimg measures training, not snapshots
                timing.skip(time.perf_counter() - t_snap)
            sec_per_step = timing.step_done(self.step)
            if sec_per_step is not None:
                self._log_estimate(sec_per_step)
        if last_snapshot != self.step:
            self.snapshot()
        latest = list_snapshots(self.run_dir)
        summary = {"event": "done", "step": self.step, "steps": cfg.steps, "kimg": self.nimg / 1000,
                   "stopped": stopped, "trained_steps": self.step - start_step,
                   "ada_p": self.augment.p if self.augment else 0.0,
                   "snapshot": latest[-1] if latest else None, "run_dir": str(self.run_dir)}
        self.log(summary)
        return summary


def _tensor_bytes(obj) -> int:
    """Bytes of the tensors in a nested dict/list (what torch.save writes, less a little framing)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


class _EstimateTimer:
    """Times `MEASURED_STEPS` steps after the first one (which pays for warm-up); says
    sec/step once, when they are done. Runs too short to need an estimate get none."""

    def __init__(self, start_step: int, steps: int):
        self.begin = start_step + 1
        self.end = start_step + 1 + MEASURED_STEPS
        self.active = steps > self.end
        self.t0 = None

    def skip(self, seconds: float) -> None:  # time spent on a snapshot is not a step's
        if self.t0 is not None:
            self.t0 += seconds

    def step_done(self, step: int) -> float | None:
        if not self.active:
            return None
        if step == self.begin:
            self.t0 = time.perf_counter()
        elif step == self.end:
            self.active = False
            return (time.perf_counter() - self.t0) / MEASURED_STEPS
        return None


def train(config: TrainingConfig, on_progress=None, should_stop=None) -> dict:
    """Train (or resume) the run in `config.run_dir`; returns the "done" summary.

    Seeds (and on resume restores) the global torch/numpy/python RNGs, as the reference does;
    the server runs each job in its own process, so nothing else shares them.
    """
    if isinstance(config, dict):  # e.g. a job's JSON from the server
        config = TrainingConfig.from_dict(config)
    if not isinstance(config, TrainingConfig):
        raise TrainingConfigError("train() needs a TrainingConfig (or its dict form)")
    run = _Run(config, on_progress, should_stop)
    try:
        return run.run()
    finally:
        ds = getattr(run, "dataset", None)
        if ds is not None:
            ds.close()
        if run.owns_process_group:
            distributed.destroy_process_group()
