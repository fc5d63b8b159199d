"""Run under torchrun (2 CPU processes, gloo): one DDP step of a method; rank 0 saves loss and gradients.

Usage: python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py METHOD OUT.pt [KEY=VALUE ...]
"""

import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from rcl import train


def main(method: str, out: str, *sets: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    cfg = train.make_config(method, "smoke", batch_size=4, progress="false", **dict(s.split("=", 1) for s in sets))
    ds = train.build_data(cfg)
    m = train.build_method(cfg, ds)
    ddp = DDP(m, find_unused_parameters=True)
    losses = ddp(train.build_batch(ds, cfg, 0, rank, world))
    losses["loss"].backward()
    value = losses["loss"].detach()
    dist.all_reduce(value, op=dist.ReduceOp.AVG)
    if rank == 0:
        grads = {n: p.grad.clone() for n, p in m.model.named_parameters() if p.grad is not None}
        torch.save({"loss": value, "grads": grads}, out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
