"""Run under torchrun (2 CPU processes, gloo): a short N2N pre-training whose loss is not finite on rank 1
only, in step 3; each rank writes what it raised to ``OUT.rank<r>.txt``.

Usage: python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_nonfinite_worker.py RUNS OUT
"""

import sys
from pathlib import Path

import torch.distributed as dist

from rcl import train
from rcl.methods import core


def main(runs: str, out: str) -> None:
    dist.init_process_group("gloo")
    rank, real, calls = dist.get_rank(), core.Noise2Noise.forward, []

    def forward(self, batch):
        losses = real(self, batch)
        calls.append(1)
        if rank == 1 and len(calls) == 3:
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    core.Noise2Noise.forward = forward
    cfg = train.make_config("n2n", "smoke", runs_dir=runs, progress="false", batch_size=4, steps=6, log_every=6,
                            checkpoint_every=2)
    try:
        train.pretrain(cfg)
        said = "finished"
    except FloatingPointError as err:
        said = str(err)
    Path(f"{out}.rank{rank}.txt").write_text(said)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
