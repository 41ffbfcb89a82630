"""The training behind :meth:`IRFA.fit`: one step, the epoch loop, checkpoints and resuming.

:class:`TrainingStep` is one generator (+ discriminator) update as the reference code does it;
:class:`Trainer` runs the epochs (one process or data-parallel, see
:mod:`~irfa_nwb.estimator.distributed`), writes checkpoints, stops cleanly on Ctrl-C and
continues from a checkpoint exactly.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ..errors import InputError
from ..model.generator import HistoryBuffer
from ..model.losses import PerceptualLoss, adversarial_loss
from ..model.network import split_heads
from .checkpoint import (
    data_fingerprint,
    flatten_optimizer,
    read_training_state,
    unflatten_optimizer,
)
from .distributed import (
    DistributedContext,
    any_rank,
    distributed_context,
    gather_batch,
    local_part,
    plain_batch_norm,
    synchronise_batch_norm,
)
from .persistence import save_model
from .recipes import reference_momentum
from .state import build_networks

logger = logging.getLogger("irfa_nwb.estimator")

if TYPE_CHECKING:
    from .irfa import IRFA


class TrainingStep:
    """One generator (+ discriminator) update of IRFA, as the reference training loop does it.

    On a batch whose index within the epoch is a multiple of ``discriminator_every``, the
    discriminator is updated first (real pairs against fakes replayed through the history
    buffer, ``0.5 * (BCE(D(fake), 0) + BCE(D(real), 1))``), then the generator (attention
    layer + U-Net) with ``pixel_weight * L1 + perceptual_weight * perceptual +
    adversarial_weight * BCE(D(condition, fake), 1)``.

    Parameters
    ----------
    network : IRFANetwork
        Attention layer + U-Net; must provide ``forward_with_attention``.
    discriminator : PatchDiscriminator or None
        None turns the adversarial term off.
    perceptual : module or None
        ``perceptual(prediction, target)`` → scalar loss; None turns the term off.
    pixel_weight, perceptual_weight, adversarial_weight : float
    lr, discriminator_lr : float
        Adam learning rates (betas (0.5, 0.999) and (0.3, 0.999) as published).
    attention_lr : float, optional
        Learning rate of the attention layer's parameters (default: ``lr``).
    history_size : int
        Capacity of the buffer of past fakes replayed to the discriminator.
    discriminator_every : int
        Update the discriminator on batches whose index within the epoch is a multiple of
        this (the reference: 100, i.e. batches 0, 100, 200, … of every epoch).
    condition_gradient : bool
        Let the generator's adversarial term back-propagate through the discriminator's
        condition (the attention output) as well as through the image (the reference does).
    running_stats : {"reference", "standard"}
        ``"reference"``: batch-norm running statistics end as the reference loop leaves them.
        It runs the attention layer and the U-Net once more per batch in training mode
        (outputs unused), and the U-Net once more on discriminator batches, so their running
        statistics take two (three) updates with the same batch statistics per batch; this is
        reproduced exactly by the equivalent momentum, without the extra passes.
    generator : torch.Generator
        Randomness of the history buffer.
    mixed_precision : bool
        Autocast on CUDA (bfloat16 where supported, else float16 with loss scaling).
    context : DistributedContext, optional
        In a data-parallel job: ``network`` and ``discriminator`` are DDP wrappers, ``target``
        and ``inputs`` this rank's part of the global batch; the history buffer then works on
        the gathered global batch.
    """

    def __init__(
        self,
        network,
        discriminator,
        perceptual,
        *,
        pixel_weight: float,
        perceptual_weight: float,
        adversarial_weight: float,
        lr: float,
        discriminator_lr: float,
        attention_lr: float | None = None,
        history_size: int = 50,
        discriminator_every: int = 1,
        condition_gradient: bool = False,
        running_stats: str = "standard",
        generator: torch.Generator | None = None,
        mixed_precision: bool = False,
        context: DistributedContext | None = None,
    ) -> None:
        self.network = network
        self.discriminator = discriminator
        self.context = context or DistributedContext()
        self.perceptual = perceptual
        self.weights = (pixel_weight, perceptual_weight, adversarial_weight)
        self.discriminator_every = discriminator_every
        self.condition_gradient = bool(condition_gradient)
        self.buffer = HistoryBuffer(history_size, 0.5, generator=generator)
        self.opt_g = torch.optim.Adam(
            _parameter_groups(_unwrapped(network), lr, attention_lr), lr=lr, betas=(0.5, 0.999)
        )
        self.opt_d = (
            torch.optim.Adam(discriminator.parameters(), lr=discriminator_lr, betas=(0.3, 0.999))
            if discriminator is not None
            else None
        )
        if running_stats not in ("reference", "standard"):
            raise ValueError(f"running_stats must be 'reference' or 'standard': {running_stats!r}")
        self.running_stats = running_stats
        self._norms = _batch_norms(_unwrapped(network))
        device = next(network.parameters()).device
        self.device = device
        self.mixed_precision = bool(mixed_precision) and device.type == "cuda"
        self.amp_dtype = None
        self.scalers = (None, None)
        if self.mixed_precision:
            bf16 = torch.cuda.is_bf16_supported()
            self.amp_dtype = torch.bfloat16 if bf16 else torch.float16
            if not bf16:
                self.scalers = (torch.amp.GradScaler("cuda"), torch.amp.GradScaler("cuda"))

    def autocast(self):
        if not self.mixed_precision:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def updates_discriminator(self, batch_index: int) -> bool:
        """Whether the batch at ``batch_index`` (within its epoch) updates the discriminator."""
        return self.discriminator is not None and batch_index % self.discriminator_every == 0

    def _set_momenta(self, d_step: bool) -> None:
        if self.running_stats != "reference":
            return
        attention, unet = self._norms
        for module, base in attention:
            module.momentum = reference_momentum(base, 2)
        for module, base in unet:
            module.momentum = reference_momentum(base, 3 if d_step else 2)

    @staticmethod
    def _update(loss: torch.Tensor, optimizer, scaler) -> None:
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def __call__(
        self,
        inputs: list[torch.Tensor],
        target: torch.Tensor,
        batch_index: int = 0,
        prior: torch.Tensor | None = None,
    ) -> dict:
        """Update on one batch; returns the detached losses (``loss_discriminator`` may be None).

        ``batch_index`` is the batch's position within its epoch (it sets the discriminator
        schedule); ``prior``: the linear prior's images of the batch (``ridge_residual``).
        """
        pixel_w, perceptual_w, adversarial_w = self.weights
        network, discriminator = self.network, self.discriminator
        d_step = self.updates_discriminator(batch_index)
        self._set_momenta(d_step)
        with self.autocast():
            if prior is None:
                features, fake = network(inputs, with_attention=True)
            else:
                features, fake = network(inputs, with_attention=True, prior=prior)
        fake, features = _full(fake), _full(features)
        c = features.shape[1]
        loss_d = None
        # discriminator: real pairs against (replayed) fake pairs
        if d_step:
            ctx = self.context
            pairs = gather_batch(torch.cat([features.detach(), fake.detach()], dim=1), ctx)
            pooled = local_part(self.buffer(pairs), ctx)
            with self.autocast():
                fake_scores = discriminator(pooled[:, :c], pooled[:, c:])
                real_scores = discriminator(features.detach(), target)
            loss_d = 0.5 * (
                adversarial_loss(_full(fake_scores), False)
                + adversarial_loss(_full(real_scores), True)
            )
            self._update(loss_d, self.opt_d, self.scalers[1])
            loss_d = loss_d.detach()
        # generator
        zero = torch.zeros((), device=fake.device)
        loss_pix = F.l1_loss(fake, target)
        loss_perc, loss_adv = zero, zero
        loss_g = pixel_w * loss_pix
        if self.perceptual is not None:
            with self.autocast():
                loss_perc = _full(self.perceptual(fake, target))
            loss_g = loss_g + perceptual_w * loss_perc
        if discriminator is not None:
            # The reference lets this term reach the attention layer through D's condition
            # too (condition_gradient=True); pix2pix practice conditions on a fixed input.
            # through the plain module: D is not updated here, so no gradient reduction
            critic = _unwrapped(discriminator)
            condition = features if self.condition_gradient else features.detach()
            critic.requires_grad_(False)
            with self.autocast():
                loss_adv = adversarial_loss(_full(critic(condition, fake)), True)
            critic.requires_grad_(True)
            loss_g = loss_g + adversarial_w * loss_adv
        self._update(loss_g, self.opt_g, self.scalers[0])
        return {
            "loss_generator": loss_g.detach(),
            "loss_pixel": loss_pix.detach(),
            "loss_perceptual": loss_perc.detach(),
            "loss_adversarial": loss_adv.detach(),
            "loss_discriminator": loss_d,
        }


def _unwrapped(module):
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)


def _full(t: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors (from autocast) in float32; others as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _batch_norms(network) -> tuple[list, list]:
    """(module, configured momentum) of the batch norms of the attention layer and the U-Net."""

    def norms(module) -> list:
        if module is None:
            return []
        return [
            (m, m.momentum)
            for m in module.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.momentum is not None
        ]

    return norms(getattr(network, "attention", None)), norms(getattr(network, "generator", None))


def _parameter_groups(network, lr: float, attention_lr: float | None) -> list[dict]:
    """Adam parameter groups: the attention layer at ``attention_lr`` (when given), the rest at
    ``lr``."""
    if attention_lr is None or not hasattr(network, "attention"):
        return [{"params": list(network.parameters())}]
    attention = list(network.attention.parameters())
    ids = {id(p) for p in attention}
    rest = [p for p in network.parameters() if id(p) not in ids]
    return [{"params": rest, "lr": lr}, {"params": attention, "lr": attention_lr}]


def build_perceptual(est: IRFA) -> PerceptualLoss | None:
    """The perceptual loss module, or None when its weight is 0."""
    if est.perceptual_weight <= 0:
        return None
    return PerceptualLoss(
        layers=est.perceptual_layers,
        input_size=est.perceptual_size,
        allow_download=est.allow_download,
    )


def _split_validation(
    est: IRFA, n: int, stimulus_ids: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows); whole stimuli are held out when they are known."""
    if not est.early_stopping:
        return np.arange(n), np.arange(0)
    if stimulus_ids is not None:
        uniq, inverse = np.unique(stimulus_ids, return_inverse=True)
        n_val = int(round(est.validation_fraction * len(uniq)))
        held = np.zeros(len(uniq), dtype=bool)
        held[rng.permutation(len(uniq))[:n_val]] = True
        is_val = held[inverse]
    else:
        n_val = int(round(est.validation_fraction * n))
        is_val = np.zeros(n, dtype=bool)
        is_val[rng.permutation(n)[:n_val]] = True
    val_idx, train_idx = np.flatnonzero(is_val), np.flatnonzero(~is_val)
    if len(val_idx) < 1 or len(train_idx) < 2:
        raise InputError(
            f"validation_fraction={est.validation_fraction} leaves no usable split of {n} "
            "samples for early stopping; use more data or a larger fraction"
        )
    return train_idx, val_idx


