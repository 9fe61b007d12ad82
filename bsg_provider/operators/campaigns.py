"""Extract the BSG One API's campaigns of an interval into one file in object storage."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import ObjectStoragePath

from bsg_provider.client.resources import CAMPAIGNS, check_campaign_type
from bsg_provider.extraction.file_formats import OutputFormat, make_encoder
from bsg_provider.extraction.records import RecordShaper
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.operators.extraction import BsgExtractOperatorBase, lineage_names, resolved_at_runtime

if TYPE_CHECKING:
    from bsg_provider.client.connection import BsgConnectionSettings
    from bsg_provider.extraction.file_formats import RecordEncoder
    from bsg_provider.extraction.windows import WindowPlan

#: The path of the list endpoint, as the lineage input dataset's name.
CAMPAIGNS_ENDPOINT = CAMPAIGNS.path


class BsgExtractCampaignsOperator(BsgExtractOperatorBase):
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
    :param compression_level: gzip level for ``.gz`` paths, 1 (fastest) to 9 (smallest); default 6.
    """

    template_fields: Sequence[str] = ("output_path", "start", "end", "campaign_type")

    def __init__(self, *, campaign_type: str = "sms", **kwargs: Any) -> None:
        super().__init__(resource=CAMPAIGNS, **kwargs)
        self.campaign_type = campaign_type
        # Literal values fail when the DAG is parsed; Jinja strings and XComArgs once rendered,
        # in execute(), with the same messages.
        if not resolved_at_runtime(campaign_type):
            check_campaign_type(campaign_type)

    def _check_arguments(self) -> None:
        check_campaign_type(self.campaign_type)

    def _pages(self, hook: BsgHook, plan: WindowPlan) -> Iterator[list[Any]]:
        return hook.iter_pages(plan, campaign_type=self.campaign_type, page_size=self.page_size, typed=True)

    def _encoder(self, settings: BsgConnectionSettings, output_format: OutputFormat) -> RecordEncoder:
        shaper = RecordShaper(api_timezone=settings.api_timezone, convert_timestamps=self.convert_timestamps)
        return make_encoder(output_format, shaper)

    def _lineage_input(self) -> str:
        return f"{CAMPAIGNS_ENDPOINT}?filter[type]={self.campaign_type}"


def lineage_dataset_names(
    base_url: str, campaign_type: str, path: ObjectStoragePath
) -> tuple[tuple[str, str], tuple[str, str]]:
    """
    OpenLineage ``(namespace, name)`` of the input (the API's list endpoint) and of the output file.

    :param base_url: the connection's base URL.
    :param campaign_type: the campaign type extracted.
    :param path: the written file.
    """
    return lineage_names(base_url, f"{CAMPAIGNS_ENDPOINT}?filter[type]={campaign_type}", path)
