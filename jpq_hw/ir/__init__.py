"""The integer network (:class:`QNet`) and the checkpoint format it is read from and written to."""

from .checkpoint import load_checkpoint, qnet_from_dict, qnet_to_dict, save_checkpoint
from .qnet import LAYER_KINDS, WEIGHT_KINDS, ArgminLayer, BoxSumLayer, HammingCostLayer, IntFormat, Layer, QLayer, QNet
from .synthetic import random_conv_qnet, random_qnet, random_stereo_qnet

__all__ = ["ArgminLayer", "BoxSumLayer", "HammingCostLayer", "IntFormat", "Layer", "LAYER_KINDS", "WEIGHT_KINDS", "QLayer", "QNet", "load_checkpoint", "qnet_from_dict",
           "qnet_to_dict", "save_checkpoint", "random_qnet", "random_conv_qnet", "random_stereo_qnet"]
