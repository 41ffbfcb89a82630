"""The IRFA estimator: scikit-learn style ``fit`` / ``predict`` around the PyTorch model."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ..errors import InputError
from ._inputs import Responses, as_images, as_responses, head_layout

_NOT_FITTED = (
    "This IRFA instance is not fitted yet. Call 'fit' with responses and images first, or load "
    "a saved model with irfa_nwb.load_model(path)."
)


def _torch():
    import torch

    return torch


class IRFA(BaseEstimator):
    """Inverse receptive field attention: reconstruct seen images from neural responses.

    A multi-head attention layer (one head per electrode group) places the responses into an
    image-shaped feature map; a U-Net turns it into an RGB image; a conditional PatchGAN and a
    VGG19 perceptual loss shape training (Le et al., 2025, arXiv:2501.03051). The attention
    layer is computed in an exact factorised form (see
    :class:`irfa_nwb.model.attention.InverseReceptiveFieldAttention`).

    Parameters
    ----------
    image_size : int, default 64
        Side of the reconstructed (square) images; targets are resized to it.
    channels : int, default 32
        Feature channels of the attention layer (even).
    kernel_size : int, default 4
        Side of the attention score convolution.
    width : int, default 64
        Width of the first level of the U-Net generator and the discriminator; deeper levels
        scale with it (published: 64). Smaller values train much faster on a CPU.
    epochs : int, default 100
    batch_size : int, default 8
    lr : float, default 7.8e-4
        Generator learning rate (Adam, betas (0.5, 0.999)).
    discriminator_lr : float, default 1e-4
        Discriminator learning rate (Adam, betas (0.3, 0.999)).
    attention_lr : float or None, default None
        Learning rate of the attention layer (embeddings, positional codes, keys, values,
        score convolution); None uses ``lr`` (as published). Its scores are divided by
        ``sqrt(c·k²)`` and start near a uniform softmax over heads, so on small data sets or
        short runs the inverse receptive fields stay diffuse while the U-Net learns; a larger
        value (e.g. ``10 * lr``) lets them localise within the budget.
    adversarial_weight, perceptual_weight, pixel_weight : float
        Weights of the generator loss terms (0.01, 0.69, 0.3 as published). With
        ``adversarial_weight=0`` no discriminator is trained; with ``perceptual_weight=0`` no
        pretrained weights are needed.
    perceptual_network : {"vgg19"}, default "vgg19"
        Network of the perceptual loss.
    perceptual_size : int, default 224
        Side images are resized to before the perceptual network.
    perceptual_layers : tuple of int, default (8, 15, 22, 29, 35)
        Slice ends ``i`` of ``vgg19.features``: the outputs of ``features[:i]`` are compared,
        as in the reference code (conv2_2, conv3_3, conv4_2, conv5_1, conv5_4 before their
        ReLU).
    recipe : {"published", "pix2pix"}, default "published"
        Training procedure. ``"published"`` trains exactly as the authors' reference code;
        ``"pix2pix"`` follows common conditional-GAN practice (raw-logit discriminator updated
        every batch, condition detached in the generator's adversarial term, pix2pix U-Net
        bottleneck, the same initialisation for all networks, mixed precision on CUDA). The
        following parameters default to None, meaning "as the recipe says"; set one to
        override that choice alone (see the user guide, "Training recipes").
    discriminator_every : int or None
        Update the discriminator on the batches whose index within the epoch is a multiple of
        this (published: 100; pix2pix: 1).
    discriminator_output : {"sigmoid", "logits"} or None
        Published: the discriminator ends in a sigmoid and its losses apply
        BCE-with-logits to that output, so the sigmoid is applied twice and the adversarial
        term is bounded (about 0.31 to 0.69) with a small gradient. pix2pix: raw logits.
    condition_gradient : bool or None
        Let the generator's adversarial term reach the attention layer through the
        discriminator's condition (published: True; pix2pix: False, the condition detached).
    bottleneck_norm : bool or None
        Innermost U-Net block with batch norm and LeakyReLU(0.2) (published: True) or as in
        pix2pix (False).
    init : {"unet", "all"} or None
        Published ("unet"): Kaiming / N(1, 0.02) initialisation of the U-Net only, the
        attention layer and discriminator at PyTorch's defaults; "all": everywhere.
    running_stats : {"reference", "standard"} or None
        Published ("reference"): batch-norm running statistics as the reference loop leaves
        them (it re-runs the networks in training mode, so each batch updates them two or
        three times); "standard": one update per forward pass.
    history_size : int, default 50
        Capacity of the buffer of past fakes replayed to the discriminator (0: off).
    validation_fraction : float, default 0.0
        Fraction of samples held out to report ``val_loss`` each epoch.
    early_stopping : int or None, default None
        Stop when ``val_loss`` has not improved for this many epochs and restore the best
        weights (needs ``validation_fraction > 0``).
    attention : {"factorized", "dense"}, default "factorized"
        Implementation of the attention layer (same results; dense is much slower).
    device : str, default "auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1"...
    mixed_precision : {"auto", True, False} or None
        Autocast (bfloat16 where supported, else float16 with loss scaling) on CUDA; "auto"
        and True turn it on for CUDA only; never used on CPU. None: as the recipe says
        (published: False, float32; pix2pix: "auto").
    num_workers : int, default 0
        Worker processes of the data loader.
    checkpoint_path : str or path, optional
        Save the model there (see :meth:`save`) after every epoch.
    callbacks : list of callables, optional
        Each is called as ``cb(estimator, record)`` after every epoch with the epoch's history
        record; returning True stops training.
    allow_download : bool, default False
        Let torchvision download missing pretrained weights.
    random_state : int or None
        Seeds the NumPy and torch generators used in ``fit``; runs on CPU are reproducible.
    verbose : int, default 1
        0: silent; 1: progress bar over epochs.

    Attributes
    ----------
    network_ : IRFANetwork
        Attention layer + U-Net (on ``device_``).
    discriminator_ : PatchDiscriminator or None
    heads_ : list of str
        Head (electrode group) names, in head order.
    head_units_ : list of ndarray
        Column indices of ``X`` feeding each head.
    n_features_in_ : int
    unit_ids_ : ndarray or None
        ``unit_id`` coordinate of the training responses, when given as xarray.
    device_ : str
    history_ : list of dict
        Per epoch: ``epoch``, ``loss_generator``, ``loss_pixel``, ``loss_perceptual``,
        ``loss_adversarial``, ``loss_discriminator``, ``val_loss``, ``time``.
    n_epochs_ : int
        Epochs actually run.
    recipe_ : dict
        The training choices used: the recipe's, with explicitly set parameters in place.

    Examples
    --------
    >>> model = IRFA(image_size=32, epochs=5, perceptual_weight=0).fit(X, images)  # doctest: +SKIP
    >>> reconstructions = model.predict(X_test)                                    # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        image_size: int = 64,
        channels: int = 32,
        kernel_size: int = 4,
        width: int = 64,
        epochs: int = 100,
        batch_size: int = 8,
        lr: float = 7.8e-4,
        discriminator_lr: float = 1e-4,
        attention_lr: float | None = None,
        adversarial_weight: float = 0.01,
        perceptual_weight: float = 0.69,
        pixel_weight: float = 0.3,
        perceptual_network: str = "vgg19",
        perceptual_size: int = 224,
        perceptual_layers: tuple[int, ...] = (8, 15, 22, 29, 35),
        recipe: str = "published",
        discriminator_every: int | None = None,
        discriminator_output: str | None = None,
        condition_gradient: bool | None = None,
        bottleneck_norm: bool | None = None,
        init: str | None = None,
        running_stats: str | None = None,
        history_size: int = 50,
        validation_fraction: float = 0.0,
        early_stopping: int | None = None,
        attention: str = "factorized",
        device: str = "auto",
        mixed_precision: str | bool | None = None,
        num_workers: int = 0,
        checkpoint_path: str | None = None,
        callbacks: Sequence[Callable] | None = None,
        allow_download: bool = False,
        random_state: int | None = None,
        verbose: int = 1,
    ) -> None:
        self.image_size = image_size
        self.channels = channels
        self.kernel_size = kernel_size
        self.width = width
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.discriminator_lr = discriminator_lr
        self.attention_lr = attention_lr
        self.adversarial_weight = adversarial_weight
        self.perceptual_weight = perceptual_weight
        self.pixel_weight = pixel_weight
        self.perceptual_network = perceptual_network
        self.perceptual_size = perceptual_size
        self.perceptual_layers = perceptual_layers
        self.recipe = recipe
        self.discriminator_every = discriminator_every
        self.discriminator_output = discriminator_output
        self.condition_gradient = condition_gradient
        self.bottleneck_norm = bottleneck_norm
        self.init = init
        self.running_stats = running_stats
        self.history_size = history_size
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.attention = attention
        self.device = device
        self.mixed_precision = mixed_precision
        self.num_workers = num_workers
        self.checkpoint_path = checkpoint_path
        self.callbacks = callbacks
        self.allow_download = allow_download
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < minimum:
                raise InputError(f"{name} must be an integer >= {minimum}; got {value!r}")

        for name in ("image_size", "channels", "kernel_size", "width", "epochs", "batch_size"):
            positive_int(name)
        if self.discriminator_every is not None:
            positive_int("discriminator_every")
        positive_int("history_size", 0)
        positive_int("num_workers", 0)
        positive_int("perceptual_size", 32)
        if self.channels % 2:
            raise InputError(f"channels must be even; got {self.channels}")
        if self.image_size % 4 or self.image_size < 8:
            raise InputError(
                f"image_size must be a multiple of 4 and >= 8 (U-Net levels); got "
                f"{self.image_size}. The published value is 64."
            )
        if self.kernel_size > self.image_size:
            raise InputError("kernel_size must not exceed image_size")
        for name in ("lr", "discriminator_lr"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0; got {getattr(self, name)!r}")
        if self.attention_lr is not None and not self.attention_lr > 0:
            raise InputError(f"attention_lr must be > 0 or None; got {self.attention_lr!r}")
        for name in ("adversarial_weight", "perceptual_weight", "pixel_weight"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
                raise InputError(f"{name} must be a finite number >= 0; got {value!r}")
        if self.adversarial_weight + self.perceptual_weight + self.pixel_weight <= 0:
            raise InputError("at least one of the loss weights must be > 0")
        if self.perceptual_network != "vgg19":
            raise InputError(
                f"perceptual_network must be 'vgg19'; got {self.perceptual_network!r}"
            )
        if not 0 <= self.validation_fraction < 1:
            raise InputError(
                f"validation_fraction must be in [0, 1); got {self.validation_fraction!r}"
            )
        if self.early_stopping is not None:
            positive_int("early_stopping")
            if self.validation_fraction <= 0:
                raise InputError(
                    "early_stopping needs held-out data: set validation_fraction (e.g. 0.1)"
                )
        if self.attention not in ("factorized", "dense"):
            raise InputError(
                f"attention must be 'factorized' or 'dense'; got {self.attention!r}"
            )
        self._resolve_recipe()  # raises InputError on an unknown recipe or setting

    def _resolve_recipe(self) -> dict:
        """The training choices of ``recipe`` with the explicitly set ones in their place."""
        from .recipes import RECIPE_PARAMETERS, resolve_recipe

        try:
            return resolve_recipe(
                self.recipe, {name: getattr(self, name) for name in RECIPE_PARAMETERS}
            )
        except ValueError as err:
            raise InputError(str(err)) from None

    def _resolve_device(self) -> str:
        torch = _torch()
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as err:
            raise InputError(f"device {self.device!r} is not a valid torch device: {err}") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InputError(
                f"device={self.device!r} but CUDA is not available on this machine; use "
                "device='cpu' or device='auto'"
            )
        return str(device)

    def _check_fitted(self) -> None:
        check_is_fitted(self, ["network_", "heads_"], msg=_NOT_FITTED)

    def _prepare_X(self, X: Any) -> Responses:
        """Validate responses for a fitted model; reorder units by ``unit_id`` when needed."""
        self._check_fitted()
        resp = as_responses(X)
        fitted_ids = self.unit_ids_
        if resp.unit_ids is not None and fitted_ids is not None:
            if not np.array_equal(resp.unit_ids, fitted_ids):
                position = {v: i for i, v in enumerate(resp.unit_ids.tolist())}
                missing = [u for u in fitted_ids.tolist() if u not in position]
                if missing:
                    raise InputError(
                        f"X lacks {len(missing)} of the units the model was fitted on "
                        f"(unit_id {missing[:5]}{'...' if len(missing) > 5 else ''}); predict "
                        "needs the same units as fit"
                    )
                order = np.array([position[u] for u in fitted_ids.tolist()])
                resp.values = resp.values[:, order]
                if resp.groups is not None:
                    resp.groups = resp.groups[order]
        if resp.values.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {resp.values.shape[1]} units but the model was fitted on "
                f"{self.n_features_in_}; predict needs the same unit layout as fit"
            )
        if resp.groups is not None:
            expected = np.empty(self.n_features_in_, dtype=object)
            for head, cols in zip(self.heads_, self.head_units_, strict=True):
                expected[cols] = head
            if not np.array_equal(resp.groups.astype(str), expected.astype(str)):
                raise InputError(
                    "X's electrode_group labels differ from those the model was fitted on; "
                    "predict needs the same unit-to-head layout as fit"
                )
        return resp

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, groups: Any = None) -> IRFA:
        """Train on responses ``X`` and the images ``y`` that evoked them.

        Parameters
        ----------
        X : array-like or xarray.DataArray, shape (n_samples, n_units)
            Responses. A DataArray needs a ``unit`` dim; its ``electrode_group`` coord defines
            the heads (one per group) unless ``groups`` is given.
        y : array-like or xarray.DataArray, shape (n_samples, H, W, 3) or (n_samples, H, W)
            Images, uint8 or float in [0, 1]; resized to ``image_size``.
        groups : array-like of shape (n_units,), optional
            Head label of every unit (e.g. array or probe name). Without it and without an
            ``electrode_group`` coord, all units form a single head.

        Returns
        -------
        self
        """
        from ._training import train

        self._check_params()
        resp = as_responses(X)
        images, _ = as_images(y)
        n = resp.values.shape[0]
        if images.shape[0] != n:
            raise InputError(
                f"X has {n} samples but y has {images.shape[0]} images; they must match "
                "(one image per row of responses)"
            )
        if groups is None:
            groups = resp.groups
        if groups is None:
            warnings.warn(
                "no groups given and X has no electrode_group coord: all units form one "
                "attention head. Pass groups=<one label per unit> to give IRFA one head per "
                "electrode group.",
                UserWarning,
                stacklevel=2,
            )
            groups = np.zeros(resp.values.shape[1], dtype=int)
        heads, index = head_layout(groups, resp.values.shape[1])
        self.heads_ = heads
        self.head_units_ = index
        self.n_features_in_ = resp.values.shape[1]
        self.unit_ids_ = resp.unit_ids
        self.image_size_ = int(self.image_size)
        self.recipe_ = self._resolve_recipe()
        self.device_ = self._resolve_device()
        train(self, resp.values, images)
        return self

    # ----------------------------------------------------------- inference
    def _batched(self, values: np.ndarray, fn: Callable, batch_size: int | None = None):
        torch = _torch()
        from ..model.network import split_heads

        bs = batch_size or max(self.batch_size, 32)
        index = [torch.as_tensor(i, device=self.device_) for i in self.head_units_]
        out = []
        self.network_.eval()
        with torch.no_grad():
            for start in range(0, values.shape[0], bs):
                xb = torch.as_tensor(values[start : start + bs], device=self.device_)
                out.append(fn(split_heads(xb, index)).float().cpu().numpy())
        return np.concatenate(out, axis=0)

    def _label(self, array: np.ndarray, resp: Responses, dims: tuple[str, ...], coords=None):
        if resp.sample_dim is None:
            return array
        import xarray as xr

        all_coords = {k: v for k, v in resp.sample_coords.items()}
        all_coords.update(coords or {})
        return xr.DataArray(array, dims=(resp.sample_dim, *dims), coords=all_coords)

    def predict(self, X: Any):
        """Reconstruct images from responses.

        Returns
        -------
        ndarray or xarray.DataArray, shape (n_samples, image_size, image_size, 3)
            Float32 in [0, 1]. A DataArray input gives a DataArray with dims
            ``(<sample dim>, "y", "x", "channel")`` and the sample coords carried through.
        """
        resp = self._prepare_X(X)
        images = self._batched(resp.values, self.network_)
        images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        return self._label(images, resp, ("y", "x", "channel"), {"channel": ["R", "G", "B"]})

    def score(self, X: Any, y: Any) -> float:
        """Mean over images of the Pearson correlation between reconstruction and image pixels."""
        pred = np.asarray(self.predict(X))
        images, _ = as_images(y)
        if images.shape[0] != pred.shape[0]:
            raise InputError(
                f"X has {pred.shape[0]} samples but y has {images.shape[0]} images"
            )
        target = resize_images(images, self.image_size_)
        a = pred.reshape(len(pred), -1).astype(np.float64)
        b = target.reshape(len(target), -1).astype(np.float64)
        a -= a.mean(axis=1, keepdims=True)
        b -= b.mean(axis=1, keepdims=True)
        denom = np.sqrt((a * a).sum(1) * (b * b).sum(1))
        r = np.divide((a * b).sum(1), denom, out=np.zeros(len(a)), where=denom > 0)
        return float(r.mean())

    def spatial_fields(self, X: Any):
        """Spatial inverse receptive fields: attention weights averaged over channels.

        Returns
        -------
        ndarray or xarray.DataArray, shape (n_samples, n_heads, image_size, image_size)
            At every pixel the maps of all heads sum to 1. DataArray dims
            ``(<sample dim>, "head", "y", "x")`` with coord ``head``.
        """
        resp = self._prepare_X(X)
        fields = self._batched(resp.values, self.network_.attention.spatial_fields)
        return self._label(fields, resp, ("head", "y", "x"), {"head": list(self.heads_)})

    def feature_fields(self, X: Any):
        """Feature inverse receptive fields: attention weights summed over pixels.

        Returns
        -------
        ndarray or xarray.DataArray, shape (n_samples, n_heads, channels)
            DataArray dims ``(<sample dim>, "head", "channel")`` with coord ``head``.
        """
        resp = self._prepare_X(X)
        fields = self._batched(resp.values, self.network_.attention.feature_fields)
        return self._label(fields, resp, ("head", "channel"), {"head": list(self.heads_)})

    # ---------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Save configuration, fitted state, weights and history to one safetensors file."""
        from .persistence import save_model

        self._check_fitted()
        save_model(self, path)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize float images ``(n, H, W, 3)`` to ``(n, size, size, 3)`` (antialiased bilinear)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    torch = _torch()
    t = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    t = torch.nn.functional.interpolate(
        t, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return t.clamp_(0, 1).permute(0, 2, 3, 1).numpy()


__all__ = ["IRFA", "NotFittedError", "resize_images"]
