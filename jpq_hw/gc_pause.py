"""Python's cyclic garbage collector, paused while a design is built.

Lowering makes hundreds of thousands of small objects that live until the design is written (graph
nodes, plan terms and definitions, range forms, truth tables) and form no reference cycles. Each
full collection of the cyclic collector scans every one of them and frees nothing; named tuples, unlike
plain tuples, stay tracked, so the scans grow with the network. Reference counting still frees
everything as usual; a cycle made inside the block (none is expected) waits for the next collection
after it. Measured on a 100k-weight network: ``jpq_hw.flow.lower`` about 15 % faster.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def paused_gc():
    """The block (or, as ``@paused_gc()``, the function) runs with the cyclic collector off; it is
    switched back on afterwards only if it was on before, so pauses nest."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
