"""Experiment files: one JSON file per run — data set, settings, seed and output paths.

    {"dataset": {"name": "co2", "lags": 52, "test_fraction": 0.2},
     "seed": 0,
     "config": {"m": 30, "steps": 2000, ...any DistillConfig field...},
     "output": "runs/co2.npz"}

``checkpoint`` (optional) names the checkpoint file; by default it is ``output`` + ``.ckpt``. ``method`` (optional)
is ``"bilevel"`` (default: Algorithm 1, [`distill`][jaxdistill.distill], a set bound to its training procedure) or
``"moments"`` ([`distill_moments`][jaxdistill.distill_moments], a set every learner of second moments reproduces;
it reads ``config.m`` and ignores the other settings).

``config`` round-trips through [`DistillConfig.to_dict`][jaxdistill.DistillConfig.to_dict] / ``from_dict``; omitted
fields take the library defaults. Overrides ``key=value`` (the CLI's ``--set``) address a config field
(``m=30``), a top-level entry (``seed=1``, ``output=...``) or a data-set entry (``dataset.lags=24``);
values are parsed as JSON when possible (``null``, numbers, ``{"max_q": 60}``), else kept as strings.

A Parquet data set is ``{"parquet": "rows/", "features": ["a", "b"], "target": "y"}`` (a file or a directory of
partitions; ``features`` default every other column): the named columns are read into memory (use
[`ParquetSource`][jaxdistill.ParquetSource] from Python for data beyond memory) and split like a CSV file.

Paths: data files named in an experiment *file* (``csv`` / ``parquet`` path, ``npy`` x / y) are relative to that
file, so an experiment folder can be moved or run from anywhere; ``output`` and ``checkpoint`` are relative to the
working directory, like the CLI's ``--out``. Paths given by ``--set`` are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from jaxdistill._src.core.validate import check_int
from jaxdistill._src.problem.config import DistillConfig

_TOP = ("seed", "output", "checkpoint", "method")
METHODS = ("bilevel", "moments")
_DATASET_ENTRIES = {"csv": ("path",), "npy": ("x", "y"), "parquet": ("path",)}


@dataclasses.dataclass(frozen=True)
class Experiment:
    dataset: dict
    config: DistillConfig
    seed: int = 0
    output: str | None = None
    checkpoint: str | None = None
    method: str = "bilevel"

    @classmethod
    def from_dict(cls, d: dict[str, Any], base_dir: str | None = None) -> Experiment:
        """The experiment described by ``d``; relative data-file paths (``csv`` path, ``npy`` x and y) are taken
        relative to ``base_dir`` (the experiment file's folder, see `from_file`) and stored absolute."""
        if not isinstance(d, dict):
            raise ValueError(f'An experiment must be a JSON object such as {{"dataset": {{"name": "diabetes"}}}}, '
                             f"got {type(d).__name__} {d!r}.")
        unknown = set(d) - {"dataset", "config", *_TOP}
        if unknown:
            raise ValueError(f"Unknown experiment entries {sorted(unknown)}; allowed: dataset, config, "
                             f"{', '.join(_TOP)}.")
        ds = d.get("dataset")
        if isinstance(ds, dict) and "parquet" in ds and "name" not in ds:        # {"parquet": path, ...}
            ds = {"name": "parquet", "path": ds["parquet"], **{k: v for k, v in ds.items() if k != "parquet"}}
        if isinstance(ds, dict) and ds.get("name") == "parquet":
            _check_parquet_entries(ds)
        if not isinstance(ds, dict) or not isinstance(ds.get("name"), str):
            raise ValueError(f'An experiment needs "dataset": {{"name": ...}} (a bundled name, "csv" or "npy"); '
                             f"got {ds!r}.")
        need = _DATASET_ENTRIES.get(ds["name"], ())
        missing = [k for k in need if not isinstance(ds.get(k), str)]
        if missing:
            raise ValueError(f'Data set "{ds["name"]}" needs the file entries {list(need)} (paths); missing or not '
                             f"a path: {missing}.")
        if base_dir is not None:
            ds = {k: (os.path.abspath(os.path.join(base_dir, v)) if k in need else v) for k, v in ds.items()}
        for k in ("output", "checkpoint"):
            if d.get(k) is not None and not isinstance(d[k], str):
                raise ValueError(f'"{k}" must be a file path or null, got {d[k]!r}.')
        config = d.get("config", {})
        method = d.get("method", "bilevel")
        if method not in METHODS:
            raise ValueError(f'"method" must be one of {list(METHODS)}, got {method!r}.')
        return cls(dataset=dict(ds), config=DistillConfig.from_dict({} if config is None else config),
                   seed=check_int("seed", d.get("seed", 0), 0), output=d.get("output"),
                   checkpoint=d.get("checkpoint"), method=method)

    @classmethod
    def from_file(cls, path) -> Experiment:
        from jaxdistill._src.data.datasets import require_regular_file
        if not os.path.exists(path):
            raise FileNotFoundError(f"No experiment file at {path!r} (see configs/ for examples).")
        require_regular_file(path, "experiment")
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path!r} is not valid JSON: {exc}.") from None
        except RecursionError:
            raise ValueError(f"{path!r} nests its JSON too deeply to be an experiment file (see configs/ for "
                             "examples).") from None
        return cls.from_dict(d, base_dir=os.path.dirname(os.path.abspath(path)))

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": dict(self.dataset), "seed": self.seed, "config": self.config.to_dict(),
                "output": self.output, "checkpoint": self.checkpoint, "method": self.method}

    def with_overrides(self, items: list[str]) -> Experiment:
        d = self.to_dict()
        fields = {f.name for f in dataclasses.fields(DistillConfig)}
        for item in items:
            if "=" not in item:
                raise ValueError(f"Override {item!r} must look like key=value (e.g. m=30, dataset.lags=24).")
            key, raw = item.split("=", 1)
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            except RecursionError:
                raise ValueError(f"The value of {key!r} nests too deeply; give a number, a string or a flat "
                                 "object.") from None
            if key in fields:
                d["config"][key] = value
            elif key in _TOP:
                d[key] = value
            elif key.startswith("dataset."):
                d["dataset"][key[len("dataset."):]] = value
            else:
                raise ValueError(f"Unknown setting {key!r}. Settings: {', '.join(sorted(fields))}; also "
                                 f"{', '.join(_TOP)} and dataset.<entry>.")
        return Experiment.from_dict(d)

    def load_data(self):
        """(X_train, Y_train, X_test, Y_test) of the data set, split as the experiment says."""
        from jaxdistill._src.data import datasets
        ds = dict(self.dataset)
        name = ds.pop("name")
        frac = ds.pop("test_fraction", 0.2)
        shuffle = ds.pop("shuffle", None)
        if name == "csv":              # with pandas, as a named frame: warnings and the saved schema use the names
            import importlib.util
            named = importlib.util.find_spec("pandas") is not None
            X, Y = datasets.load_csv(ds["path"], ds.get("target", -1), as_frame=named)
        elif name == "parquet":
            X, Y = _load_parquet(ds)
        elif name == "npy":
            X, Y = (_load_npy(ds[k], k) for k in ("x", "y"))
        else:
            X, Y = datasets.load(name, **ds)
            if shuffle is None:
                return datasets.split(name, X, Y, frac, key=self.seed)
        shuffle = True if shuffle is None else shuffle
        return datasets.train_test_split(X, Y, frac, key=self.seed, shuffle=shuffle)


