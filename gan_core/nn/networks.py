"""StyleGAN2-ADA Generator and Discriminator, parameter-compatible with the public reference.

State-dict keys, shapes and numerics equal the reference's network snapshots, so their
weights load with strict=True and give the same images (see tests/data/sg2ada_tiny32).
Nothing here knows about training: losses, EMA of G and augmentation live elsewhere.
Reduced precision (the top `num_fp16_res` resolutions) is fp16 on CUDA and off on the CPU
unless `set_precision` picks fp32, fp16 or bf16 for a network.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import torch
from torch import nn

from gan_core.rules import MAX_SIZE_MULTIPLIER, NOISE_MODES, PRECISIONS, PRESETS, is_power_of_two
from gan_core.nn.layers import (
    DEFAULT_FILTER,
    Conv2dLayer,
    FullyConnectedLayer,
    LayerConfigError,
    activation_gain,
    bias_act,
    downsample2d,
    modulated_conv2d,
    modulated_conv2d_bias_act,
    modulated_conv2d_field,
    modulated_conv1x1,
    modulated_conv1x1_field,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)

# Synthesis runs NHWC on the CPU: oneDNN's convolutions, transposed ones above all, are
# several times faster in that layout (measured 2-3x for the 2x-upsampling convs).
CPU_CHANNELS_LAST = True
ARCHITECTURES = ("orig", "skip", "resnet")
# Enlarged seamless images compute the blocks wider than this (px) in tiles of this side:
# big enough that the halo each tile recomputes costs a few percent, small enough that a
# tile's activations are a few hundred MB at most (SynthesisNetwork._tiled_block).
TILE_SIDE = 512


class NetworkConfigError(LayerConfigError):
    """Network options that cannot build a network (unknown keys, bad resolution, ...)."""


def _check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise NetworkConfigError(f"unknown noise mode {noise_mode!r}: use one of {', '.join(NOISE_MODES)}")


def _check_texture_mode(seamless, size_multiplier) -> None:
    if not isinstance(seamless, bool):
        raise NetworkConfigError(f"seamless must be True or False, got {seamless!r}")
    if isinstance(size_multiplier, bool) or not isinstance(size_multiplier, int) \
            or not 1 <= size_multiplier <= MAX_SIZE_MULTIPLIER:
        raise NetworkConfigError(f"size_multiplier must be a whole number from 1 to {MAX_SIZE_MULTIPLIER}, "
                                 f"got {size_multiplier!r}")
    if size_multiplier > 1 and not seamless:
        raise NetworkConfigError("size_multiplier > 1 needs seamless=True: the enlarged input is a tiling of "
                                 "the 4x4 const, which only wrap-around padding joins without seams")


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise NetworkConfigError(f"unknown architecture {architecture!r}: use one of {', '.join(ARCHITECTURES)}")


def _resolution_log2(img_resolution: int) -> int:
    if not is_power_of_two(img_resolution) or img_resolution < 4:
        raise NetworkConfigError(f"image resolution must be a power of two >= 4, got {img_resolution!r}")
    return img_resolution.bit_length() - 1


def _compute_dtype(use_fp16: bool, force_fp32: bool, device: torch.device) -> torch.dtype:
    # fp16 only where it pays and is safe: CUDA. CPU inference stays fp32 (exact, and CPU fp16 is slow).
    return torch.float16 if use_fp16 and not force_fp32 and device.type == "cuda" else torch.float32


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _block_dtype(block, force_fp32: bool, device: torch.device) -> torch.dtype:
    """A block's compute dtype: the one set_precision chose, else the device's default."""
    if block.reduced_dtype is None:
        return _compute_dtype(block.use_fp16, force_fp32, device)
    return block.reduced_dtype if block.use_fp16 and not force_fp32 else torch.float32


def set_precision(module: nn.Module, precision: str | None) -> nn.Module:
    """Run the reduced-precision blocks (those built with use_fp16) of every network in
    `module` in `precision` ("fp32", "fp16" or "bf16"); None restores the default (fp16 on
    CUDA, fp32 on the CPU). A runtime setting: weights, state dict and init_kwargs are
    unchanged, so checkpoints do not record it. Which precision a device may use is the
    caller's check (gan_core.rules.check_precision)."""
    if precision is not None and precision not in PRECISIONS:
        raise NetworkConfigError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    for block in module.modules():
        if isinstance(block, (SynthesisBlock, DiscriminatorBlock)):
            block.reduced_dtype = None if precision is None else _DTYPES[precision]
    return module


