"""Run lessons over seeds and numeric environments, and show each claim's measured range.

A lesson's claim is about the model, not one machine: it must hold whatever BLAS kernels,
thread count or kernel set computed it. This script runs each chosen lesson once per
(mode, seed, BLAS threads, kernel set), with ``TINYTRACE_CALIBRATE=1`` so a missed bound
is recorded instead of stopping the run, collects every ``results.json`` and prints, per
claim, its bound, the range measured and which runs missed it::

    python tools/calibrate_lessons.py 7 8 --seeds 0-5 --modes quick full --out /tmp/cal

The BLAS kernel architecture is the one more axis. OpenBLAS picks AVX-512 kernels by
itself on most x86 machines; some build machines pin ``OPENBLAS_CORETYPE=Haswell`` (AVX2).
Set or unset it around the whole command, never in code (``env -u OPENBLAS_CORETYPE -u
OPENBLAS_L2_SIZE python tools/...`` and ``env OPENBLAS_CORETYPE=Haswell python tools/...``
with the same ``--out``); every run records the architecture it really used, and
``--summary`` prints the table over everything in ``--out`` without running anything.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tinytrace.lessonkit import find_lessons  # noqa: E402


def seeds(text):
    """``"0-3,7"`` -> [0, 1, 2, 3, 7]."""
    chosen = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        chosen += range(int(low), int(high or low) + 1)
    return chosen


def architecture():
    """The kernel architecture OpenBLAS picks in a fresh process with this environment."""
    code = ("from threadpoolctl import threadpool_info as i; import numpy; "
            "print(next((p.get('architecture') for p in i() if p['user_api'] == 'blas'), "
            "'none'))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def run_one(path, quick, seed, threads, kernels, out):
    arch = architecture()
    tag = f"{'quick' if quick else 'full'}-{arch}-t{threads}-{kernels}-s{seed}"
    env = dict(os.environ, TINYTRACE_SEED=str(seed), TINYTRACE_CALIBRATE="1",
               TINYTRACE_KERNELS=kernels, OPENBLAS_NUM_THREADS=str(threads),
               TINYTRACE_FIGURES=str(out / tag), MPLBACKEND="Agg")
    args = [sys.executable, str(path)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=out)
    log = out / tag / f"{path.stem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(done.stdout + done.stderr)
    status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode}, see {log})"
    print(f"{path.stem} {tag}: {time.perf_counter() - start:.0f} s {status}", flush=True)


def collect(out):
    """Every results.json under ``out``: {lesson: [(run tag, record)]}."""
    runs = defaultdict(list)
    for path in sorted(out.glob("**/results.json")):
        record = json.loads(path.read_text())
        tag = path.relative_to(out).parts[0]
        runs[(record["lesson"], record["quick"])].append((tag, record))
    return runs


def summary(out):
    for (lesson, quick), runs in sorted(collect(out).items()):
        environments = sorted({tag.rsplit("-s", 1)[0] for tag, _ in runs})
        print(f"\n== {lesson} ({'quick' if quick else 'full'}): {len(runs)} runs over "
              f"{len(environments)} environments: {', '.join(environments)}")
        keys = list(dict.fromkeys(k for _, r in runs for k in r["results"]))
        for key in keys:
            values = [(tag, r["results"][key]) for tag, r in runs if key in r["results"]]
            numbers = [v for _, v in values if isinstance(v, (int, float))
                       and not isinstance(v, bool)]
            bound = next((r["bounds"][key] for _, r in runs if key in r.get("bounds", {})),
                         None)
            missed = [tag for tag, r in runs if key in r.get("missed", ())]
            shown = (f"{min(numbers):.4g} .. {max(numbers):.4g}" if numbers
                     else ", ".join(sorted({str(v) for _, v in values}))[:60])
            limits = "" if bound is None else f"  bound {bound[0]} .. {bound[1]}"
            flag = f"  MISSED in {len(missed)}: {', '.join(missed[:6])}" if missed else ""
            print(f"  {key:<44} {shown:<26} n={len(values)}{limits}{flag}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", type=int, help="lesson numbers (default all)")
    parser.add_argument("--seeds", type=seeds, default=[0])
    parser.add_argument("--modes", nargs="+", default=["quick"], choices=["quick", "full"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--kernels", nargs="+", default=["numba", "numpy"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("calibration"))
    parser.add_argument("--summary", action="store_true", help="only print the table")
    args = parser.parse_args()
    args.out = args.out.resolve()
    if not args.summary:
        args.out.mkdir(parents=True, exist_ok=True)
        found = find_lessons(ROOT / "lessons")
        chosen = [found[n] for n in (args.lessons or found)]
        grid = itertools.product(chosen, args.modes, args.seeds, args.threads, args.kernels)
        with ThreadPoolExecutor(args.jobs) as pool:
            for job in [pool.submit(run_one, path, mode == "quick", seed, threads, kernels,
                                    args.out)
                        for path, mode, seed, threads, kernels in grid]:
                job.result()
    summary(args.out)


if __name__ == "__main__":
    main()
