"""The result file format: a [`DistillOutput`][jaxdistill.DistillOutput] as one self-describing ``.npz`` file.

This module knows the format, not the class: `save` reads the result's attributes and
`read` returns the constructor's fields (``jaxdistill.load`` builds the object), so imports run
one way, result → io.

Layout: numeric arrays (``x``, ``y``, standardisation statistics, history, the arrays of the model and
inner solver) plus ``__meta__``, a JSON document with the format tag and version, library version,
settings, status, η̃, T, λ_I, the specs and fingerprints of the model and inner solver, and free-form
metadata. Loading never unpickles. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import os

import numpy as np

from jaxdistill._src.core.linalg import bound_from_top
from jaxdistill._src.data.arrays import Standardizer
from jaxdistill._src.data.schema import InputSchema
from jaxdistill._src.io.files import read_npz, write_npz
from jaxdistill._src.io.specs import NeedsComponent, check_same, from_spec, identity, to_spec
from jaxdistill._src.outer.records import History, RunInfo, Status
from jaxdistill._src.problem.config import DistillConfig
from jaxdistill._src.version import __version__

FORMAT = "jaxdistill.DistillOutput"
FORMAT_VERSION = 2
_STD = ("x_mean", "x_scale", "y_mean", "y_scale")


def save(out, path) -> None:
    """Save ``out`` to ``path`` (``.npz``), atomically."""
    arrays = {"x": np.asarray(out.x), "y": np.asarray(out.y)}
    if out.weights is not None:
        arrays["weights"] = np.asarray(out.weights, np.float64)
    arrays.update({f"std_{k}": np.asarray(getattr(out.standardizer, k)) for k in _STD})
    history = History.from_dict(out.history).to_dict()
    arrays.update({f"hist_{k}": v for k, v in history.items()})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "jaxdistill_version": __version__,
            "schema": None if out.schema is None else out.schema.to_dict(),
            "inner_lr": out.inner_lr, "status": Status.of(out.status).value, "seed": out.seed, "T": out.T,
            "lambda_inner": out.lambda_inner, "config": None if out.config is None else out.config.to_dict(),
            "history_keys": sorted(history), "meta": RunInfo.from_dict(out.meta).to_dict(),
            "model": to_spec(out.model, "c:model", arrays), "model_id": identity(out.model, "model"),
            "inner_solver": to_spec(out.inner_solver, "c:inner_solver", arrays),
            "inner_solver_id": identity(out.inner_solver, "inner_solver"), "valid_for": out.valid_for}
    write_npz(path, arrays, meta)


def _component(meta, files, name, given, path):
    saved_id = meta.get(f"{name}_id")
    if not isinstance(saved_id, dict) or "fingerprint" not in saved_id:
        raise ValueError(f"{path!r} records no fingerprint of its {name}, so the {name} cannot be checked; it was "
                         "damaged or edited by hand. Re-create it with DistillOutput.save().")
    if given is not None:
        check_same(saved_id, given, name, f"{path!r}")
        return given
    try:
        rebuilt = from_spec(meta[name], files)
    except NeedsComponent as exc:
        raise ValueError(f"{path!r} was made with a {name} that cannot be rebuilt from the file ({exc} is "
                         f"user-defined or holds a flax module or function). Pass it: "
                         f"jaxdistill.load({path!r}, {name}=...) with the same {name} you distilled with; "
                         "it is checked against the saved one.") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path!r}: its {name} cannot be rebuilt ({exc}); the file was damaged or edited by "
                         "hand. Re-create it with DistillOutput.save().") from None
    # the rebuilt component must be the one saved (weights and settings): an edited spec or array is refused
    check_same(saved_id, rebuilt, name, f"{path!r} (rebuilt from the file's spec and arrays)")
    return rebuilt


def procedure_problems(out) -> list[str]:
    """What `read` would refuse in ``out``'s training procedure, checked before a file is written."""
    problems = []
    meta = {"T": out.T, "lambda_inner": out.lambda_inner, "seed": out.seed, "inner_lr": out.inner_lr,
            "meta": RunInfo.from_dict(out.meta).to_dict()}
    _check_procedure(meta, out.config, problems)
    if not problems and Status.of(out.status) != "unstable" and np.all(np.isfinite(np.asarray(out.x))):
        try:
            _check_stable("the result", out.model, out.inner_solver, np.asarray(out.x), out.inner_lr,
                          out.lambda_inner)
        except ValueError:
            problems.append("its inner_lr is at or above the stability bound of Lemma 2.4 for its distilled set")
    return problems