class EpochOrder:
    """The training rows of every batch of every epoch, for this rank.

    The permutation of epoch ``e`` depends only on the seed and ``e`` (as in
    :class:`torch.utils.data.DistributedSampler`), so a resumed fit replays the same batches
    and N processes together see exactly the batches of one process: global batch ``k`` is
    ``perm[k B : (k + 1) B]`` and rank ``r`` takes its positions ``r, r + N, ...``. An
    incomplete last batch is kept when it has at least 2 samples (batch norm cannot train on
    one) and, with several processes, splits evenly between them; otherwise it is dropped.
    """

    def __init__(self, rows: np.ndarray, batch_size: int, seed: int, rank: int, world: int):
        self.rows = np.asarray(rows)
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world = rank, world
        n = len(self.rows)
        last = n % batch_size
        self.n_batches = n // batch_size + (1 if last >= 2 and last % world == 0 else 0)

    def __len__(self) -> int:
        return self.n_batches

    def batches(self, epoch: int, start: int = 0):
        """``(batch index, rows)`` of ``epoch`` from batch ``start`` on."""
        g = torch.Generator().manual_seed(self.seed + epoch)
        perm = self.rows[torch.randperm(len(self.rows), generator=g).numpy()]
        b = self.batch_size
        for k in range(start, self.n_batches):
            yield k, perm[k * b : (k + 1) * b][self.rank :: self.world]


