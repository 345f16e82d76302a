"""The classes some layers need beyond ``torch.nn``, as source: the generated file defines the
ones it uses (and ``archc.load`` runs that file), so it still imports nothing but torch. Each
is plain, traceable and scriptable PyTorch with a ``reset_parameters`` where it has parameters
(archc.backends.init calls it)."""

LAYER_NORM_2D = '''
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels at each position (ConvNeXt's; torchvision's LayerNorm2d)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
'''

STOCHASTIC_DEPTH = '''
class StochasticDepth(nn.Module):
    """In training, drops a sample's whole input with probability ``p`` and scales the kept
    ones by 1 / (1 - p); the identity at inference (torchvision.ops.StochasticDepth, "row")."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty([x.shape[0]] + [1] * (x.dim() - 1), dtype=x.dtype, device=x.device)
        return x * mask.bernoulli_(keep).div_(keep)
'''

CHANNEL_SPLIT = '''
class ChannelSplit(nn.Module):
    """The ``index``-th of ``parts`` equal groups of channels (ShuffleNet's channel split)."""

    def __init__(self, parts: int, index: int) -> None:
        super().__init__()
        self.parts = parts
        self.index = index

    def forward(self, x: Tensor) -> Tensor:
        return x.chunk(self.parts, dim=1)[self.index]
'''

CHANNEL_SLICE = '''
class ChannelSlice(nn.Module):
    """The channels ``start`` to ``stop - 1`` of the input."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start = start
        self.stop = stop

    def forward(self, x: Tensor) -> Tensor:
        return x[:, self.start : self.stop]
'''

CHANNEL_PAD = '''
class ChannelPad(nn.Module):
    """``count`` zero channels appended after the input's channels."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.pad(x, (0, 0, 0, 0, 0, self.count))
'''

PERMUTE = '''
class Permute(nn.Module):
    """The input's axes in the order ``dims`` (torchvision.ops.misc.Permute)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return torch.permute(x, self.dims)
'''

SOURCES = {
    "LayerNorm2d": LAYER_NORM_2D,
    "StochasticDepth": STOCHASTIC_DEPTH,
    "ChannelSplit": CHANNEL_SPLIT,
    "Permute": PERMUTE,
    "ChannelSlice": CHANNEL_SLICE,
    "ChannelPad": CHANNEL_PAD,
}
"""Class name -> its source; the generator keeps these names free of its own classes."""
