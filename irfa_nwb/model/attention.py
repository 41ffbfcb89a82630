"""Inverse receptive field attention (IRFA) layer, exact and factorised.

The layer maps the responses of ``H`` electrode groups ("heads") to a ``c × i × i`` feature
image (DESIGN.md §1): per head an embedding ``e_h``, positional codes that depend on x only
(first ``c/2`` channels) or y only (last ``c/2``), per-head 1×1 key / value projections, a
``k × k`` score convolution shared by the heads, and a softmax *over heads* at every
(channel, y, x). The softmax weights are the inverse receptive fields.

Because every position code is "x part ⊕ y part" and keys / values are linear in it, a head's key
and value fields are sums ``Kx(x) + Ky(y)``. Convolving an x-only field in 2-D is a 1-D
convolution along x with the kernel summed over the rows that fall inside the image, so scores
are ``S = Sx^(r(y))(x) + Sy^(r(x))(y)`` where ``r`` is the row / column *class*: "interior" or one
of the ``k − 1`` border rows (columns) that see a truncated kernel. In the interior the softmax of
a sum is a product of exponentials and the output is three batched ``(i × H)(H × i)`` matrix
products per channel; the ``2(k−1)`` border rows and columns are evaluated directly from the
same 1-D scores. Nothing of size ``n × H × c × i × i`` is ever built. Where the two shifted
exponentials underflow together (extreme scores), those pixels are recomputed with a direct,
stable softmax, so the result is exact everywhere.

``implementation="dense"`` evaluates the textbook formula with the same parameters; it is kept
for tests and for users who want to read the model as published.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_IMPLEMENTATIONS = ("factorized", "dense")
_INITS = ("default", "kaiming")


def _same_padding(kernel_size: int) -> tuple[int, int]:
    """(before, after) zero padding of a PyTorch ``padding="same"`` convolution."""
    total = kernel_size - 1
    return total // 2, total - total // 2


def _full_precision(inputs: Sequence[Tensor]):
    """Context that switches autocast off: softmax over products of exponentials needs fp32."""
    device_type = inputs[0].device.type if len(inputs) else "cpu"
    return torch.autocast(device_type=device_type, enabled=False)


def _upcast(inputs: Sequence[Tensor]) -> list[Tensor]:
    return [x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in inputs]


@dataclass
class _Factors:
    """Pieces of one forward pass of the factorised layer (float32 or wider), heads last.

    Every score is ``const + conv``: a per-sample constant that depends on the pixel only
    through its row class and column class (0 = interior lines, ``1..b`` the top/left border
    lines, ``b+1..k-1`` the bottom/right ones), plus a sample-independent 1-D field. Values
    are likewise a per-sample constant plus a field. Nothing here has ``n`` and an image axis
    and the heads at once, except the interior factors ``ex`` and ``ey``.
    """

    const_x: Tensor  # (n, k row class, c, k col class, H), score bias included
    const_y: Tensor  # (n, k col class, c, k row class, H)
    conv_x: Tensor  # (k row class, c, i, H)
    conv_y: Tensor  # (k col class, c, i, H)
    value_x: Tensor  # (n, c, H), value bias included
    value_y: Tensor  # (n, c, H)
    vfield_x: Tensor  # (c, i, H)
    vfield_y: Tensor  # (c, i, H)
    sx_in: Tensor  # (n, c, m, H): interior scores of the x-only fields
    sy_in: Tensor  # (n, c, m, H)
    ex: Tensor  # (n, c, m, H): exp(sx_in - max over heads)
    ey: Tensor  # (n, c, m, H): exp(sy_in - max over heads)
    denom: Tensor | None  # (n, c, m, m): sum_h ey * ex (None when _InteriorAttention makes it)
    underflow: tuple[Tensor, ...] | None  # (n, o, y, x) interior indices needing a direct softmax
    tiny: float


def _reciprocal(f: _Factors) -> Tensor:
    """``1 / D`` on the interior block, 0 where a pixel is evaluated directly."""
    if f.underflow is None:
        return f.denom.reciprocal()
    mask = torch.zeros_like(f.denom, dtype=torch.bool).index_put(f.underflow, torch.tensor(True))
    safe = torch.where(mask, torch.ones_like(f.denom), f.denom)
    return torch.where(mask, torch.zeros_like(f.denom), safe.reciprocal())


def _assemble(top: Tensor, left: Tensor, mid: Tensor, right: Tensor, bottom: Tensor) -> Tensor:
    """Put border strips around the interior block (last two dims are y, x)."""
    return torch.cat([top, torch.cat([left, mid, right], dim=-1), bottom], dim=-2)


class _InteriorAttention(torch.autograd.Function):
    """Output image from the factorised interior and the exact border strips.

    Forward: ``A = (Σ_h ey·ex·(vx + vy)) / D`` on the interior block (three batched matrix
    products), border strips copied around it, written once into the output. Backward uses the
    closed-form gradients of the ratio, so only ``D``, the output and the small factors are
    kept: no ``(n, H, c, i, i)`` tensor and no numerator are stored. Work is done in chunks of
    channels so that each numerator stays in cache. Pixels where ``D`` is tiny come out as 0
    with zero gradient (``D`` is stored as inf there) and are returned as ``(n·c, y, x)``
    indices; the caller fills them in.
    """

    #: about 1 MiB of m×m float32 numerators per chunk of the forward pass (stays in cache)
    CHUNK_ELEMENTS = 2**18

    @staticmethod
    def forward(ctx, ey, ex, vy, vx, rows, cols, tiny: float, before: int):
        # ey, vy: (n, c, m, H); ex, vx: (n, c, H, m); rows: (n, c, k-1, i); cols: (n, c, m, k-1)
        n, c, m, h = ey.shape
        i = rows.shape[-1]
        out = ey.new_empty(n, c, i, i)
        denom = ey.new_empty(n, c, m, m)
        inner = slice(before, before + m)
        ey_f, ex_f = ey.reshape(n * c, m, h), ex.reshape(n * c, h, m)
        left = torch.cat([ey, ey * vy], dim=-1).reshape(n * c, m, 2 * h)
        right = torch.cat([ex * vx, ex], dim=-2).reshape(n * c, 2 * h, m)
        flat_out, flat_denom = out.view(n * c, i, i), denom.view(n * c, m, m)
        step = max(1, _InteriorAttention.CHUNK_ELEMENTS // (m * m))
        low_pixels = []
        for s in range(0, n * c, step):
            chunk = slice(s, s + step)
            d = torch.bmm(ey_f[chunk], ex_f[chunk], out=flat_denom[chunk])
            if float(d.min()) < tiny:  # both exponentials tiny: evaluated by the caller
                low = d < tiny
                index = low.nonzero()
                index[:, 0] += s
                low_pixels.append(index)
                d.masked_fill_(low, math.inf)
            numer = torch.bmm(left[chunk], right[chunk])
            torch.div(numer, d, out=flat_out[chunk, inner, inner])
        out[..., :before, :] = rows[..., :before, :]
        out[..., before + m :, :] = rows[..., before:, :]
        out[..., inner, :before] = cols[..., :before]
        out[..., inner, before + m :] = cols[..., before:]
        low_pixels = torch.cat(low_pixels) if low_pixels else ey.new_empty(0, 3, dtype=torch.long)
        ctx.before = before
        ctx.mark_non_differentiable(low_pixels)
        ctx.save_for_backward(ey, ex, vy, vx, denom, out)
        return out, low_pixels

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad, _):
        ey, ex, vy, vx, denom, out = ctx.saved_tensors
        before, m = ctx.before, ey.shape[2]
        inner = slice(before, before + m)
        p = grad[..., inner, inner] / denom  # dL/dnumer
        ex_t = ex.transpose(-1, -2)
        # numer = [ey, ey*vy] @ [ex*vx; ex], denom = ey @ ex
        right = torch.matmul(p, torch.cat([(ex * vx).transpose(-1, -2), ex_t], dim=-1))
        left = torch.matmul(torch.cat([ey, ey * vy], dim=-1).transpose(-1, -2), p)
        q = p.mul_(out[..., inner, inner])  # -dL/ddenom, in place: p is no longer needed
        p_exvx, p_ex = right.split(ey.shape[-1], dim=-1)
        ey_p, eyvy_p = left.split(ey.shape[-1], dim=-2)
        q_ex = torch.matmul(q, ex_t)
        d_ey = p_exvx + vy * p_ex - q_ex
        d_vy = ey * p_ex
        ey_q = torch.matmul(ey.transpose(-1, -2), q)
        d_ex = vx * ey_p + eyvy_p - ey_q
        d_vx = ex * ey_p
        d_rows = torch.cat([grad[..., :before, :], grad[..., before + m :, :]], dim=-2)
        d_cols = torch.cat([grad[..., inner, :before], grad[..., inner, before + m :]], dim=-1)
        return d_ey, d_ex, d_vy, d_vx, d_rows, d_cols, None, None


class InverseReceptiveFieldAttention(nn.Module):
    """Multi-head embedding, positional encoding and transpose attention of IRFA.

    Parameters
    ----------
    n_heads : int
        Number of electrode groups (attention heads).
    channels : int
        Number of feature channels ``c`` (even). The embedding has ``c/2`` features.
    image_size : int
        Side ``i`` of the square output.
    kernel_size : int, default 4
        Side ``k`` of the score convolution (``padding="same"``, zeros).
    head_sizes : sequence of int, optional
        Number of units of each head. When omitted the embeddings are inferred on the first
        forward call (lazy), like ``torch.nn.LazyLinear``.
    implementation : {"factorized", "dense"}, default "factorized"
        How :meth:`forward` and the field methods compute. Both give the same values (to
        float32 rounding) from the same parameters; the attribute may be changed at any time.
    init : {"default", "kaiming"}, default "default"
        Initialisation. ``"default"`` is what the published reference code does: it leaves the
        attention layer at PyTorch's default initialisation of its modules (uniform
        ``±1/sqrt(fan_in)`` weights and biases of the key / value / score convolutions and the
        embedding ``Linear``; ``BatchNorm1d`` at weight 1, bias 0). ``"kaiming"`` applies the
        reference's U-Net initialisation here too (Kaiming-normal fan_out convolutions,
        Xavier-normal linears, ``N(1, 0.02)`` batch-norm weights).

    Notes
    -----
    ``forward(inputs)`` takes a list of ``n_heads`` tensors ``(n, n_units_h)`` and returns
    ``(n, channels, image_size, image_size)``. In the factorised form, memory grows like
    ``n·c·i²`` instead of ``n·H·c·i²`` and compute like ``3·H`` instead of ``c·k²`` multiply-adds
    per output element.
    """

    def __init__(
        self,
        n_heads: int,
        channels: int,
        image_size: int,
        kernel_size: int = 4,
        *,
        head_sizes: Sequence[int] | None = None,
        implementation: str = "factorized",
        init: str = "default",
    ) -> None:
        super().__init__()
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        if n_heads < 1:
            raise ValueError(f"n_heads must be >= 1, got {n_heads}")
        if channels < 2 or channels % 2:
            raise ValueError(f"channels must be an even number >= 2, got {channels}")
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        if image_size < kernel_size:
            raise ValueError(
                f"image_size ({image_size}) must be at least kernel_size ({kernel_size})"
            )
        if head_sizes is not None and len(head_sizes) != n_heads:
            raise ValueError(f"head_sizes has {len(head_sizes)} entries for {n_heads} heads")
        self.n_heads = n_heads
        self.channels = channels
        self.image_size = image_size
        self.kernel_size = kernel_size
        self.implementation = implementation
        self.init = init
        half = channels // 2

        def embedding(n_units: int | None) -> nn.Sequential:
            linear = nn.Linear(n_units, half) if n_units else nn.LazyLinear(half)
            return nn.Sequential(linear, nn.BatchNorm1d(half), nn.ReLU())

        sizes = head_sizes if head_sizes is not None else [None] * n_heads
        self.embeddings = nn.ModuleList(embedding(s) for s in sizes)
        self.pos_x = nn.Parameter(torch.randn(half, image_size) * channels**-0.5)
        self.pos_y = nn.Parameter(torch.randn(half, image_size) * channels**-0.5)
        # grouped 1x1 convolutions: one (c x c) matrix + bias per head
        self.key_weight = nn.Parameter(torch.empty(n_heads, channels, channels))
        self.key_bias = nn.Parameter(torch.zeros(n_heads, channels))
        self.value_weight = nn.Parameter(torch.empty(n_heads, channels, channels))
        self.value_bias = nn.Parameter(torch.zeros(n_heads, channels))
        self.score_weight = nn.Parameter(torch.empty(channels, channels, kernel_size, kernel_size))
        self.score_bias = nn.Parameter(torch.zeros(channels))
        self.reset_parameters()

    # ------------------------------------------------------------------ set-up
    def reset_parameters(self) -> None:
        """Initialise the parameters as ``self.init`` says (see the class docstring)."""
        c, h, k = self.channels, self.n_heads, self.kernel_size
        with torch.no_grad():
            if self.init == "default":
                # PyTorch's Conv2d default: U(±1/sqrt(fan_in)) for weight and bias; a grouped
                # Conv2d(h*c, h*c, 1, groups=h) has fan_in = c, the score Conv2d c*k*k
                for weight, bias, fan_in in (
                    (self.key_weight, self.key_bias, c),
                    (self.value_weight, self.value_bias, c),
                    (self.score_weight, self.score_bias, c * k * k),
                ):
                    bound = 1.0 / math.sqrt(fan_in)
                    weight.uniform_(-bound, bound)
                    bias.uniform_(-bound, bound)
            else:
                # Kaiming-normal fan_out: a grouped 1x1 Conv2d(h*c, h*c) has fan_out = h*c
                std_kv = math.sqrt(2.0 / (h * c))
                self.key_weight.normal_(0.0, std_kv)
                self.value_weight.normal_(0.0, std_kv)
                self.key_bias.zero_()
                self.value_bias.zero_()
                self.score_weight.normal_(0.0, math.sqrt(2.0 / (c * k * k)))
                self.score_bias.zero_()
        for emb in self.embeddings:
            linear, norm = emb[0], emb[1]
            if not isinstance(linear, nn.LazyLinear):
                self._init_linear(linear)
            if self.init == "default":
                norm.reset_parameters()
            else:
                nn.init.normal_(norm.weight, 1.0, 0.02)
                nn.init.zeros_(norm.bias)

    def _init_linear(self, linear: nn.Linear) -> None:
        if self.init == "default":
            linear.reset_parameters()
        else:
            nn.init.xavier_normal_(linear.weight)
            nn.init.zeros_(linear.bias)

    @property
    def implementation(self) -> str:
        return self._implementation

    @implementation.setter
    def implementation(self, value: str) -> None:
        if value not in _IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {_IMPLEMENTATIONS}, got {value!r}")
        self._implementation = value

    @property
    def head_sizes(self) -> list[int | None]:
        """Number of input units of each head (``None`` while still lazy)."""
        out = []
        for emb in self.embeddings:
            lin = emb[0]
            out.append(None if isinstance(lin, nn.LazyLinear) else lin.in_features)
        return out

    def extra_repr(self) -> str:
        return (
            f"n_heads={self.n_heads}, channels={self.channels}, image_size={self.image_size}, "
            f"kernel_size={self.kernel_size}, implementation={self.implementation!r}, "
            f"init={self.init!r}"
        )

    # -------------------------------------------------------------- embedding
    def embed(self, inputs: Sequence[Tensor]) -> Tensor:
        """Per-head embeddings ``(n, H, c/2)`` of a list of ``H`` response tensors."""
        if len(inputs) != self.n_heads:
            raise ValueError(f"expected a list of {self.n_heads} tensors, got {len(inputs)}")
        outs = []
        for emb, x in zip(self.embeddings, inputs, strict=True):
            linear = emb[0]
            if isinstance(linear, nn.LazyLinear) and linear.has_uninitialized_params():
                linear.initialize_parameters(x)  # PyTorch's default initialisation
                if self.init != "default":
                    self._init_linear(linear)
            outs.append(emb(x))
        return torch.stack(outs, dim=1)

    # -------------------------------------------------------------- dense form
    def dense_weights(self, inputs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Attention weights and values, materialised: two ``(n, H, c, i, i)`` tensors.

        This is the textbook computation of the published model (positional code, 1×1 key
        and value convolutions, ``k × k`` score convolution, softmax over heads). It needs
        ``O(n·H·c·i²)`` memory; use :meth:`spatial_fields` / :meth:`feature_fields` for the
        usual summaries instead.
        """
        e = self.embed(inputs)
        n, h, half = e.shape
        i, c = self.image_size, self.channels
        px = (e.unsqueeze(-1) + self.pos_x).unsqueeze(-2).expand(n, h, half, i, i)
        py = (e.unsqueeze(-1) + self.pos_y).unsqueeze(-1).expand(n, h, half, i, i)
        pos = torch.cat([px, py], dim=2)  # (n, H, c, y, x)
        keys = torch.einsum("hoc,nhcyx->nhoyx", self.key_weight, pos)
        keys = keys + self.key_bias[None, :, :, None, None]
        values = torch.einsum("hoc,nhcyx->nhoyx", self.value_weight, pos)
        values = values + self.value_bias[None, :, :, None, None]
        before, after = _same_padding(self.kernel_size)
        padded = F.pad(keys.reshape(n * h, c, i, i), (before, after, before, after))
        scores = F.conv2d(padded, self.score_weight, self.score_bias)
        scores = scores.reshape(n, h, c, i, i) / math.sqrt(c * self.kernel_size**2)
        return torch.softmax(scores, dim=1), values

    # ---------------------------------------------------------- factorised form
    def _kernel_masks(self, device: torch.device) -> Tensor:
        """``masks[a, d]``: kernel offset ``d`` lands inside the image for line class ``a``."""
        k = self.kernel_size
        before, after = _same_padding(k)
        masks = torch.ones(k, k, device=device)
        for r in range(before):  # top line r sees input lines r - before + d >= 0
            masks[1 + r, : before - r] = 0
        for j in range(after):  # bottom line i - after + j sees lines <= i - 1
            masks[1 + before + j, before + after - j :] = 0
        return masks

    def _by_class(self, t: Tensor, dim: int) -> Tensor:
        """Expand a line-class axis (size ``k``) to the ``i`` lines of the image."""
        before, after = _same_padding(self.kernel_size)
        m = self.image_size - before - after
        interior = t.narrow(dim, 0, 1)
        shape = list(interior.shape)
        shape[dim] = m
        parts = [t.narrow(dim, 1, before), interior.expand(shape), t.narrow(dim, 1 + before, after)]
        return torch.cat(parts, dim=dim)

    def _factors(self, inputs: Sequence[Tensor], with_denominator: bool = True) -> _Factors:
        e = self.embed(inputs)
        dtype = torch.promote_types(e.dtype, torch.float32)
        e = e.to(dtype)
        i, c, k = self.image_size, self.channels, self.kernel_size
        half = c // 2
        before, after = _same_padding(k)
        masks = self._kernel_masks(e.device).to(dtype)
        scale = 1.0 / math.sqrt(c * k * k)
        w = self.score_weight.to(dtype) * scale
        wk, wv = self.key_weight.to(dtype), self.value_weight.to(dtype)
        pos_x, pos_y = self.pos_x.to(dtype), self.pos_y.to(dtype)
        # P_h = [e_h + pos_x(x) ; e_h + pos_y(y)], so each key/value field is a per-sample
        # constant plus a per-head field that does not depend on the sample:
        #   K = (Wk1 e + bk) + Wk1 pos_x(x)  +  Wk2 e + Wk2 pos_y(y)
        key_x = torch.einsum("hoc,nhc->noh", wk[:, :, :half], e) + self.key_bias.T
        key_y = torch.einsum("hoc,nhc->noh", wk[:, :, half:], e)
        field_x = torch.einsum("hoc,ci->hoi", wk[:, :, :half], pos_x)  # (H, c, i)
        field_y = torch.einsum("hoc,ci->hoi", wk[:, :, half:], pos_y)
        value_x = torch.einsum("hoc,nhc->noh", wv[:, :, :half], e) + self.value_bias.T
        value_y = torch.einsum("hoc,nhc->noh", wv[:, :, half:], e)
        vfield_x = torch.einsum("hoc,ci->oih", wv[:, :, :half], pos_x)  # (c, i, H)
        vfield_y = torch.einsum("hoc,ci->oih", wv[:, :, half:], pos_y)
        # scores of an x-only field: 1-D convolution along x with the kernel summed over the
        # rows inside the image (per row class); the per-sample constants see the kernel summed
        # over the offsets inside the image in both directions (per row and column class)
        wx = torch.einsum("ad,ocdx->aocx", masks, w).reshape(k * c, c, k)
        wy = torch.einsum("ad,ocyd->aocy", masks, w).reshape(k * c, c, k)
        w_const = torch.einsum("ad,be,ocde->aboc", masks, masks, w)  # (k row, k col, c, c)
        conv_x = F.conv1d(F.pad(field_x, (before, after)), wx).reshape(-1, k, c, i)
        conv_y = F.conv1d(F.pad(field_y, (before, after)), wy).reshape(-1, k, c, i)
        conv_x, conv_y = conv_x.permute(1, 2, 3, 0), conv_y.permute(1, 2, 3, 0)  # (k, c, i, H)
        # sx = const(row class a, column class of x) + conv_x[a, :, x] + bias
        const_x = torch.einsum("aboc,nch->naobh", w_const, key_x)
        const_x = const_x + (self.score_bias.to(dtype) * scale)[:, None, None]
        # sy = const(row class of y, column class b) + conv_y[b, :, y]
        const_y = torch.einsum("aboc,nch->nboah", w_const, key_y)
        inner = slice(before, i - after)
        sx0 = const_x[:, 0, :, :1] + conv_x[0, :, inner]
        sy0 = const_y[:, 0, :, :1] + conv_y[0, :, inner]
        # the shifts cancel exactly in every ratio below, so they carry no gradient (and keep
        # no score tensor alive for the backward pass)
        ex = torch.exp(sx0 - sx0.detach().amax(dim=-1, keepdim=True))
        ey = torch.exp(sy0 - sy0.detach().amax(dim=-1, keepdim=True))
        # D[n, o, y, x] = sum_h ey[n, o, y, h] * ex[n, o, x, h]; the forward pass computes it
        # chunk by chunk in _InteriorAttention (closed-form gradients), the field methods here
        # both exponentials tiny: the products lose precision (and 1/D^2 in the backward pass
        # overflows) -> evaluate those pixels directly. float32: D < ~7e-16.
        tiny = torch.finfo(dtype).tiny ** 0.4
        denom, underflow = None, None
        if with_denominator:
            denom = torch.matmul(ey, ex.transpose(-1, -2))
            with torch.no_grad():
                if float(denom.min()) < tiny:
                    underflow = tuple((denom < tiny).nonzero(as_tuple=True))
        return _Factors(
            const_x, const_y, conv_x, conv_y, value_x, value_y, vfield_x, vfield_y,
            sx0, sy0, ex, ey, denom, underflow, tiny,
        )

    def _edges(self, t: Tensor, dim: int) -> Tensor:
        """The ``k-1`` border lines of axis ``dim`` (top/left ones first)."""
        before, after = _same_padding(self.kernel_size)
        m = self.image_size - before - after
        return torch.cat([t.narrow(dim, 0, before), t.narrow(dim, before + m, after)], dim)

    def _strips(self, f: _Factors) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Exact scores and values of the border strips, materialised, heads second-last.

        Returns ``(row_scores, row_values)`` of shape ``(n, c, k-1, H, i)`` (the ``k-1``
        border rows, full width) and ``(col_scores, col_values)`` of shape
        ``(n, c, k-1, H, m)`` (the border columns over the ``m`` interior rows). Used by the
        field methods and where the factorised strips underflow.
        """
        edges = self._edges
        before, after = _same_padding(self.kernel_size)
        inner = slice(before, self.image_size - after)
        sx_border = self._by_class(f.const_x[:, 1:], 3) + f.conv_x[1:]  # (n, r, c, x, H)
        sy_in_edge = f.const_y[:, 0, :, 1:] + edges(f.conv_y[0], 1)  # (n, c, r, H)
        sy_border_edge = f.const_y[:, 1:, :, 1:] + edges(f.conv_y[1:], 2)  # (n, q, c, r, H)
        sy_border_in = f.const_y[:, 1:, :, :1] + f.conv_y[1:, :, inner]  # (n, q, c, y, H)
        sx_in_edge = f.const_x[:, 0, :, 1:] + edges(f.conv_x[0], 1)  # (n, c, q, H)
        vx = f.value_x[:, :, None] + f.vfield_x  # (n, c, i, H)
        vy_in = f.value_y[:, :, None] + f.vfield_y[:, inner]
        vx_edge = f.value_x[:, :, None] + edges(f.vfield_x, 1)
        vy_edge = f.value_y[:, :, None] + edges(f.vfield_y, 1)
        # rows: sx of the row's own class + sy at that row for the class of every column x
        sy_edge_rows = torch.cat([sy_in_edge[:, None], sy_border_edge], dim=1)
        sy_at_rows = self._by_class(sy_edge_rows, 1)  # (n, x, c, r, H)
        row_scores = sx_border.permute(0, 2, 1, 4, 3) + sy_at_rows.permute(0, 2, 3, 4, 1)
        row_values = vx.transpose(-1, -2)[:, :, None] + vy_edge[..., None]
        # columns (interior rows only): sy of the column's class + interior sx at that column
        col_scores = sy_border_in.permute(0, 2, 1, 4, 3) + sx_in_edge[..., None]
        col_values = vx_edge[..., None] + vy_in.transpose(-1, -2)[:, :, None]
        return row_scores, row_values, col_scores, col_values

    def _direct_strips(self, f: _Factors) -> tuple[Tensor, Tensor]:
        """Border rows ``(n, c, k-1, i)`` and columns ``(n, c, m, k-1)`` of the output."""
        row_s, row_v, col_s, col_v = self._strips(f)
        rows = (torch.softmax(row_s, dim=-2) * row_v).sum(-2)
        cols = (torch.softmax(col_s, dim=-2) * col_v).sum(-2).transpose(-1, -2)
        return rows, cols

    @staticmethod
    def _line_attention(y_part, x_part, u, vfield, tiny):
        """``Σ_h softmax_h(Y + X)·(U + F)`` for scores ``Y[n, c, r, h] + X[r, c, x, h]``.

        ``Y``/``U`` depend on the sample and the line ``r`` only, ``X``/``F`` (value field
        ``(c, x, H)``) on the line and position only, so the softmax factorises and the sum
        over heads is a batched ``(n × 2H)(2H × x)`` product per line and channel.
        Returns ``(n, c, r, x)``, or None where a denominator underflows.
        """
        ey = torch.exp(y_part - y_part.detach().amax(dim=-1, keepdim=True))
        ex = torch.exp(x_part - x_part.detach().amax(dim=-1, keepdim=True))
        ey_b = ey.permute(2, 1, 0, 3)  # (r, c, n, H)
        ex_b = ex.transpose(-1, -2)  # (r, c, H, x)
        denom = torch.matmul(ey_b, ex_b)  # (r, c, n, x)
        if float(denom.detach().min()) < tiny:
            return None
        left = torch.cat([ey_b * u.permute(2, 1, 0, 3), ey_b], dim=-1)  # (r, c, n, 2H)
        right = torch.cat([ex_b, ex_b * vfield.transpose(-1, -2)], dim=-2)  # (r, c, 2H, x)
        return (torch.matmul(left, right) / denom).permute(2, 1, 0, 3)

    def _factorized_strips(self, f: _Factors) -> tuple[Tensor, Tensor]:
        """Border rows and columns like :meth:`_direct_strips`, without heads × image tensors.

        The corners (border row and border column) are evaluated directly; the rest of each
        strip with :meth:`_line_attention`. Falls back to the direct strips on underflow.
        """
        if self.kernel_size == 1:  # no border
            return self._direct_strips(f)
        edges = self._edges
        before, after = _same_padding(self.kernel_size)
        inner = slice(before, self.image_size - after)
        sy_in_edge = f.const_y[:, 0, :, 1:] + edges(f.conv_y[0], 1)  # (n, c, r, H)
        sx_in_edge = f.const_x[:, 0, :, 1:] + edges(f.conv_x[0], 1)  # (n, c, q, H)
        vx_edge = f.value_x[:, :, None] + edges(f.vfield_x, 1)  # (n, c, q, H)
        vy_edge = f.value_y[:, :, None] + edges(f.vfield_y, 1)  # (n, c, r, H)
        # border rows r over interior columns: Y = const_x(r, interior col) + sy_in_edge
        rows = self._line_attention(
            f.const_x[:, 1:, :, 0].transpose(1, 2) + sy_in_edge,
            f.conv_x[1:, :, inner],
            f.value_x[:, :, None] + vy_edge,
            f.vfield_x[:, inner],
            f.tiny,
        )
        # border columns q over interior rows: Y = const_y(q, interior row) + sx_in_edge
        cols = self._line_attention(
            f.const_y[:, 1:, :, 0].transpose(1, 2) + sx_in_edge,
            f.conv_y[1:, :, inner],
            f.value_y[:, :, None] + vx_edge,
            f.vfield_y[:, inner],
            f.tiny,
        )
        if rows is None or cols is None:
            return self._direct_strips(f)
        # corners: border row r and border column q, (n, c, r, q, H)
        corner_s = (
            f.const_x[:, 1:, :, 1:].transpose(1, 2)
            + edges(f.conv_x[1:], 2).transpose(0, 1)
            + f.const_y[:, 1:, :, 1:].permute(0, 2, 3, 1, 4)
            + edges(f.conv_y[1:], 2).permute(1, 2, 0, 3)
        )
        corner_v = vy_edge[:, :, :, None] + vx_edge[:, :, None]
        corners = (torch.softmax(corner_s, dim=-1) * corner_v).sum(-1)  # (n, c, r, q)
        rows = torch.cat([corners[..., :before], rows, corners[..., before:]], dim=-1)
        return rows, cols.transpose(-1, -2)

    def _split_rows(self, strip: Tensor) -> tuple[Tensor, Tensor]:
        before, _ = _same_padding(self.kernel_size)
        return strip[..., :before, :], strip[..., before:, :]

    def _split_cols(self, strip: Tensor) -> tuple[Tensor, Tensor]:
        before, _ = _same_padding(self.kernel_size)
        return strip[..., :before], strip[..., before:]

    def _pixel_scores(self, f: _Factors) -> tuple[Tensor, Tensor]:
        """Scores and values ``(m, H)`` at the interior pixels listed in ``f.underflow``."""
        nb, ob, yb, xb = f.underflow
        before, after = _same_padding(self.kernel_size)
        inner = slice(before, self.image_size - after)
        vx_in = f.value_x[:, :, None] + f.vfield_x[:, inner]
        vy_in = f.value_y[:, :, None] + f.vfield_y[:, inner]
        scores = f.sx_in[nb, ob, xb] + f.sy_in[nb, ob, yb]
        values = vx_in[nb, ob, xb] + vy_in[nb, ob, yb]
        return scores, values

    def _forward_factorized(self, inputs: Sequence[Tensor]) -> Tensor:
        f = self._factors(inputs, with_denominator=False)
        before, after = _same_padding(self.kernel_size)
        inner = slice(before, self.image_size - after)
        rows, cols = self._factorized_strips(f)
        out, low = _InteriorAttention.apply(
            f.ey,  # (n, c, y, H)
            f.ex.transpose(-1, -2),  # (n, c, H, x)
            f.value_y[:, :, None] + f.vfield_y[:, inner],
            (f.value_x[:, :, None] + f.vfield_x[:, inner]).transpose(-1, -2),
            rows,
            cols,
            f.tiny,
            before,
        )
        if len(low):  # pixels where the two shifted exponentials underflow together
            c = self.channels
            f.underflow = (low[:, 0] // c, low[:, 0] % c, low[:, 1], low[:, 2])
            scores, values = self._pixel_scores(f)
            direct = (torch.softmax(scores, dim=-1) * values).sum(-1)
            nb, ob, yb, xb = f.underflow
            out = out.index_put((nb, ob, yb + before, xb + before), direct)
        return out

    def _spatial_factorized(self, inputs: Sequence[Tensor]) -> Tensor:
        f = self._factors(inputs)
        recip = _reciprocal(f)
        heads = []
        for head in range(self.n_heads):
            w = f.ey[..., head, None] * recip * f.ex[..., None, :, head]  # (n, c, y, x)
            heads.append(w.sum(dim=1))
        mid = torch.stack(heads, dim=1)  # (n, H, y, x), summed over channels
        if f.underflow is not None:
            scores, _ = self._pixel_scores(f)
            nb, _, yb, xb = f.underflow
            hh = torch.arange(self.n_heads, device=mid.device)
            index = (nb[:, None], hh[None, :], yb[:, None], xb[:, None])
            mid = mid.index_put(index, torch.softmax(scores, dim=-1), accumulate=True)
        row_s, _, col_s, _ = self._strips(f)
        rows = torch.softmax(row_s, dim=-2).sum(dim=1).transpose(1, 2)  # (n, H, r, x)
        cols = torch.softmax(col_s, dim=-2).sum(dim=1).permute(0, 2, 3, 1)  # (n, H, y, q)
        top, bottom = self._split_rows(rows)
        left, right = self._split_cols(cols)
        return _assemble(top, left, mid, right, bottom) / self.channels

    def _feature_factorized(self, inputs: Sequence[Tensor]) -> Tensor:
        f = self._factors(inputs)
        # sum_{y,x} ey[y,h] ex[x,h] R[y,x] = sum_y ey[y,h] (R @ ex)[y,h]
        inner = torch.matmul(_reciprocal(f), f.ex)  # (n, c, y, H)
        out = (inner * f.ey).sum(dim=2).transpose(1, 2)  # (n, H, c)
        if f.underflow is not None:
            scores, _ = self._pixel_scores(f)
            nb, ob, _, _ = f.underflow
            hh = torch.arange(self.n_heads, device=out.device)
            index = (nb[:, None], hh[None, :], ob[:, None])
            out = out.index_put(index, torch.softmax(scores, dim=-1), accumulate=True)
        row_s, _, col_s, _ = self._strips(f)
        rows = torch.softmax(row_s, dim=-2).sum(dim=(2, 4))  # (n, c, H)
        cols = torch.softmax(col_s, dim=-2).sum(dim=(2, 4))
        return out + (rows + cols).transpose(1, 2)

    # ------------------------------------------------------------------ public
    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Attention output ``(n, channels, image_size, image_size)``."""
        with _full_precision(inputs):
            inputs = _upcast(inputs)
            if self.implementation == "dense":
                weights, values = self.dense_weights(inputs)
                return (weights * values).sum(1)
            return self._forward_factorized(inputs)

    def attention_weights(self, inputs: Sequence[Tensor]) -> Tensor:
        """All attention weights ``(n, H, c, i, i)`` (the full inverse receptive fields).

        This materialises ``n·H·c·i²`` numbers; prefer :meth:`spatial_fields` and
        :meth:`feature_fields`.
        """
        with _full_precision(inputs):
            return self.dense_weights(_upcast(inputs))[0]

    def spatial_fields(self, inputs: Sequence[Tensor]) -> Tensor:
        """Spatial inverse receptive fields ``(n, H, i, i)``: weights averaged over channels.

        At every pixel the maps sum to one over heads.
        """
        with _full_precision(inputs):
            inputs = _upcast(inputs)
            if self.implementation == "dense":
                return self.dense_weights(inputs)[0].mean(dim=2)
            return self._spatial_factorized(inputs)

    def feature_fields(self, inputs: Sequence[Tensor]) -> Tensor:
        """Feature inverse receptive fields ``(n, H, c)``: weights summed over pixels."""
        with _full_precision(inputs):
            inputs = _upcast(inputs)
            if self.implementation == "dense":
                return self.dense_weights(inputs)[0].sum(dim=(3, 4))
            return self._feature_factorized(inputs)