# ----------------------------------------------------------------------------- mapping


class MappingNetwork(nn.Module):
    """z (+ class embedding) -> w, broadcast to num_ws; tracks w_avg for truncation."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None, activation: str = "lrelu",
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool = False) -> torch.Tensor:
        if self.z_dim > 0 and (z is None or z.ndim != 2 or z.shape[1] != self.z_dim):
            raise NetworkConfigError(f"z must have shape [N, {self.z_dim}], got "
                                     f"{None if z is None else list(z.shape)}")
        if self.c_dim > 0 and (c is None or c.ndim != 2 or c.shape[1] != self.c_dim):
            raise NetworkConfigError(f"this network is conditional: c must have shape [N, {self.c_dim}], got "
                                     f"{None if c is None else list(c.shape)}")
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise NetworkConfigError("truncation needs w_avg, but this mapping network does not track it")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


# ----------------------------------------------------------------------------- synthesis


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x upsampling) + per-pixel noise + bias + lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu", resample_filter=DEFAULT_FILTER,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=memory_format))
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.noise_seed = resolution  # enlarged const noise; SynthesisBlock makes it unique per layer
        self._enlarged_noise = None  # (side, device) and its tensor: the last one made, reused by walks

    def _const_noise(self, side: int, device) -> torch.Tensor:
        """The fixed noise of noise_mode='const' for an output `side` px wide. The stored
        buffer covers the training resolution; an enlarged image (size_multiplier > 1) gets
        fresh noise over its whole area, not copies of the buffer: tiled noise would make
        the enlarged texture repeat every training-resolution period. It is drawn from a
        generator seeded by the layer and the side, so it is the same on every run and
        device, as const noise should be."""
        if side == self.resolution:
            return self.noise_const
        key = (side, str(device))
        if self._enlarged_noise is None or self._enlarged_noise[0] != key:
            gen = torch.Generator().manual_seed(0x5EA1 * 100003 + self.noise_seed * 4099 + side)
            self._enlarged_noise = (key, torch.randn([side, side], generator=gen).to(device))
        return self._enlarged_noise[1]

    def noise_for(self, noise_mode: str, n: int, side: int, device):
        """The unscaled noise one image `side` px wide gets from this layer (None: none), as
        forward draws it: [side, side] fixed ('const') or [n, 1, side, side] fresh ('random')."""
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "random":
            return torch.randn([n, 1, side, side], device=device)
        return self._const_noise(side, device)

    def _static_weight(self, x: torch.Tensor):
        """(conv weight in x's layout, its per-[O, I] squared sums), cached for inference.

        Both depend only on the weight, so recomputing them for every image is waste; the
        cache key includes the weight's version counter, so any in-place update (loading,
        EMA, optimiser step) invalidates it. Training (autograd) always recomputes.
        """
        weight = self.weight
        if (torch.is_grad_enabled() and weight.requires_grad) or x.dtype != torch.float32:
            return weight, None
        nhwc = self.up == 1 and x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)
        key = (weight._version, weight.data_ptr(), weight.device, nhwc)
        if getattr(self, "_weight_cache_key", None) != key:
            conv_w = weight.detach()
            if nhwc:
                conv_w = conv_w.contiguous(memory_format=torch.channels_last)
            elif self.up > 1:  # stored so that the transpose conv2d_resample takes is contiguous
                conv_w = conv_w.transpose(0, 1).contiguous().transpose(0, 1)
            self._weight_cache = (conv_w, weight.detach().square().sum(dim=[2, 3]))
            self._weight_cache_key = key
        return self._weight_cache

    def forward(self, x, w, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1,
                seamless: bool = False, size_multiplier: int = 1, w_field=None, noise_input=None):
        noise = None
        side = self.resolution * size_multiplier
        if self.use_noise and noise_input is not None:  # a tile of a larger image: its part of that image's noise
            noise = noise_input * self.noise_strength
        elif self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, side, side], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self._const_noise(side, x.device) * self.noise_strength
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if w_field is not None:  # [N, T, T, w_dim]: one latent per tile (SynthesisNetwork.forward)
            return modulated_conv2d_field(x, self.weight, self.affine(w_field).permute(0, 3, 1, 2), noise, self.bias,
                                          act=self.activation, gain=self.act_gain * gain, clamp=clamp, up=self.up,
                                          padding=self.padding, resample_filter=self.resample_filter,
                                          flip_weight=(self.up == 1), wrap=seamless)
        styles = self.affine(w)
        if not fused_modconv:
            weight, weight_sq = self._static_weight(x)
            return modulated_conv2d_bias_act(x, weight, styles, noise, self.bias, act=self.activation,
                                             gain=self.act_gain * gain, clamp=clamp, up=self.up,
                                             padding=self.padding, resample_filter=self.resample_filter,
                                             flip_weight=(self.up == 1), weight_sq=weight_sq, wrap=seamless)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=True, wrap=seamless)
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated (not demodulated) 1x1 conv to image channels."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=memory_format))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x, w, fused_modconv: bool = True, w_field=None):
        if w_field is not None and self.weight.shape[2:] == (1, 1):  # one latent per tile
            styles = self.affine(w_field).permute(0, 3, 1, 2) * self.weight_gain
            return bias_act(modulated_conv1x1_field(x, self.weight, styles), self.bias.to(x.dtype), clamp=self.conv_clamp)
        styles = self.affine(w) * self.weight_gain
        if self.weight.shape[2:] == (1, 1):
            x = modulated_conv1x1(x, self.weight, styles)
        else:
            x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (const | 2x up conv0) + conv1 (+ toRGB / skip)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter=DEFAULT_FILTER,
                 conv_clamp: float | None = None, use_fp16: bool = False, fp16_channels_last: bool = False,
                 **layer_kwargs):
        super().__init__()
        _check_architecture(architecture)
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16 = use_fp16
        self.reduced_dtype = None  # set_precision's choice; None: the device's default
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        self.conv1.noise_seed = 2 * resolution + 1
        if in_channels != 0:
            self.conv0.noise_seed = 2 * resolution
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, force_fp32: bool = False, fused_modconv: bool | None = None,
                noise_mode: str = "random", seamless: bool = False, size_multiplier: int = 1, w_fields=None,
                noise_inputs=None):
        w_iter = iter(ws.unbind(dim=1))
        # noise_inputs: {layer name: noise} for a tile of a larger image (SynthesisNetwork._tiled_block)
        noise_inputs = noise_inputs or {}
        # w_fields: per ws entry, None or [N, T, T, w_dim] latents per tile (SynthesisNetwork.forward)
        f_iter = iter(w_fields if w_fields is not None else [None] * ws.shape[1])

        def field() -> dict:  # the next entry's tile latents, as a keyword only when there are some
            f = next(f_iter)
            return {} if f is None else {"w_field": f}

        def noise(name: str) -> dict:
            return {"noise_input": noise_inputs[name]} if noise_inputs.get(name) is not None else {}

        device = ws.device
        dtype = _block_dtype(self, force_fp32, device)
        # NHWC: oneDNN's CPU convolutions (transposed ones above all) run several times faster.
        nhwc = (device.type == "cpu" and CPU_CHANNELS_LAST) or (self.channels_last and dtype != torch.float32)
        memory_format = torch.channels_last if nhwc else torch.contiguous_format
        if fused_modconv is None:
            # GPU inference: per-sample weights in one grouped conv (the reference's choice).
            # CPU: scaling activations around one shared-weight conv is faster at every batch
            # size (no [N, O, I, k, k] weight tensor to build, and a single large GEMM).
            fused_modconv = (not self.training and device.type == "cuda"
                             and (dtype == torch.float32 or ws.shape[0] == 1))
        if self.in_channels == 0:
            # size_multiplier: the const tiled N x N (a periodic input; wrap padding keeps it so)
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, size_multiplier, size_multiplier])
            x = x.contiguous(memory_format=memory_format)
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)
        layer_kwargs = dict(noise_mode=noise_mode, fused_modconv=fused_modconv)
        if seamless:  # keyword only when on: layers called the plain way stay exactly as they were
            layer_kwargs.update(seamless=True, size_multiplier=size_multiplier)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), **layer_kwargs, **field(), **noise("conv1"))
        elif self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5), wrap=seamless)
            x = self.conv0(x, next(w_iter), **layer_kwargs, **field(), **noise("conv0"))
            x = self.conv1(x, next(w_iter), gain=np.sqrt(0.5), **layer_kwargs, **field(), **noise("conv1"))
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), **layer_kwargs, **field(), **noise("conv0"))
            x = self.conv1(x, next(w_iter), **layer_kwargs, **field(), **noise("conv1"))
        if img is not None:
            img = upsample2d(img, self.resample_filter, wrap=seamless)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv, **field())
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, H, W] in about [-1, 1]."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, **block_kwargs):
        super().__init__()
        log2 = _resolution_log2(img_resolution)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            is_last = res == img_resolution
            block = SynthesisBlock(in_channels, channels[res], w_dim=w_dim, resolution=res, img_channels=img_channels,
                                   is_last=is_last, use_fp16=(res >= fp16_resolution), **block_kwargs)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)
        # What forward(seamless=None) means: a runtime setting (not in the state dict or
        # init_kwargs), so one checkpoint serves both modes; tileable training turns it on.
        self.seamless = False
        # Enlarged images: blocks whose output is wider than this many px run in square tiles
        # of this side (a runtime setting, like seamless; see _tiled_block).
        self.tile_side = TILE_SIDE

    def forward(self, ws, noise_mode: str = "random", force_fp32: bool = False, fused_modconv: bool | None = None,
                seamless: bool | None = None, size_multiplier: int = 1, style_field=None):
        """seamless: every padding wraps around (the image tiles); None: self.seamless.
        size_multiplier N (needs seamless): the 4x4 const tiled N x N and the noise N times
        wider, so an image N times the training resolution, still seamless.
        style_field (with size_multiplier N > 1): [B, N, N, L, w_dim], a latent per tile for
        the first L ws entries, which then vary smoothly across the image (each tile its own
        layout) instead of repeating the one layout of ws in every tile; entries from L on
        come from ws. See gan_core.texture.layout_field."""
        _check_noise_mode(noise_mode)
        seamless = self.seamless if seamless is None else seamless
        _check_texture_mode(seamless, size_multiplier)
        if style_field is not None:
            expected = (ws.shape[0], size_multiplier, size_multiplier)
            if size_multiplier < 2 or style_field.ndim != 5 or tuple(style_field.shape[:3]) != expected \
                    or not 1 <= style_field.shape[3] <= self.num_ws or style_field.shape[4] != self.w_dim:
                raise NetworkConfigError(
                    f"style_field must be [{ws.shape[0]}, {size_multiplier}, {size_multiplier}, L <= {self.num_ws}, "
                    f"{self.w_dim}] with size_multiplier >= 2, got {list(style_field.shape)}")
            style_field = style_field.to(torch.float32)
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise NetworkConfigError(
                f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            extra = {}
            if style_field is not None and w_idx < style_field.shape[3]:
                extra["w_fields"] = [style_field[:, :, :, j] if j < style_field.shape[3] else None
                                     for j in range(w_idx, w_idx + block_ws.shape[1])]
            w_idx += block.num_conv
            kwargs = dict(force_fp32=force_fp32, fused_modconv=fused_modconv, noise_mode=noise_mode)
            if size_multiplier > 1 and not extra and block.in_channels != 0 \
                    and res * size_multiplier > self.tile_side:
                x, img = self._tiled_block(block, x, img, block_ws, size_multiplier, kwargs)
            else:
                x, img = block(x, img, block_ws, seamless=seamless, size_multiplier=size_multiplier, **extra, **kwargs)
        return img

    def _tiled_block(self, block, x, img, block_ws, size_multiplier: int, kwargs: dict):
        """One block of a seamless enlarged image, computed tile by tile so that its large
        intermediate activations never exist for the whole image at once.

        Each output tile is computed from its part of the (periodic) input plus a wrapped
        halo of input pixels, run through the block in plain mode with its part of the
        whole image's noise; the border the halo absorbed (where the zero padding of the
        tile's edges reached) is cut off. Every kept pixel therefore sees exactly what the
        untiled seamless block would show it: the result is the same image. The last block
        keeps only the image (its feature maps are not needed), so what an enlarged render
        holds at once is the previous block's activations plus one tile's.
        """
        n, _, h, w = x.shape
        side, tile = 2 * h, max(2, self.tile_side - self.tile_side % 2)  # even: tiles start on input pixels
        halo = block.conv1.padding + 1  # input px: covers conv0 (up), conv1, skip and img paths (tested)
        device = x.device
        layers = {name: getattr(block, name) for name in ("conv0", "conv1")}
        noises = {name: layer.noise_for(kwargs["noise_mode"], n, side, device) for name, layer in layers.items()}
        x_out = img_out = None
        for oy in range(0, side, tile):
            for ox in range(0, side, tile):
                th, tw = min(tile, side - oy), min(tile, side - ox)
                rows = torch.arange(oy // 2 - halo, (oy + th) // 2 + halo, device=device) % h
                cols = torch.arange(ox // 2 - halo, (ox + tw) // 2 + halo, device=device) % w
                orows = torch.arange(oy - 2 * halo, oy + th + 2 * halo, device=device) % side
                ocols = torch.arange(ox - 2 * halo, ox + tw + 2 * halo, device=device) % side
                x_t = x.index_select(2, rows).index_select(3, cols)
                img_t = img.index_select(2, rows).index_select(3, cols) if img is not None else None
                tile_noise = {name: None if v is None else v.index_select(-2, orows).index_select(-1, ocols)
                              for name, v in noises.items()}
                x_t, img_t = block(x_t, img_t, block_ws, noise_inputs=tile_noise, **kwargs)
                cut = (slice(None), slice(None), slice(2 * halo, 2 * halo + th), slice(2 * halo, 2 * halo + tw))
                if not block.is_last:
                    if x_out is None:
                        fmt = torch.channels_last if x_t.is_contiguous(memory_format=torch.channels_last) \
                            and not x_t.is_contiguous() else torch.contiguous_format
                        x_out = torch.empty([n, x_t.shape[1], side, side], dtype=x_t.dtype, device=device,
                                            memory_format=fmt)
                    x_out[:, :, oy:oy + th, ox:ox + tw] = x_t[cut]
                if img_t is not None:
                    if img_out is None:
                        img_out = torch.empty([n, img_t.shape[1], side, side], dtype=img_t.dtype, device=device)
                    img_out[:, :, oy:oy + th, ox:ox + tw] = img_t[cut]
        return x_out, img_out


# ----------------------------------------------------------------------------- generator

_MAPPING_KEYS = {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta"}
_SYNTHESIS_KEYS = {"channel_base", "channel_max", "num_fp16_res", "architecture", "resample_filter", "conv_clamp",
                   "fp16_channels_last", "use_noise", "activation", "kernel_size"}
_D_BLOCK_KEYS = {"activation", "resample_filter", "fp16_channels_last", "freeze_layers"}
_D_EPILOGUE_KEYS = {"mbstd_group_size", "mbstd_num_channels", "activation"}


def _reject_unknown(kind: str, given: dict, allowed: set) -> None:
    if not isinstance(given, dict):
        raise NetworkConfigError(f"{kind} must be a dict, got {type(given).__name__}")
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise NetworkConfigError(f"unknown {kind} option(s): {', '.join(unknown)}")


def _json_kwargs(kwargs: dict) -> dict:
    """A deep, JSON-round-tripped copy (tuples -> lists), so init_kwargs always serialise."""
    try:
        return json.loads(json.dumps(kwargs))
    except TypeError as exc:
        raise NetworkConfigError(f"network options must be JSON-serialisable: {exc}") from exc


class Generator(nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None):
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        synthesis_kwargs = dict(synthesis_kwargs or {})
        _reject_unknown("mapping_kwargs", mapping_kwargs, _MAPPING_KEYS)
        _reject_unknown("synthesis_kwargs", synthesis_kwargs, _SYNTHESIS_KEYS)
        self.init_kwargs = _json_kwargs(dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                             img_channels=img_channels, mapping_kwargs=mapping_kwargs,
                                             synthesis_kwargs=synthesis_kwargs))
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        # Registered before `mapping` so state_dict order matches the reference snapshots.
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                noise_mode: str = "random", update_emas: bool = False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)


# ----------------------------------------------------------------------------- discriminator


class DiscriminatorBlock(nn.Module):
    """One resolution of D: (fromRGB) + conv0 + 2x downsampling conv1 (+ resnet skip)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int,
                 first_layer_idx: int, architecture: str = "resnet", activation: str = "lrelu",
                 resample_filter=DEFAULT_FILTER, conv_clamp: float | None = None, use_fp16: bool = False,
                 fp16_channels_last: bool = False, freeze_layers: int = 0):
        super().__init__()
        _check_architecture(architecture)
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.reduced_dtype = None  # set_precision's choice; None: the device's default
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_layers = 0

        def trainable() -> bool:  # layers before `freeze_layers` are frozen (stored as buffers)
            trainable = first_layer_idx + self.num_layers >= freeze_layers
            self.num_layers += 1
            return trainable

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
                                 resample_filter=resample_filter, **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x, img, force_fp32: bool = False):
        dtype = _block_dtype(self, force_fp32, img.device if img is not None else x.device)
        memory_format = torch.channels_last if self.channels_last and dtype != torch.float32 else torch.contiguous_format
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    """Appends the std-dev across groups of samples as extra feature maps (diversity signal for D)."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g != 0:
            raise NetworkConfigError(
                f"discriminator batch size {n} must be a multiple of the minibatch-std group size {g}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, n, F, c, H, W]
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])  # [n, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: (fromRGB) + minibatch std + conv + fc + out (projected onto the class map if any)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None):
        super().__init__()
        _check_architecture(architecture)
        self.cmap_dim, self.architecture = cmap_dim, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap):
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: float | None = None, cmap_dim: int | None = None, block_kwargs: dict | None = None,
                 mapping_kwargs: dict | None = None, epilogue_kwargs: dict | None = None):
        super().__init__()
        block_kwargs = dict(block_kwargs or {})
        mapping_kwargs = dict(mapping_kwargs or {})
        epilogue_kwargs = dict(epilogue_kwargs or {})
        _reject_unknown("block_kwargs", block_kwargs, _D_BLOCK_KEYS)
        _reject_unknown("mapping_kwargs", mapping_kwargs, _MAPPING_KEYS - {"w_avg_beta"})
        _reject_unknown("epilogue_kwargs", epilogue_kwargs, _D_EPILOGUE_KEYS)
        _check_architecture(architecture)
        self.init_kwargs = _json_kwargs(dict(
            c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels, architecture=architecture,
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
            cmap_dim=cmap_dim, block_kwargs=block_kwargs, mapping_kwargs=mapping_kwargs,
            epilogue_kwargs=epilogue_kwargs))
        log2 = _resolution_log2(img_resolution)
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            in_channels = channels[res] if res < img_resolution else 0
            block = DiscriminatorBlock(in_channels, channels[res], channels[res // 2], resolution=res,
                                       first_layer_idx=layer_idx, use_fp16=(res >= fp16_resolution),
                                       **block_kwargs, **common)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common)

    def forward(self, img, c, force_fp32: bool = False):
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise NetworkConfigError(f"discriminator input must be [N, {', '.join(map(str, expected))}], "
                                     f"got {list(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)


# ----------------------------------------------------------------------------- construction helpers

_G_KEYS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"}
_D_KEYS = {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max", "num_fp16_res",
           "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs"}
# Reference snapshots name the class; accept exactly those names, nothing else.
_G_CLASS_NAMES = {"training.networks.Generator", "gan_core.nn.networks.Generator"}
_D_CLASS_NAMES = {"training.networks.Discriminator", "gan_core.nn.networks.Discriminator"}


def _build(kind: str, cls, kwargs: dict, allowed: set, class_names: set, required: set):
    if not isinstance(kwargs, dict):
        raise NetworkConfigError(f"{kind} options must be a dict, got {type(kwargs).__name__}")
    kwargs = copy.deepcopy(dict(kwargs))
    class_name = kwargs.pop("class_name", None)
    if class_name is not None and class_name not in class_names:
        raise NetworkConfigError(f"{kind} class {class_name!r} is not supported (expected {sorted(class_names)[0]})")
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise NetworkConfigError(f"unknown {kind} option(s): {', '.join(unknown)}")
    missing = sorted(required - set(kwargs))
    if missing:
        raise NetworkConfigError(f"{kind} options lack: {', '.join(missing)}")
    return cls(**kwargs)


def build_generator(kwargs: dict) -> Generator:
    """Generator from a kwargs dict (ours or a reference snapshot's); unknown keys -> NetworkConfigError."""
    return _build("generator", Generator, kwargs, _G_KEYS, _G_CLASS_NAMES,
                  {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"})


def build_discriminator(kwargs: dict) -> Discriminator:
    return _build("discriminator", Discriminator, kwargs, _D_KEYS, _D_CLASS_NAMES,
                  {"c_dim", "img_resolution", "img_channels"})


def preset_kwargs(resolution: int, preset: str = "stylegan2", c_dim: int = 0, img_channels: int = 3) -> dict:
    """{"G": ..., "D": ...} constructor kwargs for a training preset at `resolution`.

    tiny: the test-fixture size (seconds per step on a CPU); small: a few M params for
    quick experiments; stylegan2: the paper config (channel_base 32768, 8 mapping layers).
    """
    _resolution_log2(resolution)
    if preset == "tiny":
        z = 64
        base, cmax, layers = 2048, 128, 2
    elif preset == "small":
        z = 256
        base, cmax, layers = 8192, 256, 4
    elif preset == "stylegan2":
        z = 512
        base, cmax, layers = 32768, 512, 8
    else:
        raise NetworkConfigError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    # fp16 for the top 4 resolutions and clamping, as the reference's paper configs do on GPU.
    num_fp16_res = 0 if preset == "tiny" else 4
    G = dict(z_dim=z, c_dim=c_dim, w_dim=z, img_resolution=resolution, img_channels=img_channels,
             mapping_kwargs=dict(num_layers=layers),
             synthesis_kwargs=dict(channel_base=base, channel_max=cmax, num_fp16_res=num_fp16_res,
                                   conv_clamp=256))
    D = dict(c_dim=c_dim, img_resolution=resolution, img_channels=img_channels, architecture="resnet",
             channel_base=base, channel_max=cmax, num_fp16_res=num_fp16_res, conv_clamp=256,
             block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4))
    return {"G": G, "D": D}
