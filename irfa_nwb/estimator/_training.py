"""The training loop behind :meth:`IRFA.fit` (generator + discriminator, per-epoch history)."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..errors import InputError
from ..model.generator import HistoryBuffer
from ..model.losses import PerceptualLoss, adversarial_loss
from ..model.network import split_heads
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
    ) -> None:
        self.network = network
        self.discriminator = discriminator
        self.perceptual = perceptual
        self.weights = (pixel_weight, perceptual_weight, adversarial_weight)
        self.discriminator_every = discriminator_every
        self.condition_gradient = bool(condition_gradient)
        self.buffer = HistoryBuffer(history_size, 0.5, generator=generator)
        self.opt_g = torch.optim.Adam(
            _parameter_groups(network, lr, attention_lr), lr=lr, betas=(0.5, 0.999)
        )
        self.opt_d = (
            torch.optim.Adam(discriminator.parameters(), lr=discriminator_lr, betas=(0.3, 0.999))
            if discriminator is not None
            else None
        )
        if running_stats not in ("reference", "standard"):
            raise ValueError(f"running_stats must be 'reference' or 'standard': {running_stats!r}")
        self.running_stats = running_stats
        self._norms = _batch_norms(network)
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
        self, inputs: list[torch.Tensor], target: torch.Tensor, batch_index: int = 0
    ) -> dict:
        """Update on one batch; returns the detached losses (``loss_discriminator`` may be None).

        ``batch_index`` is the batch's position within its epoch (it sets the discriminator
        schedule).
        """
        pixel_w, perceptual_w, adversarial_w = self.weights
        network, discriminator = self.network, self.discriminator
        d_step = self.updates_discriminator(batch_index)
        self._set_momenta(d_step)
        with self.autocast():
            features, fake = network.forward_with_attention(inputs)
        fake, features = _full(fake), _full(features)
        c = features.shape[1]
        loss_d = None
        # discriminator: real pairs against (replayed) fake pairs
        if d_step:
            pooled = self.buffer(torch.cat([features.detach(), fake.detach()], dim=1))
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
            condition = features if self.condition_gradient else features.detach()
            discriminator.requires_grad_(False)
            with self.autocast():
                loss_adv = adversarial_loss(_full(discriminator(condition, fake)), True)
            discriminator.requires_grad_(True)
            loss_g = loss_g + adversarial_w * loss_adv
        self._update(loss_g, self.opt_g, self.scalers[0])
        return {
            "loss_generator": loss_g.detach(),
            "loss_pixel": loss_pix.detach(),
            "loss_perceptual": loss_perc.detach(),
            "loss_adversarial": loss_adv.detach(),
            "loss_discriminator": loss_d,
        }


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


def train(
    est: IRFA, X: np.ndarray, targets: np.ndarray, stimulus_ids: np.ndarray | None = None
) -> None:
    """Fit ``est`` in place.

    Parameters
    ----------
    est : IRFA
        With ``heads_``, ``head_units_``, ``image_size_``, ``recipe_``, ``device_`` set.
    X : float32 ``(n, n_units)``
    targets : float32 ``(n, image_size, image_size, 3)`` in [0, 1]
    stimulus_ids : ``(n,)``, optional
        Stimulus of every row; validation holds out whole stimuli.
    """
    device = torch.device(est.device_)
    rng = np.random.default_rng(est.random_state)
    seed = int(rng.integers(2**31 - 1))
    n = X.shape[0]
    train_idx, val_idx = _split_validation(est, n, stimulus_ids, rng)

    # (n, 3, s, s) view for torch: one float32 copy of the targets, made once
    targets = torch.from_numpy(np.ascontiguousarray(targets.transpose(0, 3, 1, 2)))
    responses = torch.from_numpy(np.ascontiguousarray(X))
    index = [torch.as_tensor(i, device=device) for i in est.head_units_]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network, discriminator = build_networks(est, [len(i) for i in est.head_units_])
        network = network.to(device)
        if discriminator is not None:
            discriminator = discriminator.to(device)
    perceptual = build_perceptual(est)
    if perceptual is not None:
        perceptual = perceptual.to(device)

    generator_rng = torch.Generator().manual_seed(seed)
    step = TrainingStep(
        network,
        discriminator,
        perceptual,
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
        generator=generator_rng,
        mixed_precision=est.recipe_["mixed_precision"] in ("auto", True),
    )
    est.mixed_precision_ = step.mixed_precision

    bs = min(est.batch_size, len(train_idx))
    loader = DataLoader(
        TensorDataset(responses[train_idx], targets[train_idx]),
        batch_size=bs,
        shuffle=True,
        generator=generator_rng,
        num_workers=est.num_workers,
        drop_last=len(train_idx) % bs == 1,  # BatchNorm cannot train on a batch of 1
        pin_memory=device.type == "cuda",
    )

    n_epochs = est._n_epochs()
    est.network_ = network
    est.discriminator_ = discriminator
    est.history_ = []
    est.n_iter_ = 0
    est.interrupted_ = False
    best = (math.inf, None)
    since_best = 0
    finished = _snapshot(network, discriminator)

    progress = None
    if est.verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=n_epochs * len(loader), desc="IRFA fit", unit="batch")
    try:
        for epoch in range(1, n_epochs + 1):
            start = time.perf_counter()
            network.train()
            if discriminator is not None:
                discriminator.train()
            sums: dict[str, torch.Tensor] = {}
            d_sum, d_count, batches = torch.zeros((), device=device), 0, 0
            for batch_index, (xb, yb) in enumerate(loader):
                xb = xb.to(device, non_blocking=True)
                yb = yb.to(device, non_blocking=True)
                losses = step(split_heads(xb, index), yb, batch_index)
                loss_d = losses.pop("loss_discriminator")
                if loss_d is not None:
                    d_sum = d_sum + loss_d
                    d_count += 1
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + value
                batches += 1
                if progress is not None:
                    progress.update(1)
            record = {"epoch": epoch}
            record.update({k: float(v) / max(batches, 1) for k, v in sums.items()})
            record["loss_discriminator"] = float(d_sum) / d_count if d_count else float("nan")
            record["val_loss"] = (
                _validation_loss(est, network, perceptual, responses[val_idx],
                                 targets[val_idx], index, device)
                if len(val_idx)
                else float("nan")
            )
            record["time"] = time.perf_counter() - start
            est.history_.append(record)
            est.n_iter_ = epoch
            finished = _snapshot(network, discriminator)
            logger.info(
                "epoch %d/%d: loss %.4f, val %.4f, %.1f s",
                epoch, n_epochs, record["loss_generator"], record["val_loss"], record["time"],
            )
            if progress is not None:
                shown = {"epoch": f"{epoch}/{n_epochs}", "loss": f"{record['loss_generator']:.4f}"}
                if len(val_idx):
                    shown["val"] = f"{record['val_loss']:.4f}"
                progress.set_postfix(shown)
            stop = False
            if est.early_stopping:
                if record["val_loss"] < best[0] - est.tol:
                    best = (record["val_loss"], copy.deepcopy(network.state_dict()))
                    since_best = 0
                else:
                    since_best += 1
                    stop = since_best >= est.n_iter_no_change
            if est.checkpoint_path is not None:
                save_model(est, est.checkpoint_path, overwrite=True, warn_callbacks=False)
            for callback in est.callbacks or ():
                if callback(est, record):
                    stop = True
            if stop:
                break
    except KeyboardInterrupt:
        # stop at a safe point: the weights of the last finished epoch, marked as interrupted
        _restore(network, discriminator, finished)
        est.interrupted_ = True
        warnings.warn(
            f"IRFA fit interrupted during epoch {est.n_iter_ + 1}; the model holds the weights "
            f"after epoch {est.n_iter_} of {n_epochs} (interrupted_ is True)",
            UserWarning,
            stacklevel=3,
        )
    finally:
        if progress is not None:
            progress.close()
    if best[1] is not None and not est.interrupted_:
        network.load_state_dict(best[1])
    network.eval()


def _snapshot(network, discriminator) -> tuple[dict, dict | None]:
    """Copies of the weights (to return to when a fit is interrupted mid-epoch)."""
    copy_of = lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()}  # noqa: E731
    return copy_of(network), None if discriminator is None else copy_of(discriminator)


def _restore(network, discriminator, snapshot) -> None:
    network.load_state_dict(snapshot[0])
    if discriminator is not None and snapshot[1] is not None:
        discriminator.load_state_dict(snapshot[1])


def _validation_loss(est, network, perceptual, X, Y, index, device) -> float:
    """Weighted pixel + perceptual loss on held-out data (no adversarial term)."""
    network.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(X), 64):
            xb = X[start : start + 64].to(device)
            yb = Y[start : start + 64].to(device)
            fake = network(split_heads(xb, index)).float()
            loss = est.pixel_weight * F.l1_loss(fake, yb)
            if perceptual is not None:
                loss = loss + est.perceptual_weight * perceptual(fake, yb)
            total += float(loss) * len(xb)
            count += len(xb)
    network.train()
    return total / count
