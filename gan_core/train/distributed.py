"""Data-parallel training helpers over torch.distributed (torchrun-launchable).

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; without them we run
as a single process. Backend: nccl on CUDA, gloo on CPU. Gradients are averaged with one
flattened all-reduce per optimiser step (fewer, larger messages than one per parameter).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_dist_info() -> DistInfo:
    """Rank info from the torchrun environment (single process when absent)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"bad RANK/WORLD_SIZE/LOCAL_RANK environment: {exc}") from exc
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"inconsistent torch.distributed environment: RANK={rank}, WORLD_SIZE={world}")
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def init_process_group(info: DistInfo, device: torch.device) -> bool:
    """Join the process group; True when this call created it (so the caller tears it down).
    No-op for one process or when the caller already initialised it."""
    if not info.enabled or (dist.is_available() and dist.is_initialized()):
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return True


def destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if is_active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_gradients(params) -> None:
    """Average .grad over ranks for the parameters that have one (frozen ones have none)."""
    if not is_active():
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    # nan_to_num as the reference does: one bad rank must not poison the weights of all
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if not is_active():
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=src)


def barrier() -> None:
    if is_active():
        dist.barrier()


def gather_objects(obj) -> list:
    """Every rank's `obj` (picklable: tensors, numbers, dicts), in rank order, on every rank.

    Used at snapshots for the per-rank state a resume needs (RNG streams, path-length mean,
    ADA's partial sums): small, so one all_gather_object is cheap. One process: [obj].
    """
    if not is_active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
