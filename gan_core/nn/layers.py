"""Low-level StyleGAN2-ADA ops in plain PyTorch: filtering, resampling convs, bias+activation,
equalized-learning-rate layers and the modulated convolution.

Numerics follow the public StyleGAN2-ADA reference (so its weights reproduce its images),
but every op is written with stock torch calls, so nothing needs compiling. Where the
reference's generic path wastes work (zero-stuffing then filtering), the same sums are
computed with a strided or transposed convolution instead.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_FILTER = (1, 3, 3, 1)

# name -> (function, default gain). Gains keep activations' second moment ~constant.
_ACTIVATIONS = {
    "linear": (None, 1.0),
    "relu": (F.relu, math.sqrt(2)),
    "lrelu": (lambda x: F.leaky_relu(x, 0.2), math.sqrt(2)),
    "tanh": (torch.tanh, 1.0),
    "sigmoid": (torch.sigmoid, 1.0),
    "swish": (F.silu, math.sqrt(2)),
}


class LayerConfigError(ValueError):
    """A layer was configured with an option this implementation does not know."""


def activation_gain(name: str) -> float:
    if name not in _ACTIVATIONS:
        raise LayerConfigError(f"unknown activation {name!r}: use one of {', '.join(sorted(_ACTIVATIONS))}")
    return _ACTIVATIONS[name][1]


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear", gain: float = 1.0,
             clamp: float | None = None, dim: int = 1) -> torch.Tensor:
    """x + b, then the activation, then * gain, then clamp to [-clamp, clamp] (reference order)."""
    activation_gain(act)  # validates the name
    fn = _ACTIVATIONS[act][0]
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    if fn is not None:
        x = fn(x)
    if gain != 1:
        x = x * gain
    return clamp_symmetric(x, clamp)


def clamp_symmetric(x: torch.Tensor, clamp: float | None, inplace: bool = False) -> torch.Tensor:
    """x clamped to [-clamp, clamp] (None or < 0: unclamped).

    On the CPU, when nothing lies outside the range (almost always: the clamp only guards
    fp16 against overflow), x is returned as it is. That is exact, values and gradients
    alike: torch's clamp passes the gradient wherever min <= x <= max. One reading pass
    (aminmax) then replaces the clamp's write pass and the four passes of its backward
    (two comparisons, a logical and, a where): 4 to 10 % of a CPU training step
    (docs/BENCHMARKS.md, the levers). On CUDA the check would stall the device for the
    host, so the clamp always runs there."""
    if clamp is None or clamp < 0:
        return x
    if x.device.type == "cpu" and not torch.compiler.is_compiling():  # compiled: fused, and no graph break
        lo, hi = torch.aminmax(x.detach())
        if -clamp <= lo.item() and hi.item() <= clamp:  # NaN fails both: clamped as before
            return x
    return x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)


def setup_filter(f=DEFAULT_FILTER) -> torch.Tensor:
    """A 1-D tap list -> normalized 2-D (outer product) filter, as stored in `resample_filter`."""
    t = torch.as_tensor(f, dtype=torch.float32)
    if t.ndim == 1:
        t = torch.outer(t, t)
    return t / t.sum()


def _pad4(padding) -> tuple[int, int, int, int]:
    """padding as int, [x, y] or [x0, x1, y0, y1] -> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    return tuple(padding)  # type: ignore[return-value]


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1, padding=0, gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero-insertion, pad (negative = crop), FIR-filter with `f`, keep every `down`-th pixel.

    Same result as the reference's upfirdn2d for a square 2-D filter and equal x/y factors.
    """
    px0, px1, py0, py1 = _pad4(padding)
    ch = x.shape[1]
    kh, kw = f.shape
    taps = (f * gain).to(x.dtype)  # 2-D filter: gain ** (ndim / 2) == gain
    if up > 1:
        # Zero-insertion + padding + filtering is a depthwise transposed conv with stride `up`
        # when the padding fits what conv_transpose2d can express; no zeros are materialised.
        out_pad_x, out_pad_y = px1 + up - 1 - px0, py1 + up - 1 - py0
        if (0 <= px0 <= kw - 1 and 0 <= py0 <= kh - 1 and 0 <= out_pad_x < up and 0 <= out_pad_y < up):
            w = taps[None, None].expand(ch, 1, kh, kw)  # transposed conv flips, reference flips too
            x = F.conv_transpose2d(x, w, stride=up, padding=(kh - 1 - py0, kw - 1 - px0),
                                   output_padding=(out_pad_y, out_pad_x), groups=ch)
            return x[:, :, ::down, ::down] if down > 1 else x
        n, c, h, w_ = x.shape
        x = x.reshape(n, c, h, 1, w_, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w_ * up)
    w = taps.flip([0, 1])[None, None].expand(ch, 1, kh, kw)
    if px0 == px1 == py0 == py1 and px0 >= 0:
        return F.conv2d(x, w, stride=down, padding=px0, groups=ch)  # no padded copy needed
    x = F.pad(x, [px0, px1, py0, py1])  # negative values crop
    return F.conv2d(x, w, stride=down, groups=ch)


def wrap_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Pad p pixels on every side with the opposite edge's pixels: x seen as one period of
    an image that repeats forever (seamless mode). Built in x's memory layout: F.pad's
    circular mode returns NCHW, which makes the CPU's NHWC convolutions several times slower."""
    if p <= 0:
        return x
    n, c, h, w = x.shape
    out = torch.empty([n, c, h + 2 * p, w + 2 * p], dtype=x.dtype, device=x.device, memory_format=_layout(x))
    out[:, :, p:p + h, p:p + w] = x
    out[:, :, p:p + h, :p] = x[:, :, :, w - p:]
    out[:, :, p:p + h, p + w:] = x[:, :, :, :p]
    out[:, :, :p] = out[:, :, h:h + p]  # rows last, from the already wrapped columns: corners too
    out[:, :, p + h:] = out[:, :, p:2 * p]
    return out


