"""Does each phase of our training step compute the reference's gradients? Prints JSON.

Both trainers start from the identical tiny networks (our weights loaded into the NVlabs
StyleGAN2-ADA classes, strict). For every phase (G main, G path length, D main, D R1) each side
gets the same real batch, the same z and the same RNG seed, and the gradients it leaves in the
parameters are compared. Randomness that both sides draw in the same order (the synthesis
noise, the path-length noise) then matches exactly; style mixing draws its two numbers in a
different order, so it is checked apart with a cutoff fixed on both sides. Augmentation is off:
our pipeline is an independent implementation and draws differently.

Layout: on the CPU our synthesis runs NHWC, the reference NCHW. At the 4x4 layer their float32
gradients differ by 1-2 % (NCHW against float64: 1.4 %, NHWC: 1e-6; ours and the reference's
NCHW alike; the convolution alone agrees, the gap comes with the bias and leaky ReLU, most
likely values at the kink that rounding puts on the other side). So the comparison runs ours
NCHW too, to compare the rules, not the rounding.

A phase whose gradients differ beyond float rounding is a difference in the training rule, not
in luck: this is how issue 17's quality gap was looked for.

    .venv/bin/python benchmarks/check_reference_phases.py --reference reference
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_training  # noqa: E402  (puts the repository root on sys.path)
import reference_trainer as rt  # noqa: E402

from gan_core.nn import networks  # noqa: E402

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")


def _grads(module) -> dict:
    return {name: p.grad.detach().clone() for name, p in module.named_parameters() if p.grad is not None}


def _compare(ours: dict, theirs: dict) -> dict:
    """Worst relative error over parameters, |a - b| / max|b| per tensor."""
    if set(ours) != set(theirs):
        return {"same_parameters": False, "only_ours": sorted(set(ours) - set(theirs)),
                "only_reference": sorted(set(theirs) - set(ours))}
    worst, where = 0.0, None
    for name, b in theirs.items():
        scale = float(b.abs().max())
        err = float((ours[name] - b).abs().max()) / scale if scale > 0 else float(ours[name].abs().max())
        if err > worst:
            worst, where = err, name
    largest = max(float(b.abs().max()) for b in theirs.values())
    return {"same_parameters": True, "parameters": len(theirs), "max_rel_error": worst, "worst_parameter": where,
            "largest_gradient": largest}


def _zero_grads(*modules) -> None:
    for module in modules:
        for p in module.parameters():
            p.grad = None


def _our_phase(run, phase: str, real, c, z, seed: int) -> dict:
    module = run.G if phase.startswith("G") else run.D
    other = run.D if module is run.G else run.G
    for p in other.parameters():
        p.requires_grad_(False)
    for p in module.parameters():
        p.requires_grad_(True)
    _zero_grads(run.G, run.D)
    torch.manual_seed(seed)
    if phase == "Gmain":
        run.loss.g_main(z, c)
    elif phase == "Greg":
        run.loss.g_pl(z, c, gain=run.G_reg)
    elif phase == "Dmain":
        run.loss.d_main(real, c, z, c)
    else:
        run.loss.d_r1(real, c, gain=run.D_reg)
    module.requires_grad_(False)
    return _grads(module)


def _their_phase(trainer, phase: str, real, c, z, seed: int, gain: int) -> dict:
    module = trainer.G if phase.startswith("G") else trainer.D
    _zero_grads(trainer.G, trainer.D)
    module.requires_grad_(True)
    torch.manual_seed(seed)
    trainer.loss.accumulate_gradients(phase=phase, real_img=real, real_c=c, gen_z=z, gen_c=c, sync=True, gain=gain)
    module.requires_grad_(False)
    return _grads(module)


def _mixing_cutoff_check(run, trainer, z, c, cutoff: int, seed: int) -> dict:
    """Style mixing from layer `cutoff` on, forced on both sides: the generated images agree."""
    def forced_randint(low, high, size=(), **kwargs):  # ours draws the cutoff with torch.randint
        return torch.tensor(cutoff)

    def forced_random_(tensor, low, high=None):  # the reference draws it with Tensor.random_
        return tensor.fill_(cutoff)

    saved = (torch.randint, torch.rand, torch.Tensor.random_)
    try:
        torch.rand = lambda *a, **k: torch.zeros(*a, **k)  # below any mixing probability: mix
        torch.randint = forced_randint
        torch.Tensor.random_ = forced_random_
        with torch.no_grad():
            torch.manual_seed(seed)
            ours_prob, run.loss.style_mixing_prob = run.loss.style_mixing_prob, 0.9
            img_ours, _ = run.loss.run_G(z, c)
            run.loss.style_mixing_prob = ours_prob
            torch.manual_seed(seed)
            theirs_prob, trainer.loss.style_mixing_prob = trainer.loss.style_mixing_prob, 0.9
            img_theirs, _ = trainer.loss.run_G(z, c, sync=True)
            trainer.loss.style_mixing_prob = theirs_prob
    finally:
        torch.randint, torch.rand, torch.Tensor.random_ = saved
    scale = float(img_theirs.abs().max())
    return {"cutoff": cutoff, "max_rel_error": float((img_ours - img_theirs).abs().max()) / scale}


def check(reference: str, res: int = 32, batch: int = 8, seed: int = 3) -> dict:
    ref = rt.load(reference)
    saved_layout, networks.CPU_CHANNELS_LAST = networks.CPU_CHANNELS_LAST, False  # see the docstring
    try:
        return _check(ref, res, batch, seed)
    finally:
        networks.CPU_CHANNELS_LAST = saved_layout


def _check(ref, res: int, batch: int, seed: int) -> dict:
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        data = bench_training.make_dataset(Path(tmp) / "d.zip", res, count=max(batch, 16))
        run = bench_training.our_run(Path(tmp), data, net="tiny", batch=batch, case="off", device="cpu",
                                     precision="fp32")
        run.loss.style_mixing_prob = 0.0
        G_kwargs, D_kwargs = copy.deepcopy(run.G.init_kwargs), copy.deepcopy(run.D.init_kwargs)
        trainer = rt.ReferenceTrainer(
            ref, data=str(data), G_kwargs=G_kwargs, D_kwargs=D_kwargs, batch=batch, device="cpu", gamma=run.gamma,
            lr=run.lr, ema_kimg=run.ema_kimg, ema_rampup=run.config.ema_rampup, aug_p=None, style_mixing=0.0,
            pl_weight=run.config.pl_weight, r1_interval=run.config.r1_interval, pl_interval=run.config.pl_interval,
            state_dicts={"G": run.G.state_dict(), "D": run.D.state_dict()})
        real, c = run._next_batch()
        z = torch.randn([batch, run.G.z_dim])
        gains = {"Gmain": 1, "Greg": run.G_reg, "Dmain": 1, "Dreg": run.D_reg}
        result = {"resolution": res, "batch": batch, "seed": seed, "torch": torch.__version__,
                  "gamma": run.gamma, "pl_weight": run.config.pl_weight, "phases": {}}
        # The path-length mean is a running buffer: both start at 0 and see the same phases.
        for round_ in range(2):  # the second round: pl_mean no longer 0, so its gradient path counts
            for i, phase in enumerate(PHASES):
                ours = _our_phase(run, phase, real, c, z, seed + 10 * round_ + i)
                theirs = _their_phase(trainer, phase, real, c, z, seed + 10 * round_ + i, gains[phase])
                result["phases"][f"{phase}#{round_ + 1}"] = _compare(ours, theirs)
        result["pl_mean"] = {"ours": float(run.loss.pl_mean), "reference": float(trainer.loss.pl_mean)}
        result["style_mixing"] = [_mixing_cutoff_check(run, trainer, z, c, cutoff, seed)
                                  for cutoff in (1, run.G.num_ws // 2, run.G.num_ws - 1)]
        result["optimisers"] = _optimiser_settings(run, trainer)
    return result


def _optimiser_settings(run, trainer) -> dict:
    theirs = {name: opt for name, _m, opt, _i in trainer.phases}
    pairs = {"G": (run.G_opt, theirs["Gmain"]), "D": (run.D_opt, theirs["Dmain"])}
    out = {}
    for name, (a, b) in pairs.items():
        ga, gb = a.param_groups[0], b.param_groups[0]
        out[name] = {"lr": [ga["lr"], gb["lr"]], "betas": [list(ga["betas"]), list(gb["betas"])],
                     "eps": [ga["eps"], gb["eps"]]}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="an unpacked NVlabs stylegan2-ada-pytorch snapshot")
    parser.add_argument("--res", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = check(args.reference, res=args.res, batch=args.batch, seed=args.seed)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
