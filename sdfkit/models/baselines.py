"""Baseline decoders and the global code layout, swappable with the method by config.

Every decoder here has the interface of :class:`~sdfkit.models.siren.ModulatedSiren`
that :func:`~sdfkit.models.latent_grid.blend_tiles` and
:class:`~sdfkit.field.NeuralField` use:

- ``amplitudes(z)``: per-code precompute, ``(T, latent_dim) -> (layers, T, width)``.
  The concat decoders keep the codes themselves (a one-layer table), so the
  training and inference code paths are the same for every decoder.
- ``synthesis(x, table, index)``: ``(M, 3)`` coordinates, row ``m`` with code
  ``index[m]`` -> ``(M,)`` signed distances (negative inside).

Decoders (``model.kind``):

- ``relu_concat``: ReLU MLP on ``[x, z]`` with an optional skip that
  re-concatenates ``[x, z]`` at one layer (DeepSDF, Park et al. 2019; with the
  local layout, DeepLS, Chabra et al. 2020).
- ``siren_concat``: SIREN on ``[x, z]`` ("SIREN + concat").
- ``fourier_concat``: random Fourier features of ``x`` (Tancik et al. 2020),
  concatenated with ``z``, into a ReLU MLP.

The two ReLU decoders start with their field centred on zero (:func:`centre_output_`):
the loss passes no gradient through a prediction beyond its clamp band.

Layout (``grid.layout``): :class:`~sdfkit.models.latent_grid.GlobalGrid` gives a
scene one code for its whole box, in place of the tile grid of ``LatentGrid``.

The per-shape reference without an auto-decoder, a plain SIREN fitted alone,
is benchmark code: ``benchmarks/siren_reference.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sdfkit.models.latent_grid import GLOBAL_PADDING, GlobalGrid  # noqa: F401  (the global layout, re-exported)
from sdfkit.models.siren import linears, siren_init_

#: Lattice points per axis of the probe on which :func:`centre_output_` measures a new decoder's offset.
CENTRE_PROBE = 9


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars of ``module`` (decoder weights, not codes)."""
    return int(sum(p.numel() for p in module.parameters()))


