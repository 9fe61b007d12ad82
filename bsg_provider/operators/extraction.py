"""
What every extraction operator does, written once: interval, windows, pages, spool, atomic file, summary.

:class:`BsgExtractOperatorBase` resolves the run's interval and output, drives the hook's
pages of one resource into a :class:`~bsg_provider.extraction.spool.RecordSpool`, and moves the file
into place only when complete. A subclass says which pages (:meth:`_pages`), how a record
becomes bytes (:meth:`_shaper`) and what the lineage input is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, Asset, BaseOperator, ObjectStoragePath

try:
    # What Airflow resolves while rendering templated fields: XComArg and MappedArgument.
    from airflow.sdk.definitions._internal.mixins import ResolveMixin as _RuntimeValue
except ImportError:  # the private module moved; XComArg is the public part of it
    from airflow.sdk import XComArg as _RuntimeValue

from bsg_provider.assets import bsg_asset, event_extra
from bsg_provider.client.connection import check_max_concurrency
from bsg_provider.client.resources import Resource
from bsg_provider.client.usual_page import record_ids
from bsg_provider.errors import BsgAssumptionError, BsgConfigError
from bsg_provider.extraction.file_formats import (
    DEFAULT_COMPRESSION_LEVEL,
    OutputFormat,
    check_compression_level,
    check_file_format,
    compressed,
    resolve_format,
)
from bsg_provider.extraction.intervals import (
    ExtractionInterval,
    check_lookback,
    human_duration,
    parse_bound,
    resolve_interval,
)
from bsg_provider.extraction.spool import RecordSpool
from bsg_provider.extraction.storage import LOCAL_SCHEMES, atomic_write, output_path
from bsg_provider.extraction.windows import WindowPlan
from bsg_provider.hooks.bsg import BsgHook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from bsg_provider.client.connection import BsgConnectionSettings
    from bsg_provider.extraction.file_formats import RecordEncoder


class BsgExtractOperatorBase(BaseOperator):
    """
    Extract one resource's records of an interval into one file in object storage, sorted by id.

    :param resource: which list endpoint (set by the subclass).
    :param output_path: where to write (templated), a URL or an ``ObjectStoragePath``.
    :param file_format: ``jsonl`` or ``csv``; None infers it from the path's suffix.
    :param page_size: records per request, within the resource's range.
    :param lookback: moves the interval's start back by this much. Zero or more.
    :param start: first instant to extract (templated). Default: ``data_interval_start``.
    :param end: first instant not to extract (templated). Default: ``data_interval_end``.
    :param convert_timestamps: write timestamps as ISO 8601 in UTC; False keeps the API's strings.
    :param bsg_conn_id: the ``bsg`` connection to use.
    :param max_concurrency: list requests in flight at most (1..32); None for the connection's
        ``max_concurrency`` (default 8). The file is the same whatever it is.
    :param compression_level: gzip level for ``.gz`` paths, 1 (fastest) to 9 (smallest).
    :param outlets: the assets a successful run updates (a ``BaseOperator`` argument); each event's
        ``extra`` holds ``path``, ``records``, ``data_interval_start``, ``data_interval_end`` and
        ``format``. None or empty: the resource's default asset for the connection,
        ``bsg://<bsg_conn_id>/<resource>`` (see :mod:`bsg_provider.assets`).
    """

    ui_color = "#e8f1fb"
    ui_fgcolor = "#1b3a5c"

    def __init__(
        self,
        *,
        resource: Resource,
        output_path: str | ObjectStoragePath,
        file_format: str | None = None,
        page_size: int = 500,
        lookback: timedelta = timedelta(0),
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        convert_timestamps: bool = True,
        bsg_conn_id: str = BsgHook.default_conn_name,
        max_concurrency: int | None = None,
        compression_level: int = DEFAULT_COMPRESSION_LEVEL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resource = resource
        if not self.outlets:
            # A stable asset per resource and connection, so downstream DAGs can schedule on it.
            self.outlets = [bsg_asset(resource.name, bsg_conn_id)]
        self.output_path = output_path
        self.file_format = check_file_format(file_format)
        self.page_size = resource.check_page_size(page_size)
        self.lookback = check_lookback(lookback)
        self.start = start
        self.end = end
        self.convert_timestamps = convert_timestamps
        self.bsg_conn_id = bsg_conn_id
        self.max_concurrency = check_max_concurrency(max_concurrency)
        self.compression_level = check_compression_level(compression_level)
        # Literal values fail when the DAG is parsed; Jinja strings and XComArgs once rendered,
        # in execute(), with the same messages.
        for name, value in (("start", start), ("end", end)):
            if not resolved_at_runtime(value):
                parse_bound(value, name)
        # (base URL, lineage input name, file) of the last extraction, for OpenLineage.
        self._lineage: tuple[str, str, ObjectStoragePath] | None = None

    # -- what a subclass decides ------------------------------------------------------------------

    def _check_arguments(self) -> None:
        """Check the rendered arguments of the subclass; raise :class:`BsgConfigError` when wrong."""

    def _interval(self, hook: BsgHook, context: Context) -> ExtractionInterval:
        """The interval to extract; the run's data interval unless ``start``/``end`` say otherwise."""
        return resolve_interval(
            start=self.start,
            end=self.end,
            data_interval_start=context.get("data_interval_start"),
            data_interval_end=context.get("data_interval_end"),
            lookback=self.lookback,
        )

    def _pages(self, hook: BsgHook, plan: WindowPlan) -> Iterator[list[Any]]:
        raise NotImplementedError

    def _encoder(self, settings: BsgConnectionSettings, output_format: OutputFormat) -> RecordEncoder:
        raise NotImplementedError

    def _lineage_input(self) -> str:
        """The lineage input dataset's name: the endpoint and its filters."""
        return self.resource.path

    def _summary_extra(self) -> dict[str, Any]:
        """Keys the subclass adds to the XCom summary (counts and settings, never data)."""
        return {}

    # -- the extraction ---------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        """Extract the interval to ``output_path``; return the summary that goes to XCom."""
        started = time.monotonic()
        hook = BsgHook(bsg_conn_id=self.bsg_conn_id, max_concurrency=self.max_concurrency)
        try:
            try:
                self._check_arguments()
                path = output_path(self.output_path)
                output_format = resolve_format(path.name, self.file_format)
                interval = self._interval(hook, context)
                settings = hook.settings
                encoder = self._encoder(settings, output_format)
            except BsgConfigError as exc:
                # A misconfigured task fails the same way on every try: do not retry it.
                raise AirflowFailException(str(exc)) from None
            summary = self._extract(hook, settings, path, output_format, encoder, interval, started)
        finally:
            hook.close()
        self._add_event_extra(context, summary)
        return summary

    def _add_event_extra(self, context: Context, summary: dict[str, Any]) -> None:
        """Describe the file written in the asset event Airflow emits for each outlet on success."""
        outlet_events = context.get("outlet_events")
        if outlet_events is None:
            return
        extra = event_extra(summary)
        for outlet in self.outlets:
            # An AssetAlias names no asset: the DAG author decides which events it gets.
            if isinstance(outlet, Asset):
                outlet_events[outlet].extra.update(extra)

    def _extract(
        self,
        hook: BsgHook,
        settings: BsgConnectionSettings,
        path: ObjectStoragePath,
        output_format: OutputFormat,
        encoder: RecordEncoder,
        interval: ExtractionInterval,
        started: float,
    ) -> dict[str, Any]:
        plan = hook.plan(interval.start, interval.end)
        noun = self.resource.noun
        self.log.info(
            "Writing to %s as %s; interval from %s and %s%s.",
            path,
            output_format.label,
            interval.start_source,
            interval.end_source,
            f", lookback {human_duration(interval.lookback)}" if interval.lookback else "",
        )
        with RecordSpool() as spool:
            # The hook logs the plan, each window's progress and the totals.
            try:
                for page in self._pages(hook, plan):
                    spool.add_all(record_ids(page), encoder.encode_page(page))
            except BsgAssumptionError as exc:
                # The API contradicts an assumption: the same request fails the same way, so no retry.
                raise AirflowFailException(str(exc)) from None
            plan = hook.last_plan or plan
            if spool.duplicates:
                self.log.warning(
                    "The API returned %d %s(s) more than once across windows; each is written once.",
                    spool.duplicates,
                    noun,
                )
            if spool.reordered:
                self.log.info(
                    "%s arrived out of id order (the API's paging drifted); sorting them.",
                    self.resource.name.capitalize(),
                )
            with (
                atomic_write(path) as handle,
                compressed(handle, output_format.gzip, self.compression_level) as stream,
            ):
                stream.write(encoder.header)
                spool.copy_to(stream)
            records = len(spool)

        self._lineage = (settings.base_url, self._lineage_input(), path)
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
            **self._summary_extra(),
            "elapsed_seconds": round(time.monotonic() - started, 3),
        }
        self.log.info(
            "Wrote %d %s(s) to %s with %d request(s) (%d retried) in %.1f s.",
            records,
            noun,
            path,
            counters.requests,
            counters.retries,
            summary["elapsed_seconds"],
        )
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """
        Lineage for OpenLineage: the API's list endpoint in, the written file out.

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
        base_url, source, path = self._lineage
        (in_namespace, in_name), (out_namespace, out_name) = lineage_names(base_url, source, path)
        return OperatorLineage(
            inputs=[Dataset(namespace=in_namespace, name=in_name)],
            outputs=[Dataset(namespace=out_namespace, name=out_name)],
        )


def lineage_names(
    base_url: str, source: str, path: ObjectStoragePath
) -> tuple[tuple[str, str], tuple[str, str]]:
    """
    OpenLineage ``(namespace, name)`` of the input (an API endpoint) and of the output file.

    Files follow OpenLineage's naming: ``file`` and the absolute path on a local disk,
    ``scheme://bucket`` and the key in an object store.

    :param base_url: the connection's base URL.
    :param source: the endpoint and its filters, such as ``/api/campaigns?filter[type]=sms``.
    :param path: the written file.
    """
    protocol = path.protocol or "file"
    if protocol in LOCAL_SCHEMES:
        target = ("file", "/" + path.path.lstrip("/"))
    else:
        target = (f"{protocol}://{path.bucket}", path.key)
    return (base_url, source), target


def resolved_at_runtime(value: Any) -> bool:
    """Whether Airflow replaces ``value`` before execute(): a Jinja string, an XComArg, a mapped argument."""
    if isinstance(value, _RuntimeValue):
        return True
    return isinstance(value, str) and ("{{" in value or "{%" in value)
