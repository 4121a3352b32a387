"""The demo's model-quality loop: the drifted window's requests receive labels, the scheduled check runs, its
metrics are published, the decay alarm is evaluated and the drift-alert function reacts.

- The labels (one row per label: inference id, observed target, event time) land in the raw zone under the
  labels dataset's folder; the window's orders, now with their outcome, land in the model's dataset (as the
  order system delivers them). The curation job curates both, as the demo runs it (local Spark, the
  synthesized job's arguments; for the labels its dataset, folder and contract, the quality check's asset).
- The check is started by the quality-start function from the event the synthesized schedule puts; the
  executor runs it; the quality-metrics function publishes its metrics on the step's success event.
- The demo sets the decay alarm's state from the published MetricDegradation (moto evaluates no alarm) and
  delivers the state change to the drift-alert function: it retrains for "model quality", or the shared
  cooldown suppresses the trigger when the drift alarm retrained already.
- Both versions are scored on old data (the normal window) and recent data (the drifted window).
"""

from __future__ import annotations

import datetime as dt
import json
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from demo.emulation import ALARM, OK, step_succeeded_event
from demo.executions import SUCCEEDED

if TYPE_CHECKING:
    from demo.run import Demo

CHECK_DUE: Final = "Model Quality Check Due"
# A label arrives this share of the check's lateness after its prediction, at most (and at least a minute).
LABEL_DELAY_SHARE = 0.5
LABELS_FILE = "part-00000.csv"


def run(demo: Demo) -> None:
    """The step: labels, curation, the scheduled check, its metrics, the decay alarm, the reaction."""
    n = demo.n
    if not n.quality_pipeline or not n.quality_alarm:
        demo.say("the stage schedules no model-quality check with alarms: nothing to do")
        demo.summary["quality"] = None
        return
    if not demo.options.etl:
        demo.say("--no-etl: the labels are curated by the curation job, which does not run; no quality check")
        demo.summary["quality"] = None
        return
    labels = write_arrivals(demo)
    curate_arrivals(demo)
    execution_arn = start_check(demo)
    report = finish_check(demo, execution_arn)
    result = react(demo, report)
    demo.summary["quality"] = {**quality_summary(report), "labels_written": labels, "alarm_result": result}
    compare_versions(demo)


def _rows(demo: Demo, window: str) -> tuple[Any, list[str], list[dt.datetime]]:
    """A traffic window's frame, each row's prediction id (as the capture gives it) and inference time."""
    from demo.run import inference_id

    traffic = demo.state["traffic"][window]
    step = 3600.0 / demo.options.traffic
    ids: list[str] = []
    times: list[dt.datetime] = []
    for index, size in enumerate(traffic["sizes"]):
        moment = traffic["start"] + dt.timedelta(seconds=index * step)
        for row in range(size):
            # As capture.py names a batch's rows: the request's id, with ":<row>" when it has several.
            ids.append(inference_id(window, index) if size == 1 else f"{inference_id(window, index)}:{row}")
            times.append(moment)
    return traffic["frame"], ids, times


def write_arrivals(demo: Demo) -> int:
    """The drifted window's labels and its orders with their outcomes, in the local raw zone."""
    import numpy as np

    from stacks.datasets import labels_folder

    n = demo.n
    frame, ids, times = _rows(demo, "drifted")
    lateness = dt.timedelta(hours=demo.config.operations.quality.lateness_hours)
    rng = np.random.default_rng(demo.options.seed + 0x1AB)
    longest = max(LABEL_DELAY_SHARE * lateness.total_seconds(), 60.0)
    delays = rng.uniform(min(60.0, longest), longest, size=len(ids))
    raw = demo.lake_folders()[n.raw_bucket]
    target = _contract(demo).target
    day = times[0].strftime("%Y-%m-%d")
    folder = raw / labels_folder(n.dataset) / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["inference_id," + target + ",event_time"]
    for label, minutes, moment, delay in zip(ids, frame[target].tolist(), times, delays.tolist(), strict=True):
        observed = moment + dt.timedelta(seconds=delay)
        lines.append(f"{label},{minutes!r},{observed.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    (folder / LABELS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    demo.say(
        f"{len(ids)} labels for the drifted window's predictions (one per row: inference id, observed {target}, "
        f"event time up to {longest / 3600:.1f} h later) land in {folder}"
    )
    from pipelines_src.datasets.delivery_time import write_raw

    orders = frame.copy()
    orders["order_date"] = np.datetime64(day)
    files = write_raw(orders, raw / ".arrivals", dataset=n.dataset, file_format="csv", overwrite=True)
    for path in files:
        destination = raw / n.dataset / path.parent.name / f"arrivals-{path.name}"
        destination.parent.mkdir(parents=True, exist_ok=True)
        path.replace(destination)
    demo.say(
        f"the window's {len(orders)} orders, with their outcomes, land in {raw / n.dataset}/dt={day}/ as the order "
        "system delivers them: the next training reads them"
    )
    return len(ids)


