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
    """1-D pieces of one forward pass of the factorised layer (float32 or wider).

    ``sx[:, :, a]`` are the x-only scores of row class ``a`` (0 = interior rows, ``1..b`` the
    top border rows, ``b+1..k-1`` the bottom ones); ``sy`` likewise for columns. ``ex``, ``ey``
    and ``denom`` cover the interior block only (rows and columns of class 0).
    """

    sx: Tensor  # (n, H, k, c, i)
    sy: Tensor  # (n, H, k, c, i)
    vx: Tensor  # (n, H, c, i): x-only part of the values (value bias included)
    vy: Tensor  # (n, H, c, i): y-only part of the values
    ex: Tensor  # (n, H, c, m): exp(sx_interior - max over heads), interior columns
    ey: Tensor  # (n, H, c, m): interior rows
    denom: Tensor  # (n, c, m, m): sum_h ey * ex
    underflow: tuple[Tensor, ...] | None  # (n, o, y, x) interior indices needing a direct softmax


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
    kept: no ``(n, H, c, i, i)`` tensor and no numerator are stored. Pixels where ``D`` is
    tiny (``inf`` in ``denom``) come out as 0 with zero gradient; the caller fills them in.
    """

    @staticmethod
    def forward(ctx, ey, ex, vy, vx, rows, cols, denom, before: int):
        # ey, vy: (n, c, m, H); ex, vx: (n, c, H, m); rows: (n, c, k-1, i); cols: (n, c, m, k-1)
        n, c, m, _ = ey.shape
        i = rows.shape[-1]
        out = ey.new_empty(n, c, i, i)
        inner = slice(before, before + m)
        numer = torch.matmul(torch.cat([ey, ey * vy], dim=-1), torch.cat([ex * vx, ex], dim=-2))
        torch.div(numer, denom, out=out[..., inner, inner])
        del numer
        out[..., :before, :] = rows[..., :before, :]
        out[..., before + m :, :] = rows[..., before:, :]
        out[..., inner, :before] = cols[..., :before]
        out[..., inner, before + m :] = cols[..., before:]
        ctx.before = before
        ctx.save_for_backward(ey, ex, vy, vx, denom, out)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
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
    ) -> None:
        super().__init__()
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
        self.score_weight = nn.Parameter(
            torch.empty(channels, channels, kernel_size, kernel_size)
        )
        self.score_bias = nn.Parameter(torch.zeros(channels))
        self.reset_parameters()

    # ------------------------------------------------------------------ set-up
    def reset_parameters(self) -> None:
        """Initialise as published: Kaiming-normal (fan_out) convolutions, Xavier linears."""
        c, h, k = self.channels, self.n_heads, self.kernel_size
        # a grouped Conv2d(h*c, h*c, 1, groups=h) has fan_out = h*c for Kaiming
        std_kv = math.sqrt(2.0 / (h * c))
        with torch.no_grad():
            self.key_weight.normal_(0.0, std_kv)
            self.value_weight.normal_(0.0, std_kv)
            self.key_bias.zero_()
            self.value_bias.zero_()
            self.score_weight.normal_(0.0, math.sqrt(2.0 / (c * k * k)))
            self.score_bias.zero_()
        for emb in self.embeddings:
            linear, norm = emb[0], emb[1]
            if not isinstance(linear, nn.LazyLinear):
                nn.init.xavier_normal_(linear.weight)
                nn.init.zeros_(linear.bias)
            nn.init.normal_(norm.weight, 1.0, 0.02)
            nn.init.zeros_(norm.bias)

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
            f"kernel_size={self.kernel_size}, implementation={self.implementation!r}"
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
                linear.initialize_parameters(x)
                with torch.no_grad():
                    nn.init.xavier_normal_(linear.weight)
                    nn.init.zeros_(linear.bias)
            outs.append(emb(x))
        return torch.stack(outs, dim=1)

    def _projections(self, e: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """x-only and y-only parts of the key and value fields, each ``(n, H, c, i)``."""
        half = self.channels // 2
        px = e.unsqueeze(-1) + self.pos_x  # (n, H, c/2, i)  x-dependent half of P
        py = e.unsqueeze(-1) + self.pos_y  # (n, H, c/2, i)  y-dependent half of P
        wk, wv = self.key_weight, self.value_weight
        kx = torch.einsum("hoc,nhci->nhoi", wk[:, :, :half], px) + self.key_bias[..., None]
        ky = torch.einsum("hoc,nhci->nhoi", wk[:, :, half:], py)
        vx = torch.einsum("hoc,nhci->nhoi", wv[:, :, :half], px) + self.value_bias[..., None]
        vy = torch.einsum("hoc,nhci->nhoi", wv[:, :, half:], py)
        return kx, ky, vx, vy

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

    def _factors(self, inputs: Sequence[Tensor], track_denominator: bool = True) -> _Factors:
        e = self.embed(inputs)
        n, h, _ = e.shape
        dtype = torch.promote_types(e.dtype, torch.float32)
        e = e.to(dtype)
        kx, ky, vx, vy = self._projections(e)
        i, c, k = self.image_size, self.channels, self.kernel_size
        before, after = _same_padding(k)
        masks = self._kernel_masks(e.device).to(dtype)
        w = self.score_weight.to(dtype)
        scale = 1.0 / math.sqrt(c * k * k)
        # 1-D kernels for x-only fields: summed over the valid rows of each row class
        wx = torch.einsum("ad,ocdx->aocx", masks, w).reshape(k * c, c, k)
        wy = torch.einsum("ad,ocyd->aocy", masks, w).reshape(k * c, c, k)
        sx = F.conv1d(F.pad(kx.reshape(n * h, c, i), (before, after)), wx)
        sx = (sx.reshape(n, h, k, c, i) + self.score_bias.to(dtype)[:, None]) * scale
        sy = F.conv1d(F.pad(ky.reshape(n * h, c, i), (before, after)), wy)
        sy = sy.reshape(n, h, k, c, i) * scale
        inner = slice(before, i - after)
        sx0, sy0 = sx[:, :, 0, :, inner], sy[:, :, 0, :, inner]
        # the shifts cancel exactly in every ratio below, so they carry no gradient (and keep
        # no score tensor alive for the backward pass)
        ex = torch.exp(sx0 - sx0.detach().amax(dim=1, keepdim=True))
        ey = torch.exp(sy0 - sy0.detach().amax(dim=1, keepdim=True))
        # D[n, o, y, x] = sum_h ey[n, h, o, y] * ex[n, h, o, x]; the forward pass differentiates
        # through it in closed form (_InteriorAttention), the field methods through autograd
        with torch.set_grad_enabled(track_denominator and torch.is_grad_enabled()):
            denom = torch.matmul(ey.permute(0, 2, 3, 1), ex.permute(0, 2, 1, 3))
        # both exponentials tiny: the products lose precision (and 1/D^2 in the backward pass
        # overflows) -> evaluate those pixels directly. float32: D < ~7e-16.
        tiny = torch.finfo(dtype).tiny ** 0.4
        with torch.no_grad():
            low = denom < tiny
            underflow = tuple(low.nonzero(as_tuple=True)) if bool(low.any()) else None
        return _Factors(sx, sy, vx, vy, ex, ey, denom, underflow)

    def _strips(self, f: _Factors) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Exact scores and values of the border strips.

        Returns ``(row_scores, row_values)`` of shape ``(n, H, c, k-1, i)`` (the ``k-1``
        border rows, full width) and ``(col_scores, col_values)`` of shape
        ``(n, H, c, m, k-1)`` (the border columns over the ``m`` interior rows).
        """
        i, k = self.image_size, self.kernel_size
        before, after = _same_padding(k)
        device = f.sx.device
        edge = torch.cat([torch.arange(before), torch.arange(i - after, i)]).to(device)
        line_class = torch.zeros(i, dtype=torch.long, device=device)
        line_class[edge] = torch.arange(1, k, device=device)
        inner = slice(before, i - after)
        # rows: sx of the row's own class + sy at that row for the class of every column x
        sy_at_rows = f.sy.index_select(4, edge).index_select(2, line_class)  # (n,H,x,c,r)
        row_scores = f.sx[:, :, 1:].transpose(2, 3) + sy_at_rows.permute(0, 1, 3, 4, 2)
        row_values = f.vx.unsqueeze(-2) + f.vy.index_select(3, edge).unsqueeze(-1)
        # columns (interior rows only): sy of the column's class + interior sx at that column
        col_scores = f.sy[:, :, 1:, :, inner].permute(0, 1, 3, 4, 2) + f.sx[
            :, :, 0
        ].index_select(3, edge).unsqueeze(-2)
        col_values = f.vx.index_select(3, edge).unsqueeze(-2) + f.vy[..., inner].unsqueeze(-1)
        return row_scores, row_values, col_scores, col_values

    def _split_rows(self, strip: Tensor) -> tuple[Tensor, Tensor]:
        before, _ = _same_padding(self.kernel_size)
        return strip[..., :before, :], strip[..., before:, :]

    def _split_cols(self, strip: Tensor) -> tuple[Tensor, Tensor]:
        before, _ = _same_padding(self.kernel_size)
        return strip[..., :before], strip[..., before:]

    def _pixel_scores(self, f: _Factors) -> tuple[Tensor, Tensor]:
        """Scores and values ``(m, H)`` at the interior pixels listed in ``f.underflow``."""
        before, after = _same_padding(self.kernel_size)
        inner = slice(before, self.image_size - after)
        nb, ob, yb, xb = f.underflow
        sx0, sy0 = f.sx[:, :, 0, :, inner], f.sy[:, :, 0, :, inner]
        vx, vy = f.vx[..., inner], f.vy[..., inner]
        scores = sx0[nb, :, ob, xb] + sy0[nb, :, ob, yb]
        values = vx[nb, :, ob, xb] + vy[nb, :, ob, yb]
        return scores, values

    def _forward_factorized(self, inputs: Sequence[Tensor]) -> Tensor:
        f = self._factors(inputs, track_denominator=False)
        before, after = _same_padding(self.kernel_size)
        inner = slice(before, self.image_size - after)
        row_s, row_v, col_s, col_v = self._strips(f)
        rows = (torch.softmax(row_s, dim=1) * row_v).sum(1)
        cols = (torch.softmax(col_s, dim=1) * col_v).sum(1)
        denom = f.denom
        if f.underflow is not None:
            denom = denom.index_put(f.underflow, torch.tensor(math.inf, dtype=denom.dtype))
        out = _InteriorAttention.apply(
            f.ey.permute(0, 2, 3, 1),  # (n, c, y, H)
            f.ex.permute(0, 2, 1, 3),  # (n, c, H, x)
            f.vy[..., inner].permute(0, 2, 3, 1),
            f.vx[..., inner].permute(0, 2, 1, 3),
            rows,
            cols,
            denom,
            before,
        )
        if f.underflow is not None:
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
            w = f.ey[:, head, :, :, None] * recip * f.ex[:, head, :, None, :]  # (n, c, y, x)
            heads.append(w.sum(dim=1))
        mid = torch.stack(heads, dim=1)  # (n, H, y, x), summed over channels
        if f.underflow is not None:
            scores, _ = self._pixel_scores(f)
            nb, _, yb, xb = f.underflow
            hh = torch.arange(self.n_heads, device=mid.device)
            index = (nb[:, None], hh[None, :], yb[:, None], xb[:, None])
            mid = mid.index_put(index, torch.softmax(scores, dim=-1), accumulate=True)
        row_s, _, col_s, _ = self._strips(f)
        rows = torch.softmax(row_s, dim=1).sum(dim=2)
        cols = torch.softmax(col_s, dim=1).sum(dim=2)
        top, bottom = self._split_rows(rows)
        left, right = self._split_cols(cols)
        return _assemble(top, left, mid, right, bottom) / self.channels

    def _feature_factorized(self, inputs: Sequence[Tensor]) -> Tensor:
        f = self._factors(inputs)
        # sum_{y,x} ey[h,y] ex[h,x] R[y,x] = sum_y ey[h,y] (R @ ex^T)[y,h]
        inner = torch.matmul(_reciprocal(f), f.ex.permute(0, 2, 3, 1))  # (n, c, y, H)
        out = (inner * f.ey.permute(0, 2, 3, 1)).sum(dim=2).transpose(1, 2)  # (n, H, c)
        if f.underflow is not None:
            scores, _ = self._pixel_scores(f)
            nb, ob, _, _ = f.underflow
            hh = torch.arange(self.n_heads, device=out.device)
            index = (nb[:, None], hh[None, :], ob[:, None])
            out = out.index_put(index, torch.softmax(scores, dim=-1), accumulate=True)
        row_s, _, col_s, _ = self._strips(f)
        rows = torch.softmax(row_s, dim=1).sum(dim=(3, 4))
        cols = torch.softmax(col_s, dim=1).sum(dim=(3, 4))
        return out + rows + cols

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
