"""A user's own model for ``jpq-hw compress --model FILE.py:FUNCTION``.

The contract. ``FILE.py`` is imported by path, under a module name of its own, with its folder on
``sys.path`` while it is imported and while the function runs (so it can import the files beside
it; they are imported afresh by every load). ``FUNCTION`` is called with no arguments, after
``torch.manual_seed(--seed)``, and returns a :class:`UserModel` (or a ``dict`` with its keys):

``model``
    the **trained** float ``torch.nn.Module``: Linear / Conv2d layers with ReLU between them
    (Flatten, Dropout, Identity understood; a BatchNorm after a Linear / Conv2d is folded; a final
    Softmax is dropped), as :func:`jpq_hw.compress.chain.read_chain` reads it;
``train``, ``test``
    ``(x, y)`` pairs (torch tensors or numpy arrays): ``x`` the *integer* network inputs
    ``[N, *input_shape]`` (``input_shape`` ``[features]`` or ``[C, H, W]``) in the input format,
    ``y`` the class labels ``[N]`` (integers ``0 .. outputs - 1``);
``input_bits``, ``input_signed``, ``input_exp``
    the input format: ``x`` is an ``input_bits``-bit integer (signed or not; required, default
    unsigned) and the float model sees ``x * 2**input_exp`` (default 0);
``sparsity``, ``act_bits`` (optional)
    the defaults of ``--sparsity`` and ``--act-bits`` for this model (else 0.85 and 8).

:func:`load_user_model` does the import, the call and every check, and raises
:class:`~jpq_hw.errors.JpqError` with one line for anything wrong: no such file, not a ``.py``, an
error while importing it (the exception's first line, with the file and line it came from), no such
function, the function raising, a return value of the wrong kind, a missing or unknown key, data that
are not integers in the input format, labels out of range, a layer the checkpoint format cannot hold.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..errors import JpqError

_counter = itertools.count()


@dataclass
class UserModel:
    """What the function named by ``--model FILE.py:FUNCTION`` returns (see the module docstring)."""

    model: nn.Module                     # trained float model (Linear / Conv2d / ReLU / Flatten)
    train: Any                           # (x_int [N, ...], labels [N])
    test: Any                            # (x_int [N, ...], labels [N])
    input_bits: int                      # x is an input_bits-bit integer ...
    input_signed: bool = False           # ... signed or unsigned ...
    input_exp: int = 0                   # ... and the float model sees x * 2**input_exp
    sparsity: float | None = None        # default of --sparsity for this model (else 0.85)
    act_bits: int | None = None          # default of --act-bits for this model (else 8)


FIELDS = tuple(f.name for f in dataclasses.fields(UserModel))
REQUIRED = tuple(f.name for f in dataclasses.fields(UserModel)
                 if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _origin(e: BaseException) -> str:
    """``file.py line N`` of the deepest frame outside Python's import machinery, or ''."""
    if isinstance(e, SyntaxError) and e.filename and e.filename != "<string>":
        return f"{Path(e.filename).name} line {e.lineno}"
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith("<frozen")]
    if not frames:
        return ""
    return f"{Path(frames[-1].filename).name} line {frames[-1].lineno}"


def _failure(what: str, e: BaseException, sep: str = ": ") -> JpqError:
    where = _origin(e)
    if isinstance(e, SyntaxError):
        return JpqError(f"{what}{sep}{type(e).__name__}: {e.msg}" + (f" ({where})" if where else ""))
    return JpqError(f"{what}{sep}{_first_line(e)}" + (f" ({where})" if where else ""))