def _contract(demo: Demo) -> Any:
    """The model dataset's contract."""
    from demo.run import PIPELINES_SRC
    from pipelines_src.steps import contract as contracts

    return contracts.load_contract(PIPELINES_SRC / "contracts" / f"{demo.n.dataset}.json")


def _labels_contract(demo: Demo) -> Path:
    """The labels dataset's contract as the quality check's template ships it (a file asset of the assembly)."""
    from stacks.datasets import labels_dataset

    wanted = labels_dataset(demo.n.dataset)
    for asset in demo.assets:
        if asset.source.suffix == ".json" and asset.source.is_file():
            try:
                document = json.loads(asset.source.read_text(encoding="utf-8"))
            except ValueError:
                continue
            if isinstance(document, dict) and document.get("dataset") == wanted:
                return asset.source
    raise RuntimeError(f"the cloud assembly has no contract asset of the dataset {wanted}")


def curate_arrivals(demo: Demo) -> None:
    """The curation job over the new raw files: the labels dataset, then the model's dataset; synced to S3."""
    from demo.run import _upload_tree
    from etl import curate
    from stacks.datasets import labels_dataset, labels_folder

    n = demo.n
    folders = demo.lake_folders()
    base = demo.curation_argv(folders)
    overrides = {
        "--dataset": labels_dataset(n.dataset),
        "--dataset_folder": labels_folder(n.dataset),
        "--contract_uri": str(_labels_contract(demo)),
    }
    labels_argv: list[str] = []
    for name, value in zip(base[::2], base[1::2], strict=True):
        if name == "--catalog_database":
            continue  # the DataLake template's tables are the model dataset's
        labels_argv += [name, overrides.pop(name, value)]
    for name, value in overrides.items():
        labels_argv += [name, value]
    demo.say(
        "the curation job runs as in step 2 for the labels (the job's arguments with --dataset, --dataset_folder "
        "and --contract_uri of the labels dataset, its contract the quality check's asset; no catalog tables "
        "exist for it), then for the model's dataset (only the new files: its manifest)"
    )
    began = time.perf_counter()
    spark = demo.spark()
    reports = {
        which: curate.run(spark, curate.parse_args(argv), progress=lambda message: None)
        for which, argv in (("labels", labels_argv), ("orders", base))
    }
    curation: dict[str, Any] = {}
    for which, report in reports.items():
        counts = report["counts"]
        curation[which] = {
            key: counts[key] for key in ("rows_read", "rows_written", "rows_quarantined", "duplicates_dropped")
        }
        demo.say(
            f"curated {which}: {counts['rows_read']} rows read, {counts['rows_written']} written, "
            f"{counts['rows_quarantined']} quarantined, {counts['duplicates_dropped']} duplicates dropped"
        )
    s3 = demo.aws.client("s3")
    synced = sum(_upload_tree(s3, folder, bucket, "") for bucket, folder in folders.items())
    demo.say(f"synced to the emulated lake ({synced} files) in {time.perf_counter() - began:.1f}s")
    demo.summary["arrivals_curation"] = curation


def start_check(demo: Demo) -> str:
    """The schedule's run: its event, delivered to the quality-start function, which starts the check."""
    n, aws = demo.n, demo.aws
    pipeline = demo.pipelines[n.quality_pipeline]
    aws.client("sagemaker").create_pipeline(
        PipelineName=pipeline.name, PipelineDefinition=pipeline.definition, RoleArn=pipeline.role_arn
    )
    schedule = demo.quality_schedule
    if schedule is None:
        raise RuntimeError("the stage is not loaded")
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0)
    scheduled = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "version": "0",
        "id": f"quality-{moment:%Y%m%d%H%M%S}",
        "detail-type": schedule.detail_type,
        "source": schedule.source,
        "account": demo.aws.names.role_arn.split(":")[4],
        "time": scheduled,
        "region": n.region,
        "resources": [],
        "detail": schedule.detail(scheduled),
    }
    demo.say(
        f"quality-check pipeline {n.quality_pipeline} created with the MLPlatform template's definition; the "
        f"schedule {schedule.logical_id} ({schedule.expression}) puts its {schedule.detail_type!r} event "
        f"(the demo builds it from the template's target input, as the scheduler fills it in)"
    )
    result = demo.invoke("quality_start", event)
    if result.get("status") != "check_started":
        raise RuntimeError(f"the quality-start function did not start the check: {result}")
    arn = str(result["pipelineExecutionArn"])
    demo.say(
        f"-> quality-start function: started {arn.rsplit('/', 1)[-1]} with the served version's reference "
        f"{result.get('reference') or 'none'}"
    )
    demo.act(f"quality check {n.quality_pipeline} started", f"the schedule's {schedule.detail_type!r} event")
    return arn