def _check_parquet_entries(ds: dict) -> None:
    allowed = {"name", "path", "features", "target", "test_fraction", "shuffle"}
    unknown = sorted(set(ds) - allowed)
    if unknown:
        raise ValueError(f"Unknown entries {unknown} of a Parquet data set; allowed: {sorted(allowed - {'name'})}.")
    if not isinstance(ds.get("target"), (str, list)):
        raise ValueError('A Parquet data set names its target column: {"parquet": "rows/", "target": "y"}.')
    feats = ds.get("features")
    if feats is not None and not (isinstance(feats, list) and all(isinstance(c, str) for c in feats)):
        raise ValueError(f'"features" of a Parquet data set must be a list of column names, got {feats!r}.')


def _load_parquet(ds: dict):
    """The named columns of a Parquet data set, in memory, as a pandas pair (names kept for the schema)."""
    import numpy as np
    import pandas as pd

    from jaxdistill._src.data.parquet import ParquetSource
    src = ParquetSource(ds["path"], features=ds.get("features"), target=ds["target"])
    parts = list(src.blocks())
    X = np.concatenate([x for x, _ in parts])
    Y = np.concatenate([y for _, y in parts])
    Xf = pd.DataFrame(X, columns=list(src.feature_names))
    Yf = pd.Series(Y[:, 0], name=src.target_names[0]) if Y.shape[1] == 1 else \
        pd.DataFrame(Y, columns=list(src.target_names))
    return Xf, Yf


def _load_npy(path, which: str):
    """One array from an ``.npy`` file, with a message a user can act on for anything else."""
    import numpy as np

    from jaxdistill._src.data.datasets import require_regular_file
    require_regular_file(path, f"dataset.{which} .npy")
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        # numpy takes anything that is not an .npy/.npz file for a pickle and advises loading it unsafely
        why = "not an .npy array" if "pickle" in str(exc) else str(exc).rstrip(" .")
        raise ValueError(f"dataset.{which}: {path!r} is not a readable .npy array file ({why}).") from None
    if not isinstance(a, np.ndarray):        # np.load of an .npz gives an archive
        raise ValueError(f"dataset.{which}: {path!r} is an .npz archive, not one .npy array; save each array with "
                         "np.save(..., array) or name the .npy file.")
    return a

