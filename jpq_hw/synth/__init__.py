"""yosys / nextpnr runs for iCE40 and the parsers for what they report (see :mod:`jpq_hw.synth.yosys`)."""

from .yosys import (PnrResult, SynthResult, find_nextpnr_ice40, find_yosys, parse_pnr_report, parse_stat,
                    place_and_route, supports_stat_json, synth_script, synthesize, write_synth_script,
                    yosys_version)

__all__ = ["PnrResult", "SynthResult", "find_nextpnr_ice40", "find_yosys", "parse_pnr_report", "parse_stat",
           "place_and_route", "supports_stat_json", "synth_script", "synthesize", "write_synth_script",
           "yosys_version"]
