"""``jpq-hw compress``: train (or load) an example model, or take a user's own (``--model FILE.py:FUNCTION``,
:mod:`~jpq_hw.compress.user_model`), prune, quantize, report, write a checkpoint.

:func:`add_compress_parser` registers the sub-command on an ``argparse`` sub-parser collection; its
flags map one to one onto :class:`~jpq_hw.compress.pipeline.CompressConfig` fields
(:func:`config_from_args`), so the same choices work for a user's own model through the Python API.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ..errors import JpqError
from ..outputs import output_file

EXAMPLE_NAMES = ("digits-mlp", "digits-wide", "digits-cnn")


def add_compress_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``compress`` sub-command (``set_defaults(run=run_compress)``); returns its parser."""
    from .criteria import CRITERIA
    from .pruner import MODES, SCOPES
    from .schedules import SCHEDULES

    p = subparsers.add_parser(
        "compress", help="prune and quantize an example model, write a checkpoint",
        description="Train (or load) an example float model, or take your own (--model), prune it (criterion, schedule, fine-tuning mode), "
                    "quantize it to power-of-two fixed point (QAT), print accuracies and cost metrics, and write "
                    "a version-1 checkpoint whose integer semantics equal the fake-quantized model bit for bit.")
    p.add_argument("-o", "--output", required=True, help="checkpoint file to write")
    p.add_argument("--force", action="store_true", help="replace existing output files (-o, --save-float, --metrics-json)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--example", default="digits-mlp", choices=EXAMPLE_NAMES, help="example model (default: digits-mlp)")
    which.add_argument("--model", metavar="FILE.py:FUNCTION",
                       help="your own model: FUNCTION() returns jpq_hw.compress.UserModel(model=<trained float model>, "
                            "train=(x, y), test=(x, y), input_bits=B, input_signed=..., input_exp=E) (README: Your own model)")
    p.add_argument("--load-float", metavar="PATH", help="load the float model's state_dict instead of training it (--example only)")
    p.add_argument("--save-float", metavar="PATH", help="save the trained float model's state_dict here (--example only)")
    p.add_argument("--float-epochs", type=int, metavar="N", help="epochs of float training (default: the example's; --example only)")
    g = p.add_argument_group("pruning stage")
    g.add_argument("--criterion", default="taylor", choices=CRITERIA, help="pruning criterion (default: taylor)")
    g.add_argument("--blend-alpha", type=float, default=0.5, metavar="A", help="taylor weight of the blend criterion (default: 0.5)")
    g.add_argument("--taylor-beta", type=float, default=0.9, metavar="B", help="EMA factor of the taylor score (default: 0.9)")
    g.add_argument("--schedule", default="gradual", choices=SCHEDULES, help="pruning schedule (default: gradual, Zhu & Gupta cubic)")
    g.add_argument("--prune-steps", type=int, default=20, metavar="N", help="pruning events (default: 20)")
    g.add_argument("--prune-begin", type=float, default=0.0, metavar="F", help="start of the pruning window, fraction of the run (default: 0)")
    g.add_argument("--prune-end", type=float, default=0.6, metavar="F", help="end of the window, where the mask freezes (default: 0.6)")
    g.add_argument("--mode", default="recover", choices=MODES, help="fine-tuning mode (default: recover)")
    g.add_argument("--sparsity", type=float, default=None, metavar="S",
                   help="target fraction of zero weights, in [0, 1) (default: 0.85; digits-cnn: 0.95; --model: its sparsity)")
    g.add_argument("--lut-budget", type=int, default=None, metavar="N",
                   help="prune until the network's estimated SB_LUT4 (what jpq-hw lower reports with its defaults) "
                        "is at most N, instead of stopping at --sparsity")
    g.add_argument("--priced", action="store_true",
                   help="with --lut-budget: rank weights by the criterion's score per cell instead of the score alone "
                        "(not better on digits-mlp: bench/results/compression_budget.md)")
    g.add_argument("--lut-target", default="ice40", choices=("ice40", "ecp5"),
                   help="with --lut-budget: the FPGA family whose estimate the budget counts: ice40 SB_LUT4, ecp5 LUT4 "
                        "places (LUT4 + 2 per CCU2C) (default: ice40)")
    g.add_argument("--scope", default="global", choices=SCOPES, help="one global target or the same target per layer (default: global)")
    g.add_argument("--layer-floor", type=float, default=0.0, metavar="F",
                   help="each layer keeps at least this fraction of its weights (default: 0, no floor)")
    g.add_argument("--prune-epochs", type=int, default=60, metavar="N", help="fine-tuning epochs of the pruning stage (default: 60)")
    g.add_argument("--prune-lr", type=float, default=0.1, metavar="LR", help="learning rate of the pruning stage (default: 0.1)")
    g.add_argument("--prune-optimizer", default="sgd", choices=("sgd", "adam"), help="optimizer of the pruning stage (default: sgd)")
    q = p.add_argument_group("quantization stage")
    q.add_argument("--weight-bits", type=int, default=6, metavar="B", help="signed weight bits, 2..16; 2 is ternary (default: 6)")
    q.add_argument("--ternary", action="store_true", help="ternary weights {-1, 0, +1} * 2**e (same as --weight-bits 2)")
    q.add_argument("--act-bits", type=int, default=None, metavar="B",
                   help="hidden activation bits, 2..16 (default: 8; digits-cnn: 4; --model: its act_bits)")
    q.add_argument("--layer-bits", type=_layer_widths, default=None, metavar="NAME=B,...",
                   help="per-layer weight bits, e.g. fc1=4,fc2=6 (the others: --weight-bits)")
    q.add_argument("--layer-act-bits", type=_layer_widths, default=None, metavar="NAME=B,...",
                   help="per-layer output bits of hidden layers, e.g. fc1=5 (the others: --act-bits)")
    q.add_argument("--widths", default="fixed", choices=("fixed", "search"),
                   help="search: with --lut-budget, choose every layer's weight and activation bits under the budget "
                        "by short proxy runs scored on a validation split of the training data (default: fixed)")
    q.add_argument("--csd-digits", type=int, default=None, metavar="K",
                   help="at most K nonzero CSD digits (K - 1 adders) per weight (default: no limit)")
    q.add_argument("--qat-epochs", type=int, default=20, metavar="N", help="quantization-aware training epochs (default: 20)")
    q.add_argument("--qat-lr", type=float, default=5e-4, metavar="LR", help="QAT learning rate, Adam (default: 5e-4)")
    o = p.add_argument_group("other")
    o.add_argument("--batch-size", type=int, default=64, metavar="N", help="mini-batch size (default: 64)")
    o.add_argument("--calib-size", type=int, default=512, metavar="N", help="calibration inputs (default: 512)")
    o.add_argument("--seed", type=int, default=0, help="seed of everything (default: 0)")
    o.add_argument("--device", default="auto", metavar="DEV",
                   help="where training runs: auto (CUDA where available, else cpu; the default), cpu, cuda, cuda:N")
    o.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch CPU threads (default: 1; small models run fastest on one)")
    o.add_argument("--no-verify", action="store_true", help="skip the bit-exactness check of the export")
    o.add_argument("--no-adders", action="store_true", help="skip lowering to count adders")
    o.add_argument("--metrics-json", metavar="PATH", help="also write accuracies and metrics as JSON")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run_compress)
    return p


