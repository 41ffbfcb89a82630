"""The IRFA estimator: scikit-learn style ``fit`` / ``predict`` around the PyTorch model."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ..errors import InputError
from ._base import ReconstructionEstimator
from ._inputs import head_labels, head_layout, label_output

logger = logging.getLogger("irfa_nwb.estimator")

_NOT_FITTED = (
    "This IRFA instance is not fitted yet. Call 'fit' with responses and images first, or load "
    "a saved model with irfa_nwb.load_model(path)."
)

#: name of the dim of the attention layer's feature channels in feature IRFs (one name across
#: the estimator, the analyses and the results files)
IRF_CHANNEL_DIM = "irf_channel"


def _torch():
    import torch

    return torch


class IRFA(ReconstructionEstimator):
    """Inverse receptive field attention: reconstruct seen images from neural responses.

    A multi-head attention layer (one head per electrode group) places the responses into an
    image-shaped feature map; a U-Net turns it into an RGB image; a conditional PatchGAN and a
    VGG19 perceptual loss shape training (Le et al., 2025, arXiv:2501.03051). With default
    parameters it trains exactly as the authors' reference code (``recipe="published"``). The
    attention layer is computed in an exact factorised form (see
    :class:`irfa_nwb.model.attention.InverseReceptiveFieldAttention`).

    Parameters
    ----------
    image_size : int, default 64
        Side of the reconstructed (square) images; targets are resized to it (antialiased
        bilinear, as torchvision's ``Resize`` in the reference code).
    channels : int, default 32
        Feature channels of the attention layer (even). Each head's responses are squeezed
        into ``channels / 2`` numbers: with few electrode groups, a larger value (e.g. 128)
        can reconstruct better.
    kernel_size : int, default 4
        Side of the attention score convolution.
    width : int, default 64
        Width of the first level of the U-Net generator and the discriminator; deeper levels
        scale with it (published: 64). Smaller values train much faster on a CPU.
    max_iter : int, default 100
        Training epochs (passes over the training data).
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
        following seven parameters default to None, meaning "as the recipe says"; set one to
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
    mixed_precision : {"auto", True, False} or None
        Autocast (bfloat16 where supported, else float16 with loss scaling) on CUDA; "auto"
        and True turn it on for CUDA only; never used on CPU (published: False, float32;
        pix2pix: "auto").
    history_size : int, default 50
        Capacity of the buffer of past fakes replayed to the discriminator (0: off).
    ridge_residual : bool, default False
        Not in the published model (a small-data option, see the user guide, "Small data
        sets"): fit a ridge map from the responses to the images first, give its image to the
        U-Net next to the attention output, and train the network to correct it
        (``sigmoid(logit(ridge image) + U-Net output)``, the correction starting at zero).
        During training each sample's ridge image comes from a map fitted without its
        stimulus (5-fold, out-of-fold), so the network learns the errors the linear map makes
        on new stimuli. The map is stored in the network (``ridge_alpha_``: its penalty).
    response_noise : float, default 0.0
        Not in the published model: during training add Gaussian noise of this many standard
        deviations (each unit's, over the training samples) to the responses of every batch,
        a fresh draw per batch (reproducible: seeded by ``random_state``, epoch and batch).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training samples, stop when their loss (pixel +
        perceptual terms) has not improved by ``tol`` for ``n_iter_no_change`` epochs, and
        restore the best weights (scikit-learn's ``MLPRegressor`` names).
    validation_fraction : float, default 0.1
        Fraction of the samples held out when ``early_stopping`` is on (whole stimuli: all
        repeats of a held-out stimulus are held out together when the stimuli are known).
    n_iter_no_change : int, default 10
        Epochs without improvement before stopping.
    tol : float, default 0.0
        Minimum decrease of the validation loss that counts as an improvement.
    unit_groups : array-like of str, optional
        The electrode group (attention head) of every unit, one label per column of ``X``.
        Default: the ``electrode_group`` coordinate of a DataArray ``X``; without either, all
        units form one head (with a warning).
    attention : {"factorized", "dense"}, default "factorized"
        Implementation of the attention layer (same results; dense is much slower).
    device : str, default "auto"
        "auto" (CUDA when available, else CPU; under torchrun ``cuda:<LOCAL_RANK>``), "cpu",
        "cuda", "cuda:1"...
    distributed : {"auto", True, False}, default "auto"
        Data-parallel training across the processes of a ``torchrun`` job ("auto": when
        launched with several processes); see :mod:`irfa_nwb.estimator.distributed`. With
        several processes ``batch_size`` is the global batch.
    compile : bool, default False
        ``torch.compile`` the U-Net on CUDA (the attention layer has its own kernels).
    num_workers : deprecated
        Ignored: the training data are indexed in memory (on the GPU when they fit).
    checkpoint_path : str or path, optional
        Write a checkpoint there after every epoch and when interrupted (Ctrl-C): a model file
        (:func:`irfa_nwb.load_model` reads the last finished epoch) that also holds the
        optimisers, history buffer, random generators and position, so that
        ``fit(X, y, resume_from=checkpoint_path)`` continues exactly.
    callbacks : list of callables, optional
        Each is called as ``cb(estimator, record)`` after every epoch with the epoch's history
        record; returning True stops training.
    allow_download : bool or None, default None
        Let torchvision download missing pretrained weights. None: download as torchvision
        would, unless the environment variable ``IRFA_NWB_OFFLINE`` is set; without internet,
        a clear error says how to get the weights.
    random_state : int or None
        Seeds the NumPy and torch generators used in ``fit``; runs on CPU are reproducible.
    verbose : int, default 0
        0: silent; 1: a progress bar over batches. Per-epoch records always go to the
        ``irfa_nwb.estimator`` logger (level INFO).
    epochs : int, deprecated
        Old name of ``max_iter``.

    Attributes
    ----------
    network_ : IRFANetwork
        Attention layer + U-Net (on ``device_``).
    discriminator_ : PatchDiscriminator or None
    heads_ : list of str
        Head (electrode group) names, in head order.
    head_units_ : list of ndarray
        Column indices of ``X`` feeding each head.
    head_areas_ : list of str or None
        Brain area of each head (the most common ``area`` of its units), when known.
    n_features_in_ : int
    unit_ids_ : ndarray or None
        ``unit_id`` coordinate of the training responses, when given as xarray.
    training_stimulus_ids_ : ndarray or None
        The stimuli the model was trained on (when ``X`` carried ``stimulus_id``), so that
        evaluations can tell training from held-out stimuli.
    response_attrs_ : dict
        Kind, window and units of the training responses (from ``X.attrs``); ``predict``
        refuses responses that differ.
    training_data_ : dict
        Provenance of the training data (``X.attrs``: source file or DANDI asset...).
    device_ : str
    recipe_ : dict
        The training choices used: the recipe's, with explicitly set parameters in place.
    history_ : list of dict
        Per epoch: ``epoch``, ``loss_generator``, ``loss_pixel``, ``loss_perceptual``,
        ``loss_adversarial``, ``loss_discriminator``, ``val_loss``, ``time``.
    n_iter_ : int
        Epochs run (after an interruption: epochs finished).
    ridge_alpha_ : float or None
        Penalty of the network's ridge map (``ridge_residual``), else None.
    interrupted_ : bool
        True when ``fit`` was interrupted (Ctrl-C); the model then holds the weights of the
        last finished epoch and ``predict`` warns.

    Examples
    --------
    >>> model = IRFA(image_size=32, max_iter=5, perceptual_weight=0)     # doctest: +SKIP
    >>> model.fit(ds["responses"], ds["images"])                          # doctest: +SKIP
    >>> reconstructions = model.predict(test["responses"])                # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        image_size: int = 64,
        channels: int = 32,
        kernel_size: int = 4,
        width: int = 64,
        max_iter: int = 100,
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
        mixed_precision: str | bool | None = None,
        history_size: int = 50,
        ridge_residual: bool = False,
        response_noise: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 0.0,
        unit_groups: Sequence[Any] | None = None,
        attention: str = "factorized",
        device: str = "auto",
        distributed: str | bool = "auto",
        compile: bool = False,
        num_workers: int | str = "deprecated",
        checkpoint_path: str | None = None,
        callbacks: Sequence[Callable] | None = None,
        allow_download: bool | None = None,
        random_state: int | None = None,
        verbose: int = 0,
        epochs: int | str = "deprecated",
    ) -> None:
        self.image_size = image_size
        self.channels = channels
        self.kernel_size = kernel_size
        self.width = width
        self.max_iter = max_iter
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
        self.mixed_precision = mixed_precision
        self.history_size = history_size
        self.ridge_residual = ridge_residual
        self.response_noise = response_noise
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.unit_groups = unit_groups
        self.attention = attention
        self.device = device
        self.distributed = distributed
        self.compile = compile
        self.num_workers = num_workers
        self.checkpoint_path = checkpoint_path
        self.callbacks = callbacks
        self.allow_download = allow_download
        self.random_state = random_state
        self.verbose = verbose
        self.epochs = epochs

    # ------------------------------------------------------------------ checks
    def _n_epochs(self) -> int:
        if isinstance(self.epochs, str) and self.epochs == "deprecated":
            return self.max_iter
        warnings.warn(
            "IRFA(epochs=...) is deprecated and will be removed in irfa-nwb 0.3; use max_iter",
            FutureWarning,
            stacklevel=3,
        )
        return self.epochs

    def _check_params(self) -> None:
        def positive_int(name: str, minimum: int = 1, value: Any = None) -> None:
            value = getattr(self, name) if value is None else value
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or \
                    value < minimum:
                raise InputError(f"{name} must be an integer >= {minimum}; got {value!r}")

        for name in ("image_size", "channels", "kernel_size", "width", "batch_size",
                     "n_iter_no_change"):
            positive_int(name)
        positive_int("max_iter", value=self._n_epochs())
        if self.discriminator_every is not None:
            positive_int("discriminator_every")
        positive_int("history_size", 0)
        if self.num_workers != "deprecated":
            warnings.warn("IRFA(num_workers=...) is deprecated and ignored: the training data "
                          "are indexed in memory", FutureWarning, stacklevel=3)
        if self.distributed not in ("auto", True, False):
            raise InputError(
                f"distributed must be 'auto', True or False; got {self.distributed!r}"
            )
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
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                raise InputError(f"{name} must be > 0; got {value!r}")
        if self.attention_lr is not None and not self.attention_lr > 0:
            raise InputError(f"attention_lr must be > 0 or None; got {self.attention_lr!r}")
        for name in ("adversarial_weight", "perceptual_weight", "pixel_weight", "tol"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
                raise InputError(f"{name} must be a finite number >= 0; got {value!r}")
        if self.adversarial_weight + self.perceptual_weight + self.pixel_weight <= 0:
            raise InputError("at least one of the loss weights must be > 0")
        if self.perceptual_network != "vgg19":
            raise InputError(
                f"perceptual_network must be 'vgg19'; got {self.perceptual_network!r}"
            )
        if not isinstance(self.ridge_residual, bool | np.bool_):
            raise InputError(f"ridge_residual must be True or False; got {self.ridge_residual!r}")
        if not (isinstance(self.response_noise, int | float) and not isinstance(
                self.response_noise, bool) and math.isfinite(self.response_noise)
                and self.response_noise >= 0):
            raise InputError(
                f"response_noise must be a finite number >= 0 (standard deviations of each "
                f"unit); got {self.response_noise!r}"
            )
        if not isinstance(self.early_stopping, bool | np.bool_):
            raise InputError(
                f"early_stopping must be True or False; got {self.early_stopping!r} (the "
                "patience is n_iter_no_change)"
            )
        if not (isinstance(self.validation_fraction, int | float)
                and 0 < self.validation_fraction < 1):
            raise InputError(
                f"validation_fraction must be in (0, 1); got {self.validation_fraction!r}"
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
        import os

        torch = _torch()
        if self.device == "auto":
            if not torch.cuda.is_available():
                return "cpu"
            from .distributed import launched_distributed

            if self.distributed is not False and launched_distributed():
                return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            return "cuda"
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

    def _head_labels(self, resp) -> np.ndarray | None:
        if self.unit_groups is not None:
            return head_labels(self.unit_groups, resp.values.shape[1], name="unit_groups")
        if resp.groups is not None:
            return head_labels(resp.groups, resp.values.shape[1], name="electrode_group")
        return None

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, groups: Any = None, *, resume_from: Any = None) -> IRFA:
        """Train on responses ``X`` and the images ``y`` that evoked them.

        Parameters
        ----------
        X : array-like or xarray.DataArray
            Responses: NumPy ``(n_samples, n_units)``, or a DataArray with a ``unit`` dim, e.g.
            ``ds["responses"]`` of :func:`irfa_nwb.load_dataset` (every presentation) or of
            :func:`irfa_nwb.average_repeats`. Its ``electrode_group`` coord defines the heads
            unless ``unit_groups`` is set.
        y : array-like or xarray.DataArray
            Images ``(n, H, W, 3)`` or ``(n, H, W)`` (grey), uint8 or float in [0, 1];
            row-aligned with ``X``, or (DataArray with a ``stimulus_id`` index, e.g.
            ``ds["images"]``) paired with ``X`` by ``stimulus_id``. Resized to ``image_size``.
        groups : deprecated
            One head label per unit; use the ``unit_groups`` parameter.
        resume_from : path, optional
            A checkpoint written by an earlier fit with ``checkpoint_path`` (after each epoch,
            and when interrupted with Ctrl-C): training continues from it, with the same data
            and parameters, and ends with the weights the uninterrupted fit would have had.

        Returns
        -------
        self
        """
        from ._training import train

        self._check_params()
        resp, images, image_index = self._fit_inputs(X, y, channels_first=True)
        labels = self._head_labels(resp)
        if groups is not None:
            warnings.warn(
                "fit(X, y, groups=...) is deprecated and will be removed in irfa-nwb 0.3 "
                "(scikit-learn's groups are per sample); use IRFA(unit_groups=...)",
                FutureWarning,
                stacklevel=2,
            )
            labels = head_labels(groups, resp.values.shape[1], name="groups")
        if labels is None:
            warnings.warn(
                "no unit_groups given and X has no electrode_group coord: all units form one "
                "attention head. Pass IRFA(unit_groups=<one label per unit>) to give IRFA one "
                "head per electrode group.",
                UserWarning,
                stacklevel=2,
            )
            labels = np.array(["all"] * resp.values.shape[1], dtype=object)
        heads, index = head_layout(labels)
        self.heads_ = heads
        self.head_units_ = index
        self.head_areas_ = _head_areas(resp.areas, index)
        self.training_data_ = _provenance(getattr(X, "attrs", {}) or {})
        self.image_size_ = int(self.image_size)
        self.recipe_ = self._resolve_recipe()
        self.device_ = self._resolve_device()
        train(self, resp.values, images, image_index, resp.present_stimulus_ids,
              resume_from=resume_from)
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

    def _warn_interrupted(self) -> None:
        if getattr(self, "interrupted_", False):
            warnings.warn(
                f"this model's fit was interrupted: it holds the weights after epoch "
                f"{self.n_iter_} of {self.max_iter}",
                UserWarning,
                stacklevel=3,
            )

    def _predict_rows(self, values: np.ndarray) -> np.ndarray:
        self._warn_interrupted()
        images = self._batched(values, self.network_)
        return np.ascontiguousarray(images.transpose(0, 2, 3, 1))

    def _predict_inputs(self, X: Any, *, check_responses: bool = True):
        resp = super()._predict_inputs(X, check_responses=check_responses)
        self._check_head_labels(resp)
        return resp

    def _check_head_labels(self, resp) -> None:
        if resp.groups is None:
            return
        expected = np.empty(self.n_features_in_, dtype=object)
        for head, cols in zip(self.heads_, self.head_units_, strict=True):
            expected[cols] = head
        given = head_labels(resp.groups, len(expected), name="electrode_group")
        if self.unit_groups is None and not np.array_equal(given.astype(str),
                                                           expected.astype(str)):
            raise InputError(
                "X's electrode_group labels differ from those the model was fitted on; "
                "predict needs the same unit-to-head layout as fit"
            )

    def _head_coords(self) -> dict[str, Any]:
        coords: dict[str, Any] = {"head": list(self.heads_)}
        if getattr(self, "head_areas_", None) is not None:
            coords["head_area"] = ("head", list(self.head_areas_))
        return coords

    def spatial_irfs(self, X: Any, *, check_responses: bool = True):
        """Spatial inverse receptive fields: attention weights averaged over channels.

        Returns
        -------
        ndarray or xarray.DataArray, shape (..., n_heads, image_size, image_size)
            At every pixel the maps of all heads sum to 1. DataArray dims
            ``(<sample dims>, "head", "y", "x")`` with coords ``head`` and ``head_area``.
        """
        resp = self._predict_inputs(X, check_responses=check_responses)
        self._warn_interrupted()
        fields = self._batched(resp.values, self.network_.attention.spatial_fields)
        return label_output(fields, resp, ("head", "y", "x"), self._head_coords())

    def feature_irfs(self, X: Any, *, check_responses: bool = True):
        """Feature inverse receptive fields: attention weights summed over pixels.

        Returns
        -------
        ndarray or xarray.DataArray, shape (..., n_heads, channels)
            DataArray dims ``(<sample dims>, "head", "irf_channel")`` with coords ``head``,
            ``head_area``.
        """
        resp = self._predict_inputs(X, check_responses=check_responses)
        self._warn_interrupted()
        fields = self._batched(resp.values, self.network_.attention.feature_fields)
        return label_output(fields, resp, ("head", IRF_CHANNEL_DIM), self._head_coords())

    def spatial_fields(self, X: Any):
        """Deprecated alias of :meth:`spatial_irfs`."""
        warnings.warn("IRFA.spatial_fields is deprecated; use spatial_irfs", FutureWarning,
                      stacklevel=2)
        return self.spatial_irfs(X)

    def feature_fields(self, X: Any):
        """Deprecated alias of :meth:`feature_irfs`."""
        warnings.warn("IRFA.feature_fields is deprecated; use feature_irfs", FutureWarning,
                      stacklevel=2)
        return self.feature_irfs(X)

    @property
    def n_epochs_(self) -> int:
        """Alias of ``n_iter_`` (irfa-nwb 0.1's name)."""
        return self.n_iter_

    # ---------------------------------------------------------- persistence
    def save(self, path, *, overwrite: bool = False) -> Path:
        """Save configuration, fitted state, weights and history to one safetensors file.

        Parameters
        ----------
        path : path-like
        overwrite : bool, default False
            Replace an existing file (the same rule as :func:`irfa_nwb.write_results`).

        Returns
        -------
        pathlib.Path
            The absolute path written.
        """
        from ..outputs import sha256_of
        from .persistence import save_model

        self._check_fitted()
        written = save_model(self, path, overwrite=overwrite)
        self.model_file_ = {"path": str(written), "sha256": sha256_of(written)}
        return written

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")


def _head_areas(areas: np.ndarray | None, index: list[np.ndarray]) -> list[str] | None:
    if areas is None:
        return None
    out = []
    for cols in index:
        values, counts = np.unique(areas[cols], return_counts=True)
        out.append(str(values[np.argmax(counts)]))
    return out


def _provenance(attrs: dict) -> dict[str, Any]:
    """Plain (str / number / list) attributes of the training responses."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str | int | float | bool):
            out[str(key)] = value
        elif isinstance(value, list | tuple | np.ndarray):
            out[str(key)] = [v.item() if isinstance(v, np.generic) else v
                             for v in np.asarray(value).tolist()]
    return out


def load_model(path, *, device: str | None = None) -> IRFA:
    """Load a model written by :meth:`IRFA.save` (or irfa-nwb 0.1's ``save``).

    Parameters
    ----------
    path : str or path
    device : str, optional
        Where to put the networks. Default: the device it was trained on, or the CPU (with a
        warning) when that was a CUDA device and none is available here.

    Returns
    -------
    IRFA
        A fitted estimator whose ``predict`` equals the saved one's; ``model_file_`` records
        the file and its SHA-256.
    """
    import torch
    from safetensors.torch import load_file

    from ..outputs import sha256_of
    from .persistence import read_model_file
    from .state import build_networks, restore_state

    params, fitted, training, _meta = read_model_file(path)
    known = IRFA().get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        warnings.warn(f"ignoring parameters unknown to this irfa-nwb: {unknown}", UserWarning,
                      stacklevel=2)
    est = IRFA(**{k: v for k, v in params.items() if k in known})
    restore_state(est, fitted)
    est.recipe_ = est._resolve_recipe()
    est.training_data_ = training
    saved_device = str(est.device_ or "cpu")
    if device is None:
        device = saved_device
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"model was trained on {saved_device} but CUDA is not available here; "
                "loading it on the CPU",
                UserWarning,
                stacklevel=2,
            )
            device = "cpu"
    tensors = load_file(str(path), device="cpu")
    network, discriminator = build_networks(est, [len(i) for i in est.head_units_])
    network.load_state_dict(
        {k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")}
    )  # (a checkpoint's training state, under "state.", is for resuming only)
    disc_state = {
        k[len("discriminator.") :]: v for k, v in tensors.items() if k.startswith("discriminator.")
    }
    if discriminator is not None and disc_state:
        discriminator.load_state_dict(disc_state)
        discriminator = discriminator.to(device).eval()
    else:
        discriminator = None
    est.network_ = network.to(device).eval()
    est.discriminator_ = discriminator
    est.device_ = str(device)
    est.saved_versions_ = {
        "irfa_nwb": _meta.get("irfa_nwb_version"),
        "torch": _meta.get("torch_version"),
    }
    est.model_file_ = {"path": str(Path(path).absolute()), "sha256": sha256_of(path)}
    return est


__all__ = ["IRF_CHANNEL_DIM", "IRFA", "NotFittedError", "load_model"]
