"""Pruning schedules: when masks are (re)chosen during fine-tuning, and at which sparsity.

A fine-tuning run has ``T`` optimizer steps. A :class:`Schedule` places ``n`` pruning events in the
window ``[begin * T, end * T)``, event ``j = 1..n`` at step ``t_j = floor(begin*T + (j-1) * D)``
with ``D = (end - begin) * T / n``; at step ``floor(end * T)`` the mask freezes and the rest of the
run fine-tunes with it. The sparsity of event ``j`` for a final target ``s``:

``oneshot``
    one event (``n = 1``) at ``s``. With ``refresh`` (the ``recover`` fine-tuning mode), the mask is
    re-chosen at ``s`` again at ``steps - 1`` further, evenly spaced events, so that weights pruned
    at the first event can come back before the mask freezes.
``iterative``
    ``s_j = 1 - (1 - s) ** (j / n)``: every event removes the same fraction of the weights that are
    still there (geometric; suits extreme sparsity better than equal-sized steps).
``gradual``
    ``s_j = s * (1 - (1 - j / n) ** 3)``: the cubic schedule of Zhu & Gupta (2017), "To prune, or
    not to prune", with initial sparsity 0, ``n`` pruning steps of ``D`` training steps each.

The event list is a pure function of ``(T, schedule)``; per-layer targets reuse the same steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import JpqError

SCHEDULES = ("oneshot", "iterative", "gradual")


@dataclass(frozen=True)
class Schedule:
    """``kind`` (one of :data:`SCHEDULES`), ``steps`` pruning events in ``[begin, end)`` of the run."""

    kind: str = "gradual"
    steps: int = 20
    begin: float = 0.0
    end: float = 0.6

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise JpqError(f"unknown pruning schedule {self.kind!r} (known: {', '.join(SCHEDULES)})")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise JpqError(f"the number of pruning steps must be an integer >= 1, got {self.steps!r}")
        if not 0.0 <= self.begin <= self.end <= 1.0:
            raise JpqError(f"pruning window must satisfy 0 <= begin <= end <= 1, got begin {self.begin}, end {self.end}")

    def n_events(self, refresh: bool = False) -> int:
        return self.steps if (self.kind != "oneshot" or refresh) else 1

    def progress(self, j: int) -> float:
        """The fraction of the final sparsity's schedule reached at event ``j`` (1-based)."""
        return 1.0 if self.kind == "oneshot" else j / self.steps

    def sparsity(self, j: int, final: float) -> float:
        """Sparsity of event ``j`` (1-based) for a final target ``final`` (see the module docstring)."""
        if self.kind == "oneshot":
            return final
        r = j / self.steps
        if self.kind == "iterative":
            return 1.0 - (1.0 - final) ** r
        return final * (1.0 - (1.0 - r) ** 3)

    def event_steps(self, total_steps: int, refresh: bool = False) -> list[int]:
        """The optimizer step of every event, in order (steps may repeat for a very short run)."""
        n = self.n_events(refresh)
        start = self.begin * total_steps
        span = (self.end - self.begin) * total_steps
        return [int(math.floor(start + (j - 1) * span / n)) for j in range(1, n + 1)]

    def freeze_step(self, total_steps: int) -> int:
        """The step from which the mask is frozen."""
        return int(math.floor(self.end * total_steps))

    def events(self, total_steps: int, final: float, refresh: bool = False) -> list[tuple[int, float]]:
        """``[(step, sparsity), ...]`` for a run of ``total_steps`` and final sparsity ``final``."""
        return [(t, self.sparsity(j, final)) for j, t in enumerate(self.event_steps(total_steps, refresh), start=1)]
