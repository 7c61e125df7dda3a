"""A compiler wrapper that caches Verilator's run-time library objects across designs.

Every Verilator build compiles the same run-time files (``verilated.cpp``, ``verilated_vpi.cpp``,
...; about 12 s of CPU) although they do not depend on the design, and a new Verilog path makes
Verilator rewrite ``Vtop.mk``, which all of them depend on. :func:`jpq_hw.sim.runner.run_design`
sets ``OBJCACHE`` (a prefix that ``verilated.mk`` puts before every compiler call) to this script.
For a source file in Verilator's own include folder it keys the object on the compiler command
(less ``-o``), the compiler binary and the size and time of every file in that folder, and copies
``.o`` and ``.d`` from the cache on a hit; any other compile (the design, cocotb's ``verilator.cpp``)
runs unchanged. A real ``ccache`` on PATH is used instead where there is one.

Cache folder: ``$JPQ_SIM_CACHE``, else ``~/.cache/jpq_hw/verilator-objs``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("JPQ_SIM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "jpq_hw" / "verilator-objs"


def _key(cmd: list[str], out: str, include: Path) -> str:
    h = hashlib.sha256()
    args = [a for i, a in enumerate(cmd) if a != "-o" and (i == 0 or cmd[i - 1] != "-o")]
    h.update("\0".join(args).encode())
    compiler = shutil.which(cmd[0]) or cmd[0]
    st = os.stat(compiler) if os.path.exists(compiler) else None
    h.update(f"{compiler}:{st and (st.st_size, st.st_mtime_ns)}".encode())
    for root, _dirs, files in sorted(os.walk(include)):
        for name in sorted(files):
            s = os.stat(os.path.join(root, name))
            h.update(f"{root}/{name}:{s.st_size}:{s.st_mtime_ns}\n".encode())
    h.update(os.path.basename(out).encode())
    return h.hexdigest()[:32]


def main(cmd: list[str]) -> int:
    if "-c" not in cmd or "-o" not in cmd:
        return subprocess.call(cmd)
    out = cmd[cmd.index("-o") + 1]
    srcs = [Path(a) for a in cmd if a.endswith(".cpp")]
    include = srcs[0].resolve().parent if len(srcs) == 1 else None
    if include is None or not srcs[0].name.startswith("verilated") \
            or not (include / "verilated.mk").is_file():
        return subprocess.call(cmd)  # not a run-time library file: compile as usual
    dep = os.path.splitext(out)[0] + ".d"
    entry = cache_dir() / _key(cmd, out, include)
    if (entry / "obj.o").is_file() and (entry / "obj.d").is_file():
        shutil.copyfile(entry / "obj.o", out)
        shutil.copyfile(entry / "obj.d", dep)
        return 0
    rc = subprocess.call(cmd)
    if rc == 0 and os.path.isfile(dep):
        try:
            tmp = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out, tmp / "obj.o")
            shutil.copyfile(dep, tmp / "obj.d")
            os.replace(tmp, entry)  # atomic; loses harmlessly to a concurrent writer
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
