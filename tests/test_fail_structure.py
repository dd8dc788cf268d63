"""Issue #25, malformed structure: deeply nested JSON, data-set options of the wrong type, CSV targets
and headers that would pick, lose or misplace columns or rows."""

import json

import pytest
from failure_helpers import one_line_error  # noqa: E402

from jaxdistill import datasets


def _nested(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("where", ["file", "--set"])
def test_deeply_nested_json_is_a_clear_error(tmp_path, cli_here, where):
    exp = {"dataset": {"name": "diabetes"}, "config": {"m": 3, "steps": 5}}
    if where == "file":
        (tmp_path / "e.json").write_text('{"dataset": ' + _nested(100_000) + "}")
        args = ["run", "e.json"]
    else:
        (tmp_path / "e.json").write_text(json.dumps(exp))
        args = ["run", "e.json", "--set", "m=" + _nested(5_000)]
    one_line_error(*cli_here(args))


@pytest.mark.parametrize("target,says", [(None, "target must be"), ([0], "target must be"),
                                         (1.0, "target must be"), (True, "target must be"),
                                         ("missing", "no column 'missing'")])
def test_csv_target_of_the_wrong_kind_never_picks_a_column_by_accident(tmp_path, target, says):
    (tmp_path / "d.csv").write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9\n")
    with pytest.raises(ValueError, match=says):
        datasets.load_csv(tmp_path / "d.csv", target=target)


@pytest.mark.parametrize("text,says", [
    ("a,b,a\n1,2,3\n4,5,6\n7,8,9\n", "more than once"),              # the second 'a' silently became a feature
    ("1,2,3\n4,5,6\n7,8,9\n", "looks like data, not a header"),     # the first row was silently lost
    ("a,,c\n1,2,3\n4,5,6\n", "empty column name"),
])
def test_csv_headers_that_would_lose_or_misplace_data(tmp_path, text, says):
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(ValueError, match=says):
        datasets.load_csv(tmp_path / "d.csv", target="a" if text.startswith("a") else -1)


@pytest.mark.parametrize("entry", [{"test_fraction": "0.2"}, {"test_fraction": None}, {"test_fraction": [0.2]},
                                   {"test_fraction": 1.5}, {"shuffle": "no"}, {"name": "synthetic", "n": -5},
                                   {"name": "synthetic", "n": 10.5}, {"name": "synthetic", "noise": "high"},
                                   {"name": "sunspots", "lags": "twelve"}])
def test_dataset_options_of_the_wrong_type(tmp_path, cli_here, entry):
    exp = {"dataset": {"name": "diabetes", **entry}, "config": {"m": 3, "steps": 5}}
    (tmp_path / "e.json").write_text(json.dumps(exp))
    code, err = cli_here(["run", "e.json", "--no-checkpoint"])
    one_line_error(code, err)
    assert next(k for k in entry if k != "name") in err
