"""Stereo depth example: data, baselines, metrics and a float binary-feature stereo network.

Submodules (import them directly; this package imports nothing heavy):

- :mod:`jpq_hw.stereo.data`: the Middlebury Motorcycle pair at quarter resolution (evaluation)
  and seeded synthetic training pairs warped from other images that ship with scikit-image.
- :mod:`jpq_hw.stereo.baselines`: census 3x3 + box + winner-take-all, and OpenCV SGBM.
- :mod:`jpq_hw.stereo.metrics`: EPE, bad>1, bad>2 on valid ground-truth pixels.
- :mod:`jpq_hw.stereo.model`: the siamese binary-feature network, Hamming cost, box, argmin.
- :mod:`jpq_hw.stereo.train`: its training loop (with hooks for a pruner) and loss.
- :mod:`jpq_hw.stereo.compress`: its compression by jpq-hw's pruner and QuantNet, and the export
  as a stream-ready checkpoint (hamming_cost, box_sum, argmin).

Convention everywhere: left is the reference, ``left(y, x) = right(y, x - d(y, x))``, 16 integer
disparities 0..15.
"""
