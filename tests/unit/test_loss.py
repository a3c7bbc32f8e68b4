"""StyleGAN2 loss phases: values, which network receives gradients, the R1 and path-length
formulas, and style mixing."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_core.train.loss import StyleGAN2Loss
from gan_core.nn.networks import Discriminator, Generator


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see tests/unit/conftest.py)."""


def _micro_nets(res=8, seed=0):
    torch.manual_seed(seed)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=res, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, synthesis_kwargs={"channel_base": 128, "channel_max": 16})
    D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=128, channel_max=16,
                      epilogue_kwargs={"mbstd_group_size": 4})
    return G, D


class LinearD(torch.nn.Module):
    """D(x) = <a, x>: its input gradient is exactly `a`, so R1 is known in closed form."""

    def __init__(self, shape):
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(shape))

    def forward(self, img, c):
        return (img * self.a).sum(dim=[1, 2, 3]).unsqueeze(1)


def _grads(module):
    return [p.grad for p in module.parameters()]


def test_d_main_trains_only_d_with_the_logistic_loss():
    G, D = _micro_nets()
    G.requires_grad_(False)
    loss = StyleGAN2Loss(G, D, r1_gamma=1.0)
    real = torch.rand([4, 3, 8, 8]) * 2 - 1
    c = torch.zeros([4, 0])
    z = torch.randn([4, 8])
    torch.manual_seed(5)
    out = loss.d_main(real, c, z, c)
    assert all(g is None for g in _grads(G))
    assert all(g is not None for g in _grads(D))
    # recompute with the same randomness: D(fake) needs the same style-mixing draw
    torch.manual_seed(5)
    with torch.no_grad():
        fake, _ = loss.run_G(z, c)
        expected = F.softplus(D(fake, c)).mean() + F.softplus(-D(real, c)).mean()
    assert out["D"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(torch.sign(out["real_logits"]), torch.sign(D(real, c).detach()))


def test_g_main_trains_g_through_d_without_touching_d_weights():
    G, D = _micro_nets()
    D.requires_grad_(False)
    G.requires_grad_(True)
    loss = StyleGAN2Loss(G, D)
    out = loss.g_main(torch.randn([4, 8]), torch.zeros([4, 0]))
    assert out["G"].item() > 0
    assert all(g is None for g in _grads(D))
    assert sum(g.abs().sum().item() for g in _grads(G) if g is not None) > 0


def test_r1_gradient_matches_closed_form():
    # R1 = gamma/2 * ||a||^2 for D(x) = <a, x>; d/da of (gain * R1) = gain * gamma * a.
    torch.manual_seed(0)
    G, _ = _micro_nets()
    D = LinearD([3, 8, 8])
    loss = StyleGAN2Loss(G, D, r1_gamma=3.0)
    out = loss.d_r1(torch.rand([4, 3, 8, 8]), torch.zeros([4, 0]), gain=16)
    a = D.a.detach()
    assert out["r1"].item() == pytest.approx(a.square().sum().item(), rel=1e-5)
    assert torch.allclose(D.a.grad, 16 * 3.0 * a, rtol=1e-4, atol=1e-6)


def test_r1_is_taken_on_unaugmented_reals():
    torch.manual_seed(0)
    G, _ = _micro_nets()
    D = LinearD([3, 8, 8])

    class Double(torch.nn.Module):
        def forward(self, x):
            return 2 * x

    loss = StyleGAN2Loss(G, D, augment_pipe=Double(), r1_gamma=2.0)
    out = loss.d_r1(torch.rand([2, 3, 8, 8]), torch.zeros([2, 0]), gain=1)
    # the gradient w.r.t. the un-augmented input of D(2x) is 2a
    assert out["r1"].item() == pytest.approx((2 * D.a.detach()).square().sum().item(), rel=1e-5)


def test_path_length_penalty_updates_running_mean_and_trains_g():
    G, D = _micro_nets()
    G.requires_grad_(True)
    loss = StyleGAN2Loss(G, D, pl_weight=2.0, pl_decay=0.01, pl_batch_shrink=2, style_mixing_prob=0.0)
    z = torch.randn([8, 8])
    c = torch.zeros([8, 0])
    torch.manual_seed(3)
    out = loss.g_pl(z, c, gain=4)
    first_mean = loss.pl_mean.item()
    # independent recomputation of the first path length mean (same noise draw)
    torch.manual_seed(3)
    ws = G.mapping(z[:4], c[:4]).detach().requires_grad_(True)
    img = G.synthesis(ws)
    noise = torch.randn_like(img) / np.sqrt(8 * 8)
    grads, = torch.autograd.grad((img * noise).sum(), ws)
    lengths = grads.square().sum(2).mean(1).sqrt()
    assert first_mean == pytest.approx(0.01 * lengths.mean().item(), rel=1e-4)
    assert out["pl"].item() == pytest.approx((lengths - first_mean).square().mean().item(), rel=1e-3)
    assert sum(g.abs().sum().item() for g in _grads(G) if g is not None) > 0
    loss.g_pl(z, c, gain=4)
    assert loss.pl_mean.item() != first_mean


def _pl_grads_by_hand(G, z, c, seed: int, decay: float, detach_mean: bool) -> list:
    """G's gradient of the path-length penalty from a zero running mean, written out."""
    G.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    ws = G.mapping(z, c)
    img = G.synthesis(ws)
    noise = torch.randn_like(img) / np.sqrt(img.shape[2] * img.shape[3])
    grads, = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = grads.square().sum(2).mean(1).sqrt()
    mean = lengths.mean().detach() if detach_mean else lengths.mean()
    pl_mean = torch.zeros([]).lerp(mean, decay)
    (img[:, 0, 0, 0] * 0 + (lengths - pl_mean).square() * 2.0).mean().backward()
    return {name: p.grad.clone() for name, p in G.named_parameters() if p.grad is not None}


def test_path_length_gradient_runs_through_the_running_mean_update():
    """As in the reference: the penalty uses this step's updated mean un-detached, so G's
    gradient has a term through it. A large decay makes that term big enough to tell apart."""
    G, D = _micro_nets()
    G.requires_grad_(True)
    loss = StyleGAN2Loss(G, D, pl_weight=2.0, pl_decay=0.5, pl_batch_shrink=1, style_mixing_prob=0.0)
    z, c = torch.randn([4, 8]), torch.zeros([4, 0])
    torch.manual_seed(7)
    loss.g_pl(z, c, gain=1)
    ours = {name: p.grad.clone() for name, p in G.named_parameters() if p.grad is not None}
    through_mean = _pl_grads_by_hand(G, z, c, 7, 0.5, detach_mean=False)
    detached = _pl_grads_by_hand(G, z, c, 7, 0.5, detach_mean=True)

    def worst(a, b):
        assert a.keys() == b.keys()
        return max(((a[k] - b[k]).abs().max() / b[k].abs().max()).item() for k in b if b[k].abs().max() > 0)

    assert worst(ours, through_mean) < 1e-4
    assert worst(ours, detached) > 1e-2  # the two rules really differ here: the test can tell


def test_every_phase_tracks_w_avg_as_the_reference_does():
    """The reference's mapping updates w_avg in each phase's main forward (G main, G path
    length, D main), never in the style-mixing one."""
    G, D = _micro_nets()
    loss = StyleGAN2Loss(G, LinearD([3, 8, 8]), style_mixing_prob=0.0, r1_gamma=1.0)
    z, c, real = torch.randn([4, 8]), torch.zeros([4, 0]), torch.rand([4, 3, 8, 8])
    for phase in (lambda: loss.g_main(z, c), lambda: loss.g_pl(z, c, gain=4), lambda: loss.d_main(real, c, z, c)):
        before = G.mapping.w_avg.clone()
        G.requires_grad_(True)
        phase()
        assert not torch.equal(G.mapping.w_avg, before)
    before = G.mapping.w_avg.clone()
    loss.d_r1(real, c, gain=16)  # no G forward
    assert torch.equal(G.mapping.w_avg, before)


def test_r1_phase_returns_its_real_logits_for_ada():
    G, _ = _micro_nets()
    D = LinearD([3, 8, 8])
    loss = StyleGAN2Loss(G, D, r1_gamma=1.0)
    real = torch.rand([4, 3, 8, 8])
    out = loss.d_r1(real, torch.zeros([4, 0]), gain=16)
    assert torch.allclose(out["real_logits"], D(real, None).detach())


def test_style_mixing_switches_latents_at_a_layer():
    G, D = _micro_nets()
    z = torch.randn([2, 8])
    c = torch.zeros([2, 0])
    no_mix = StyleGAN2Loss(G, D, style_mixing_prob=0.0)
    _, ws = no_mix.run_G(z, c)
    assert torch.allclose(ws, ws[:, :1].expand_as(ws))
    always = StyleGAN2Loss(G, D, style_mixing_prob=1.0)
    torch.manual_seed(0)
    _, ws = always.run_G(z, c)
    differs = [not torch.allclose(ws[:, 0], ws[:, i]) for i in range(ws.shape[1])]
    cutoff = differs.index(True)
    assert cutoff >= 1 and all(differs[cutoff:])


def test_augmentation_applies_to_reals_and_fakes():
    G, D = _micro_nets()
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append(x.shape[0])
            return x

    G.requires_grad_(False)
    loss = StyleGAN2Loss(G, D, augment_pipe=Recorder())
    loss.d_main(torch.zeros([4, 3, 8, 8]), torch.zeros([4, 0]), torch.randn([4, 8]), torch.zeros([4, 0]))
    assert seen == [4, 4]