def _layer_widths(text: str) -> dict[str, int]:
    """``fc1=4,fc2=6`` as ``{"fc1": 4, "fc2": 6}`` (argparse type: bad text is a usage error)."""
    out: dict[str, int] = {}
    for item in text.split(","):
        name, sep, bits = item.partition("=")
        if not sep or not name.strip() or not bits.strip().lstrip("-").isdigit():
            raise argparse.ArgumentTypeError(f"expected NAME=BITS[,NAME=BITS...], got {text!r}")
        out[name.strip()] = int(bits)
    return out


def config_from_args(args: argparse.Namespace, user=None):
    """The :class:`CompressConfig` the flags describe (input format from the example, or with ``--model``
    from ``user``, the loaded :class:`~jpq_hw.compress.user_model.UserModel`: its ``sparsity`` and
    ``act_bits``, else CompressConfig's, are the defaults of --sparsity and --act-bits)."""
    import dataclasses

    from .models import get_example
    from .pipeline import CompressConfig, config_for_example

    if getattr(args, "model", None):
        base = CompressConfig()
        if user is not None:
            base = dataclasses.replace(base, input_bits=user.input_bits, input_signed=user.input_signed,
                                       input_exp=user.input_exp)
        default_sparsity = user.sparsity if user is not None and user.sparsity is not None else base.sparsity
        default_act_bits = user.act_bits if user is not None and user.act_bits is not None else base.act_bits
        make = lambda **kw: dataclasses.replace(base, **kw)  # noqa: E731
    else:
        example = get_example(args.example)
        default_sparsity, default_act_bits = example.sparsity, example.act_bits
        make = lambda **kw: config_for_example(args.example, **kw)  # noqa: E731
    sparsity = default_sparsity if args.sparsity is None else args.sparsity
    act_bits = default_act_bits if args.act_bits is None else args.act_bits
    return make(
        criterion=args.criterion, schedule=args.schedule, prune_steps=args.prune_steps,
        prune_begin=args.prune_begin, prune_end=args.prune_end, mode=args.mode, sparsity=sparsity,
        scope=args.scope, layer_floor=args.layer_floor, lut_budget=args.lut_budget, priced=args.priced,
        lut_target=args.lut_target, taylor_beta=args.taylor_beta, blend_alpha=args.blend_alpha,
        prune_epochs=args.prune_epochs, prune_lr=args.prune_lr, prune_optimizer=args.prune_optimizer,
        weight_bits=2 if args.ternary else args.weight_bits, act_bits=act_bits, csd_digits=args.csd_digits,
        layer_weight_bits=args.layer_bits, layer_act_bits=args.layer_act_bits, widths=args.widths,
        qat_epochs=args.qat_epochs, qat_lr=args.qat_lr, batch_size=args.batch_size, calib_size=args.calib_size,
        seed=args.seed, verify=not args.no_verify, adders=not args.no_adders, device=args.device)