def _wrap_margin(taps: int, up: int) -> int:
    """Input pixels of wrap-around needed on each side so that every output pixel of an
    up-sampling op with `taps` taps (conv + filter, in the upsampled grid, centred as the
    reference centres them) reads real data, not the op's own zero padding: half the taps'
    span in input pixels, rounded the way the reference splits odd paddings (checked against
    3x3-tiled inputs for kernels 1-5 and filters of 2-6 taps by tests/unit/test_seamless.py)."""
    return max(1, (taps + up - 1) // (2 * up))


def _wrapped_resample(op, x: torch.Tensor, margin: int, up: int) -> torch.Tensor:
    """`op` (an `up`-times upsampling with zero padding) on the periodic extension of x:
    wrap `margin` pixels on, run op, cut the `margin * up` output pixels that saw padding.
    A periodic input of side n thus gives exactly one period, side up * n, of the output."""
    y = op(wrap_pad(x, margin))
    cut = margin * up
    return y[:, :, cut:y.shape[2] - cut, cut:y.shape[3] - cut].contiguous(memory_format=_layout(y))


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, wrap: bool = False) -> torch.Tensor:
    kw = f.shape[-1]
    if wrap:
        return _wrapped_resample(lambda t: upsample2d(t, f, up=up), x, _wrap_margin(kw, up), up)
    p = [(kw + up - 1) // 2, (kw - up) // 2]
    return upfirdn2d(x, f, up=up, padding=[p[0], p[1], p[0], p[1]], gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    kw = f.shape[-1]
    p = [(kw - down + 1) // 2, (kw - down) // 2]
    return upfirdn2d(x, f, down=down, padding=[p[0], p[1], p[0], p[1]])


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1,
                    padding: int = 0, groups: int = 1, flip_weight: bool = True, wrap: bool = False) -> torch.Tensor:
    """2-D conv with optional up/down-sampling by the FIR filter `f`, choosing the cheapest exact order.

    `flip_weight=False` means true convolution instead of correlation (the reference's
    convention for upsampling layers, which matters for loaded weights). `wrap=True` pads
    with wrap-around instead of zeros (seamless mode): a periodic input gives a periodic
    output, so the image tiles. Same weights, same sums away from the borders.
    """
    out_ch, in_per_group, kh, kw = w.shape
    fw = f.shape[-1] if f is not None else 1
    if wrap:
        if down > 1:
            raise LayerConfigError("wrap-around padding is for the synthesis network (up-sampling) only")
        if up == 1:  # all the padding is the conv's own: wrap it, then convolve without
            return conv2d_resample(wrap_pad(x, padding), w, f, groups=groups, flip_weight=flip_weight)
        margin = _wrap_margin(kw + fw - 1, up)
        return _wrapped_resample(lambda t: conv2d_resample(t, w, f, up=up, padding=padding, groups=groups,
                                                           flip_weight=flip_weight), x, margin, up)
    p0 = p1 = padding
    if up > 1:
        p0 += (fw + up - 1) // 2
        p1 += (fw - up) // 2
    if down > 1:
        p0 += (fw - down + 1) // 2
        p1 += (fw - down) // 2

    def conv(x, w, stride=1, pad=0, transpose=False, flip=flip_weight):
        if not flip:
            w = w.flip([2, 3])
        op = F.conv_transpose2d if transpose else F.conv2d
        return op(x, w, stride=stride, padding=pad, groups=groups)

    if kh == 1 and kw == 1 and down > 1 and up == 1:
        return conv(upfirdn2d(x, f, down=down, padding=[p0, p1, p0, p1]), w)
    if kh == 1 and kw == 1 and up > 1 and down == 1:
        return upfirdn2d(conv(x, w), f, up=up, padding=[p0, p1, p0, p1], gain=up * up)
    if down > 1 and up == 1:
        return conv(upfirdn2d(x, f, padding=[p0, p1, p0, p1]), w, stride=down)
    if up > 1:
        # Transposed conv does the upsampling; the filter then smooths (reference's fused path).
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_ch // groups, kh, kw)
        p0 -= kw - 1
        p1 -= kw - up
        pt = max(min(-p0, -p1), 0)
        x = conv(x, w, stride=up, pad=pt, transpose=True, flip=not flip_weight)
        x = upfirdn2d(x, f, padding=[p0 + pt, p1 + pt, p0 + pt, p1 + pt], gain=up * up)
        return upfirdn2d(x, f, down=down) if down > 1 else x
    if p0 == p1 and p0 >= 0:
        return conv(x, w, pad=p0)
    return conv(upfirdn2d(x, f, padding=[p0, p1, p0, p1]) if f is not None else F.pad(x, [p0, p1, p0, p1]), w)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor,
                              weight_sq: torch.Tensor | None = None) -> torch.Tensor:
    """1 / ||w * s|| per sample and output channel, [N, O].

    sum_{i,k} (W[o,i,k] s[n,i])^2 = sum_i s[n,i]^2 * sum_k W[o,i,k]^2: a small matmul
    instead of materialising the [N, O, I, k, k] modulated weights. `weight_sq` (the
    [O, I] sums) may be passed in precomputed.
    """
    if weight_sq is None:
        weight_sq = weight.square().sum(dim=[2, 3])
    return (styles.square() @ weight_sq.t() + 1e-8).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, down: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, flip_weight: bool = True, fused_modconv: bool = True,
                     wrap: bool = False) -> torch.Tensor:
    """StyleGAN2 weight (de)modulation. Fused: one grouped conv with per-sample weights.
    Not fused: scale activations before/after one shared-weight conv (same maths; a single
    large GEMM, which is faster for batches on CPU and needed for fp16 training).
    `wrap`: wrap-around padding (conv2d_resample)."""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalise so the fp16 products cannot overflow (demodulation undoes the scale).
        weight = weight * (1 / np.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    w = dcoefs = None
    if fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, k, k]
        if demodulate:
            dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
    elif demodulate:
        dcoefs = demodulation_coefficients(weight, styles)
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight, wrap=wrap)
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x
    if demodulate:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), resample_filter, up=up, down=down, padding=padding, groups=n,
                        flip_weight=flip_weight, wrap=wrap)
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: weights stored at unit scale, scaled at runtime."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        activation_gain(activation)  # validates the name
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, act=self.activation, gain=activation_gain(self.activation))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalized-lr conv with optional FIR up/downsampling, bias, activation and clamp.

    `trainable=False` stores weights as buffers (the reference's way of freezing D layers),
    so state-dict keys are unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1, resample_filter=DEFAULT_FILTER,
                 conv_clamp: float | None = None, channels_last: bool = False, trainable: bool = True):
        super().__init__()
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = activation_gain(activation)
        self.channels_last = channels_last
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        b = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(b) if b is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", b)

    def forward(self, x: torch.Tensor, gain: float = 1.0, wrap: bool = False) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w.to(x.dtype), self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1), wrap=wrap)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