class ConcatDecoder(nn.Module):
    """Base of the decoders that read the code concatenated to their input.

    Subclasses define :meth:`embed` (coordinates -> features) and :meth:`mlp`
    (features ++ code -> value).
    """

    in_dim: int
    hidden: int
    layers: int
    latent_dim: int
    output: nn.Linear

    def amplitudes(self, z: Tensor) -> Tensor:
        """The codes as a one-layer table: (T, latent_dim) -> (1, T, latent_dim)."""
        return z.unsqueeze(0)

    def embed(self, x: Tensor) -> Tensor:
        return x

    def mlp(self, h: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def synthesis(self, x: Tensor, amps: Tensor | Sequence[Tensor], index: Tensor | None) -> Tensor:
        """x : (M, 3); amps : (1, T, latent_dim), or one (T, latent_dim) tensor; index : (M,) long -> (M,).
        ``index`` None: ``amps`` holds row m's code at row m (T = M)."""
        codes = amps[0] if index is None else amps[0].index_select(0, index)
        return self.mlp(torch.cat([self.embed(x), codes], dim=-1))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        """One code per row. x : (M, 3), z : (M, latent_dim) -> (M,)."""
        return self.mlp(torch.cat([self.embed(x), z], dim=-1))


def centre_output_(decoder: ConcatDecoder, probe: int = CENTRE_PROBE) -> None:
    """Shift ``decoder``'s output bias so that its new field has mean 0 over its input box at the zero code.

    The loss clamps predictions to +-band, and a clamped prediction passes no
    gradient. PyTorch's default initialisation leaves a ReLU decoder's output
    with an offset of order 1/sqrt(hidden) (its bias, and its weights on
    non-negative features), larger than a global layout's band (a few
    hundredths of the box side): a decoder whose every prediction starts beyond
    the band on one side never trains, and its field has no zero level set.
    Centred, the field starts about zero, in the linear part of the clamp.
    The probe is a lattice over [-1, 1]^in_dim (the tile or box coordinates
    both layouts feed the decoder) with the codes' prior mean, zero.
    """
    with torch.no_grad():
        axis = torch.linspace(-1.0, 1.0, probe)
        x = torch.stack(torch.meshgrid(*([axis] * decoder.in_dim), indexing="ij"), dim=-1).reshape(-1, decoder.in_dim)
        z = torch.zeros(len(x), decoder.latent_dim)
        decoder.output.bias.sub_(decoder(x, z).mean())


class ReluConcatDecoder(ConcatDecoder):
    """ReLU MLP on ``[x, z]`` (DeepSDF's decoder without weight norm and dropout).

    Parameters
    ----------
    in_dim : coordinate size (3).
    hidden : width of the hidden layers.
    layers : number of hidden layers.
    latent_dim : code size.
    skip_layer : index in ``[1, layers)`` of the layer whose input is
        ``[h, x, z]`` instead of ``h`` (DeepSDF uses 4 of 8); None: no skip.
    """

    def __init__(self, in_dim: int = 3, hidden: int = 128, layers: int = 4, latent_dim: int = 64,
                 skip_layer: int | None = None):
        super().__init__()
        if layers < 1 or hidden < 1 or latent_dim < 1:
            raise ValueError("layers, hidden and latent_dim must be positive")
        if skip_layer is not None and not 1 <= skip_layer < layers:
            raise ValueError(f"skip_layer must lie in [1, {layers}), got {skip_layer}")
        self.in_dim, self.hidden, self.layers, self.latent_dim = in_dim, hidden, layers, latent_dim
        self.skip_layer = skip_layer
        first = in_dim + latent_dim
        widths = [first if i == 0 else hidden + (first if i == skip_layer else 0) for i in range(layers)]
        self.hidden_layers = nn.ModuleList([nn.Linear(w, hidden) for w in widths])
        self.output = nn.Linear(hidden, 1)
        centre_output_(self)

    def mlp(self, h: Tensor) -> Tensor:
        inputs = h
        for i, layer in enumerate(self.hidden_layers):
            if i == self.skip_layer:
                h = torch.cat([h, inputs], dim=-1)
            h = torch.relu(layer(h))
        return self.output(h).squeeze(-1)


class SirenConcatDecoder(ConcatDecoder):
    """SIREN on ``[x, z]``: the code enters the first sine layer like a coordinate.

    Parameters as :class:`~sdfkit.models.siren.ModulatedSiren`; ``latent_dim``
    may be 0 (a plain SIREN, see :func:`fit_siren_reference`).
    """

    def __init__(self, in_dim: int = 3, hidden: int = 128, layers: int = 4, latent_dim: int = 64, w0: float = 30.0):
        super().__init__()
        if layers < 1 or hidden < 1 or latent_dim < 0:
            raise ValueError("layers and hidden must be positive, latent_dim non-negative")
        self.in_dim, self.hidden, self.layers, self.latent_dim, self.w0 = in_dim, hidden, layers, latent_dim, w0
        self.sine_layers = nn.ModuleList(
            [nn.Linear(in_dim + latent_dim if i == 0 else hidden, hidden) for i in range(layers)]
        )
        self.output = nn.Linear(hidden, 1)
        for i, layer in enumerate(linears(self.sine_layers)):
            siren_init_(layer, w0, first=i == 0)
        siren_init_(self.output, w0, first=False)

    def mlp(self, h: Tensor) -> Tensor:
        for layer in linears(self.sine_layers):
            h = torch.sin(nn.functional.linear(h, layer.weight * self.w0, layer.bias * self.w0))
        return self.output(h).squeeze(-1)


class FourierConcatDecoder(ConcatDecoder):
    """Random Fourier features of ``x`` with the code, into a ReLU MLP.

    ``gamma(x) = [sin(2 pi B x), cos(2 pi B x)]`` with ``B`` (features, in_dim)
    drawn once from N(0, scale^2) by ``seed`` and stored as a buffer (it is
    saved with the weights).
    """

    frequencies: Tensor

    def __init__(self, in_dim: int = 3, hidden: int = 128, layers: int = 4, latent_dim: int = 64,
                 features: int = 64, scale: float = 4.0, seed: int = 0):
        super().__init__()
        if layers < 1 or hidden < 1 or latent_dim < 1 or features < 1:
            raise ValueError("layers, hidden, latent_dim and features must be positive")
        self.in_dim, self.hidden, self.layers, self.latent_dim = in_dim, hidden, layers, latent_dim
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("frequencies", torch.randn(features, in_dim, generator=gen) * scale)
        widths = [2 * features + latent_dim] + [hidden] * (layers - 1)
        self.hidden_layers = nn.ModuleList([nn.Linear(w, hidden) for w in widths])
        self.output = nn.Linear(hidden, 1)
        centre_output_(self)

    def embed(self, x: Tensor) -> Tensor:
        angle = (2.0 * math.pi) * (x @ self.frequencies.T)
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)

    def mlp(self, h: Tensor) -> Tensor:
        for layer in self.hidden_layers:
            h = torch.relu(layer(h))
        return self.output(h).squeeze(-1)
