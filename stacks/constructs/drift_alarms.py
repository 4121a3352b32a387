"""CloudWatch alarms on the drift metrics the drift job publishes (pipelines_src/steps/drift.py).

Per feature: PSI above the threshold (every feature) and binned KS above the threshold
(numeric features). One composite alarm, named exactly the model's drift-alarm prefix,
is in ALARM when any of them is: that is the alarm the drift-alert function reacts to
(retrain) and the one that notifies (the function notifies its recovery). Schema violations
in the inputs are a separate alarm that notifies only: retraining cannot fix a client that
sends malformed data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks import naming

NAMESPACE = "MLOps/Drift"
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Feature:
    name: str
    numeric: bool


def alarm_period(schedule: str | None) -> Duration:
    """One alarm period per drift run: the schedule's rate, at least 5 minutes and at most a day."""
    match = _RATE.match(schedule or "")
    if match is None:  # cron schedules and none: daily
        return Duration.days(1)
    seconds = int(match[1]) * _UNIT_SECONDS[match[2].rstrip("s")]
    return Duration.seconds(min(max(seconds, 300), 86400))


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
    ) -> None:
        super().__init__(scope, id_)
        self.alarm_prefix = alarm_prefix
        self.psi_threshold = psi_threshold

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
                # No drift run in a period (no traffic, job not scheduled yet) is not drift.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        self.feature_alarms: list[cloudwatch.Alarm] = []
        for feature in features:
            self.feature_alarms.append(
                alarm(
                    f"Psi-{feature.name}",
                    naming.feature_drift_alarm(alarm_prefix, "psi", feature.name),
                    f"PSI of {feature.name} against the training baseline above {psi_threshold}",
                    metric("FeaturePSI", Feature=feature.name),
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
        notify = cloudwatch_actions.SnsAction(topic)
        self.composite = cloudwatch.CompositeAlarm(
            self,
            "AnyFeature",
            composite_alarm_name=alarm_prefix,
            alarm_description=f"Input drift of {model} ({stage}): at least one feature drifted from its baseline. "
            "The drift-alert function starts retraining (with a cooldown).",
            alarm_rule=cloudwatch.AlarmRule.any_of(*self.feature_alarms),
        )
        self.composite.add_alarm_action(notify)
        self.schema = alarm(
            "SchemaViolations",
            f"{alarm_prefix}-schema",
            f"Inputs of {model} ({stage}) break the data contract (schema violations in the drift window)",
            metric("SchemaViolations"),
            0,
        )
        self.schema.add_alarm_action(notify)
