"""CloudWatch alarms on the drift metrics, from either drift engine.

Engine ``processing`` (the drift job, pipelines_src/steps/drift.py): per feature, PSI above
the threshold (every feature) and binned KS above the threshold (numeric features). Schema
violations in the inputs are a separate alarm that notifies only: retraining cannot fix a
client that sends malformed data.

Engine ``model_monitor`` (the production endpoint's data-quality schedule): per feature,
Model Monitor's ``feature_baseline_drift_<feature>`` distance above the KS threshold (both
are distances between distributions, from 0 to 1).

Either way one composite alarm, named exactly the model's drift-alarm prefix, is in ALARM
when any feature alarm is: that is the alarm the drift-alert function reacts to (retrain)
and the one that notifies (the function notifies its recovery).

Missing data: composite alarms have no missing-data treatment of their own; their children's
decides. Every feature alarm treats a period without a datapoint as not breaching, because a
run that measured nothing (no traffic) is not drift, so the composite (and retraining) never
fires on missing data. The price is that a drift check that crashes or stops running looks
like "no drift" there. Catching that is the job of the check-missing alarm (engine
``processing`` on a schedule): it reads the ``DriftCheckCompleted`` heartbeat that each
completed run publishes with its other metrics, treats missing data as breaching, notifies on ALARM and OK, and
is not part of the composite: a stale check must be looked at, not answered by retraining.
Engine ``model_monitor`` has no such alarm: Model Monitor publishes no metric that says a run
completed (its per-feature metrics depend on the baseline's ``emit_metrics`` setting and on
the window's data), and its schedule exists only while a version is deployed; its failed runs
are notified by an EventBridge rule instead (OperationsStack).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from resolver import naming
from resolver.config import drift_period_seconds
from stacks.constructs.data_quality_monitor import METRICS_NAMESPACE as MONITOR_NAMESPACE
from stacks.constructs.data_quality_monitor import drift_metric_name as monitor_metric_name

NAMESPACE = "MLOps/Drift"
# What every completed drift run publishes with its other metrics, value 1 (pipelines_src/steps/drift.py:
# CHECK_COMPLETED; one PutMetricData call by lambdas/drift_metrics).
CHECK_COMPLETED = "DriftCheckCompleted"
# Dashboards plot each run's value on its own: one point an hour at most.
DASHBOARD_PERIOD = Duration.hours(1)


@dataclass(frozen=True)
class Feature:
    name: str
    numeric: bool


@dataclass(frozen=True)
class MonitorSource:
    """Engine model_monitor: the schedule whose metrics the alarms read."""

    endpoint_name: str
    schedule_name: str


def alarm_period(schedule: str | None) -> Duration:
    """One alarm period per drift run: the schedule's rate, at least 5 minutes and at most a day."""
    return Duration.seconds(drift_period_seconds(schedule))


class DriftAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        alarm_prefix: str,
        model: str,
        stage: str,
        features: Sequence[Feature],
        psi_threshold: float,
        ks_threshold: float,
        evaluation_periods: int,
        period: Duration,
        topic: sns.ITopic,
        monitor: MonitorSource | None = None,
        missing_runs_periods: int | None = None,
    ) -> None:
        """``missing_runs_periods``: engine processing on a schedule, the check-missing alarm's evaluation
        periods (None: no such alarm, e.g. no schedule, so no run is ever due)."""
        super().__init__(scope, id_)
        self.alarm_prefix = alarm_prefix

        def metric(name: str, **dimensions: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions_map={"Model": model, "Stage": stage, **dimensions},
                statistic="Maximum",
                period=period,
            )

        def alarm(
            id_: str, name: str, description: str, source: cloudwatch.Metric, threshold: float
        ) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                id_,
                alarm_name=name,
                alarm_description=description,
                metric=source,
                threshold=threshold,
                evaluation_periods=evaluation_periods,
                datapoints_to_alarm=evaluation_periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                # No drift run in a period (no traffic, job not scheduled yet) is not drift; a check that
                # stopped running is the check-missing alarm's to report, not these (module doc).
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        self.feature_alarms: list[cloudwatch.Alarm] = []
        # What the dashboard plots: one metric per feature against the alarm threshold, and a summary.
        self.feature_metrics: list[cloudwatch.Metric] = []
        self.summary_metrics: list[cloudwatch.Metric] = []
        self.schema: cloudwatch.Alarm | None = None
        self.check_missing: cloudwatch.Alarm | None = None
        notify = cloudwatch_actions.SnsAction(topic)
        if monitor is None:
            self.title = "Drift: PSI per feature"
            self.threshold = psi_threshold
            for feature in features:
                psi = metric("FeaturePSI", Feature=feature.name)
                self.feature_metrics.append(psi.with_(label=feature.name, period=DASHBOARD_PERIOD))
                self.feature_alarms.append(
                    alarm(
                        f"Psi-{feature.name}",
                        naming.feature_drift_alarm(alarm_prefix, "psi", feature.name),
                        f"PSI of {feature.name} against the training baseline above {psi_threshold}",
                        psi,
                        psi_threshold,
                    )
                )
                if feature.numeric:
                    self.feature_alarms.append(
                        alarm(
                            f"Ks-{feature.name}",
                            naming.feature_drift_alarm(alarm_prefix, "ks", feature.name),
                            f"Binned Kolmogorov-Smirnov distance of {feature.name} above {ks_threshold}",
                            metric("FeatureKS", Feature=feature.name),
                            ks_threshold,
                        )
                    )
            self.summary_metrics = [
                metric(name).with_(label=name, period=DASHBOARD_PERIOD)
                for name in ("MaxPSI", "DriftedFeatures", "SchemaViolations")
            ]
            self.schema = alarm(
                "SchemaViolations",
                f"{alarm_prefix}-schema",
                f"Inputs of {model} ({stage}) break the data contract (schema violations in the drift window)",
                metric("SchemaViolations"),
                0,
            )
            self.schema.add_alarm_action(notify)
            if missing_runs_periods is not None:
                self.check_missing = cloudwatch.Alarm(
                    self,
                    "CheckMissing",
                    alarm_name=f"{alarm_prefix}-check-missing",
                    alarm_description=f"No completed drift check of {model} ({stage}) in the last "
                    f"{missing_runs_periods} periods of {period.to_human_string()}: drift is not being measured, "
                    "and the drift alarms read that as no drift. See the drift-check pipeline's executions.",
                    metric=metric(CHECK_COMPLETED),
                    threshold=1,
                    comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    evaluation_periods=missing_runs_periods,
                    datapoints_to_alarm=missing_runs_periods,
                    # The heartbeat's absence is the very thing this alarm is for.
                    treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
                )
                self.check_missing.add_alarm_action(notify)
                self.check_missing.add_ok_action(notify)
        else:
            self.title = "Drift: Model Monitor baseline distance per feature"
            self.threshold = ks_threshold
            for feature in features:
                distance = cloudwatch.Metric(
                    namespace=MONITOR_NAMESPACE,
                    metric_name=monitor_metric_name(feature.name),
                    dimensions_map={"Endpoint": monitor.endpoint_name, "MonitoringSchedule": monitor.schedule_name},
                    # A late run can land two values in one period: the larger one counts.
                    statistic="Maximum",
                    period=period,
                )
                self.feature_metrics.append(distance.with_(label=feature.name, period=DASHBOARD_PERIOD))
                self.feature_alarms.append(
                    alarm(
                        f"Monitor-{feature.name}",
                        naming.feature_drift_alarm(alarm_prefix, "monitor", feature.name),
                        f"Model Monitor distance of {feature.name} from the training baseline above {ks_threshold} "
                        f"(schedule {monitor.schedule_name})",
                        distance,
                        ks_threshold,
                    )
                )
        # Feature alarms only: the schema and check-missing alarms notify, they must not start retraining.
        self.composite = cloudwatch.CompositeAlarm(
            self,
            "AnyFeature",
            composite_alarm_name=alarm_prefix,
            alarm_description=f"Input drift of {model} ({stage}): at least one feature drifted from its baseline. "
            "The drift-alert function starts retraining (with a cooldown).",
            alarm_rule=cloudwatch.AlarmRule.any_of(*self.feature_alarms),
        )
        self.composite.add_alarm_action(notify)
