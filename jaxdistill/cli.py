"""The jaxdistill command line.

    jaxdistill demo                                  distil diabetes: a set to take away, and a set for one
                                                     procedure, each against the baselines
    jaxdistill run configs/co2.json --set m=30       run an experiment file (checkpointed, resumable)
    jaxdistill evaluate runs/co2.npz --learners      held-out table of a saved result (with other learners)
    jaxdistill plot runs/co2.npz --out runs/co2_png  figures of a saved result
    jaxdistill sweep configs/diabetes.json --m 1 5 10 20 --seeds 0 1 2
                                                     held-out error against m (table, JSON, PNG)
    jaxdistill datasets                              the bundled data sets
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def _demo(args) -> int:
    import jaxdistill as jd

    if args.save:
        from jaxdistill._src.io.files import check_writable
        check_writable(args.save, make_folder=True)       # before the compute, not after it
    from jaxdistill._src.core.fingerprint import data_fingerprint
    from jaxdistill._src.io.experiment import Experiment
    from jaxdistill._src.report.learners import learner_markdown

    # the demo is an experiment like any other (data set, split, seed, settings), recorded in the result so that
    # `jaxdistill evaluate` and `jaxdistill plot` work on a `demo --save` file as on a `run` output
    budget = {} if args.steps is None else {"steps": args.steps}
    exp = Experiment(dataset={"name": args.dataset, "test_fraction": 0.2},
                     config=jd.DistillConfig(m=args.m, **budget), seed=args.seed, output=args.save)
    Xtr, Ytr, Xte, Yte = exp.load_data()
    fingerprint = data_fingerprint(Xtr, Ytr, Xte, Yte)
    print(f"jaxdistill {jd.__version__}: distilling {args.dataset} ({Xtr.shape[0]} training rows, "
          f"{Xtr.shape[1]} features) into m = {args.m} points, seed {args.seed}.\n")
    t0 = time.perf_counter()
    try:
        take = jd.distill_moments(Xtr, Ytr, m=args.m, key=args.seed)
    except ValueError as exc:                      # m below the rows' rank + 1: the message gives the smallest m
        print(f"1. (no set to take away: {exc})\n")
    else:
        print(f"1. A set to take away (distill_moments, {time.perf_counter() - t0:.2f} s): {args.m} weighted rows "
              f"whose first and second moments equal the {Xtr.shape[0]} training rows'.\n   Valid for: "
              f"{take.valid_for}.\n")
        report = jd.evaluate(take, Xte, Yte, Xtr, Ytr, key=args.seed, coresets=("kmeans", "herding"), learners=True)
        print("\n".join(learner_markdown(report.learners)))
        print("\n(each cell: held-out R², mean ± spread over 5 draws for the baselines, and in brackets its ratio to "
              "the same learner on all training rows; the learners get each set's sample weights)\n")
    t0 = time.perf_counter()
    out = jd.distill(Xtr, Ytr, config=exp.config, key=args.seed, progress=not args.no_progress)
    out = out.replace(meta=out.meta.replace(command=jd.CommandInfo(exp.to_dict(), fingerprint)))
    print(f"2. A set for one procedure (Algorithm 1, {time.perf_counter() - t0:.1f} s): status {out.status} after "
          f"{out.meta.bilevel.steps_run} steps, learned inner_lr {out.inner_lr:.4g}.\n   Valid for: {out.valid_for}.\n")
    report = jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=args.seed, last_value_column=_last_value_column(exp))
    print(report)
    d, s, f = report.row("distilled"), report.row("subset"), report.row("full")
    print(f"\nDistilled {args.m} points, trained by their procedure: test R² {d['r2']:.3f} vs {s['r2']:.3f} for "
          f"{args.m} random real points and {f['r2']:.3f} for ridge on all {Xtr.shape[0]}.")
    if args.save:
        if not _save_or_rescue(out, args.save):
            return 1
        print(f"saved to {args.save}")
    return 0 if out.ok else 1


def _run(args) -> int:
    import jaxdistill as jd
    from jaxdistill._src.io.experiment import Experiment

    exp = Experiment.from_file(args.experiment).with_overrides(args.set or [])
    if args.seed is not None:
        exp = exp.with_overrides([f"seed={args.seed}"])
    output = args.out or exp.output or os.path.splitext(os.path.basename(args.experiment))[0] + ".npz"
    # --out names a new run: its checkpoint follows it unless --checkpoint says otherwise
    default_ckpt = output + ".ckpt" if args.out else (exp.checkpoint or output + ".ckpt")
    checkpoint = None if args.no_checkpoint else (args.checkpoint or default_ckpt)
    if args.print_config:
        from jaxdistill._src.core.validate import json_safe
        print(json.dumps(json_safe({**exp.to_dict(), "output": output, "checkpoint": checkpoint}), indent=2,
                         allow_nan=False))
        return 0
    from jaxdistill._src.io.files import check_writable
    inputs = [args.experiment] + [exp.dataset.get(k) for k in ("path", "x", "y")]
    for path in (output, checkpoint):              # before the compute, not after it
        if path:
            _refuse_overwriting_inputs(path, inputs)
            check_writable(path, make_folder=True)
    Xtr, Ytr, Xte, Yte = exp.load_data()
    if checkpoint and os.path.exists(checkpoint) and not args.no_resume:
        print(f"resuming from {checkpoint}")
    if exp.method == "moments":
        print(f"{exp.dataset['name']}: {Xtr.shape[0]} training rows, {Xtr.shape[1]} features -> m = {exp.config.m}, "
              f"exact moments, seed {exp.seed}")
        out = jd.distill_moments(Xtr, Ytr, m=exp.config.m, key=exp.seed)
        checkpoint = None                              # one pass, no iterations: nothing to checkpoint
    else:
        print(f"{exp.dataset['name']}: {Xtr.shape[0]} training rows, {Xtr.shape[1]} features -> m = {exp.config.m}, "
              f"{exp.config.steps} steps, seed {exp.seed}")
        out = jd.distill(Xtr, Ytr, config=exp.config, key=exp.seed, checkpoint=checkpoint,
                         resume=not args.no_resume, progress=not args.no_progress)
    from jaxdistill._src.core.fingerprint import data_fingerprint
    out = out.replace(meta=out.meta.replace(
        command=jd.CommandInfo(exp.to_dict(), data_fingerprint(Xtr, Ytr, Xte, Yte))))
    saved = _save_or_rescue(out, output)
    print(out.summary())
    if not saved:
        return 1
    print(f"saved to {output}" + (f" (checkpoint {checkpoint})" if checkpoint else ""))
    if not args.no_eval:
        print()
        print(jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=exp.seed, last_value_column=_last_value_column(exp),
                          learners=args.learners))
    return 0 if out.ok else 1


def _save_or_rescue(out, output: str) -> bool:
    """Save the finished run to ``output`` (True). If that fails (the disk filled up, the folder went away),
    save it to a file in the working directory or the temp folder instead, say where on stderr and return
    False, so that no finished run is lost."""
    try:
        out.save(output)
        return True
    except (OSError, ValueError) as exc:
        error = str(exc)
    name = f"jaxdistill-rescued-{os.getpid()}-" + os.path.basename(output.rstrip("/\\") or "result.npz")
    if not name.endswith(".npz"):
        name += ".npz"
    if len(name.encode()) > 200:                   # the rescue must not fail the way the output did (too long)
        name = f"jaxdistill-rescued-{os.getpid()}.npz"
    for folder in (os.getcwd(), tempfile.gettempdir()):
        rescued = os.path.join(folder, name)
        try:
            out.save(rescued)
        except (OSError, ValueError):
            continue
        print(f"jaxdistill: error: could not write {output!r} ({error}); the result was saved to {rescued!r} "
              f"instead: move it where you want it (`mv {rescued} {output}`)", file=sys.stderr)
        return False
    raise ValueError(f"could not write {output!r} ({error}), nor a rescue copy in {os.getcwd()!r} or "
                     f"{tempfile.gettempdir()!r}.")


def _last_value_column(exp):
    """Autoregressive windows end with y_{t−1}: the naive forecast's input column (None otherwise)."""
    from jaxdistill import datasets
    return -1 if exp.dataset.get("name") in datasets.TIME_SERIES else None


