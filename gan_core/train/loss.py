"""StyleGAN2-ADA losses: non-saturating logistic loss, lazy R1 on D, path-length regularisation
and style mixing on G. Each phase runs its own forward/backward and leaves the gradients in the
parameters; the caller owns the optimisers (and the all-reduce for multi-GPU)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.train.tileable import random_roll


class StyleGAN2Loss:
    def __init__(self, G, D, augment_pipe=None, r1_gamma: float = 10.0, style_mixing_prob: float = 0.9,
                 pl_weight: float = 2.0, pl_batch_shrink: int = 2, pl_decay: float = 0.01, roll_views: bool = False,
                 compiled_D=None):
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        # torch.compile(D), for the phases that differentiate once. R1 differentiates D's
        # gradient again, which compiled graphs cannot do, so it always runs the eager D.
        self.compiled_D = compiled_D
        self.roll_views = bool(roll_views)  # tileable training: D sees randomly rolled reals and fakes
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)

    # ------------------------------------------------------------------ forward helpers

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.style_mixing_prob > 0 and ws.shape[1] > 1:
            # Mix from a random layer on, with probability style_mixing_prob (cutoff = num_ws: no mixing).
            if torch.rand([]).item() < self.style_mixing_prob:
                cutoff = int(torch.randint(1, ws.shape[1], []).item())
                mixed = self.G.mapping(torch.randn_like(z), c, update_emas=False)
                ws = torch.cat([ws[:, :cutoff], mixed[:, cutoff:]], dim=1)
        img = self.G.synthesis(ws)
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor, double_backward: bool = False) -> torch.Tensor:
        if self.roll_views:  # the wrap-around edge lands inside what D sees (gan_core.train.tileable)
            img = random_roll(img)
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        D = self.D if (double_backward or self.compiled_D is None) else self.compiled_D
        return D(img, c).float()  # losses in fp32 even when D runs fp16 layers on CUDA

    # ------------------------------------------------------------------ phases

    def g_main(self, gen_z, gen_c, gain: float = 1.0) -> dict:
        """G adversarial loss: softplus(-D(G(z))), i.e. -log sigmoid (non-saturating)."""
        img, _ = self.run_G(gen_z, gen_c, update_emas=True)
        logits = self.run_D(img, gen_c)
        loss = F.softplus(-logits)
        loss.mean().mul(gain).backward()
        return {"G": loss.detach().mean()}

    def g_pl(self, gen_z, gen_c, gain: float) -> dict:
        """Path-length regularisation on a shrunk batch; `gain` = the lazy interval."""
        batch = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
        img, ws = self.run_G(gen_z[:batch], gen_c[:batch], update_emas=True)
        noise = torch.randn_like(img) / np.sqrt(img.shape[2] * img.shape[3])
        grads, = torch.autograd.grad(outputs=[(img * noise).sum()], inputs=[ws], create_graph=True, only_inputs=True)
        lengths = grads.square().sum(2).mean(1).sqrt()
        # The penalty differentiates through this step's update of the running mean, as the
        # reference does (a detached mean gave G gradients up to 16 % off its own:
        # benchmarks/check_reference_phases.py); only the stored mean is detached.
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square()
        # "img[:, 0, 0, 0] * 0" keeps every synthesis output in the graph (as the reference does)
        (img[:, 0, 0, 0] * 0 + penalty * self.pl_weight).mean().mul(gain).backward()
        return {"pl": penalty.detach().mean()}

    def d_main(self, real_img, real_c, gen_z, gen_c, gain: float = 1.0) -> dict:
        """D logistic loss on fakes (softplus(D(G(z)))) and reals (softplus(-D(x)))."""
        with torch.no_grad():  # G is not trained in this phase: build no graph through it
            gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
        gen_logits = self.run_D(gen_img, gen_c)
        real_logits = self.run_D(real_img.detach(), real_c)
        loss_gen = F.softplus(gen_logits)
        loss_real = F.softplus(-real_logits)
        (loss_gen.mean() + loss_real.mean()).mul(gain).backward()
        return {"D": (loss_gen.detach().mean() + loss_real.detach().mean()), "real_logits": real_logits.detach()}

    def d_r1(self, real_img, real_c, gain: float) -> dict:
        """R1: gamma/2 * ||dD(x)/dx||^2 on reals (gradient w.r.t. the un-augmented image)."""
        real = real_img.detach().requires_grad_(True)
        logits = self.run_D(real, real_c, double_backward=True)
        grads, = torch.autograd.grad(outputs=[logits.sum()], inputs=[real], create_graph=True, only_inputs=True)
        penalty = grads.square().sum([1, 2, 3])
        (logits[:, 0] * 0 + penalty * (self.r1_gamma / 2)).mean().mul(gain).backward()
        return {"r1": penalty.detach().mean(), "real_logits": logits.detach()}
