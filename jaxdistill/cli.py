"""Command line: ``jaxdistill demo`` distils a real data set and prints it against the baselines."""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args) -> int:
    import jaxdistill as jd
    from jaxdistill import datasets

    X, Y = datasets.load(args.dataset)
    Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=args.seed)
    print(f"jaxdistill {jd.__version__}: distilling {args.dataset} ({Xtr.shape[0]} training rows, "
          f"{X.shape[1]} features) into m = {args.m} points, {args.steps} outer steps, seed {args.seed}.")
    t0 = time.perf_counter()
    out = jd.distill(Xtr, Ytr, m=args.m, steps=args.steps, key=args.seed,
                     progress=None if not args.no_progress else False)
    print(f"done in {time.perf_counter() - t0:.1f} s (status: {out.status}, learned inner_lr {out.inner_lr:.4g})\n")
    report = jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=args.seed)
    print(report)
    d, s = report.row("distilled, T-step GD"), report.row("random subset, T-step GD")
    f = report.row("full data, ridge")
    print(f"\nDistilled {args.m} points: test R² {d['r2']:.3f} vs {s['r2']:.3f} for {args.m} random real points "
          f"and {f['r2']:.3f} for ridge on all {Xtr.shape[0]}.")
    if args.save:
        out.save(args.save)
        print(f"saved to {args.save}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxdistill", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="distil a bundled data set and compare with the baselines")
    demo.add_argument("--dataset", default="diabetes", choices=["diabetes", "synthetic"])
    demo.add_argument("--m", type=int, default=20)
    demo.add_argument("--steps", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--save", default=None, help="write the distilled set to this .npz file")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"jaxdistill: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
