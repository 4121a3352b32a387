"""One CloudWatch dashboard per model: pipeline runs, endpoint traffic, drift, the functions and their queues."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from stacks.constructs.drift_alarms import DriftAlarms
from stacks.constructs.event_function import EventFunction

PIPELINE_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"
ETL_NAMESPACE = "MLOps/ETL"
ENDPOINT_NAMESPACE = "AWS/SageMaker"
# SageMaker's name for the single production variant of an endpoint config.
VARIANT = "AllTraffic"
WIDTH = 24


class ModelDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        dashboard_name: str,
        model: str,
        stage: str,
        pipelines: Sequence[str],
        dataset: str,
        endpoint_name: str,
        drift: DriftAlarms,
        functions: Sequence[EventFunction],
    ) -> None:
        super().__init__(scope, id_)
        hour, day = Duration.hours(1), Duration.days(1)

        def pipeline_metric(name: str, pipeline: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=PIPELINE_NAMESPACE,
                metric_name=name,
                dimensions_map={"PipelineName": pipeline},
                statistic="Sum",
                period=day,
                label=f"{pipeline} {name.removeprefix('Execution').lower()}",
            )

        def endpoint_metric(name: str, statistic: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=ENDPOINT_NAMESPACE,
                metric_name=name,
                dimensions_map={"EndpointName": endpoint_name, "VariantName": VARIANT},
                statistic=statistic,
                period=Duration.minutes(5),
                label=label,
            )

        def etl_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=ETL_NAMESPACE,
                metric_name=name,
                dimensions_map={"Dataset": dataset, "Stage": stage},
                statistic="Sum",
                period=day,
                label=name,
            )

        runs = [
            pipeline_metric(name, pipeline)
            for pipeline in pipelines
            for name in ("ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed")
        ]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.days(7),
            widgets=[
                [
                    cloudwatch.TextWidget(
                        markdown=f"# {model} ({stage})\nPipelines: {', '.join(pipelines)}. "
                        f"Endpoint: {endpoint_name}. Drift alarms: {drift.alarm_prefix}*.",
                        width=WIDTH,
                        height=2,
                    )
                ],
                [
                    cloudwatch.AlarmStatusWidget(
                        title="Alarms",
                        alarms=[
                            drift.composite,
                            *([drift.schema] if drift.schema is not None else []),
                            *([drift.check_missing] if drift.check_missing is not None else []),
                            *(function.errors_alarm for function in functions),
                            *(function.dead_letter_alarm for function in functions),
                        ],
                        width=WIDTH,
                        height=3,
                    )
                ],
                [
                    cloudwatch.GraphWidget(
                        title=f"Curation of {dataset}: rows per day",
                        left=[etl_metric("RowsRead"), etl_metric("RowsWritten")],
                        right=[etl_metric("RowsQuarantined"), etl_metric("DuplicatesDropped")],
                        width=WIDTH,
                        height=6,
                    )
                ],
                [
                    cloudwatch.GraphWidget(title="Pipeline runs per day", left=runs, width=8, height=6),
                    cloudwatch.GraphWidget(
                        title="Endpoint invocations and errors",
                        left=[
                            endpoint_metric("Invocations", "Sum", "invocations"),
                            endpoint_metric("Invocation4XXErrors", "Sum", "4XX"),
                            endpoint_metric("Invocation5XXErrors", "Sum", "5XX"),
                        ],
                        width=8,
                        height=6,
                    ),
                    cloudwatch.GraphWidget(
                        title="Model latency (microseconds)",
                        left=[
                            endpoint_metric("ModelLatency", "p50", "p50"),
                            endpoint_metric("ModelLatency", "p99", "p99"),
                        ],
                        width=8,
                        height=6,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title=drift.title,
                        left=drift.feature_metrics,
                        left_annotations=[cloudwatch.HorizontalAnnotation(value=drift.threshold, label="alarm")],
                        width=12 if drift.summary_metrics else WIDTH,
                        height=6,
                    ),
                    *(
                        [cloudwatch.GraphWidget(title="Drift: summary", left=drift.summary_metrics, width=12, height=6)]
                        if drift.summary_metrics
                        else []
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Functions: invocations and errors",
                        left=[
                            function.function.metric_invocations(period=hour, label=f"{function.node.id} invocations")
                            for function in functions
                        ],
                        right=[
                            function.function.metric_errors(period=hour, label=f"{function.node.id} errors")
                            for function in functions
                        ],
                        width=12,
                        height=6,
                    ),
                    cloudwatch.GraphWidget(
                        title="Dead-letter queue depth",
                        left=[
                            function.dead_letter_queue.metric_approximate_number_of_messages_visible(
                                period=Duration.minutes(5), statistic="Maximum", label=function.node.id
                            )
                            for function in functions
                        ],
                        width=12,
                        height=6,
                    ),
                ],
            ],
        )
