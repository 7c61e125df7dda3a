"""Image networks as pixel streams: the stage representation, its lowering and its timing."""

from .lower import check_stream, check_streamable, lower_stream
from .net import ArgminStage, ConvStage, DenseStage, Frame, HammingStage, StreamNet

__all__ = ["ArgminStage", "ConvStage", "DenseStage", "HammingStage", "Frame", "StreamNet", "check_stream", "check_streamable", "lower_stream"]
