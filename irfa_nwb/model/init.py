"""Weight initialisation of the published IRFA networks."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module) -> None:
    """Published initialisation: Kaiming-normal (fan_out) convs, N(1, 0.02) BN, Xavier linears."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and not isinstance(m, nn.LazyLinear):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
