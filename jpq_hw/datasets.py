"""Small data sets for the shipped examples and their tests (scikit-learn ships the data).

The split is fixed, so the accuracy stored in a shipped checkpoint can be recomputed bit for bit.
"""

from __future__ import annotations

import numpy as np

DIGITS_SPLIT = ("sklearn.datasets.load_digits(); train_test_split(x, y, test_size=0.25, "
                "random_state=0, stratify=y): 1347 train, 450 test")


def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 8x8 digits (1,797 images) split as :data:`DIGITS_SPLIT` describes.

    Returns ``(x_train, y_train, x_test, y_test)``: ``x_*`` int64 [N, 64], the raw pixel values
    0..16 in row-major order (an unsigned 5-bit network input); ``y_*`` int64 [N], labels 0..9.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.int64)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return x_train, y_train, x_test, y_test


def dataset_inputs(meta: dict, n_inputs: int, lo: int, hi: int, count: int = 300) -> np.ndarray | None:
    """The first ``count`` test inputs [count, n_inputs] of the data set a checkpoint's ``meta``
    names (its ``split`` or ``dataset``), where jpq-hw knows it and the network's input holds it;
    else None. Known: the 8x8 digits of :func:`load_digits_split` (64 pixels, 0..16)."""
    names_digits = meta.get("split") == DIGITS_SPLIT or meta.get("dataset") == "sklearn.datasets.load_digits"
    if not names_digits or n_inputs != 64 or lo > 0 or hi < 16:
        return None
    return load_digits_split()[2][:count]
