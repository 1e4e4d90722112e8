"""Modulated SIREN (Mehta et al. 2021) on top of SIREN (Sitzmann et al. 2020).

Synthesis network, for layers i = 1..L::

    h_i = a_i * sin(w0 * (W_i h_{i-1} + b_i)),     h_0 = x
    f(x) = W_out h_L + b_out

Modulation network, fed the latent code ``z`` at every layer (skip connection)::

    a_1     = ReLU(W'_1 z + b'_1)
    a_{i+1} = ReLU(W'_{i+1} [a_i, z] + b'_{i+1})

The amplitudes depend only on ``z``, so callers compute them once per code and
gather them per point (:meth:`ModulatedSiren.amplitudes`, then
:meth:`ModulatedSiren.synthesis`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn


def linears(layers: nn.ModuleList) -> Sequence[nn.Linear]:
    """``layers`` as the linear layers they are (a ``ModuleList`` types its items as plain modules)."""
    return cast("Sequence[nn.Linear]", layers)


def siren_init_(layer: nn.Linear, w0: float, first: bool) -> None:
    """SIREN's initialisation, with ``sin(w0 * (W x + b))`` as the activation.

    The first layer draws weights from U(-1/n, 1/n), so ``w0 * W x`` spans
    several periods over the input; later layers draw from
    U(-sqrt(6/n)/w0, sqrt(6/n)/w0) so pre-activations stay unit-scale.
    """
    n = layer.in_features
    bound = 1.0 / n if first else math.sqrt(6.0 / n) / w0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)
        layer.bias.uniform_(-bound, bound)


class ModulatedSiren(nn.Module):
    """Sine synthesis network whose per-layer amplitudes come from a latent code.

    Parameters
    ----------
    in_dim : input coordinates (3 for tile-local xyz).
    hidden : width of every synthesis and modulation layer.
    layers : number of sine layers L (and of modulation layers).
    latent_dim : size of the latent code z.
    w0 : SIREN frequency factor.
    """

    def __init__(self, in_dim: int = 3, hidden: int = 128, layers: int = 4, latent_dim: int = 64, w0: float = 30.0):
        super().__init__()
        if layers < 1 or hidden < 1 or latent_dim < 1:
            raise ValueError("layers, hidden and latent_dim must be positive")
        self.in_dim, self.hidden, self.layers, self.latent_dim, self.w0 = in_dim, hidden, layers, latent_dim, w0
        self.synthesis_layers = nn.ModuleList(
            [nn.Linear(in_dim if i == 0 else hidden, hidden) for i in range(layers)]
        )
        self.output = nn.Linear(hidden, 1)
        self.modulation_layers = nn.ModuleList(
            [nn.Linear(latent_dim if i == 0 else hidden + latent_dim, hidden) for i in range(layers)]
        )
        for i, layer in enumerate(linears(self.synthesis_layers)):
            siren_init_(layer, w0, first=i == 0)
        siren_init_(self.output, w0, first=False)

    def amplitudes(self, z: Tensor) -> Tensor:
        """Amplitudes of every sine layer for each code.

        z : (T, latent_dim) -> (layers, T, hidden), all >= 0. Layer-major so that
        :meth:`synthesis` gathers one contiguous table per layer.
        """
        out = []
        a = torch.relu(self.modulation_layers[0](z))
        out.append(a)
        for layer in self.modulation_layers[1:]:
            a = torch.relu(layer(torch.cat([a, z], dim=-1)))
            out.append(a)
        return torch.stack(out, dim=0)

    def synthesis(self, x: Tensor, amps: Tensor | Sequence[Tensor], index: Tensor | None) -> Tensor:
        """Evaluate the synthesis network, row m modulated by code ``index[m]``.

        x : (M, in_dim) coordinates; amps : (layers, T, hidden) from
        :meth:`amplitudes`, or a (T, hidden) tensor per layer; index : (M,) long
        in [0, T) -> (M,). ``index`` None: ``amps`` already holds row m's
        amplitudes at row m (T = M).
        """
        h = x
        # A table is split into one view per layer, whose backward stacks the layers' gradients once; ``amps[i]``
        # would give each layer's gradient the size of the whole table.
        layer_amps = amps.unbind(0) if isinstance(amps, Tensor) else amps
        # Without a graph the sine and the product overwrite the pre-activations: one (M x hidden) block a layer
        # instead of three, the same values.
        in_place = not torch.is_grad_enabled()
        for layer, amp in zip(linears(self.synthesis_layers), layer_amps):
            # Scaling the (hidden x hidden) weights by w0 instead of the
            # (M x hidden) pre-activations gives the same values and gradients
            # for a fraction of the work.
            pre = nn.functional.linear(h, layer.weight * self.w0, layer.bias * self.w0)
            rows = amp if index is None else amp.index_select(0, index)
            h = pre.sin_().mul_(rows) if in_place else rows * torch.sin(pre)
        return self.output(h).squeeze(-1)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        """One code per row. x : (M, in_dim), z : (M, latent_dim) -> (M,)."""
        index = torch.arange(len(z), device=z.device)
        return self.synthesis(x, self.amplitudes(z), index)