def _layout(x: torch.Tensor) -> torch.memory_format:
    nhwc = x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if nhwc else torch.contiguous_format


_HOMOGENEOUS = {"linear", "relu", "lrelu"}  # act(g * x) == g * act(x) for g > 0


def modulated_conv2d_bias_act(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                              noise: torch.Tensor | None, bias: torch.Tensor, act: str, gain: float,
                              clamp: float | None, up: int = 1, padding: int = 0,
                              resample_filter: torch.Tensor | None = None, flip_weight: bool = True,
                              weight_sq: torch.Tensor | None = None, wrap: bool = False) -> torch.Tensor:
    """Non-fused demodulated conv followed by noise, bias, activation, gain and clamp, with
    the per-pixel epilogue folded into one multiply-add (same maths as modulated_conv2d +
    bias_act, three passes over the activations instead of six; speeds up CPU inference).
    `weight_sq` = weight.square().sum([2, 3]) if the caller has it cached (fp32 only)."""
    if act not in _HOMOGENEOUS or gain <= 0:
        y = modulated_conv2d(x, weight, styles, noise=noise, up=up, padding=padding, resample_filter=resample_filter,
                             flip_weight=flip_weight, fused_modconv=False, wrap=wrap)
        return bias_act(y, bias.to(y.dtype), act=act, gain=gain, clamp=clamp)
    n = x.shape[0]
    dtype = x.dtype
    if dtype == torch.float16:  # same overflow guard as modulated_conv2d
        out_ch, in_ch, kh, kw = weight.shape
        weight = weight * (1 / np.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
        weight_sq = None  # the weight changed: the cached sums no longer apply
    scale = (demodulation_coefficients(weight, styles, weight_sq) * gain).to(dtype).reshape(n, -1, 1, 1)
    x = conv2d_resample(x * styles.to(dtype).reshape(n, -1, 1, 1), weight.to(dtype), resample_filter, up=up,
                        padding=padding, flip_weight=flip_weight, wrap=wrap)
    shift = bias.to(dtype).reshape(1, -1, 1, 1) * gain
    inplace = not (torch.is_grad_enabled() and (x.requires_grad or shift.requires_grad or scale.requires_grad))
    if noise is not None:
        noise = noise.to(dtype) * gain
        if inplace:
            # build bias + noise directly in x's memory layout (NHWC on CPU): no layout copy
            out = torch.empty(torch.broadcast_shapes(shift.shape, noise.shape), dtype=dtype, device=x.device,
                              memory_format=_layout(x))
            shift = torch.add(shift, noise, out=out)
        else:
            shift = shift + noise
    x = torch.addcmul(shift, x, scale)
    if act == "lrelu":
        x = F.leaky_relu_(x, 0.2) if inplace else F.leaky_relu(x, 0.2)
    elif act == "relu":
        x = F.relu_(x) if inplace else F.relu(x)
    return clamp_symmetric(x, clamp, inplace)


def modulated_conv1x1(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Modulated (not demodulated) 1x1 conv as one batched matmul with per-sample weights.

    (x * s) conv W == x @ (s * W^T) per sample: the styles fold into a tiny [C, O] weight
    instead of a pass over the activations, and NHWC inputs need no layout change.
    """
    n, c, h, w = x.shape
    w_mod = (styles.unsqueeze(2) * weight[:, :, 0, 0].t().unsqueeze(0)).to(x.dtype)  # [N, C, O]
    y = torch.bmm(x.permute(0, 2, 3, 1).reshape(n, h * w, c), w_mod)  # [N, HW, O]
    return y.reshape(n, h, w, -1).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------- style fields
# An enlarged seamless texture (size_multiplier T) may take a different latent per training-
# resolution tile: each layer's modulation (and demodulation) is then a smooth field that
# equals the tile's own values at the tile's centre and blends towards its neighbours' in
# between, wrapping around, so the image stays seamless while its layout varies tile to tile.


def periodic_resize(m: torch.Tensor, size: int) -> torch.Tensor:
    """[N, C, T, T] values at the centres of a T x T grid of cells on a torus -> [N, C, size, size]:
    each pixel blends the two nearest centres per axis with smoothstep weights (so the field's
    slope is continuous), wrapping from the last cell back to the first."""
    t = m.shape[-1]
    u = (torch.arange(size, device=m.device, dtype=torch.float32) + 0.5) * (t / size) - 0.5
    i0 = torch.floor(u)
    f = u - i0
    f = (f * f * (3 - 2 * f)).to(m.dtype)
    i0 = i0.long() % t
    i1 = (i0 + 1) % t
    rows = m[:, :, i0] * (1 - f)[:, None] + m[:, :, i1] * f[:, None]  # [N, C, size, T]
    return rows[..., i0] * (1 - f) + rows[..., i1] * f


def modulated_conv2d_field(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None,
                           bias: torch.Tensor, act: str, gain: float, clamp: float | None, up: int = 1,
                           padding: int = 0, resample_filter: torch.Tensor | None = None, flip_weight: bool = True,
                           wrap: bool = True) -> torch.Tensor:
    """modulated_conv2d_bias_act with a style per tile instead of per image: `styles`
    [N, I, T, T]. The activations are scaled by the per-pixel style field, convolved with the
    shared weight, and scaled by the demodulation coefficients of each tile, blended the same
    way (both fields are smooth, so blending the coefficients instead of recomputing them per
    pixel from blended styles costs nothing visible and a [N, I, H, W] tensor less)."""
    dtype = x.dtype
    weight = weight.to(torch.float32)
    styles = styles.to(torch.float32)
    if dtype == torch.float16:  # same overflow guard as modulated_conv2d; demodulation undoes it
        out_ch, in_ch, kh, kw = weight.shape
        weight = weight * (1 / np.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=[1, 2, 3], keepdim=True)
    dcoefs = (styles.square().permute(0, 2, 3, 1) @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
    x = x * periodic_resize(styles, x.shape[-1]).to(dtype)
    x = conv2d_resample(x, weight.to(dtype), resample_filter, up=up, padding=padding, flip_weight=flip_weight,
                        wrap=wrap)
    fold = act in _HOMOGENEOUS and gain > 0  # act(g * v) == g * act(v): one multiply-add does both
    g = gain if fold else 1.0
    scale = periodic_resize(dcoefs.permute(0, 3, 1, 2) * g, x.shape[-1]).to(dtype)
    shift = bias.to(dtype).reshape(1, -1, 1, 1) * g
    if noise is not None:
        shift = shift + noise.to(dtype) * g
    x = torch.addcmul(shift, x, scale)
    return bias_act(x, act=act, gain=1.0 if fold else gain, clamp=clamp)


def modulated_conv1x1_field(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """modulated_conv1x1 (no demodulation) with a style per tile: `styles` [N, I, T, T]."""
    x = x * periodic_resize(styles.to(torch.float32), x.shape[-1]).to(x.dtype)
    return F.conv2d(x, weight.to(x.dtype))