class _Stop(Exception):
    """Raised at a safe point (between batches) when a stop was requested."""


@contextlib.contextmanager
def _interrupt_flag():
    """A flag set by Ctrl-C (SIGINT) instead of an exception, in the main thread.

    A second Ctrl-C raises :class:`KeyboardInterrupt` at once.
    """
    state = {"requested": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        state["requested"] = True
        signal.signal(signal.SIGINT, previous if callable(previous) else signal.default_int_handler)
        logger.warning("interrupt requested: stopping after this batch (Ctrl-C again to "
                       "stop at once)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def _weights(module) -> dict:
    return {k: v.detach().clone() for k, v in _unwrapped(module).state_dict().items()}


class Trainer:
    """The training of one :class:`~irfa_nwb.IRFA` fit, its state, and how to continue it.

    Parameters
    ----------
    est : IRFA
        With ``heads_``, ``head_units_``, ``image_size_``, ``recipe_``, ``device_`` set.
    X : float32 ``(n, n_units)``
        Responses, one row per sample.
    images : float32 ``(m, 3, image_size, image_size)`` in [0, 1]
        The distinct target images (already resized), channels first.
    image_index : int ``(n,)``
        The image of every row (so repeated presentations share one image in memory).
    stimulus_ids : ``(n,)``, optional
        Stimulus of every row; validation holds out whole stimuli.
    """

    def __init__(
        self,
        est: IRFA,
        X: np.ndarray,
        images: np.ndarray,
        image_index: np.ndarray,
        stimulus_ids: np.ndarray | None = None,
    ) -> None:
        self.est = est
        self.ctx = distributed_context(est.distributed, est.device_)
        device = self.device = torch.device(est.device_)
        rng = np.random.default_rng(est.random_state)
        self.seed = int(rng.integers(2**31 - 1))
        self.train_idx, self.val_idx = _split_validation(est, X.shape[0], stimulus_ids, rng)
        self.n_epochs = est._n_epochs()
        self.fingerprint = data_fingerprint(X, image_index, images)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            network, discriminator = build_networks(est, [len(i) for i in est.head_units_])
        self.network = network.to(device)
        self.discriminator = discriminator.to(device) if discriminator is not None else None
        self.dtype = next(self.network.parameters()).dtype
        self._sync_bn: list[dict] = []
        wrapped_net, wrapped_disc = self.network, self.discriminator
        if self.ctx.enabled:
            if est.batch_size % self.ctx.world_size:
                raise InputError(
                    f"batch_size={est.batch_size} is the global batch and must split evenly "
                    f"over the {self.ctx.world_size} processes"
                )
            ids = [device.index] if device.type == "cuda" else None
            self._sync_bn.append(synchronise_batch_norm(self.network, str(device)))
            wrapped_net = DistributedDataParallel(self.network, device_ids=ids)
            if self.discriminator is not None:
                self._sync_bn.append(synchronise_batch_norm(self.discriminator, str(device)))
                wrapped_disc = DistributedDataParallel(self.discriminator, device_ids=ids)
        if est.compile and device.type == "cuda":
            self.network.generator = torch.compile(self.network.generator)
        perceptual = build_perceptual(est)
        self.perceptual = perceptual.to(device) if perceptual is not None else None
        self.buffer_rng = torch.Generator().manual_seed(self.seed)
        self.step = TrainingStep(
            wrapped_net,
            wrapped_disc,
            self.perceptual,
            pixel_weight=est.pixel_weight,
            perceptual_weight=est.perceptual_weight,
            adversarial_weight=est.adversarial_weight,
            lr=est.lr,
            discriminator_lr=est.discriminator_lr,
            attention_lr=est.attention_lr,
            history_size=est.history_size,
            discriminator_every=est.recipe_["discriminator_every"],
            condition_gradient=est.recipe_["condition_gradient"],
            running_stats=est.recipe_["running_stats"],
            generator=self.buffer_rng,
            mixed_precision=est.recipe_["mixed_precision"] in ("auto", True),
            context=self.ctx,
        )
        est.mixed_precision_ = self.step.mixed_precision
        self.order = EpochOrder(
            self.train_idx, min(est.batch_size, len(self.train_idx)), self.seed,
            self.ctx.rank, self.ctx.world_size,
        )
        self._place_data(X, images, image_index)
        self.priors = self._linear_prior(X, images, image_index, stimulus_ids)
        self.noise_scale = None
        if est.response_noise > 0:
            std = X[self.train_idx].std(axis=0) if len(self.train_idx) > 1 else np.ones(X.shape[1])
            self.noise_scale = torch.as_tensor(est.response_noise * std, dtype=self.dtype,
                                               device=device)
        self.index = [torch.as_tensor(i, device=device) for i in est.head_units_]
        # progress
        self.epoch = 0  # epochs finished
        self.batch = 0  # batches finished in the current epoch
        self.history: list[dict] = []
        self.best_val = math.inf
        self.best_state: dict | None = None
        self.since_best = 0
        self.sums: dict[str, torch.Tensor] = {}
        self.epoch_weights = (_weights(self.network), None if self.discriminator is None
                              else _weights(self.discriminator))

    # ------------------------------------------------------------------ data
    def _place_data(self, X: np.ndarray, images: np.ndarray, image_index: np.ndarray) -> None:
        """Keep the training data on the GPU when it fits comfortably, else pinned on the host.

        Images are stored once (``images``); rows index them (``image_index``).
        """
        responses = torch.from_numpy(np.ascontiguousarray(X)).to(self.dtype)
        targets = torch.from_numpy(np.ascontiguousarray(images))  # (m, 3, H, W)
        targets = targets.to(self.dtype)
        index = torch.from_numpy(np.asarray(image_index, dtype=np.int64))
        size = responses.nbytes + targets.nbytes
        on_device = self.device.type != "cuda"
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            on_device = size < 0.25 * free
            if not on_device:
                responses, targets = responses.pin_memory(), targets.pin_memory()
        if on_device:
            responses, targets = responses.to(self.device), targets.to(self.device)
        self.responses, self.targets, self.image_index = responses, targets, index
        self.data_on_device = on_device
        logger.info("training data: %.0f MiB %s", size / 2**20,
                    "on the device" if on_device else "pinned on the host")

    def _linear_prior(self, X: np.ndarray, images: np.ndarray, image_index: np.ndarray,
                      stimulus_ids: np.ndarray | None) -> torch.Tensor | None:
        """``ridge_residual``: fit the network's ridge map on the training rows and return every
        row's prior image (out-of-fold for training rows, so that they carry the errors of a
        new stimulus; the full map for validation rows)."""
        est = self.est
        if not est.ridge_residual:
            est.ridge_alpha_ = None
            return None
        from .ridge import apply_ridge_map, out_of_fold_ridge

        order = np.concatenate(est.head_units_)
        Xh = np.asarray(X, dtype=np.float64)[:, order]
        rows = self.train_idx
        flat = images.reshape(len(images), -1)
        groups = (np.asarray(stimulus_ids)[rows] if stimulus_ids is not None
                  else np.asarray(image_index)[rows])
        oof, full = out_of_fold_ridge(Xh[rows], flat[image_index[rows]], groups=groups)
        priors = np.empty((X.shape[0], flat.shape[1]), dtype=np.float32)
        priors[rows] = oof
        if len(self.val_idx):
            priors[self.val_idx] = apply_ridge_map(Xh[self.val_idx], *full[:4])
        self.network.set_prior(*full[:4])
        est.ridge_alpha_ = float(full[4])
        logger.info("ridge_residual: ridge map fitted (alpha %.3g), out-of-fold priors for %d "
                    "training rows", full[4], len(rows))
        priors_t = torch.from_numpy(priors).to(self.dtype)
        return priors_t.to(self.device) if self.data_on_device else priors_t

    def _batch(
        self, rows: np.ndarray, position: tuple[int, int] = (0, 0)
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """Responses (per head), target images and (``ridge_residual``) prior images of
        ``rows``; with ``response_noise``, noise drawn from a generator seeded by the seed and
        ``position`` (epoch, batch), so a resumed fit draws the same noise."""
        rows_t = torch.from_numpy(rows)
        images = self.image_index[rows_t]
        if self.data_on_device:
            rows_t, images = rows_t.to(self.device), images.to(self.device)
        xb = self.responses[rows_t].to(self.device, non_blocking=True)
        yb = self.targets[images].to(self.device, non_blocking=True)
        prior = None
        if self.priors is not None:
            prior = self.priors[rows_t].to(self.device, non_blocking=True)
            prior = prior.reshape(len(rows), *yb.shape[1:])
        if self.noise_scale is not None:
            epoch, batch = position
            g = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + epoch * 100_003 + batch * 101 + self.ctx.rank)
                % (2**63 - 1)
            )
            noise = torch.randn(xb.shape, generator=g, dtype=xb.dtype).to(self.device)
            xb = xb + noise * self.noise_scale
        return split_heads(xb, self.index), yb, prior

    # ------------------------------------------------------------------ state
    def state(self, *, mid_epoch: bool) -> tuple[dict, dict]:
        """Tensors and plain values that, with the model weights, let a fit continue."""
        tensors: dict[str, torch.Tensor] = {}
        plain: dict = {
            "version": 1,
            "epoch": self.epoch,
            "batch": self.batch if mid_epoch else 0,
            "n_epochs": self.n_epochs,
            "seed": self.seed,
            "fingerprint": self.fingerprint,
            "best_val": self.best_val if math.isfinite(self.best_val) else None,
            "since_best": self.since_best,
            "history": self.history,
            "world_size": self.ctx.world_size,
            "n_buffer": len(self.step.buffer.items),
            "sums": {k: float(v) for k, v in self.sums.items()} if mid_epoch else {},
        }
        flatten_optimizer("opt_g", self.step.opt_g.state_dict(), tensors, plain)
        if self.step.opt_d is not None:
            flatten_optimizer("opt_d", self.step.opt_d.state_dict(), tensors, plain)
        plain["scalers"] = [None if s is None else s.state_dict() for s in self.step.scalers]
        if self.step.buffer.items:
            tensors["buffer"] = torch.stack(self.step.buffer.items)
        tensors["rng.buffer"] = self.buffer_rng.get_state()
        if self.best_state is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        if mid_epoch:  # the weights to continue from (the model of the file is the last epoch's)
            tensors.update({f"resume.network.{k}": v for k, v in _weights(self.network).items()})
            if self.discriminator is not None:
                tensors.update({f"resume.discriminator.{k}": v
                                for k, v in _weights(self.discriminator).items()})
        return tensors, plain

    def load(self, tensors: dict, plain: dict) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint`."""
        if plain.get("fingerprint") != self.fingerprint:
            raise InputError(
                "the checkpoint was written for other training data (responses, images or "
                "their pairing differ); resume with the data of the interrupted fit"
            )
        if plain.get("seed") != self.seed:
            raise InputError("the checkpoint was written with another random_state")
        mid = plain["batch"] > 0

        def part(prefix: str) -> dict:
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        net = part("resume.network.") if mid else tensors["__network__"]
        self.network.load_state_dict(net)
        if self.discriminator is not None:
            disc = part("resume.discriminator.") if mid else tensors["__discriminator__"]
            self.discriminator.load_state_dict(disc)
        self.step.opt_g.load_state_dict(unflatten_optimizer("opt_g", tensors, plain))
        if self.step.opt_d is not None:
            self.step.opt_d.load_state_dict(unflatten_optimizer("opt_d", tensors, plain))
        for scaler, state in zip(self.step.scalers, plain["scalers"], strict=True):
            if scaler is not None and state is not None:
                scaler.load_state_dict(state)
        buffer = tensors.get("buffer")
        self.step.buffer.items = [] if buffer is None else [
            b.to(self.device) for b in buffer.unbind(0)]
        self.buffer_rng.set_state(tensors["rng.buffer"])
        best = part("best.")
        self.best_state = best or None
        self.best_val = math.inf if plain["best_val"] is None else plain["best_val"]
        self.since_best = plain["since_best"]
        self.history = list(plain["history"])
        self.epoch, self.batch = plain["epoch"], plain["batch"]
        self.sums = {k: torch.tensor(v, device=self.device) for k, v in plain["sums"].items()}
        self.epoch_weights = (tensors["__network__"], tensors["__discriminator__"] or None)
        logger.info("resuming at epoch %d, batch %d", self.epoch + 1, self.batch)

    def save_checkpoint(self, *, mid_epoch: bool) -> None:
        """Write the checkpoint (rank 0 only; atomic, so a kill mid-write keeps the old one)."""
        if self.est.checkpoint_path is None or not self.ctx.is_main:
            return
        self._publish(final=False)
        state = self.state(mid_epoch=mid_epoch)  # holds the current weights to resume from
        current = _weights(self.network)
        if mid_epoch:  # the file's model is the last finished epoch's
            self.network.load_state_dict(self.epoch_weights[0])
        try:
            save_model(self.est, self.est.checkpoint_path, overwrite=True, warn_callbacks=False,
                       training_state=state)
        finally:
            if mid_epoch:
                self.network.load_state_dict(current)

    # ------------------------------------------------------------------ loop
    def _epoch_record(self, n_batches: int, d_count: int) -> dict:
        sums = dict(self.sums)
        if self.ctx.enabled and sums:  # global means over the ranks' local losses
            keys = sorted(sums)
            t = torch.stack([sums[k].to(self.device, torch.float64) for k in keys])
            dist.all_reduce(t)
            sums = {k: t[i] / self.ctx.world_size for i, k in enumerate(keys)}
        record: dict = {"epoch": self.epoch + 1}
        d = sums.pop("loss_discriminator", None)
        record.update({k: float(v) / max(n_batches, 1) for k, v in sums.items()})
        record["loss_discriminator"] = (
            float(d) / d_count if d_count and d is not None else float("nan")
        )
        return record

    def run(self) -> None:
        """Train until ``max_iter`` epochs, early stopping, a callback or an interrupt."""
        est, ctx = self.est, self.ctx
        progress = None
        if est.verbose and ctx.is_main:
            from tqdm.auto import tqdm

            progress = tqdm(total=self.n_epochs * len(self.order), desc="IRFA fit", unit="batch",
                            initial=self.epoch * len(self.order) + self.batch)
        self._publish(final=False)
        try:
            with _interrupt_flag() as interrupt:
                while self.epoch < self.n_epochs:
                    if self._one_epoch(interrupt, progress):
                        break
        except _Stop:
            self.save_checkpoint(mid_epoch=True)
            self._interrupted("after a completed batch")
        except KeyboardInterrupt:
            self._interrupted("mid-batch")
        finally:
            if progress is not None:
                progress.close()
        if self.best_state is not None and not est.interrupted_:
            self.network.load_state_dict(self.best_state)
        self._publish(final=True)

    def _one_epoch(self, interrupt: dict, progress) -> bool:
        """Run (the rest of) one epoch; True when training should stop."""
        est, ctx = self.est, self.ctx
        start = time.perf_counter()
        self.network.train()
        if self.discriminator is not None:
            self.discriminator.train()
        d_count = int(self.sums.get("_d_count", torch.zeros(())).item()) if self.sums else 0
        self.sums.pop("_d_count", None)
        for batch_index, rows in self.order.batches(self.epoch, self.batch):
            inputs, target, prior = self._batch(rows, (self.epoch, batch_index))
            if prior is None:
                losses = self.step(inputs, target, batch_index)
            else:
                losses = self.step(inputs, target, batch_index, prior=prior)
            loss_d = losses.pop("loss_discriminator")
            if loss_d is not None:
                losses["loss_discriminator"] = loss_d
                d_count += 1
            for key, value in losses.items():
                self.sums[key] = self.sums.get(key, 0.0) + value
            self.batch = batch_index + 1
            if progress is not None:
                progress.update(1)
            requested = interrupt["requested"]
            if ctx.enabled and (self.batch % _SYNC_EVERY == 0 or self.batch == len(self.order)):
                requested = any_rank(requested, ctx, self.device)
            if requested and (not ctx.enabled or self.batch % _SYNC_EVERY == 0
                              or self.batch == len(self.order)):
                self.sums["_d_count"] = torch.tensor(float(d_count))
                raise _Stop
        record = self._epoch_record(len(self.order), d_count)
        record["val_loss"] = (
            _validation_loss(est, self.network, self.perceptual, self.responses,
                             self.targets, self.image_index, self.val_idx, self.index,
                             self.device)
            if len(self.val_idx) else float("nan")
        )
        record["time"] = time.perf_counter() - start
        self.history.append(record)
        self.epoch += 1
        self.batch = 0
        self.sums = {}
        self.epoch_weights = (_weights(self.network), None if self.discriminator is None
                              else _weights(self.discriminator))
        if ctx.is_main:
            logger.info("epoch %d/%d: loss %.4f, val %.4f, %.1f s", self.epoch, self.n_epochs,
                        record["loss_generator"], record["val_loss"], record["time"])
        if progress is not None:
            shown = {"epoch": f"{self.epoch}/{self.n_epochs}",
                     "loss": f"{record['loss_generator']:.4f}"}
            if len(self.val_idx):
                shown["val"] = f"{record['val_loss']:.4f}"
            progress.set_postfix(shown)
        stop = False
        if est.early_stopping:
            if record["val_loss"] < self.best_val - est.tol:
                self.best_val = record["val_loss"]
                self.best_state = _weights(self.network)
                self.since_best = 0
            else:
                self.since_best += 1
                stop = self.since_best >= est.n_iter_no_change
        self.save_checkpoint(mid_epoch=False)
        if ctx.is_main:
            self._publish(final=False)
            for callback in est.callbacks or ():
                if callback(est, record):
                    stop = True
        return any_rank(stop, ctx, self.device)

    def _interrupted(self, where: str) -> None:
        """Back to the last finished epoch's weights, marked as interrupted."""
        self.network.load_state_dict(self.epoch_weights[0])
        if self.discriminator is not None and self.epoch_weights[1] is not None:
            self.discriminator.load_state_dict(self.epoch_weights[1])
        self.est.interrupted_ = True
        where_saved = (f"; resume with fit(..., resume_from={str(self.est.checkpoint_path)!r})"
                       if self.est.checkpoint_path is not None else "")
        warnings.warn(
            f"IRFA fit interrupted ({where}) during epoch {self.epoch + 1}; the model holds the "
            f"weights after epoch {self.epoch} of {self.n_epochs} (interrupted_ is True)"
            f"{where_saved}",
            UserWarning,
            stacklevel=4,
        )

    def _publish(self, *, final: bool) -> None:
        """Expose the state on the estimator (plain modules after the fit)."""
        est = self.est
        if final:
            for module, originals in zip((self.network, self.discriminator), self._sync_bn,
                                         strict=False):
                if module is not None:
                    plain_batch_norm(module, originals)
            self.network.eval()
            self.ctx.close()
        est.network_ = self.network
        est.discriminator_ = self.discriminator
        est.history_ = list(self.history)
        est.n_iter_ = self.epoch


#: in a data-parallel job, ranks agree on a Ctrl-C every this many batches (one tiny collective)
_SYNC_EVERY = 20


def train(
    est: IRFA,
    X: np.ndarray,
    images: np.ndarray,
    image_index: np.ndarray,
    stimulus_ids: np.ndarray | None = None,
    resume_from=None,
) -> None:
    """Fit ``est`` in place (see :class:`Trainer`), from scratch or from a checkpoint."""
    est.interrupted_ = False
    trainer = Trainer(est, X, images, image_index, stimulus_ids)
    if resume_from is not None:
        _params, tensors, plain = read_training_state(resume_from)
        trainer.load(tensors, plain)
    trainer.run()


def _validation_loss(est, network, perceptual, X, images, image_index, rows, index,
                     device) -> float:
    """Weighted pixel + perceptual loss on held-out rows (no adversarial term)."""
    network.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), 64):
            r = torch.as_tensor(rows[start : start + 64])
            xb = X[r.to(X.device)].to(device)
            yb = images[image_index[r].to(images.device)].to(device)
            fake = _full(network(split_heads(xb, index)))
            loss = est.pixel_weight * F.l1_loss(fake, yb)
            if perceptual is not None:
                loss = loss + est.perceptual_weight * perceptual(fake, yb)
            total += float(loss) * len(xb)
            count += len(xb)
    network.train()
    return total / count
