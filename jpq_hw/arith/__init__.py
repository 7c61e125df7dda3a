"""Shift-add arithmetic: CSD recoding, the AdderGraph IR, lowering and pipelining passes."""

from .csd import csd_cost, csd_digits
from .graph import Add, AdderGraph, GraphBuilder, Input, Requant, Term, range_width
from .lower import STRATEGIES, lower_qnet
from .pipeline import Schedule, schedule

__all__ = ["Add", "AdderGraph", "GraphBuilder", "Input", "Requant", "STRATEGIES", "Schedule", "Term",
           "csd_cost", "csd_digits", "lower_qnet", "range_width", "schedule"]
