"""Instance-level ``forward`` replacements for the length of a block (training-only fast paths).

The replacements go in the module's ``__dict__``, so the class's own ``forward`` (what
evaluation, hooks and export call) is back as soon as the block ends, even on an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from torch import nn


@contextmanager
def swapped_forwards(swaps: Sequence[tuple[nn.Module, Callable]]) -> Iterator[None]:
    """Within the block each ``module`` of ``swaps`` computes with its paired ``forward``."""
    try:
        for module, forward in swaps:
            module.forward = forward
        yield
    finally:
        for module, _ in swaps:
            module.__dict__.pop("forward", None)