def _data_for(out, args):
    from jaxdistill._src.io.experiment import Experiment
    exp = out.meta.get("experiment")
    if exp is None:
        raise ValueError("This result was not made by `jaxdistill run`, so its data are unknown; evaluate it from "
                         "Python with jaxdistill.evaluate(out, X_test, Y_test, X_train, Y_train).")
    e = Experiment.from_dict(exp)
    data = e.load_data()
    saved = out.meta.get("data_fingerprint")
    if saved is not None:
        from jaxdistill._src.core.fingerprint import data_fingerprint
        if data_fingerprint(*data) != saved:
            raise ValueError(f"The data of this result's experiment ({e.dataset}) are not those it was distilled and "
                             "split from (the file or data set changed since the run): scores would be on other data. "
                             "Re-run the experiment, or evaluate from Python on the data you mean.")
    return e, data


def _evaluate(args) -> int:
    import jaxdistill as jd
    out = jd.load(args.result)
    exp, (Xtr, Ytr, Xte, Yte) = _data_for(out, args)
    report = jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=exp.seed, last_value_column=_last_value_column(exp),
                         learners=args.learners, coresets=tuple(args.coresets))
    if args.json:       # machine-readable: the report and the result's status, nothing else on stdout
        from jaxdistill._src.core.validate import json_safe
        print(json.dumps(json_safe({"result": args.result, "status": out.status.value, "ok": out.ok,
                                    **report.to_dict()}), allow_nan=False,
                         indent=2))
        return 0
    print(out.summary() + "\n")
    print(report)
    return 0


