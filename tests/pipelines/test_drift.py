"""The drift step: PSI and binned KS by hand, drift found where the generator puts it, schema counts, metrics."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from scipy import stats

from pipelines_src.datasets.delivery_time import ConceptDrift, CovariateDrift, generate, write_raw
from pipelines_src.steps import contract as contracts
from pipelines_src.steps import drift, features
from pipelines_src.steps.drift import (
    CHECK_COMPLETED,
    EPSILON,
    NAMESPACE,
    BaselineError,
    CategoricalBaseline,
    NumericBaseline,
    bin_counts,
    binned_ks,
    compute_drift,
    metric_data,
    psi,
    shares,
    write_metrics,
)
from pipelines_src.steps.preprocess import build_baseline

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "pipelines_src" / "contracts" / "delivery_time.json"
STEPS = ROOT / "pipelines_src" / "steps"
# 120 days: the generator shares each day's weather among most of that day's orders, so
# a short period makes the weather mix of two seeds differ by chance.
DAYS = 120
BASELINE_ROWS = 20_000
NEW_ROWS = 10_000


@pytest.fixture(scope="module")
def contract() -> contracts.Contract:
    return contracts.load_contract(CONTRACT)


def _baseline_of(frame: pd.DataFrame, contract: contracts.Contract) -> dict[str, Any]:
    """The baseline preprocess would write for ``frame`` as its training split."""
    typed = contracts.dataset_from_frame(frame, contract).frame
    baseline: dict[str, Any] = json.loads(json.dumps(build_baseline(typed, contract, features.from_contract(contract))))
    return baseline


@pytest.fixture(scope="module")
def baseline(contract: contracts.Contract) -> dict[str, Any]:
    return _baseline_of(generate(BASELINE_ROWS, seed=1, days=DAYS), contract)


def _new(**drifts: Any) -> pd.DataFrame:
    """New data: another seed, the same generator settings plus the given drift."""
    return generate(NEW_ROWS, seed=2, days=DAYS, **drifts)


@pytest.fixture(scope="module")
def same_report(baseline: dict[str, Any], contract: contracts.Contract) -> dict[str, Any]:
    return compute_drift(baseline, _new(), contract)


# --- formulas, by hand --------------------------------------------------------------------

# Baseline: 2, 4 and 4 values in [0, 1), [1, 2), [2, 3]; the new values -5 and 7 lie outside.
EDGES = [0.0, 1.0, 2.0, 3.0]
BASE_COUNTS = [2, 4, 4]
NEW_VALUES = [-5.0, 0.5, 1.5, 2.5, 3.0, 7.0]


def test_outside_values_go_to_the_outer_bins() -> None:
    assert bin_counts(NEW_VALUES, EDGES).tolist() == [2, 1, 3]  # -5 -> first bin; 3 (closed) and 7 -> last


def test_psi_matches_a_hand_computation() -> None:
    b = [0.2, 0.4, 0.4]
    a = [2 / 6, 1 / 6, 3 / 6]
    by_hand = sum((a_i - b_i) * math.log(a_i / b_i) for a_i, b_i in zip(a, b, strict=True))
    assert by_hand == pytest.approx(0.29471, abs=1e-5)
    assert psi(shares(BASE_COUNTS), shares(bin_counts(NEW_VALUES, EDGES))) == pytest.approx(by_hand, rel=1e-12)
    column = pd.Series([*NEW_VALUES, np.nan, np.nan])
    result = drift.numeric_drift(column, NumericBaseline(0.1, np.array(EDGES), np.array(BASE_COUNTS, dtype=float)))
    assert result["psi"] == pytest.approx(by_hand, rel=1e-12)
    assert result["missing_rate"] == pytest.approx(2 / 8)
    assert result["missing_rate_change"] == pytest.approx(2 / 8 - 0.1)
    assert (result["below_range"], result["above_range"]) == (pytest.approx(1 / 6), pytest.approx(1 / 6))


def test_psi_floors_empty_buckets_at_epsilon() -> None:
    # baseline shares 0, 0.5, 0.5 and new shares 0.5, 0.5, 0: both empty buckets count as EPSILON
    by_hand = (0.5 - EPSILON) * math.log(0.5 / EPSILON) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert EPSILON == 1e-4
    assert psi([0.0, 0.5, 0.5], [0.5, 0.5, 0.0]) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(8.5155, abs=1e-4)


def test_ks_matches_a_hand_computation_and_scipy_on_the_binned_points() -> None:
    # CDFs at the interior edges 1 and 2: baseline 0.2, 0.6; new 2/6, 3/6 -> gaps 2/15, 1/10
    new_counts = bin_counts(NEW_VALUES, EDGES)
    assert binned_ks(BASE_COUNTS, new_counts) == pytest.approx(2 / 15, rel=1e-12)
    bins = np.arange(len(BASE_COUNTS))
    scipy_ks = stats.ks_2samp(np.repeat(bins, BASE_COUNTS), np.repeat(bins, new_counts.astype(int))).statistic
    assert binned_ks(BASE_COUNTS, new_counts) == pytest.approx(scipy_ks, rel=1e-12)
    assert binned_ks([5], [3]) == 0.0  # a single bin has no interior edge


def test_ks_is_exact_for_one_bin_per_value_and_a_lower_bound_otherwise(
    baseline: dict[str, Any], contract: contracts.Contract
) -> None:
    base = generate(BASELINE_ROWS, seed=1, days=DAYS)
    new = _new(covariate_drift=CovariateDrift("distance_km", 0.2))
    report = compute_drift(baseline, new, contract)
    weekday = report["features"]["weekday"]  # one bin per weekday: the binned CDFs are the raw ones
    assert weekday["ks"] == pytest.approx(stats.ks_2samp(base["weekday"], new["weekday"]).statistic, abs=1e-12)
    raw_distance_ks = stats.ks_2samp(base["distance_km"], new["distance_km"]).statistic
    assert 0 < report["features"]["distance_km"]["ks"] <= raw_distance_ks + 1e-12


def test_categorical_psi_with_unseen_categories_missing_values_and_bools() -> None:
    contract = contracts.parse_contract(
        {
            "dataset": "toy",
            "version": "1",
            "target": "y",
            "columns": [
                {"name": "c", "type": "category", "nullable": True, "allowed": ["a", "b", "c", "d"]},
                {"name": "flag", "type": "bool"},
                {"name": "y", "type": "float"},
            ],
        }
    )
    baseline = {
        "dataset": "toy",
        "features": {
            "c": {"kind": "categorical", "missing_rate": 0.1, "frequencies": {"a": 0.5, "b": 0.5, "c": 0.0}},
            "flag": {"kind": "categorical", "missing_rate": 0.0, "frequencies": {"false": 0.5, "true": 0.5}},
        },
    }
    # "zz" is not allowed: a null for the model (missing) and a schema violation; "d" is allowed, unseen in the baseline
    frame = pd.DataFrame(
        {"c": ["a", "a", "a", "b", "c", "d", None, "zz"], "flag": [True] * 8, "y": [1.0] * 8}, dtype=object
    )
    report = compute_drift(baseline, frame, contract)
    c = report["features"]["c"]
    # buckets a, b, c (baseline share 0 -> EPSILON) and the unseen d (its own bucket, baseline EPSILON)
    a_, b_ = [3 / 6, 1 / 6, 1 / 6, 1 / 6], [0.5, 0.5, EPSILON, EPSILON]
    assert c["psi"] == pytest.approx(sum((x - y) * math.log(x / y) for x, y in zip(a_, b_, strict=True)), rel=1e-12)
    assert c["unseen"] == {"d": 1}
    assert c["frequencies"] == pytest.approx({"a": 0.5, "b": 1 / 6, "c": 1 / 6, "d": 1 / 6})
    assert c["missing_rate"] == pytest.approx(2 / 8) and c["missing_rate_change"] == pytest.approx(2 / 8 - 0.1)
    assert c["ks"] is None
    flag = report["features"]["flag"]
    assert flag["psi"] == pytest.approx((EPSILON - 0.5) * math.log(EPSILON / 0.5) + 0.5 * math.log(2.0), rel=1e-12)
    assert report["schema"]["violations"] == [
        {"rule": "not_allowed_value", "column": "c", "count": 1, "message": "1 values of c are not one of a, b, c, d"}
    ]


@settings(max_examples=50, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500)), min_size=1, max_size=25).filter(
        lambda items: sum(first for first, _ in items) > 0 and sum(second for _, second in items) > 0
    ),
    scale=st.integers(1, 20),
)
def test_psi_is_non_negative_and_zero_for_identical_distributions(pairs: list[tuple[int, int]], scale: int) -> None:
    base = np.array([first for first, _ in pairs], dtype=float)
    other = np.array([second for _, second in pairs], dtype=float)
    assert psi(shares(base), shares(other)) >= 0.0
    assert psi(shares(base), shares(base * scale)) == pytest.approx(0.0, abs=1e-12)  # same shares, more rows
    assert binned_ks(base, base * scale) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=200), copies=st.integers(1, 4))
def test_numeric_drift_of_a_sample_against_its_own_histogram_is_zero(values: list[float], copies: int) -> None:
    sample = np.array(values)
    edges = np.linspace(sample.min() - 1.0, sample.max() + 1.0, 6)
    own = NumericBaseline(0.0, edges, bin_counts(sample, edges))
    result = drift.numeric_drift(pd.Series(np.tile(sample, copies)), own)
    assert result["psi"] == pytest.approx(0.0, abs=1e-12) and result["ks"] == pytest.approx(0.0, abs=1e-12)


# --- generated data -----------------------------------------------------------------------


def test_same_distribution_shows_no_drift(same_report: dict[str, Any], contract: contracts.Contract) -> None:
    assert list(same_report["features"]) == features.from_contract(contract).names
    assert same_report["drifted_features"] == []
    for name, statistics in same_report["features"].items():
        assert 0.0 <= statistics["psi"] < drift.PSI_THRESHOLD, name
        assert statistics["ks"] is None or statistics["ks"] < drift.KS_THRESHOLD, name
        assert abs(statistics["missing_rate_change"]) < 0.01, name
    assert same_report["max_psi"] == max(statistics["psi"] for statistics in same_report["features"].values())
    assert same_report["row_count"] == NEW_ROWS
    assert same_report["schema"]["violation_count"] == 0
    assert same_report["contract"] == {"dataset": "delivery_time", "version": contract.version, "source": str(CONTRACT)}
    assert same_report["baseline"] == {
        "dataset": "delivery_time",
        "contract_version": contract.version,
        "computed_on": "train",
        "row_count": BASELINE_ROWS,
    }
    json.dumps(same_report, allow_nan=False)  # JSON-safe


# Strengths that move the feature clearly. The generator derives some features from
# others (vehicles follow distance and weather; traffic and free couriers follow the
# weather), so a drift of one legitimately moves those a little too; at these strengths
# they stay under the thresholds. Every other feature comes out exactly as without drift.
COVARIATE_DRIFTS = {"traffic_level": 0.5, "distance_km": 0.5, "weather": 0.6, "couriers_available": 0.5}
DERIVED = {"distance_km": {"vehicle_type"}, "weather": {"traffic_level", "couriers_available", "vehicle_type"}}


@pytest.mark.parametrize(("feature", "strength"), COVARIATE_DRIFTS.items())
def test_covariate_drift_is_found_on_exactly_the_drifted_feature(
    baseline: dict[str, Any],
    contract: contracts.Contract,
    same_report: dict[str, Any],
    feature: str,
    strength: float,
) -> None:
    report = compute_drift(baseline, _new(covariate_drift=CovariateDrift(feature, strength)), contract)  # type: ignore[arg-type]
    assert report["drifted_features"] == [feature]
    drifted = report["features"][feature]
    assert drifted["psi"] > drift.PSI_THRESHOLD
    assert drifted["ks"] is None or drifted["ks"] > drift.KS_THRESHOLD  # KS only for numeric features
    assert report["max_psi"] == drifted["psi"] and report["max_psi_feature"] == feature
    for name, statistics in report["features"].items():
        if name == feature:
            continue
        assert not statistics["drifted"], name
        if name not in DERIVED.get(feature, set()):
            assert statistics == same_report["features"][name], name


def test_concept_drift_is_not_input_drift(
    baseline: dict[str, Any], contract: contracts.Contract, same_report: dict[str, Any]
) -> None:
    # Only the target's relation to the features moves: input drift cannot see it. Model-quality
    # monitoring (the model's error on labelled new data) is what catches concept drift.
    report = compute_drift(baseline, _new(concept_drift=ConceptDrift("distance", 1.0)), contract)
    assert report["drifted_features"] == []
    assert report["features"] == same_report["features"]


def test_schema_problems_are_counted(baseline: dict[str, Any], contract: contracts.Contract) -> None:
    frame = _new().drop(columns=["order_value"])
    frame["coupon_code"] = "SPRING"
    frame.loc[frame.index[:5], "hour_of_day"] = 30  # the contract allows 0 to 23
    report = compute_drift(baseline, frame, contract)
    schema = report["schema"]
    assert schema["missing_columns"] == ["order_value"]
    assert schema["unexpected_columns"] == ["coupon_code"]
    counts = {(item["rule"], item["column"]): item["count"] for item in schema["violations"]}
    assert counts == {
        ("missing_column", "order_value"): NEW_ROWS,
        ("extra_column", "coupon_code"): NEW_ROWS,
        ("out_of_range", "hour_of_day"): 5,
    }
    assert schema["violation_count"] == 3
    absent = report["features"]["order_value"]
    assert absent["psi"] is None and absent["ks"] is None and absent["missing_rate_change"] == 1.0
    assert absent["note"] == "no values to compare"
    assert "order_value" not in report["drifted_features"]
    json.dumps(report, allow_nan=False)


def test_unusable_baselines_raise_errors_naming_the_key(baseline: dict[str, Any], contract: contracts.Contract) -> None:
    broken = json.loads(json.dumps(baseline))
    broken["features"]["distance_km"]["histogram"]["edges"].reverse()
    with pytest.raises(BaselineError, match=r"features\.distance_km\.histogram\.edges: must be at least 2 strictly"):
        compute_drift(broken, _new(), contract)
    with pytest.raises(BaselineError, match="'other' is not the contract's dataset 'delivery_time'"):
        compute_drift({**baseline, "dataset": "other"}, _new(), contract)
    kind = json.loads(json.dumps(baseline))
    kind["features"]["weather"] = kind["features"]["distance_km"]
    with pytest.raises(
        BaselineError, match=r"features\.weather: the contract makes it categorical, the baseline numeric"
    ):
        compute_drift(kind, _new(), contract)
    with pytest.raises(ValueError, match="ks_threshold"):
        compute_drift(baseline, _new(), contract, ks_threshold=2.0)


# --- CloudWatch ---------------------------------------------------------------------------


def test_metric_data_names_and_dimensions(same_report: dict[str, Any]) -> None:
    entries = metric_data(same_report, model="delivery-time", stage="dev")
    run = [{"Name": "Model", "Value": "delivery-time"}, {"Name": "Stage", "Value": "dev"}]
    by_key = {
        (entry["MetricName"], *(dimension["Value"] for dimension in entry["Dimensions"][2:])): entry
        for entry in entries
    }
    assert len(by_key) == len(entries)
    feature_stats = same_report["features"]
    numeric = [name for name, statistics in feature_stats.items() if statistics["kind"] == "numeric"]
    expected_keys = {("FeaturePSI", name) for name in feature_stats}
    expected_keys |= {("MissingRateChange", name) for name in feature_stats}
    expected_keys |= {("FeatureKS", name) for name in numeric}
    expected_keys |= {("MaxPSI",), ("DriftedFeatures",), ("SchemaViolations",), ("DriftCheckCompleted",)}
    assert set(by_key) == expected_keys
    psi_entry = by_key[("FeaturePSI", "distance_km")]
    assert psi_entry == {
        "MetricName": "FeaturePSI",
        "Dimensions": [*run, {"Name": "Feature", "Value": "distance_km"}],
        "Value": feature_stats["distance_km"]["psi"],
        "Unit": "None",
    }
    assert by_key[("MaxPSI",)]["Dimensions"] == run and by_key[("MaxPSI",)]["Value"] == same_report["max_psi"]
    assert by_key[("SchemaViolations",)] == {
        "MetricName": "SchemaViolations",
        "Dimensions": run,
        "Value": 0.0,
        "Unit": "Count",
    }
    with pytest.raises(ValueError, match="stage: must be a CloudWatch dimension value"):
        metric_data(same_report, model="m", stage="")


def test_the_metrics_file_is_one_put_metric_data_request(tmp_path: Path, same_report: dict[str, Any]) -> None:
    entries = metric_data(same_report, model="delivery-time", stage="dev")
    path = write_metrics(entries, tmp_path / "report")
    assert path == tmp_path / "report" / drift.METRICS_FILE
    request = json.loads(path.read_text())
    assert request == {"Namespace": NAMESPACE, "MetricData": entries} and NAMESPACE == "MLOps/Drift"
    with mock_aws():  # botocore validates the request's shape; CloudWatch (moto) lists what it holds
        client = boto3.client("cloudwatch", region_name="eu-west-1")
        client.put_metric_data(**request)
        listed = _listed_metrics(client)
    expected = {
        (entry["MetricName"], tuple((item["Name"], item["Value"]) for item in entry["Dimensions"])) for entry in entries
    }
    assert listed == expected
    with pytest.raises(ValueError, match="one PutMetricData call takes 1 to 1000"):
        write_metrics(entries * 1000, tmp_path)
    with pytest.raises(ValueError, match="one PutMetricData call takes 1 to 1000"):
        write_metrics([], tmp_path)


def test_every_run_ends_its_metrics_with_the_heartbeat(same_report: dict[str, Any]) -> None:
    run = [{"Name": "Model", "Value": "delivery-time"}, {"Name": "Stage", "Value": "dev"}]
    heartbeat = {"MetricName": "DriftCheckCompleted", "Dimensions": run, "Value": 1.0, "Unit": "Count"}
    entries = metric_data(same_report, model="delivery-time", stage="dev")
    assert CHECK_COMPLETED == "DriftCheckCompleted"
    assert entries[-1] == heartbeat
    assert [entry["MetricName"] for entry in entries].count(CHECK_COMPLETED) == 1
    # A run that measured nothing (no rows) still completed: its heartbeat goes out, the schema alarm tells why.
    empty = {"features": {}, "max_psi": None, "drifted_features": [], "schema": {"violation_count": 1}}
    assert metric_data(empty, model="delivery-time", stage="dev")[-1] == heartbeat


def _listed_metrics(client: Any) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    found = set()
    for page in client.get_paginator("list_metrics").paginate(Namespace=NAMESPACE):
        for metric in page["Metrics"]:
            dimensions = tuple((item["Name"], item["Value"]) for item in metric["Dimensions"])
            found.add((metric["MetricName"], dimensions))
    return found


# --- the step -----------------------------------------------------------------------------


def _inputs(tmp_path: Path, baseline: dict[str, Any], new: pd.DataFrame) -> list[str]:
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "baseline.json").write_text(json.dumps(baseline))
    write_raw(new, tmp_path / "raw")
    (tmp_path / "contract").mkdir()
    shutil.copy(CONTRACT, tmp_path / "contract" / "contract.json")
    return [
        "--baseline",
        str(tmp_path / "baseline" / "baseline.json"),
        "--data-dir",
        str(tmp_path / "raw" / "delivery_time"),
        "--contract",
        str(tmp_path / "contract" / "contract.json"),
        "--output-dir",
        str(tmp_path / "out"),
    ]


@pytest.mark.slow  # a subprocess or a whole run: end to end
def test_script_runs_as_a_plain_script_and_reports_drift(tmp_path: Path, baseline: dict[str, Any]) -> None:
    code = tmp_path / "code"  # the steps folder alone, as a SageMaker container sees it
    shutil.copytree(STEPS, code, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    new = generate(3_000, seed=4, days=DAYS, covariate_drift=CovariateDrift("couriers_available", 0.5))
    arguments = _inputs(tmp_path, baseline, new)
    result = subprocess.run(
        [sys.executable, str(code / "drift.py"), *arguments], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / drift.REPORT_FILE).read_text())
    assert report["drifted_features"] == ["couriers_available"]
    assert report["row_count"] == 3_000 and report["file_count"] == DAYS
    assert "drifted: couriers_available" in result.stdout


def test_main_writes_the_metrics_only_when_asked(tmp_path: Path, baseline: dict[str, Any]) -> None:
    arguments = _inputs(tmp_path, baseline, generate(500, seed=3, days=2))
    metrics = tmp_path / "out" / drift.METRICS_FILE
    assert drift.main(arguments) == 0
    assert not metrics.exists()
    assert drift.main([*arguments, "--metrics", "--model", "delivery-time", "--stage", "dev"]) == 0
    request = json.loads(metrics.read_text())
    report = json.loads((tmp_path / "out" / drift.REPORT_FILE).read_text())
    assert request == {"Namespace": NAMESPACE, "MetricData": metric_data(report, model="delivery-time", stage="dev")}
    with pytest.raises(SystemExit):  # argparse: --metrics needs the dimensions
        drift.main([*arguments, "--metrics"])


def test_unusable_inputs_exit_2_with_one_line(
    tmp_path: Path, baseline: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = _inputs(tmp_path, baseline, generate(300, seed=3, days=2))
    missing = [*arguments, "--baseline", str(tmp_path / "nope.json")]
    assert drift.main(missing) == 2
    assert capsys.readouterr().err == f"drift: {tmp_path / 'nope.json'}: no such baseline file\n"
    (tmp_path / "contract" / "contract.json").write_text('{"dataset": "delivery_time"')
    assert drift.main(arguments) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith(f"drift: {tmp_path / 'contract' / 'contract.json'}: not valid JSON") and error.count("\n") == 1
    )
    assert not (tmp_path / "out" / drift.REPORT_FILE).exists()


def test_main_defaults_are_sagemaker_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(*paths: str, psi_threshold: float, ks_threshold: float, **options: Any) -> dict[str, Any]:
        seen.update(paths=paths, psi=psi_threshold, ks=ks_threshold, options=options)
        schema = {"violation_count": 0}
        return {
            "row_count": 0,
            "file_count": 0,
            "max_psi": None,
            "drifted_features": [],
            "schema": schema,
            "seconds": 0,
        }

    monkeypatch.setattr(drift, "detect_drift", fake)
    assert drift.main([]) == 0
    assert seen == {
        "paths": (
            "/opt/ml/processing/input/baseline/baseline.json",
            "/opt/ml/processing/input/data",
            "/opt/ml/processing/input/contract/contract.json",
            "/opt/ml/processing/output/drift",
        ),
        "psi": 0.2,
        "ks": 0.1,
        "options": {"input_format": "dataset", "since": None, "until": None},
    }


def test_a_feature_the_baseline_lacks_is_reported_without_statistics(
    baseline: dict[str, Any], contract: contracts.Contract
) -> None:
    partial = json.loads(json.dumps(baseline))
    del partial["features"]["order_items"]
    report = compute_drift(partial, _new(), contract)
    assert report["features"]["order_items"] == {
        "kind": "numeric",
        "count": NEW_ROWS,
        "missing_rate": 0.0,
        "baseline_missing_rate": None,
        "missing_rate_change": None,
        "psi": None,
        "ks": None,
        "note": "the baseline has no statistics of this feature",
        "exceeded": [],
        "drifted": False,
    }
    names = {
        dimension["Value"] for entry in metric_data(report, model="m", stage="s") for dimension in entry["Dimensions"]
    }
    assert "order_items" not in names


def test_categorical_baseline_shares_are_rescaled() -> None:
    parsed = drift.parse_baseline(
        {"features": {"c": {"kind": "categorical", "missing_rate": 0.0, "frequencies": {"a": 0.3, "b": 0.3}}}}
    )
    assert parsed == {"c": CategoricalBaseline(0.0, {"a": 0.5, "b": 0.5})}
