"""Choosing the torch device: 'auto' means the first CUDA GPU when present, else the CPU."""

from __future__ import annotations

import torch


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn 'auto' / 'cpu' / 'cuda' / 'cuda:N' into a torch.device, with a clear error."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} asked for, but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {spec!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {spec!r}: use auto, cpu, cuda or cuda:N")
    return device


def describe_device(device: torch.device) -> str:
    """Human name of a device: the GPU's marketing name, or 'CPU'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"


def cpp_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend would use ($CXX, else c++/g++/clang++ on
    PATH), or None: users' machines often have none, and compiling then fails at the first call."""
    import os
    import shutil

    found = (shutil.which(name) for name in (os.environ.get("CXX"), "c++", "g++", "clang++") if name)
    return next((path for path in found if path), None)


def compile_module(module: torch.nn.Module, device: torch.device):
    """(torch.compile(module), None), or (None, a one-line reason) when it cannot be compiled
    on this device, in which case the caller runs it eagerly and says why."""
    if device.type == "cpu" and cpp_compiler() is None:
        return None, "no C++ compiler ($CXX, c++, g++ or clang++): torch.compile is off, running eagerly"
    try:
        return torch.compile(module), None
    except Exception as exc:  # e.g. a torch build without the inductor backend
        return None, f"torch.compile is unavailable ({type(exc).__name__}: {exc}): running eagerly"
