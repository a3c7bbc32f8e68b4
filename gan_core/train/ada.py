"""Adaptive discriminator augmentation: the controller that tunes the augmentation probability p.

The overfitting heuristic r_t = E[sign(D(real))] is collected over `interval` steps; p moves
up when r_t exceeds the target (D too sure about reals) and down otherwise, by a fixed amount
chosen so that p can go from 0 to 1 in `ada_kimg` thousand images (500 in the reference;
small runs use less so p can react within a few hundred steps).
"""

from __future__ import annotations

import math
from typing import Callable

import torch


class AdaController:
    def __init__(self, batch_size: int, target: float = 0.6, interval: int = 4, ada_kimg: float = 500.0,
                 p: float = 0.0, all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if batch_size <= 0 or interval <= 0 or ada_kimg <= 0:
            raise ValueError("ADA needs a positive batch size, interval and ada_kimg")
        if not 0 < target < 1:
            raise ValueError(f"ADA target {target} must be between 0 and 1")
        self.batch_size = int(batch_size)  # the GLOBAL batch (all ranks together)
        self.target = float(target)
        self.interval = int(interval)
        self.ada_kimg = float(ada_kimg)
        self.p = float(p)
        self.r_t: float | None = None
        self._all_reduce = all_reduce
        self._sum: torch.Tensor | None = None  # kept on the logits' device: no sync per step
        self._steps = 0

    def accumulate(self, real_logits: torch.Tensor) -> None:
        signs = torch.sign(real_logits.detach().float())
        stats = torch.stack([signs.sum(), torch.tensor(float(signs.numel()), device=signs.device)])
        if self._sum is None:
            self._sum = stats
        else:
            self._sum = self._sum.to(stats.device) + stats

    def end_step(self) -> bool:
        """Call once per training step; every `interval` steps updates p. Returns True on update."""
        self._steps += 1
        if self._steps % self.interval != 0 or self._sum is None:
            return False
        stats = self._sum
        if self._all_reduce is not None:
            stats = self._all_reduce(stats.clone())
        total, count = stats.tolist()
        self._sum = None
        if count <= 0:
            return False
        self.r_t = total / count
        adjust = math.copysign(1.0, self.r_t - self.target) if self.r_t != self.target else 0.0
        adjust *= self.batch_size * self.interval / (self.ada_kimg * 1000)
        self.p = min(max(self.p + adjust, 0.0), 1.0)
        return True

    def state_dict(self) -> dict:
        # the partial sums too: a resume mid-interval then updates p exactly as without the break
        partial = [0.0, 0.0] if self._sum is None else [float(v) for v in self._sum.tolist()]
        return {"p": self.p, "r_t": self.r_t, "steps": self._steps, "partial": partial}

    def load_state_dict(self, state: dict) -> None:
        self.p = float(state["p"])
        self.r_t = None if state.get("r_t") is None else float(state["r_t"])
        self._steps = int(state.get("steps", 0))
        partial = state.get("partial")
        self._sum = torch.tensor(partial, dtype=torch.float32) if partial and partial[1] > 0 else None
