"""Image networks as pixel streams: the stage representation, its lowering and its timing."""

from .lower import check_stream, check_streamable, lower_stream
from .net import ConvStage, DenseStage, Frame, StreamNet

__all__ = ["ConvStage", "DenseStage", "Frame", "StreamNet", "check_stream", "check_streamable", "lower_stream"]
