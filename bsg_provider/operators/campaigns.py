"""Extract the BSG One API's campaigns of an interval into one file in object storage."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator, ObjectStoragePath

try:
    # What Airflow resolves while rendering templated fields: XComArg and MappedArgument.
    from airflow.sdk.definitions._internal.mixins import ResolveMixin as _RuntimeValue
except ImportError:  # the private module moved; XComArg is the public part of it
    from airflow.sdk import XComArg as _RuntimeValue

from bsg_provider.api import check_campaign_type, check_page_size
from bsg_provider.errors import BsgAssumptionError, BsgConfigError
from bsg_provider.file_formats import (
    OutputFormat,
    check_file_format,
    compressed,
    make_encoder,
    resolve_format,
)
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.intervals import ExtractionInterval, check_lookback, parse_bound, resolve_interval
from bsg_provider.records import RecordShaper
from bsg_provider.spool import RecordSpool
from bsg_provider.storage import LOCAL_SCHEMES, atomic_write, output_path

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

#: The path of the list endpoint, as the lineage input dataset's name.
CAMPAIGNS_ENDPOINT = "/api/campaigns"


class BsgExtractCampaignsOperator(BaseOperator):
    """
    Write every campaign created in an interval to one JSON Lines or CSV file, sorted by id.

    The interval is the run's data interval unless ``start`` or ``end`` say otherwise; it is
    split into windows the API accepts and read page by page. The file appears at
    ``output_path`` only when complete, so a failed run never leaves part of a file there.
    Returns a summary (path, records, windows, requests, the interval used), never the data.

    ``campaign_type``, ``start`` and ``end`` may also be an upstream task's output (XComArg);
    such values and Jinja strings are checked once rendered, literal ones when the DAG is parsed.

    :param output_path: where to write (templated): a URL such as
        ``file:///data/bsg/{{ ds }}.jsonl`` or ``s3://aws_default@bucket/bsg/{{ ds }}.csv.gz``
        (``conn_id@`` picks the storage connection), or an ``ObjectStoragePath``. A ``.gz``
        ending means gzip.
    :param file_format: ``jsonl`` or ``csv``; None infers it from the path's suffix
        (``.jsonl``/``.ndjson`` or ``.csv``, before an optional ``.gz``).
    :param campaign_type: ``sms``, ``rcs`` or ``whatsapp`` (templated).
    :param page_size: campaigns per request, 30 to 500.
    :param lookback: moves the interval's start back by this much, to re-read recent campaigns
        whose status or statistics changed since the previous run. Zero or more.
    :param start: first instant to extract (templated): an aware datetime or an ISO 8601 string
        with an offset. Default: the run's ``data_interval_start``.
    :param end: first instant not to extract (templated), same forms. Default: the run's
        ``data_interval_end``. Clipped to 30 days ahead, the API's limit.
    :param convert_timestamps: write timestamps as ISO 8601 in UTC (``2024-04-03T10:14:49+00:00``);
        False keeps the API's strings as they came.
    :param bsg_conn_id: the ``bsg`` connection to use.
    """

    template_fields: Sequence[str] = ("output_path", "start", "end", "campaign_type")
    ui_color = "#e8f1fb"
    ui_fgcolor = "#1b3a5c"

    def __init__(
        self,
        *,
        output_path: str | ObjectStoragePath,
        file_format: str | None = None,
        campaign_type: str = "sms",
        page_size: int = 500,
        lookback: timedelta = timedelta(0),
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        convert_timestamps: bool = True,
        bsg_conn_id: str = BsgHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_path = output_path
        self.file_format = check_file_format(file_format)
        self.campaign_type = campaign_type
        self.page_size = check_page_size(page_size)
        self.lookback = check_lookback(lookback)
        self.start = start
        self.end = end
        self.convert_timestamps = convert_timestamps
        self.bsg_conn_id = bsg_conn_id
        # Literal values fail when the DAG is parsed; Jinja strings and XComArgs once rendered,
        # in execute(), with the same messages.
        if not _resolved_at_runtime(campaign_type):
            check_campaign_type(campaign_type)
        for name, value in (("start", start), ("end", end)):
            if not _resolved_at_runtime(value):
                parse_bound(value, name)
        # (base URL, campaign type, file) of the last extraction, for OpenLineage.
        self._lineage: tuple[str, str, ObjectStoragePath] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        """Extract the interval to ``output_path``; return the summary that goes to XCom."""
        started = time.monotonic()
        try:
            campaign_type = check_campaign_type(self.campaign_type)
            path = output_path(self.output_path)
            output_format = resolve_format(path.name, self.file_format)
            interval = resolve_interval(
                start=self.start,
                end=self.end,
                data_interval_start=context.get("data_interval_start"),
                data_interval_end=context.get("data_interval_end"),
                lookback=self.lookback,
            )
        except BsgConfigError as exc:
            # A misconfigured task fails the same way on every try: do not retry it.
            raise AirflowFailException(str(exc)) from None

        hook = BsgHook(bsg_conn_id=self.bsg_conn_id)
        try:
            return self._extract(hook, path, output_format, interval, campaign_type, started)
        finally:
            hook.close()

    def _extract(
        self,
        hook: BsgHook,
        path: ObjectStoragePath,
        output_format: OutputFormat,
        interval: ExtractionInterval,
        campaign_type: str,
        started: float,
    ) -> dict[str, Any]:
        try:
            settings = hook.settings
        except BsgConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        plan = hook.plan(interval.start, interval.end)
        self.log.info(
            "Writing to %s as %s; interval from %s and %s%s.",
            path,
            output_format.label,
            interval.start_source,
            interval.end_source,
            f", lookback {interval.lookback}" if interval.lookback else "",
        )
        encoder = make_encoder(
            output_format,
            RecordShaper(api_timezone=settings.api_timezone, convert_timestamps=self.convert_timestamps),
        )
        with RecordSpool() as spool:
            # The hook logs the plan, each window's progress and the totals.
            try:
                for page in hook.iter_pages(plan, campaign_type=campaign_type, page_size=self.page_size):
                    for campaign in page:
                        spool.add(campaign["id"], encoder.encode(campaign))
            except BsgAssumptionError as exc:
                # The API contradicts an assumption: the same request fails the same way, so no retry.
                raise AirflowFailException(str(exc)) from None
            plan = hook.last_plan or plan
            if spool.duplicates:
                self.log.warning(
                    "The API returned %d campaign(s) more than once across windows; each is written once.",
                    spool.duplicates,
                )
            if spool.reordered:
                self.log.info("Campaigns arrived out of id order (the API's paging drifted); sorting them.")
            with atomic_write(path) as handle, compressed(handle, output_format.gzip) as stream:
                stream.write(encoder.header)
                spool.copy_to(stream)
            records = len(spool)

        self._lineage = (settings.base_url, campaign_type, path)
        counters = hook.counters
        summary = {
            "path": str(path),
            "format": output_format.label,
            "records": records,
            "windows": len(plan.windows),
            "requests": counters.requests,
            "retries": counters.retries,
            "logins": counters.logins,
            "interval_start": plan.start.isoformat(),
            "interval_end": plan.end.isoformat(),
            "clipped": plan.clipped,
            "elapsed_seconds": round(time.monotonic() - started, 3),
        }
        self.log.info(
            "Wrote %d campaign(s) to %s with %d request(s) (%d retried) in %.1f s.",
            records,
            path,
            counters.requests,
            counters.retries,
            summary["elapsed_seconds"],
        )
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """
        Lineage for OpenLineage: the API's campaigns endpoint in, the written file out.

        Returns None when the OpenLineage provider is not installed, or nothing was written.

        :param task_instance: the finished task instance (unused).
        """
        try:
            from airflow.providers.common.compat.openlineage.facet import Dataset
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        if self._lineage is None:
            return None
        (in_namespace, in_name), (out_namespace, out_name) = lineage_dataset_names(*self._lineage)
        return OperatorLineage(
            inputs=[Dataset(namespace=in_namespace, name=in_name)],
            outputs=[Dataset(namespace=out_namespace, name=out_name)],
        )


def lineage_dataset_names(
    base_url: str, campaign_type: str, path: ObjectStoragePath
) -> tuple[tuple[str, str], tuple[str, str]]:
    """
    OpenLineage ``(namespace, name)`` of the input (the API's list endpoint) and of the output file.

    Files follow OpenLineage's naming: ``file`` and the absolute path on a local disk,
    ``scheme://bucket`` and the key in an object store.

    :param base_url: the connection's base URL.
    :param campaign_type: the campaign type extracted.
    :param path: the written file.
    """
    source = (base_url, f"{CAMPAIGNS_ENDPOINT}?filter[type]={campaign_type}")
    protocol = path.protocol or "file"
    if protocol in LOCAL_SCHEMES:
        target = ("file", "/" + path.path.lstrip("/"))
    else:
        target = (f"{protocol}://{path.bucket}", path.key)
    return source, target


def _resolved_at_runtime(value: Any) -> bool:
    """Whether Airflow replaces ``value`` before execute(): a Jinja string, an XComArg, a mapped argument."""
    if isinstance(value, _RuntimeValue):
        return True
    return isinstance(value, str) and ("{{" in value or "{%" in value)
