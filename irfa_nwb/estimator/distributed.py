"""Data-parallel training on ``torch.distributed`` (``torchrun``): DDP, NCCL on GPUs, gloo on CPUs.

Launch any script that calls ``IRFA(...).fit(X, y)`` (or ``irfa-nwb fit``) with ``torchrun
--nproc-per-node N`` (``--nnodes M --rdzv-endpoint HOST:PORT`` across nodes): ``fit`` sees the
``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` variables torchrun sets, joins the process group
(initialising it when the script has not), and trains one model across all processes:

- the generator network and the discriminator are each wrapped in
  :class:`~torch.nn.parallel.DistributedDataParallel`; the frozen perceptual network is not;
- batch norm is synchronised across processes (:class:`torch.nn.SyncBatchNorm` on GPUs; on
  CPUs, where PyTorch's SyncBatchNorm does not run, :class:`DistributedBatchNorm` computes the
  same statistics with differentiable ``torch.distributed`` all-reduces);
- ``batch_size`` is the **global** batch: each of the N processes takes ``batch_size / N``
  samples of every batch, so the published batch of 8 is reachable on 1, 2, 4 or 8
  processes and the result does not depend on N (to rounding);
- every process sees its own shard of every epoch's permutation (the permutation depends only
  on the seed and the epoch, as in :class:`torch.utils.data.DistributedSampler`);
- the discriminator's history buffer works on the whole global batch, in the same order as in
  one process, with the same random draws on every rank;
- logging, progress bars, checkpoints and callbacks run on rank 0 only; after ``fit`` every
  rank holds identical weights.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import InputError

logger = logging.getLogger("irfa_nwb.estimator")

#: how long a collective may wait before the job fails instead of hanging
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=10)


@dataclass
class DistributedContext:
    """Where this process stands in a (possibly single-process) training job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        """Destroy the process group when this fit created it (a clean exit under torchrun)."""
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def launched_distributed() -> bool:
    """Whether this process was started by torchrun (or another launcher) with several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """False on the ranks other than 0 of a torchrun job (they write nothing)."""
    return int(os.environ.get("RANK", "0")) == 0


def distributed_context(mode: str | bool, device: str) -> DistributedContext:
    """Join (or start) the process group when asked and launched so.

    Parameters
    ----------
    mode : {"auto", True, False}
        "auto": distributed when launched with ``WORLD_SIZE > 1``; True: required; False: a
        single process even under torchrun.
    device : str
        The resolved device: ``"cuda:<local rank>"`` uses NCCL, a CPU uses gloo.
    """
    if mode is False or (mode == "auto" and not launched_distributed()):
        return DistributedContext()
    if not dist.is_available():
        raise InputError("torch.distributed is not available in this PyTorch build")
    if not launched_distributed() and not dist.is_initialized():
        raise InputError(
            "distributed=True but this process was not launched by torchrun (WORLD_SIZE is "
            "not set above 1); run it with `torchrun --nproc-per-node N ...`"
        )
    initialized_here = False
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        kwargs = {"device_id": torch.device(device)} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT, **kwargs)
        initialized_here = True
    ctx = DistributedContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        initialized_here=initialized_here,
    )
    logger.info("distributed training: rank %d of %d (%s)", ctx.rank, ctx.world_size,
                dist.get_backend())
    return ctx


class DistributedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose batch statistics are those of the global batch (CPU processes).

    The same computation as :class:`torch.nn.SyncBatchNorm` (which PyTorch runs on GPUs only):
    per-channel sums and sums of squares are all-reduced (differentiably, so gradients flow
    across processes), normalisation uses the global mean and biased variance, and running
    statistics take the global unbiased variance. Outside training, or in a single process,
    it is plain batch norm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        # differentiable all-reduce (the one torch.distributed.nn.functional now points to)
        from torch.distributed._functional_collectives import all_reduce

        dims = [0, *range(2, x.dim())]
        count = torch.tensor(float(x.numel() // x.shape[1]), dtype=x.dtype, device=x.device)
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), count.view(1)])
        stats = all_reduce(stats, "sum", dist.group.WORLD)
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = stats[c : 2 * c] / n - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else \
                    1.0 / float(self.num_batches_tracked)
                unbiased = var * n / (n - 1)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        out = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def synchronise_batch_norm(module: nn.Module, device: str) -> dict[str, type]:
    """Swap every batch norm of ``module`` (in place) for one with global statistics.

    :class:`torch.nn.SyncBatchNorm` on GPUs, :class:`DistributedBatchNorm` on CPUs. Returns the
    original class of every swapped layer by qualified name, for :func:`plain_batch_norm`.
    """
    originals: dict[str, type] = {}
    sync = nn.SyncBatchNorm if device.startswith("cuda") else DistributedBatchNorm
    for name, child in list(module.named_modules()):
        if not isinstance(child, nn.modules.batchnorm._BatchNorm) or isinstance(child, sync):
            continue
        originals[name] = type(child)
        _replace(module, name, _rebuilt(sync, child))
    return originals


def plain_batch_norm(module: nn.Module, originals: dict[str, type]) -> None:
    """Undo :func:`synchronise_batch_norm` (in place): the original classes, same state."""
    for name, cls in originals.items():
        _replace(module, name, _rebuilt(cls, module.get_submodule(name)))


def _rebuilt(cls: type, old: nn.Module) -> nn.Module:
    new = cls(old.num_features, old.eps, old.momentum, old.affine, old.track_running_stats)
    new.load_state_dict(old.state_dict())
    ref = old.running_mean if old.running_mean is not None else old.weight
    new.to(device=ref.device, dtype=ref.dtype)
    new.train(old.training)
    return new


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, leaf, new)


def gather_batch(local: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """The global batch in single-process order from every rank's local part.

    Rank ``r`` holds the samples at global positions ``r, r + N, r + 2N, ...`` of the batch
    (the interleaving of a distributed sampler); the result puts them back in order.
    """
    if not ctx.enabled:
        return local
    parts = [torch.empty_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(parts, local.contiguous())
    stacked = torch.stack(parts, dim=1)  # (local n, ranks, ...)
    return stacked.reshape(-1, *local.shape[1:])


def local_part(global_batch: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """This rank's samples of a global batch (positions ``rank, rank + N, ...``)."""
    if not ctx.enabled:
        return global_batch
    return global_batch[ctx.rank :: ctx.world_size]


def any_rank(flag: bool, ctx: DistributedContext, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (a collective)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


__all__ = [
    "COLLECTIVE_TIMEOUT",
    "DistributedBatchNorm",
    "DistributedContext",
    "any_rank",
    "distributed_context",
    "gather_batch",
    "is_main_process",
    "launched_distributed",
    "local_part",
    "plain_batch_norm",
    "synchronise_batch_norm",
]