def _plot(args) -> int:
    import jaxdistill as jd
    from jaxdistill import datasets
    from jaxdistill._src.io.files import check_output_folder
    from jaxdistill._src.report.plots import save_all
    out = jd.load(args.result)
    outdir = args.out or os.path.splitext(args.result)[0] + "_plots"
    check_output_folder(outdir, protect=[args.result])
    rep = None
    try:
        exp, (Xtr, Ytr, Xte, Yte) = _data_for(out, args)
        ts = exp.dataset["name"] in datasets.TIME_SERIES
        images = exp.dataset["name"] in datasets.IMAGES
        # the baselines, drawn where the figures compare (loss references, baseline predictions, accuracies)
        rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, key=exp.seed, n_subsets=5,
                          last_value_column=_last_value_column(exp))
    except ValueError as e:
        print(f"jaxdistill: note: {e} Only the loss figure is drawn.", file=sys.stderr)
        Xtr = Ytr = Xte = Yte = None
        ts = images = False
    for p in save_all(out, outdir, Xtr, Xte, Yte, time_series=ts, images=images, report=rep, Y_train=Ytr):
        print(p)
    return 0


def _sweep(args) -> int:
    from jaxdistill._src.io.experiment import Experiment
    from jaxdistill._src.io.files import check_output_folder
    from jaxdistill._src.sweep import error_vs_m, write_sweep
    exp = Experiment.from_file(args.experiment).with_overrides(args.set or [])
    Xtr, Ytr, Xte, Yte = exp.load_data()
    name = exp.dataset["name"]
    outdir = args.out or os.path.splitext(os.path.basename(args.experiment))[0] + "_sweep"
    data_files = [exp.dataset.get(k) for k in ("path", "x", "y")]
    check_output_folder(outdir, protect=[args.experiment, *data_files])     # before the sweep, not after it
    print(f"{name}: {Xtr.shape[0]} training rows, {Xtr.shape[1]} features; m in {args.m}, seeds {args.seeds}")
    result = error_vs_m(Xtr, Ytr, Xte, Yte, args.m, seeds=args.seeds, config=exp.config,
                        last_value_column=_last_value_column(exp), progress=print, learners=args.learners)
    print()
    print(result)
    for p in write_sweep(result, outdir, title=f"{name}: held-out error against m"):
        print(p)
    return 0


