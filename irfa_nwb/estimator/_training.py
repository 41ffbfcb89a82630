"""The training loop behind :meth:`IRFA.fit` (generator + discriminator, per-epoch history)."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..errors import InputError
from ..model.generator import HistoryBuffer, PatchDiscriminator
from ..model.losses import PerceptualLoss, adversarial_loss
from ..model.network import IRFANetwork, split_heads
from .persistence import save_model

if TYPE_CHECKING:
    from .irfa import IRFA


class TrainingStep:
    """One generator + discriminator update of IRFA (pix2pix-style conditional GAN).

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
        Update the discriminator on every this many calls.
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
        generator: torch.Generator | None = None,
        mixed_precision: bool = False,
    ) -> None:
        self.network = network
        self.discriminator = discriminator
        self.perceptual = perceptual
        self.weights = (pixel_weight, perceptual_weight, adversarial_weight)
        self.discriminator_every = discriminator_every
        self.buffer = HistoryBuffer(history_size, 0.5, generator=generator)
        self.opt_g = torch.optim.Adam(
            _parameter_groups(network, lr, attention_lr), lr=lr, betas=(0.5, 0.999)
        )
        self.opt_d = (
            torch.optim.Adam(discriminator.parameters(), lr=discriminator_lr, betas=(0.3, 0.999))
            if discriminator is not None
            else None
        )
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
        self.calls = 0

    def autocast(self):
        if not self.mixed_precision:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

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

    def __call__(self, inputs: list[torch.Tensor], target: torch.Tensor) -> dict:
        """Update on one batch; returns the detached losses (``loss_discriminator`` may be None)."""
        pixel_w, perceptual_w, adversarial_w = self.weights
        network, discriminator = self.network, self.discriminator
        with self.autocast():
            features, fake = network.forward_with_attention(inputs)
        fake = fake.float()
        features = features.float()
        c = features.shape[1]
        loss_d = None
        # discriminator: real pairs against (replayed) fake pairs
        if discriminator is not None and self.calls % self.discriminator_every == 0:
            pooled = self.buffer(torch.cat([features.detach(), fake.detach()], dim=1))
            with self.autocast():
                real_logits = discriminator(features.detach(), target)
                fake_logits = discriminator(pooled[:, :c], pooled[:, c:])
            loss_d = 0.5 * (
                adversarial_loss(real_logits.float(), True)
                + adversarial_loss(fake_logits.float(), False)
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
                loss_perc = self.perceptual(fake, target).float()
            loss_g = loss_g + perceptual_w * loss_perc
        if discriminator is not None:
            # The generator must fool D with its image only. The condition is detached as in
            # the discriminator's own update: with gradient through it, the attention layer is
            # pushed to rewrite the conditioning map to please D (seen as the attention
            # collapsing onto a single head), not to reconstruct the image.
            discriminator.requires_grad_(False)
            with self.autocast():
                loss_adv = adversarial_loss(
                    discriminator(features.detach(), fake).float(), True
                )
            discriminator.requires_grad_(True)
            loss_g = loss_g + adversarial_w * loss_adv
        self._update(loss_g, self.opt_g, self.scalers[0])
        self.calls += 1
        return {
            "loss_generator": loss_g.detach(),
            "loss_pixel": loss_pix.detach(),
            "loss_perceptual": loss_perc.detach(),
            "loss_adversarial": loss_adv.detach(),
            "loss_discriminator": loss_d,
        }


def _parameter_groups(network, lr: float, attention_lr: float | None) -> list[dict]:
    """Adam parameter groups: the attention layer at ``attention_lr`` (when given), the rest at
    ``lr``."""
    if attention_lr is None or not hasattr(network, "attention"):
        return [{"params": list(network.parameters())}]
    attention = list(network.attention.parameters())
    ids = {id(p) for p in attention}
    rest = [p for p in network.parameters() if id(p) not in ids]
    return [{"params": rest, "lr": lr}, {"params": attention, "lr": attention_lr}]


def build_networks(
    est: IRFA, head_sizes: list[int]
) -> tuple[IRFANetwork, PatchDiscriminator | None]:
    """Generator network and (when adversarial training is on) discriminator of ``est``."""
    network = IRFANetwork(
        head_sizes,
        est.channels,
        int(est.image_size),
        est.kernel_size,
        attention=est.attention,
        width=est.width,
    )
    discriminator = None
    if est.adversarial_weight > 0:
        discriminator = PatchDiscriminator(est.channels + 3, est.width)
    return network, discriminator


def build_perceptual(est: IRFA) -> PerceptualLoss | None:
    """The perceptual loss module, or None when its weight is 0."""
    if est.perceptual_weight <= 0:
        return None
    return PerceptualLoss(
        layers=est.perceptual_layers,
        input_size=est.perceptual_size,
        allow_download=est.allow_download,
    )


def train(est: IRFA, X: np.ndarray, images: np.ndarray) -> None:
    """Fit ``est`` in place on float32 responses ``X`` and images ``(n, H, W, 3)`` in [0, 1]."""
    from .irfa import resize_images

    device = torch.device(est.device_)
    rng = np.random.default_rng(est.random_state)
    seed = int(rng.integers(2**31 - 1))
    n = X.shape[0]

    # hold out a validation set
    order = rng.permutation(n)
    n_val = int(round(est.validation_fraction * n))
    if est.validation_fraction > 0 and (n_val < 1 or n - n_val < 2):
        raise InputError(
            f"validation_fraction={est.validation_fraction} leaves no usable split of {n} samples"
        )
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    if len(train_idx) < 2:
        raise InputError(f"need at least 2 training samples, got {len(train_idx)}")

    targets = resize_images(images, est.image_size_).transpose(0, 3, 1, 2)
    targets = torch.from_numpy(np.ascontiguousarray(targets))
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
        discriminator_every=est.discriminator_every,
        generator=generator_rng,
        mixed_precision=est.mixed_precision in ("auto", True),
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

    est.network_ = network
    est.discriminator_ = discriminator
    est.history_ = []
    est.n_epochs_ = 0
    best = (math.inf, None)
    since_best = 0

    progress = None
    if est.verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=est.epochs * len(loader), desc="IRFA fit", unit="batch")
    try:
        for epoch in range(1, est.epochs + 1):
            start = time.perf_counter()
            network.train()
            if discriminator is not None:
                discriminator.train()
            sums: dict[str, torch.Tensor] = {}
            d_sum, d_count, batches = torch.zeros((), device=device), 0, 0
            for xb, yb in loader:
                xb = xb.to(device, non_blocking=True)
                yb = yb.to(device, non_blocking=True)
                losses = step(split_heads(xb, index), yb)
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
            est.n_epochs_ = epoch
            if progress is not None:
                loss = record["loss_generator"]
                shown = {"epoch": f"{epoch}/{est.epochs}", "loss": f"{loss:.4f}"}
                if len(val_idx):
                    shown["val"] = f"{record['val_loss']:.4f}"
                progress.set_postfix(shown)
            stop = False
            if est.early_stopping is not None:
                if record["val_loss"] < best[0]:
                    best = (record["val_loss"], copy.deepcopy(network.state_dict()))
                    since_best = 0
                else:
                    since_best += 1
                    stop = since_best >= est.early_stopping
            if est.checkpoint_path is not None:
                save_model(est, est.checkpoint_path, warn_callbacks=False)
            for callback in est.callbacks or ():
                if callback(est, record):
                    stop = True
            if stop:
                break
    finally:
        if progress is not None:
            progress.close()
    if best[1] is not None:
        network.load_state_dict(best[1])
    network.eval()


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
