"""Sufficient statistics as a file: made where the rows are (a cluster job), distilled from elsewhere.

The file is an ``.npz`` written atomically by `files.write_npz`: the arrays FᵀF, FᵀY, YᵀY and the standardiser's four
vectors, and a JSON header with the row count, the schema (widths, column names, constant columns), the feature
map (a spec of a shipped one, with its fingerprint) and the jaxdistill version, all under a SHA-256 checksum. Reading
checks the checksum first (an edited or damaged file is refused), then every value: shapes that agree with each
other and with the schema, finite entries, symmetric FᵀF and YᵀY with non-negative diagonals, positive scales,
n ≥ 1 — the checks a pass over rows makes of its rows.
"""

from __future__ import annotations

import numpy as np

from jaxdistill._src.data.arrays import Standardizer
from jaxdistill._src.data.schema import InputSchema
from jaxdistill._src.io import specs
from jaxdistill._src.io.files import check_writable, read_npz, verify_npz, write_npz
from jaxdistill._src.version import __version__

FORMAT = "jaxdistill.statistics"
VERSION = 1
_ARRAYS = ("FtF", "FtY", "YtY", "x_mean", "x_scale", "y_mean", "y_scale")


def save_statistics(stats, path) -> None:
    """See `SufficientStats.save`."""
    check_writable(path)
    arrays: dict[str, np.ndarray] = {"FtF": stats.FtF, "FtY": stats.FtY, "YtY": stats.YtY,
                                     **{k: np.asarray(v, np.float64) for k, v in stats.standardizer._asdict().items()}}
    fmap = stats.feature_map
    schema = stats.schema if stats.schema is not None else InputSchema(n_features=stats.standardizer.x_mean.size)
    meta = {"format": FORMAT, "version": VERSION, "jaxdistill": __version__, "n": int(stats.n),
            "standardized": bool(stats.standardized), "schema": schema.to_dict(),
            "feature_map": None if fmap is None else {"spec": specs.to_spec(fmap, "feature_map", arrays),
                                                      **specs.identity(fmap, "feature map")}}
    write_npz(path, {k: np.asarray(v) for k, v in arrays.items()}, meta)


def load_statistics(path, cls, *, feature_map=None):
    """See `SufficientStats.load` (``cls``: the class to build)."""
    what = "sufficient-statistics"
    files, meta = read_npz(path, what, verify=False)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is a jaxdistill file but not saved statistics (its format is "
                         f"{meta.get('format')!r}); load a result with jaxdistill.load.")
    verify_npz(path, files, meta, what, require_checksum=True)
    if meta.get("version") != VERSION:
        raise ValueError(f"{path!r} has statistics format version {meta.get('version')!r}; this jaxdistill reads "
                         f"version {VERSION}. Make the statistics again with this version.")

    def bad(what_: str):
        return ValueError(f"{path!r}: {what_}; the file is not statistics jaxdistill wrote. Make them again with "
                          "jaxdistill.sufficient_statistics(...).save(path).")

    missing = [k for k in _ARRAYS if k not in files]
    if missing:
        raise bad(f"it lacks the arrays {missing}")
    a = {k: np.asarray(files[k]) for k in _ARRAYS}
    if any(v.dtype != np.float64 for v in a.values()):
        raise bad("its arrays are not float64")
    n = meta.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise bad(f"its row count is {n!r}")
    try:
        schema = InputSchema.from_dict(meta.get("schema"))
    except ValueError as exc:
        raise bad(f"its schema is invalid ({exc})") from None
    d, p, k = schema.n_features, a["FtF"].shape[0] if a["FtF"].ndim == 2 else -1, a["YtY"].shape[0]
    shapes_ok = (a["FtF"].shape == (p, p) and a["FtY"].shape == (p, k) and a["YtY"].shape == (k, k)
                 and a["x_mean"].shape == a["x_scale"].shape == (d,)
                 and a["y_mean"].shape == a["y_scale"].shape == (k,))
    if not shapes_ok:
        raise bad(f"its shapes disagree (FtF {a['FtF'].shape}, FtY {a['FtY'].shape}, YtY {a['YtY'].shape}, "
                  f"{d} inputs)")
    if not all(np.all(np.isfinite(v)) for v in a.values()):
        raise bad("it holds NaN or inf")
    for name in ("FtF", "YtY"):
        M = a[name]
        if not np.allclose(M, M.T, rtol=1e-12, atol=0) or np.any(np.diag(M) < 0):
            raise bad(f"its {name} is not a cross product (not symmetric, or a negative diagonal)")
    if np.any(a["x_scale"] <= 0) or np.any(a["y_scale"] <= 0):
        raise bad("its standardiser has a scale that is not positive")
    fmap = _feature_map(path, meta.get("feature_map"), files, feature_map)
    if fmap is None and p != d:
        raise bad(f"FtF is {p} × {p} for {d} inputs without a feature map")
    std = Standardizer(a["x_mean"], a["x_scale"], a["y_mean"], a["y_scale"])
    return cls(n, std, a["FtF"], a["FtY"], a["YtY"], schema, fmap, bool(meta.get("standardized", True)))


def _feature_map(path, saved, files, given):
    """The feature map of the file: rebuilt from its spec (a shipped one) or ``given`` (checked to be the one saved)."""
    if saved is None:
        if given is not None:
            raise ValueError(f"{path!r} holds statistics of the inputs themselves (no feature map); do not pass "
                             "feature_map.")
        return None
    if not isinstance(saved, dict) or "spec" not in saved:
        raise ValueError(f"{path!r}: its feature-map entry is invalid.")
    if given is not None:
        specs.check_same(saved, given, "feature map", path)
        return given
    try:
        fmap = specs.from_spec(saved["spec"], files)
    except specs.NeedsComponent as exc:
        raise ValueError(f"{path!r} was made with the feature map {exc}, which cannot be rebuilt from a file: pass it "
                         "as SufficientStats.load(path, feature_map=...).") from None
    specs.check_same(saved, fmap, "feature map", path)
    return fmap
