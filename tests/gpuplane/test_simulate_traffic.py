"""Traffic generator and trace readers: shapes, seeds, and the errors a bad file gets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuplane.simulate.traffic import (
    AZURE_MINUTES,
    DAY_S,
    TraceFormatError,
    TrafficSpec,
    TrafficSpecError,
    diurnal_shape,
    read_azure_functions,
    read_timestamps,
    synthetic_trace,
    zipf_weights,
)


@given(st.floats(min_value=1.0, max_value=20.0))
@settings(max_examples=25, deadline=None)
def test_diurnal_shape_has_mean_one_and_the_requested_peak(peak_to_mean: float) -> None:
    t = np.linspace(0.0, DAY_S, 20_001)[:-1]
    shape = diurnal_shape(t, peak_to_mean)
    assert shape.mean() == pytest.approx(1.0, rel=1e-6)
    assert shape.max() == pytest.approx(peak_to_mean, rel=1e-4)


def test_synthetic_trace_is_seeded_sorted_and_hits_the_mean_rate() -> None:
    spec = TrafficSpec(mean_rps=5.0, peak_to_mean=2.0, cv=2.0, duration_s=DAY_S, endpoints=7, seed=11)
    a, b = synthetic_trace(spec), synthetic_trace(spec)
    assert np.array_equal(a.times_s, b.times_s) and np.array_equal(a.endpoint, b.endpoint)
    assert np.all(np.diff(a.times_s) >= 0)
    assert a.times_s.min() >= 0 and a.times_s.max() < spec.duration_s
    assert a.n_requests == pytest.approx(5.0 * DAY_S, rel=0.05)
    assert a.peak_to_mean(3600.0) == pytest.approx(2.0, rel=0.1)
    other = synthetic_trace(TrafficSpec(**{**spec.__dict__, "seed": 12}))
    assert not np.array_equal(a.times_s[:100], other.times_s[:100])


def test_zipf_popularity_orders_endpoints_by_rank() -> None:
    tr = synthetic_trace(TrafficSpec(mean_rps=20.0, duration_s=6 * 3600, endpoints=5, zipf_s=1.0, seed=1))
    counts = np.bincount(tr.endpoint, minlength=5)
    share = counts / counts.sum()
    np.testing.assert_allclose(share, zipf_weights(5, 1.0), atol=0.01)


def test_gamma_cv_shows_in_the_gaps() -> None:
    for cv in (1.0, 3.0):
        tr = synthetic_trace(TrafficSpec(mean_rps=10.0, peak_to_mean=1.0, cv=cv, duration_s=6 * 3600, seed=2))
        gaps = np.diff(tr.times_s)
        assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.1)


def test_bursts_raise_the_realised_peak() -> None:
    base = TrafficSpec(mean_rps=10.0, peak_to_mean=1.0, duration_s=DAY_S, seed=4)
    calm = synthetic_trace(base)
    bursty = synthetic_trace(
        TrafficSpec(**{**base.__dict__, "bursts_per_day": 4.0, "burst_multiplier": 5.0, "burst_duration_s": 900.0})
    )
    assert bursty.peak_to_mean(600.0) > calm.peak_to_mean(600.0) + 1.0


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("mean_rps", 0.0, "mean_rps=0.0"),
        ("peak_to_mean", 0.5, "peak_to_mean=0.5"),
        ("cv", -1.0, "cv=-1.0"),
        ("endpoints", 0, "endpoints=0"),
    ],
)
def test_bad_traffic_spec_names_the_field(field: str, value: float, fragment: str) -> None:
    with pytest.raises(TrafficSpecError, match=fragment):
        synthetic_trace(TrafficSpec(**{field: value}))


def _azure_header() -> str:
    return ",".join(["HashOwner", "HashApp", "HashFunction", "Trigger", *(str(m) for m in range(1, AZURE_MINUTES + 1))])


def _azure_row(owner: str, app: str, fn: str, counts: dict[int, int]) -> str:
    cells = ["0"] * AZURE_MINUTES
    for minute, c in counts.items():
        cells[minute - 1] = str(c)
    return ",".join([owner, app, fn, "http", *cells])


def test_azure_reader_spreads_counts_inside_their_minute(tmp_path) -> None:
    f = tmp_path / "invocations_per_function_md.anon.d01.csv"
    f.write_text(
        "\n".join(
            [_azure_header(), _azure_row("o1", "a1", "f1", {1: 3, 1440: 2}), _azure_row("o1", "a1", "f2", {10: 1})]
        )
        + "\n"
    )
    tr = read_azure_functions(f, seed=1)
    assert tr.n_requests == 6 and tr.n_endpoints == 2 and tr.duration_s == DAY_S
    f1 = tr.endpoint_names.index("o1/a1/f1")
    t1 = np.sort(tr.times_s[tr.endpoint == f1])
    assert np.all((t1[:3] >= 0) & (t1[:3] < 60)) and np.all(t1[3:] >= 1439 * 60)
    by_app = read_azure_functions(f, group_by="app")
    assert by_app.n_endpoints == 1 and by_app.n_requests == 6


def test_azure_reader_lays_days_end_to_end_and_keeps_the_top(tmp_path) -> None:
    d1, d2 = tmp_path / "d01.csv", tmp_path / "d02.csv"
    d1.write_text(
        "\n".join([_azure_header(), _azure_row("o", "a", "busy", {5: 10}), _azure_row("o", "a", "idle", {5: 1})]) + "\n"
    )
    d2.write_text("\n".join([_azure_header(), _azure_row("o", "a", "busy", {5: 10})]) + "\n")
    tr = read_azure_functions([d1, d2], top=1)
    assert tr.endpoint_names == ("o/a/busy",) and tr.n_requests == 20 and tr.duration_s == 2 * DAY_S
    assert (tr.times_s >= DAY_S).sum() == 10


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("HashOwner,HashApp,Function,Trigger,1\n", "line 1: header is not the Azure Functions 2019 format (no column 'HashFunction'"),
        (None, "line 2: 5 fields, expected 1444"),
        ("bad-count", "line 3: column 6 (minute 2) holds '-1'"),
        ("", "line 1: the file is empty"),
    ],
)
def test_azure_reader_errors_name_file_line_and_fix(tmp_path, content: str | None, fragment: str) -> None:
    f = tmp_path / "bad.csv"
    if content is None:
        content = _azure_header() + "\no,a,f,http,1\n"
    elif content == "bad-count":
        good = _azure_row("o", "a", "f", {1: 1})
        bad = _azure_row("o", "a", "g", {}).split(",")
        bad[5] = "-1"
        content = "\n".join([_azure_header(), good, ",".join(bad)]) + "\n"
    f.write_text(content)
    with pytest.raises(TraceFormatError) as err:
        read_azure_functions(f)
    assert str(f) in str(err.value) and fragment in str(err.value) and "To fix:" in str(err.value)


def test_timestamp_reader_plain_lines_are_shifted_and_sorted(tmp_path) -> None:
    f = tmp_path / "ts.csv"
    f.write_text("1000.5\n1000.0\n\n1060.25\n")
    tr = read_timestamps(f)
    np.testing.assert_allclose(tr.times_s, [0.0, 0.5, 60.25])
    assert tr.n_endpoints == 1 and tr.duration_s == 61.0


def test_timestamp_reader_with_header_and_endpoints(tmp_path) -> None:
    f = tmp_path / "ts.csv"
    f.write_text("endpoint,timestamp\nb,5\na,1\nb,3\n")
    tr = read_timestamps(f)
    assert tr.endpoint_names == ("a", "b")
    assert list(tr.endpoint) == [0, 1, 1] and list(tr.times_s) == [0.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("time\n1\n", "line 1: header ['time'] has no 'timestamp' column"),
        ("timestamp\n1\nabc\n", "line 3: timestamp 'abc' is not a number"),
        ("1\nnan\n", "line 2: timestamp 'nan' is not finite"),
        ("\n\n", "line 1: the file holds no timestamp"),
    ],
)
def test_timestamp_reader_errors_name_file_line_and_fix(tmp_path, content: str, fragment: str) -> None:
    f = tmp_path / "ts.csv"
    f.write_text(content)
    with pytest.raises(TraceFormatError) as err:
        read_timestamps(f)
    assert str(f) in str(err.value) and fragment in str(err.value) and "To fix:" in str(err.value)


def test_missing_trace_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(TraceFormatError, match="no such file"):
        read_timestamps(tmp_path / "nope.csv")
