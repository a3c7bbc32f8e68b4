"""TrainingConfig: every option of a training run, and the checks made before any work starts.

Modules that load torch are imported inside the checks that need them, so building and
validating options (the server, the CLI) stays cheap."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from gan_core.fileio import atomic_write_text
from gan_core.rules import AUG_MODES, AUGMENT_PIPELINES, PRECISION_CHOICES, PRESET_CHOICES, RuleError, \
    check_batch_split, check_precision, is_power_of_two

KNOWN_METRICS = ("swd", "fid", "kid")


class TrainingConfigError(ValueError):
    """A training option or input that cannot work; raised before any training starts."""


@dataclass
class TrainingConfig:
    data: str
    run_dir: str
    base: str | None = None
    steps: int = 5000               # total target step (a resumed run continues up to this)
    snapshot_every: int = 500
    batch: int = 16                 # global batch: split evenly over the GPUs
    resolution: int | None = None   # None: the dataset's
    preset: str = "auto"            # auto: "small" up to 128 px, else "stylegan2" (ignored with base)
    network_kwargs: dict | None = None  # {"G": {...}, "D": {...}} merged over the preset's kwargs
    aug: str = "ada"
    aug_p: float = 0.0              # fixed p, or the starting p of ADA
    augment_preset: str = "bgc"     # which transforms: "bgc" (reference default), "bg", "bgcc" (+cutout)
    ada_target: float = 0.6
    ada_kimg: float = 500.0         # images (in thousands) for p to go 0 -> 1; lower adapts faster
    mirror: bool = False
    gamma: float | None = None      # None: 0.0002 * res^2 / batch (the reference's heuristic)
    pl_weight: float = 2.0          # 0 turns path-length regularisation off
    style_mixing: float = 0.9
    freeze_d: int = 0               # freeze the first N D blocks, counted from the highest resolution
    ema_kimg: float | None = None   # None: batch * 10 / 32
    ema_rampup: float | None = 0.05
    lr: float | None = None         # None: 0.002 at >= 1024 px, else 0.0025 (reference "auto" cfg)
    seed: int = 0
    device: str = "auto"
    grid_size: tuple | None = (4, 4)
    metrics: tuple = ()
    metric_images: int = 256        # images per metric evaluation (real and fake)
    r1_interval: int = 16
    pl_interval: int = 4
    report_every: int = 10          # steps between progress reports
    keep_snapshots: int | None = None  # keep the newest N snapshots (and the best by metric); None: all
    workers: int | None = None      # DataLoader workers; None: 0 on CPU, 3 on CUDA
    channels_last: bool = False     # CUDA only
    compile: bool = False           # torch.compile D for its first-order phases (CPU: needs a C++ compiler)
    tf32: bool = True               # CUDA only
    precision: str = "auto"         # reduced-precision blocks: fp32, fp16, bf16; auto: rules.AUTO_PRECISION
    tileable: bool = False          # seamless G (wrap-around padding) + rolled views for D; for texture datasets

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["grid_size"] = list(self.grid_size) if self.grid_size else None
        d["metrics"] = list(self.metrics)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TrainingConfigError(f"unknown training option(s): {', '.join(unknown)}")
        d = dict(d)
        if d.get("grid_size") is not None:
            d["grid_size"] = tuple(d["grid_size"])
        if "metrics" in d:
            d["metrics"] = tuple(d["metrics"])
        return cls(**d)

    # -------------------------------------------------------------- validation

    def validate(self, world_size: int = 1) -> dict:
        """Check everything that can be checked cheaply; returns facts learnt on the way
        (dataset resolution/labels, base network config). Raises TrainingConfigError."""
        self._check_numbers(world_size)
        facts = {"precision": self.resolved_precision()}
        facts["dataset"] = self._check_dataset()
        res = facts["dataset"]["resolution"]
        if self.resolution is not None and self.resolution != res:
            raise TrainingConfigError(
                f"the dataset's images are {res}x{res}, but resolution {self.resolution} was asked for; "
                f"prepare the dataset at {self.resolution} px")
        facts["base"] = self._check_base(res, facts["dataset"]["label_dim"]) if self.base else None
        if self.freeze_d > int(math.log2(res)) - 2:
            raise TrainingConfigError(
                f"freeze_d={self.freeze_d} is more than the {int(math.log2(res)) - 2} D blocks at {res} px")
        for name in self.metrics:
            if name in ("fid", "kid"):
                from gan_core.train.metrics import MetricUnavailableError, inception_path
                try:
                    inception_path()
                except MetricUnavailableError as exc:
                    raise TrainingConfigError(f"metric {name}: {exc}") from None
        return facts

    def _check_numbers(self, world_size: int) -> None:
        def need(cond, msg):
            if not cond:
                raise TrainingConfigError(msg)

        need(self.keep_snapshots is None or (isinstance(self.keep_snapshots, int)
                                             and not isinstance(self.keep_snapshots, bool) and self.keep_snapshots >= 1),
             f"keep_snapshots must be a whole number >= 1 (or unset to keep all), got {self.keep_snapshots!r}")
        for name in ("steps", "snapshot_every", "batch", "r1_interval", "pl_interval", "report_every", "metric_images"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                 f"{name} must be a whole number > 0, got {value!r}")
        try:  # the rulebook's split rule, shared with the server's job checks
            check_batch_split(self.batch, world_size)
        except RuleError as exc:
            raise TrainingConfigError(str(exc)) from None
        need(self.resolution is None or (is_power_of_two(self.resolution) and self.resolution >= 4),
             f"resolution must be a power of two >= 4, got {self.resolution!r}")
        need(self.aug in AUG_MODES, f"aug must be one of {', '.join(AUG_MODES)}, got {self.aug!r}")
        need(0.0 <= float(self.aug_p) <= 1.0, f"aug_p must be between 0 and 1, got {self.aug_p}")
        need(self.augment_preset in AUGMENT_PIPELINES,
             f"augment_preset must be one of {', '.join(AUGMENT_PIPELINES)}, got {self.augment_preset!r}")
        need(0.0 < float(self.ada_target) < 1.0, f"ada_target must be between 0 and 1, got {self.ada_target}")
        need(float(self.ada_kimg) > 0, f"ada_kimg must be > 0, got {self.ada_kimg}")
        need(self.preset in PRESET_CHOICES, f"preset must be one of {', '.join(PRESET_CHOICES)}, got {self.preset!r}")
        need(isinstance(self.tileable, bool), f"tileable must be true or false, got {self.tileable!r}")
        need(self.precision in PRECISION_CHOICES,
             f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {self.precision!r}")
        need(self.gamma is None or float(self.gamma) >= 0, f"gamma must be >= 0, got {self.gamma}")
        need(float(self.pl_weight) >= 0, f"pl_weight must be >= 0, got {self.pl_weight}")
        need(0.0 <= float(self.style_mixing) <= 1.0, f"style_mixing must be between 0 and 1, got {self.style_mixing}")
        need(isinstance(self.freeze_d, int) and self.freeze_d >= 0, f"freeze_d must be >= 0, got {self.freeze_d!r}")
        need(self.ema_kimg is None or float(self.ema_kimg) >= 0, f"ema_kimg must be >= 0, got {self.ema_kimg}")
        need(self.lr is None or float(self.lr) > 0, f"lr must be > 0, got {self.lr}")
        need(self.workers is None or (isinstance(self.workers, int) and self.workers >= 0),
             f"workers must be >= 0, got {self.workers!r}")
        if self.grid_size is not None:
            need(len(self.grid_size) == 2 and all(isinstance(v, int) and 0 < v <= 32 for v in self.grid_size),
                 f"grid_size must be (columns, rows) between 1 and 32, got {self.grid_size!r}")
        unknown = [m for m in self.metrics if m not in KNOWN_METRICS]
        need(not unknown, f"unknown metric(s) {unknown}: use {', '.join(KNOWN_METRICS)}")
        need(bool(self.run_dir), "run_dir is required")
        if self.network_kwargs is not None:
            need(isinstance(self.network_kwargs, dict) and set(self.network_kwargs) <= {"G", "D"},
                 "network_kwargs must be a dict with optional 'G' and 'D' dicts")
            need(not self.base, "network_kwargs cannot be combined with a base checkpoint (its networks are fixed)")

    def resolved_precision(self) -> str:
        """The precision this run uses on its device ("auto" resolved); TrainingConfigError if
        the device cannot run the one asked for."""
        from gan_core.device import resolve_device
        try:
            device_type = resolve_device(self.device).type
        except ValueError as exc:
            raise TrainingConfigError(str(exc)) from None
        try:
            return check_precision(self.precision, device_type)
        except RuleError as exc:
            raise TrainingConfigError(str(exc)) from None

    def _check_dataset(self) -> dict:
        from gan_core.data import DatasetError, ZipDataset
        if not self.data or not Path(self.data).is_file():
            raise TrainingConfigError(f"dataset not found: {self.data}")
        try:
            ds = ZipDataset(self.data, xflip=self.mirror)
        except DatasetError as exc:
            raise TrainingConfigError(f"unusable dataset: {exc}") from None
        try:
            if len(ds) == 0:
                raise TrainingConfigError(f"dataset {self.data} is empty")
            return {"name": ds.name, "path": str(ds.path), "count": len(ds), "resolution": ds.resolution,
                    "num_channels": ds.num_channels, "label_dim": ds.label_dim, "mirror": self.mirror}
        finally:
            ds.close()

    def _check_base(self, res: int, label_dim: int) -> dict:
        from gan_core.models.checkpoint import read_network_config
        if not Path(self.base).is_file():
            raise TrainingConfigError(f"base checkpoint not found: {self.base}")
        try:
            cfg = read_network_config(self.base)
        except ValueError as exc:
            raise TrainingConfigError(f"base {Path(self.base).name} is not a generator checkpoint: {exc}") from None
        if cfg.get("resolution") != res:
            raise TrainingConfigError(
                f"the base network makes {cfg.get('resolution')} px images but the dataset is {res} px; "
                f"prepare the dataset at {cfg.get('resolution')} px or pick a matching base")
        if int(cfg.get("c_dim") or 0) != label_dim:
            raise TrainingConfigError(
                f"the base network has {cfg.get('c_dim')} class labels but the dataset has {label_dim}")
        return cfg


def save_config(config: TrainingConfig, path) -> None:
    atomic_write_text(path, json.dumps(config.to_dict(), indent=1))