def parse_spec(spec: str) -> tuple[Path, str]:
    """``FILE.py:FUNCTION`` split into the file and the function name (checked: file exists, .py)."""
    path, sep, function = str(spec).rpartition(":")
    if not sep or not path or not function:
        raise JpqError(f"--model wants FILE.py:FUNCTION (a Python file and the function in it that returns "
                       f"the model and its data), got {spec!r}")
    if not function.isidentifier():
        raise JpqError(f"--model {spec!r}: {function!r} is not a function name")
    file = Path(path)
    if file.suffix != ".py":
        raise JpqError(f"--model {spec!r}: {path!r} is not a Python file (.py)")
    if not file.is_file():
        raise JpqError(f"--model {spec!r}: no file {path!r}" if not file.exists() else
                       f"--model {spec!r}: {path!r} is not a file")
    return file, function


def _import(file: Path, spec: str):
    name = f"jpq_hw_user_model_{next(_counter)}_{file.stem if file.stem.isidentifier() else 'file'}"
    module_spec = importlib.util.spec_from_file_location(name, file)
    if module_spec is None or module_spec.loader is None:  # pragma: no cover - a .py always has a loader
        raise JpqError(f"--model {spec!r}: cannot import {str(file)!r}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses, pickling and typing look the module up by name
    try:
        module_spec.loader.exec_module(module)
    except SystemExit as e:
        sys.modules.pop(name, None)
        raise JpqError(f"--model {spec!r}: importing {file.name} called sys.exit({e.code!r}); put the file's "
                       "script part under if __name__ == '__main__':") from None
    except Exception as e:
        sys.modules.pop(name, None)
        raise _failure(f"--model {spec!r}: cannot import {file.name}", e) from None
    return module


def _call(module, file: Path, function: str, spec: str, seed: int):
    fn = getattr(module, function, None)
    if fn is None:
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        raise JpqError(f"--model {spec!r}: {file.name} has no function {function!r}"
                       + (f" (it defines: {', '.join(defined)})" if defined else ""))
    if not callable(fn):
        raise JpqError(f"--model {spec!r}: {function!r} is a {type(fn).__name__}, not a function")
    torch.manual_seed(seed)
    try:
        return fn()
    except SystemExit as e:
        raise JpqError(f"--model {spec!r}: {function}() called sys.exit({e.code!r})") from None
    except Exception as e:
        raise _failure(f"--model {spec!r}: {function}() raised", e, sep=" ") from None


def _as_tensor(v: Any, what: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu()
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        return torch.from_numpy(np.ascontiguousarray(v))
    raise JpqError(f"{what} must be a torch tensor or a numpy array of numbers, got {type(v).__name__}")


def _pair(v: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(v, (tuple, list)) and len(v) == 2):
        raise JpqError(f"{what} must be a pair (x, y) of inputs and labels, got {type(v).__name__}"
                       + (f" of length {len(v)}" if isinstance(v, (tuple, list)) else ""))
    x = _as_tensor(v[0], f"{what}[0] (the inputs)")
    y = _as_tensor(v[1], f"{what}[1] (the labels)")
    if y.dim() != 1:
        raise JpqError(f"{what}[1] (the labels) must be one class index per input, shape [N], got {list(y.shape)}")
    if y.dtype == torch.bool or (y.dtype.is_floating_point and not torch.equal(y, torch.round(y))):
        raise JpqError(f"{what}[1] (the labels) must be integer class indices")
    if len(y) and int(y.min()) < 0:
        raise JpqError(f"{what}[1] (the labels) must be >= 0, got {int(y.min())}")
    if x.dtype == torch.bool:
        x = x.long()
    return x, y.long()


def validate(value: Any, name: str = "the function") -> UserModel:
    """The checked :class:`UserModel` that ``value`` (a UserModel or a dict) describes; tensors on
    the CPU; the data in the input format (the checks of :func:`~jpq_hw.compress.compress`)."""
    from .chain import read_chain
    from .pipeline import _check_data
    from .quant import QuantSpec

    if isinstance(value, UserModel):
        fields = {k: getattr(value, k) for k in FIELDS}
    elif isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in FIELDS)
        if unknown:
            raise JpqError(f"{name} returned a dict with unknown key(s) {', '.join(map(repr, unknown))} "
                           f"(known: {', '.join(FIELDS)})")
        missing = [k for k in REQUIRED if k not in value]
        if missing:
            raise JpqError(f"{name} returned a dict without {', '.join(map(repr, missing))} "
                           f"(required: {', '.join(REQUIRED)})")
        fields = {**{f.name: f.default for f in dataclasses.fields(UserModel) if f.name not in REQUIRED}, **value}
    else:
        raise JpqError(f"{name} returned {type(value).__name__ if value is not None else 'None'}; it must return "
                       f"jpq_hw.compress.UserModel(model=..., train=(x, y), test=(x, y), input_bits=...) "
                       f"or a dict with those keys")
    model = fields["model"]
    if not isinstance(model, nn.Module):
        raise JpqError(f"{name} returned a model of type {type(model).__name__}; it must be a torch.nn.Module "
                       f"(the trained float model)")
    bits, signed, exp = fields["input_bits"], fields["input_signed"], fields["input_exp"]
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise JpqError(f"{name} returned input_bits={bits!r}; it must be an integer (bits of the integer input)")
    if not isinstance(signed, bool):
        raise JpqError(f"{name} returned input_signed={signed!r}; it must be True or False")
    if isinstance(exp, bool) or not isinstance(exp, int):
        raise JpqError(f"{name} returned input_exp={exp!r}; it must be an integer (the model sees x * 2**input_exp)")
    sparsity, act_bits = fields["sparsity"], fields["act_bits"]
    if sparsity is not None and (isinstance(sparsity, bool) or not isinstance(sparsity, (int, float))
                                 or not 0.0 <= sparsity < 1.0):
        raise JpqError(f"{name} returned sparsity={sparsity!r}; it must lie in [0, 1) (or be None)")
    if act_bits is not None and (isinstance(act_bits, bool) or not isinstance(act_bits, int)):
        raise JpqError(f"{name} returned act_bits={act_bits!r}; it must be an integer (or None)")
    try:
        spec = QuantSpec(input_bits=bits, input_signed=signed, input_exp=exp)
    except JpqError as e:
        raise JpqError(f"{name} returned a bad input format: {e}") from None
    data = {}
    for key, what in (("train", "training"), ("test", "test")):
        pair = _pair(fields[key], f"{name}: {key}")
        try:
            data[key] = _check_data(pair, what, spec)
        except JpqError as e:
            raise JpqError(f"{name}: {e}") from None
    x_tr, x_te = data["train"][0], data["test"][0]
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise JpqError(f"{name}: test inputs have shape {list(x_te.shape[1:])}, training inputs {list(x_tr.shape[1:])}")
    model = model.cpu().float()
    try:
        read_chain(model, tuple(x_tr.shape[1:]))
    except JpqError as e:
        raise JpqError(f"{name}: {e}") from None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x_tr[:1].float() * 2.0 ** exp)
    model.train(was_training)
    if out.dim() == 2:
        for key, (_, y) in data.items():
            if len(y) and int(y.max()) >= out.shape[1]:
                raise JpqError(f"{name}: {key} labels go up to {int(y.max())} but the model has {out.shape[1]} outputs")
    return UserModel(model=model, train=data["train"], test=data["test"], input_bits=bits, input_signed=signed,
                     input_exp=exp, sparsity=sparsity, act_bits=act_bits)


def load_user_model(spec: str, *, seed: int = 0) -> UserModel:
    """Import ``FILE.py``, call ``FUNCTION()`` (``spec`` is ``FILE.py:FUNCTION``) and check what it
    returns (:func:`validate`); every problem is a one-line :class:`JpqError`."""
    file, function = parse_spec(spec)
    folder = str(file.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    known = set(sys.modules)
    try:
        module = _import(file, spec)
        value = _call(module, file, function, spec, seed)
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
        for name in set(sys.modules) - known:  # the file's siblings: imported afresh by the next load
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin.startswith(folder + "/") and not name.startswith("jpq_hw_user_model_"):
                del sys.modules[name]
    return validate(value, f"--model {spec!r}: {function}()")