def _check_procedure(meta, config, problems) -> None:
    """Types and ranges of the training procedure's values, and their agreement with the saved settings."""
    T, lam, seed = meta.get("T"), meta.get("lambda_inner"), meta.get("seed")
    if T is not None and (not isinstance(T, int) or isinstance(T, bool) or T < 1):
        problems.append(f"T {T!r}")
    if not isinstance(lam, (int, float)) or isinstance(lam, bool) or not np.isfinite(lam) or lam < 0:
        problems.append(f"lambda_inner {lam!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        problems.append(f"seed {seed!r}")
    if (meta.get("inner_lr") is None) != (T is None):
        problems.append(f"inner_lr {meta.get('inner_lr')!r} with T {T!r} (a T-step procedure has both)")
    if config is not None and not problems:
        info = meta.get("meta") if isinstance(meta.get("meta"), dict) else {}
        chosen = (info.get("lambda_choice") or {}).get("lambda")
        if config.lambda_inner == "auto":                  # chosen at fit time: the record of the choice says
            if chosen is not None and lam != chosen:
                problems.append(f"lambda_inner {lam!r} (the record of its choice says {chosen!r})")
        elif lam != config.lambda_inner:
            problems.append(f"lambda_inner {lam!r} (the settings say {config.lambda_inner!r})")
        if T is not None and not config.T <= T <= config.max_T:
            problems.append(f"T {T!r} (the settings run {config.T}" +
                            (f" to {config.max_T}" if config.max_T != config.T else "") + " inner steps)")


def read(path, *, model=None, inner_solver=None) -> dict:
    """The fields of a [`DistillOutput`][jaxdistill.DistillOutput] saved by `save` (see
    ``jaxdistill.load``).

    Shipped components are rebuilt from the file. A result made with a user-defined feature map,
    flax module or other custom component needs it given back (``model=...``); it is checked against
    the saved fingerprint and refused, naming the first difference, if it is not the same.

    Raises ``FileNotFoundError`` or ``ValueError`` (corrupt, truncated, foreign, inconsistent or
    newer-format files) with a message saying what is wrong.
    """
    path = os.fspath(path)
    files, meta = read_npz(path, "distilled-set")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} holds {meta.get('format')!r}, not a {FORMAT}.")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path!r} uses format version {version}; this jaxdistill "
                         f"({__version__}) reads up to {FORMAT_VERSION}. Upgrade jaxdistill.")
    if version < 2:
        raise ValueError(f"{path!r} was written by jaxdistill 0.1 (format 1), which did not record the model; "
                         "re-create it with this version.")
    missing = [k for k in ["x", "y"] + [f"std_{k}" for k in _STD] if k not in files]
    if missing or meta.get("status") not in [s.value for s in Status] + ["success"]:
        raise ValueError(f"{path!r} is incomplete: missing {missing or 'a valid status'}.")
    x, y = files["x"], files["y"]
    std = Standardizer(*(np.asarray(files[f"std_{k}"], np.float64) for k in _STD))
    problems = []
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        problems.append(f"distilled set shapes {x.shape}, {y.shape}")
    elif std.x_mean.shape != (x.shape[1],) or std.y_mean.shape != (y.shape[1],) or \
            std.x_scale.shape != (x.shape[1],) or std.y_scale.shape != (y.shape[1],):
        problems.append("standardisation statistics of the wrong shape")
    for name, a in [("x", x), ("y", y)] + [(k, getattr(std, k)) for k in _STD]:
        if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
            problems.append(f"non-finite or non-float {name}")
    if np.any(std.x_scale <= 0) or np.any(std.y_scale <= 0):
        problems.append("non-positive standardisation scales")
    weights = files.get("weights")
    if weights is not None and (weights.shape != x.shape[:1] or not np.issubdtype(weights.dtype, np.floating)
                                or not np.all(np.isfinite(weights)) or not np.all(weights > 0)):
        problems.append("sample weights that are not one finite positive number per row")
    inner_lr = meta.get("inner_lr")
    if inner_lr is not None and not (isinstance(inner_lr, (int, float)) and np.isfinite(inner_lr) and inner_lr > 0):
        problems.append(f"inner_lr {inner_lr!r}")
    config = schema = None
    try:
        config = None if meta.get("config") is None else DistillConfig.from_dict(meta["config"])
    except (ValueError, TypeError) as exc:
        problems.append(f"settings ({exc})")
    try:
        schema = None if meta.get("schema") is None else InputSchema.from_dict(meta["schema"])
        if schema is not None and x.ndim == 2 and schema.n_features != x.shape[1]:
            problems.append(f"schema of {schema.n_features} features for a set of {x.shape[1]}")
    except ValueError as exc:
        problems.append(str(exc))
    _check_procedure(meta, config, problems)
    if not isinstance(meta.get("meta", {}), dict):
        problems.append("run information that is not a mapping")
    hist_keys = meta.get("history_keys", [])
    if not isinstance(hist_keys, list) or not all(isinstance(k, str) for k in hist_keys):
        problems.append(f"history keys {hist_keys!r}")
        hist_keys = []
    for k in hist_keys:
        a = files.get(f"hist_{k}")
        if a is None or a.ndim != 1 or not (np.issubdtype(a.dtype, np.number)):
            problems.append(f"history entry {k!r}")
    if problems:
        raise ValueError(f"{path!r} is inconsistent ({'; '.join(problems)}); it was damaged or edited by hand. "
                         "Re-create it with DistillOutput.save().")
    known = History().keys()        # entries of other versions' histories that this one does not record are dropped
    history = {k: files[f"hist_{k}"] for k in hist_keys if k in known}
    model = _component(meta, files, "model", model, path)
    inner_solver = _component(meta, files, "inner_solver", inner_solver, path)
    if meta["status"] != "unstable":       # a run that crossed the bound says so; any other never does
        _check_stable(path, model, inner_solver, x, inner_lr, meta["lambda_inner"])
    return dict(
        x=x, y=y, inner_lr=None if inner_lr is None else float(inner_lr), history=history, config=config,
        standardizer=std, status=meta["status"], model=model, inner_solver=inner_solver,
        lambda_inner=float(meta["lambda_inner"]), T=meta.get("T"), seed=meta.get("seed"),
        meta=RunInfo.from_dict(dict(meta.get("meta") or {}, saved_with=meta.get("jaxdistill_version"))),
        schema=schema, weights=weights)


def _check_stable(path, model, inner_solver, x, inner_lr, lam) -> None:
    """A saved η̃ at or above Lemma 2.4's bound for the saved set (models linear in θ, plain GD) would make every
    prediction diverge: no run returns one (η̃ is kept ≤ eta_cap × the bound), so the file was edited."""
    if inner_lr is None or not model.linear_in_params or not inner_solver.plain_gd:
        return
    F = np.asarray(model.featurize(np.asarray(x)), np.float64)
    bound = bound_from_top(np.linalg.svd(F, compute_uv=False)[0] ** 2, F.shape[0], float(lam))  # eq. (5), float64
    if not inner_lr < bound:
        raise ValueError(f"{path!r} is inconsistent: its inner_lr {inner_lr!r} is at or above the stability bound of "
                         f"Lemma 2.4 for its distilled set ({bound:.6g}), so every prediction would diverge; it was "
                         "edited by hand. Re-create it with DistillOutput.save().")