def _datasets(args) -> int:
    from jaxdistill import datasets
    for name in datasets.NAMES:
        try:
            X, Y = datasets.load(name)
            print(f"{name:10s} X {X.shape}  Y {Y.shape}" + ("  (time series: chronological split)"
                                                         if name in datasets.TIME_SERIES else ""))
        except ImportError as exc:
            print(f"{name:10s} unavailable: {exc}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line's parser (every subcommand and option, each with its help text)."""
    parser = argparse.ArgumentParser(prog="jaxdistill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from jaxdistill._src.version import __version__
    parser.add_argument("--version", action="version", version=f"jaxdistill {__version__}")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not use the on-disk compilation cache (~/.cache/jaxdistill/xla, or $JAXDISTILL_CACHE)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do (`jaxdistill COMMAND --help` for its options)")
    demo = sub.add_parser("demo", help="distil a bundled data set and compare with the baselines")
    demo.add_argument("--dataset", default="diabetes", choices=["diabetes", "synthetic", "digits", "randhie", "fair",
                                                                 "co2", "sunspots", "mnist5k", "autompg"],
                      help="the bundled data set to distil (default diabetes; `jaxdistill datasets` lists them)")
    demo.add_argument("--m", type=int, default=20, help="number of distilled points (default 20)")
    demo.add_argument("--steps", type=int, default=None, help="step budget (default 5000; runs stop when converged)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the split and the run (default 0)")
    demo.add_argument("--save", default=None, help="write the distilled set to this .npz file")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    demo.set_defaults(func=_demo)

    run = sub.add_parser("run", help="run an experiment file (JSON, see configs/)")
    run.add_argument("experiment", help="experiment file (JSON): data set, settings, output path")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override one setting, e.g. --set m=30 --set dataset.lags=24 (repeatable)")
    run.add_argument("--seed", type=int, default=None, help="random seed (overrides the experiment's)")
    run.add_argument("--out", default=None, help="result file (.npz); default from the experiment file")
    run.add_argument("--checkpoint", default=None, help="checkpoint file; default OUT.ckpt")
    run.add_argument("--no-checkpoint", action="store_true",
                     help="write no checkpoint (a killed run then starts again from step 0)")
    run.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    run.add_argument("--no-eval", action="store_true", help="skip the held-out table against the baselines")
    run.add_argument("--learners", action="store_true",
                     help="also train scikit-learn's learners (linear, ridge-CV, boosted trees, k-NN, SVR, MLP) on the "
                          "set and every baseline")
    run.add_argument("--print-config", action="store_true", help="print the resolved experiment and exit")
    run.set_defaults(func=_run)

    ev = sub.add_parser("evaluate", help="held-out table of a result saved by `run`")
    ev.add_argument("result", help="result file (.npz) written by `jaxdistill run`")
    ev.add_argument("--learners", action="store_true",
                    help="also train scikit-learn's learners (linear, ridge-CV, boosted trees, k-NN, SVR, MLP) on the "
                         "set, every baseline and all training rows (needs scikit-learn)")
    ev.add_argument("--coresets", nargs="*", default=["leverage", "kmeans", "kcenter"],    # = CORESETS, KINDS
                    choices=["leverage", "kmeans", "kcenter", "herding"],                # (tested; no JAX for --help)
                    help="coreset baselines (default: leverage kmeans kcenter; add herding)")
    ev.add_argument("--json", action="store_true",
                    help="print the table as JSON (rows with stable ids: distilled, subset, full, mean, ...)")
    ev.set_defaults(func=_evaluate)

    pl = sub.add_parser("plot", help="figures (PNG) of a saved result; needs jaxdistill[plot]")
    pl.add_argument("result", help="result file (.npz) written by `jaxdistill run`")
    pl.add_argument("--out", default=None, help="folder for the PNG files (default RESULT_plots/)")
    pl.set_defaults(func=_plot)

    sw = sub.add_parser("sweep", help="held-out error against m: distilled vs random subset vs full data")
    sw.add_argument("experiment", help="experiment file (JSON), as for `jaxdistill run`")
    sw.add_argument("--m", type=int, nargs="+", required=True, help="the m values, e.g. --m 1 5 10 20")
    sw.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per m (default 0), e.g. --seeds 0 1 2")
    sw.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting (repeatable)")
    sw.add_argument("--learners", action="store_true",
                    help="also train scikit-learn's learners on every set (a second table)")
    sw.add_argument("--out", default=None, help="folder for sweep.{md,json,png} (default EXPERIMENT_sweep/)")
    sw.set_defaults(func=_sweep)

    ds = sub.add_parser("datasets", help="list the bundled data sets")
    ds.set_defaults(func=_datasets)
    return parser


class _Tolerant:
    """A stdout/stderr that cannot end the command: closed (``>&-``) or full (``>/dev/full``), its writes are
    dropped after one note on the other stream, and the work goes on (results are files). A reader that went
    away (a closed pipe) still ends the command quietly (exit 141)."""

    def __init__(self, stream, name: str, other=None):
        self.stream, self.name, self.other, self.failed = stream, name, other, False

    def _fail(self, exc) -> None:
        if not self.failed:
            self.failed = True
            try:
                note = f"jaxdistill: cannot write to {self.name} ({exc}); going on without it.\n"
                if self.other is not None and not getattr(self.other, "failed", False):
                    self.other.write(note)
            except Exception:  # noqa: BLE001 - the other stream may be gone too
                pass

    def write(self, text):
        if self.stream is None:
            self._fail("it is closed")
        if self.failed:
            return len(text)
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:
            self._fail(exc.strerror if isinstance(exc, OSError) else exc)
            return len(text)

    def flush(self):
        # a stream already closed has nothing to flush: at interpreter shutdown logging's handlers (absl's, created
        # after this wrapper was installed, since `import jaxdistill` no longer imports JAX) flush it once more
        if self.failed or self.stream is None or getattr(self.stream, "closed", False):
            return
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:
            self._fail(exc.strerror if isinstance(exc, OSError) else exc)

    def isatty(self) -> bool:
        return not self.failed and self.stream is not None and bool(getattr(self.stream, "isatty", lambda: False)())

    def fileno(self):
        return self.stream.fileno()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    saved = sys.stdout, sys.stderr
    sys.stderr = _Tolerant(sys.stderr, "stderr")
    sys.stdout = _Tolerant(sys.stdout, "stdout", sys.stderr)
    sys.stderr.other = sys.stdout
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = saved


def _main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.no_cache:
        from jaxdistill._src.core.compile_cache import enable_compilation_cache
        try:
            enable_compilation_cache()
        except OSError:
            pass  # an unwritable cache folder only costs compile time
    try:
        _check_platform()                   # every command: `datasets` starts JAX too (the synthetic set)
        code = args.func(args)
        sys.stdout.flush()              # a closed pipe shows here, inside the handler below, not at exit
        return code
    except (ValueError, FileNotFoundError, ImportError, MemoryError) as exc:
        print(f"jaxdistill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`jaxdistill datasets | head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _refuse_overwriting_inputs(path, inputs) -> None:
    """An output path that is one of the command's inputs (the experiment file, its data files) would destroy it."""
    target = os.path.realpath(path)
    for p in inputs:
        if p is not None and os.path.realpath(p) == target:
            raise ValueError(f"The output {path!r} is this run's own input {p!r}; writing it would destroy it. "
                             "Choose another --out / --checkpoint.")


def _check_platform() -> None:
    """A JAX_PLATFORMS naming a platform this machine lacks (gpu, cuda, tpu, a typo) makes JAX fail with a
    RuntimeError — or an AssertionError for cuda — at its first computation: say what to change instead."""
    plat = os.environ.get("JAX_PLATFORMS")
    if not plat:
        return
    import jax
    try:
        jax.devices()
    except Exception as exc:  # noqa: BLE001 - whatever the platform plugin raises
        why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ValueError(f"JAX_PLATFORMS={plat!r} names a platform JAX cannot start on this machine ({why}). Unset "
                         "JAX_PLATFORMS (JAX then picks what is there) or set JAX_PLATFORMS=cpu.") from None


if __name__ == "__main__":
    raise SystemExit(main())