def finish_check(demo: Demo, arn: str) -> dict[str, Any]:
    """The check as the executor runs it, its report, and its metrics put by the quality-metrics function."""
    from demo.run import DemoError, _split_uri
    from pipelines_src.quality_definition import CHECK_QUALITY, REPORT_FILE, REPORT_OUTPUT

    n = demo.n
    demo.state["quality_since"] = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    execution = demo.follow(arn, "quality check")
    if execution.status != SUCCEEDED or execution.result is None:
        raise DemoError(f"the quality check failed: {execution.failure}")
    output = execution.result.properties[CHECK_QUALITY]["ProcessingOutputConfig"]["Outputs"][REPORT_OUTPUT]
    bucket, key = _split_uri(f"{output['S3Output']['S3Uri'].rstrip('/')}/{REPORT_FILE}")
    report: dict[str, Any] = json.loads(demo.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    event = step_succeeded_event(
        n.quality_pipeline, execution.execution_id, CHECK_QUALITY, n.region, now=dt.datetime.now(dt.UTC)
    )
    published = demo.invoke("quality_metrics", event)
    if published.get("status") != "published":
        raise DemoError(f"the quality-metrics function did not publish: {published}")
    demo.say(
        f"event: {CHECK_QUALITY} succeeded -> quality-metrics function: {published['metrics']} metrics published "
        f"to MLOps/ModelQuality (report s3://{bucket}/{key})"
    )
    summary = quality_summary(report)
    demo.say(
        f"model quality: {summary['metric']} {summary['value']} on {summary['labels']['used']} labelled predictions "
        f"against the served version's {summary['reference']}: degradation {summary['degradation']} "
        f"(status {summary['status']}, decayed: {summary['decayed']})"
    )
    demo.say(f"  labels: {summary['labels']}; predictions: {summary['predictions']}")
    return report


def quality_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the summary keeps of a quality report."""
    keys = ("status", "metric", "value", "reference", "degradation", "decayed")
    found = {key: report.get(key) for key in keys}
    for key in ("value", "reference", "degradation"):
        if found[key] is None and isinstance(report.get("metrics"), dict):
            found[key] = report["metrics"].get(key)
    return {**found, "labels": dict(report.get("labels", {})), "predictions": dict(report.get("predictions", {}))}


def react(demo: Demo, report: dict[str, Any]) -> dict[str, Any]:
    """The decay alarm's state from the published metric (set by the demo), and the drift-alert function's answer."""
    n = demo.n
    state = demo.aws.evaluate_metric_alarm(demo.decay_alarm, demo.state["quality_since"])
    demo.say(
        "alarm evaluation (the demo reads MetricDegradation back with GetMetricStatistics and sets "
        f"{n.quality_alarm}'s state, standing in for CloudWatch): {state['state']} ({state['reason']})"
    )
    demo.summary.setdefault("alarms", {})["quality"] = {n.quality_alarm: state["state"]}
    if state["state"] != ALARM:
        return {"status": "no_alarm", "state": state["state"]}
    result = demo._alarm_changed(OK, n.quality_alarm)
    if result.get("status") == "retraining_started":
        demo._retrained(str(result["pipelineExecutionArn"]))
    return result


def _archive(demo: Demo, version: dict[str, Any]) -> Path:
    """A version's model, downloaded and unpacked: its folder."""
    from demo.run import _split_uri

    sagemaker, s3 = demo.aws.client("sagemaker"), demo.aws.client("s3")
    package = sagemaker.describe_model_package(ModelPackageName=version["arn"])
    bucket, key = _split_uri(package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
    folder = demo.workdir / "endpoint" / f"v{version['version']}"
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "model.tar.gz"
    s3.download_file(bucket, key, str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "model", filter="data")
    version["gate"] = {
        name: value
        for name, value in package.get("CustomerMetadataProperties", {}).items()
        if name.startswith(("challenger_", "champion_"))
    }
    return folder / "model"


def compare_versions(demo: Demo) -> None:
    """Every version scored by its inference code on old data (the normal window) and recent data (the drifted
    window), with the outcomes the generator gave them."""
    import numpy as np

    from demo.run import JSON_TYPE, _feature_value
    from pipelines_src.serving import inference
    from pipelines_src.steps import features
    from pipelines_src.steps.metrics import regression_metrics

    contract = _contract(demo)
    names = features.from_contract(contract).names
    target = contract.target
    metric = demo.state["values"].model.metric
    windows = {"old": "normal", "recent": "drifted"}
    comparison: dict[str, dict[str, float]] = {}
    for version in demo.summary.get("versions", []):
        model = inference.model_fn(str(_archive(demo, version)))
        scores: dict[str, float] = {}
        for label, window in windows.items():
            frame = demo.state["traffic"][window]["frame"]
            instances = [
                {name: _feature_value(row[name]) for name in names}
                for row in frame[names].astype(object).to_dict("records")
            ]
            reply = inference.respond(model, json.dumps({"instances": instances}), JSON_TYPE, JSON_TYPE)
            predicted = np.asarray(json.loads(reply.body)["predictions"], dtype=float).reshape(-1)
            actual = frame[target].to_numpy(dtype=float)
            scores[label] = regression_metrics(actual, predicted)[metric]
        comparison[f"v{version['version']}"] = scores
        version["scores"] = scores
    demo.summary["comparison"] = {"metric": metric, "data": windows, "versions": comparison}
    for name, scores in comparison.items():
        demo.say(f"{name}: {metric} {scores['old']:.3f} on old data (normal window), {scores['recent']:.3f} on recent")