class _Bars:
    """``progress(stage, done, total)`` drawn as rich progress bars on stderr."""

    LABELS = {"float": "float training", "prune": "pruning + fine-tuning", "qat": "quantization-aware training"}

    def __init__(self, enabled: bool):
        self.progress = None
        self.tasks: dict[str, Any] = {}
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=Console(stderr=True))

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def log(self, message: str) -> None:
        """A line above the bars (what a cell budget measured, the width search's trials)."""
        if self.progress:
            self.progress.console.print(message, highlight=False)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.progress:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(self.LABELS.get(stage, stage), total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def _load_float(name: str, path: str):
    import torch

    from .models import build_example

    model = build_example(name)
    if not Path(path).is_file():
        raise JpqError(f"float model {path!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as e:  # wrong file, wrong architecture
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise JpqError(f"cannot load {path!r} as the {name} float model ({first})") from None
    return model


def run_compress(args: argparse.Namespace) -> int:
    """The ``compress`` sub-command; returns 0 (bad input raises :class:`JpqError`)."""
    start = time.perf_counter()
    if args.threads < 1:
        raise JpqError(f"--threads must be >= 1, got {args.threads}")
    if args.float_epochs is not None and args.float_epochs < 0:
        raise JpqError(f"--float-epochs must be >= 0, got {args.float_epochs}")
    inputs = [Path(args.load_float)] if args.load_float else []
    if args.model:
        from .user_model import parse_spec

        given = [f for f, v in (("--load-float", args.load_float), ("--save-float", args.save_float),
                                ("--float-epochs", args.float_epochs)) if v is not None]
        if given:
            raise JpqError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the --example models; "
                           "with --model your function returns the trained float model")
        inputs.append(parse_spec(args.model)[0])  # checked before any output; never overwritten by -o
    config = config_from_args(args)  # with --model: the flags checked now, the input format once it is loaded
    config.validate()
    out = Path(args.output)
    extra = [Path(f) for f in (args.save_float, args.metrics_json) if f]
    names = [out, *extra]
    if len({p.absolute() for p in names}) < len(names):
        raise JpqError("-o, --save-float and --metrics-json must name different files")
    # every output is checked, and its temporary file made, before any training starts
    with ExitStack() as stack:
        tmp_out = stack.enter_context(output_file(out, force=args.force, inputs=inputs))
        tmp_float = stack.enter_context(output_file(args.save_float, force=args.force, inputs=inputs)) \
            if args.save_float else None
        tmp_metrics = stack.enter_context(output_file(args.metrics_json, force=args.force, inputs=inputs)) \
            if args.metrics_json else None
        result, seconds = _train_and_write(args, config, tmp_out, tmp_float, tmp_metrics, start, str(out))
    _print_report(args.model or args.example, result, seconds, str(out))
    return 0


def _train_and_write(args: argparse.Namespace, config, tmp_out: Path, tmp_float: Path | None,
                     tmp_metrics: Path | None, start: float, out_name: str):
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (CUDA only)
    import torch

    from ..ir.checkpoint import save_checkpoint
    from ..ir.qnet import QNet
    from .models import example_data
    from .pipeline import compress, train_float

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    user = None
    if args.model:  # imported, called and checked before anything is written (a failure leaves no output)
        from .user_model import load_user_model

        t0 = time.perf_counter()
        user = load_user_model(args.model, seed=args.seed)
        float_seconds = time.perf_counter() - t0
        config = config_from_args(args, user)
        config.validate()
        train_data, test_data = user.train, user.test
    else:
        train_data, test_data = example_data(args.example)
    with _Bars(not args.no_progress) as bars:
        t0 = time.perf_counter()
        if user is not None:
            model = user.model
        elif args.load_float:
            model = _load_float(args.example, args.load_float)
        else:
            model = train_float(args.example, train_data, epochs=args.float_epochs, seed=args.seed, progress=bars,
                                device=config.device)
            if tmp_float is not None:
                torch.save(model.state_dict(), tmp_float)
        if user is None:
            float_seconds = time.perf_counter() - t0
        log = bars.log if config.lut_budget is not None else None  # the budget's measurements, the width search
        result = compress(model, train_data, test_data, config, progress=bars, log=log)
    qnet = result.qnet
    meta = dict(qnet.meta)
    if user is not None:
        meta["model"] = args.model
        meta["float_model"] = f"returned by {args.model}"
    else:
        meta["example"] = args.example
        meta["split"] = _split_description()
        meta["float_model"] = args.load_float or "trained by jpq-hw compress"
    qnet = QNet(qnet.input_shape, qnet.input, qnet.layers, meta)
    save_checkpoint(qnet, tmp_out)
    seconds = {"float": float_seconds, **result.seconds, "total": time.perf_counter() - start}
    if tmp_metrics is not None:
        from .export import plain

        source = {"model": args.model} if user is not None else {"example": args.example}
        payload = {**source, "config": config.to_dict(), "accuracy": result.accuracies,
                   "metrics": result.metrics, "seconds": seconds, "checkpoint": out_name}
        tmp_metrics.write_text(json.dumps(plain(payload), indent=2) + "\n")
    return result, seconds


def _split_description() -> str:
    try:
        from ..datasets import DIGITS_SPLIT
        return DIGITS_SPLIT
    except ImportError:  # pragma: no cover
        return "sklearn digits, test_size=0.25, random_state=0, stratified"


def _fmt_bits(bits: float) -> str:
    if bits >= 8 * 1024:
        return f"{bits / 8 / 1024:.1f} KiB"
    return f"{bits:.0f} b"


def _print_report(example: str, result, seconds: dict[str, float], path: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    c = result.config
    m = result.metrics
    a = result.accuracies
    wdesc = "ternary" if c.weight_bits == 2 else f"{c.weight_bits}-bit"
    csd = f", <= {c.csd_digits} CSD digits" if c.csd_digits else ""
    aim = f"budget {c.lut_budget} LUT4 ({c.lut_target})" if c.lut_budget is not None else f"target sparsity {c.sparsity}"
    console.print(f"[bold]{example}[/bold]: {c.criterion} / {c.schedule} / {c.mode}, {aim}, "
                  f"{wdesc} weights{csd}, {c.act_bits}-bit activations")
    for note in result.notes:
        console.print(f"model: {note}")
    table = Table(show_edge=False, header_style="bold")
    for col in ("layer", "weight", "nnz", "sparsity", "shift", "out", "bits", "index", "BOPs"):
        table.add_column(col, justify="left" if col in ("layer", "weight", "out", "index") else "right")
    for layer in m["layers"]:
        table.add_row(layer["name"], "x".join(str(s) for s in layer["shape"]), str(layer["nnz"]),
                      f"{layer['sparsity']:.4f}", str(layer["shift"]),
                      f"{'s' if layer['out_signed'] else 'u'}{layer['out_bits']}",
                      str(layer["memory"]["sparse_bits"]), layer["memory"]["index_format"], f"{layer['bops']:.3g}")
    table.add_row("total", str(m["weights"]), str(m["nnz"]), f"{m['sparsity']:.4f}", "", "",
                  str(m["memory"]["sparse_bits"]), "", f"{m['bops']:.3g}", style="bold")
    console.print(table)
    mem = m["memory"]
    console.print(f"weight memory: {_fmt_bits(mem['dense_float32_bits'])} dense float32 -> "
                  f"{_fmt_bits(mem['sparse_bits'])} sparse quantized ({mem['sparse_bits']} bits, index {mem['index_format']}, "
                  f"{mem['compression']:.1f}x smaller; weights only)")
    console.print(f"BOPs: {m['bops_dense_float32']:.4g} dense float32 -> {m['bops']:.4g} ({m['bops_reduction']:.1f}x fewer)")
    adders = m["adders"] if m["adders"] is not None else "-"
    console.print(f"adders: {adders} ({m['adders_note']})")
    console.print(f"accuracy (test, fixed split): float {a['float']:.4f}  pruned {a['pruned']:.4f}  "
                  f"quantized {a['quantized']:.4f}  (before QAT {a['ptq']:.4f})")
    if m.get("budget"):
        b = m["budget"]
        console.print(f"cells: {b['cells']} {b['unit']} estimated, budget {b['budget']} "
                      f"({'score per cell' if b['priced'] else 'score alone'}; {m['nnz']} weights kept)")
    elif m.get("lut4") is not None:
        console.print(f"cells: {m['lut4']} SB_LUT4 estimated (iCE40, as jpq-hw lower reports it)")
    console.print(f"wrote {path} in {seconds['total']:.1f} s (float {seconds['float']:.1f} s, prune {seconds['prune']:.1f} s, "
                  f"quantize {seconds['quantize']:.1f} s)")


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience for `python -m`
    """Run ``compress`` alone (``python -m jpq_hw.compress.command ...``), printing errors as one line."""
    import sys

    parser = argparse.ArgumentParser(prog="jpq-hw")
    sub = parser.add_subparsers(dest="command", required=True)
    add_compress_parser(sub)
    args = parser.parse_args(["compress", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.run(args)
    except JpqError as e:
        print(f"jpq-hw: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
