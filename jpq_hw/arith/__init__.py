"""Shift-add arithmetic: CSD recoding, the AdderGraph IR, lowering and pipelining passes."""

from .csd import csd_cost, csd_digits
from .graph import Add, AdderGraph, GraphBuilder, Input, Requant, Term, range_width
from .lower import lower_qnet
from .optimize import DEFAULT_OPTIMIZE, OPTIMIZE
from .registers import RegisterSchedule, place_registers

__all__ = ["Add", "AdderGraph", "DEFAULT_OPTIMIZE", "GraphBuilder", "Input", "OPTIMIZE", "Requant", "RegisterSchedule",
           "Term", "csd_cost", "csd_digits", "lower_qnet", "place_registers", "range_width"]
