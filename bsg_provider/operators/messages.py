"""Extract the BSG One API's messages (the delivery fact table) into one file, personal data handled."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowNotFoundException,
    BaseHook,
    mask_secret,
)

from bsg_provider.client.api import check_campaign_ids
from bsg_provider.client.resources import MESSAGES
from bsg_provider.errors import BsgConfigError
from bsg_provider.extraction.file_formats import OutputFormat, make_encoder
from bsg_provider.extraction.intervals import ExtractionInterval, resolve_interval
from bsg_provider.extraction.message_records import (
    MessageShaper,
    PersonalData,
    check_phone_mode,
    check_text_mode,
)
from bsg_provider.extraction.records import TimestampConverter
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.operators.extraction import BsgExtractOperatorBase, resolved_at_runtime

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from bsg_provider.client.connection import BsgConnectionSettings
    from bsg_provider.extraction.file_formats import RecordEncoder
    from bsg_provider.extraction.windows import WindowPlan

#: The connection whose password is the key of the phones' HMAC.
DEFAULT_PII_KEY_CONN_ID = "bsg_pii_key"
#: A shorter key could be guessed; HMAC-SHA256 keys are best 32 bytes of randomness.
MIN_PII_KEY_LENGTH = 16


class BsgExtractMessagesOperator(BsgExtractOperatorBase):
    """
    Write every message created in an interval, or every message of some campaigns, to one file.

    The same engine as :class:`~bsg_provider.operators.campaigns.BsgExtractCampaignsOperator`:
    the run's data interval (or ``start``/``end``), legal windows, exact paging, the run-time
    checks, then JSON Lines or CSV moved into place only when complete, sorted by id; the same
    records give the same bytes. Returns a summary (counts, never data).

    ``phone`` and ``text`` are personal data. By default the phone becomes ``phone_hash``, a
    keyed HMAC-SHA256 (the same in every load, so it still joins) and the text is dropped.

    :param output_path: where to write (templated), a URL or an ``ObjectStoragePath``; ``.gz`` means gzip.
    :param file_format: ``jsonl`` or ``csv``; None infers it from the path's suffix.
    :param campaign_id: None for every campaign's messages, or one campaign id or a list
        (templated; an upstream task's output allowed). Without ``start``/``end`` the interval
        then runs from the earliest of those campaigns' ``created_at`` to now.
    :param phone: ``hash`` (default), ``keep`` (digits as text) or ``drop``.
    :param text: ``drop`` (default) or ``keep``.
    :param pii_key_conn_id: the connection (or secrets-backend entry) whose password is the HMAC
        key, needed with ``phone="hash"``: at least 16 characters, best 32 random bytes, never in the DAG.
    :param page_size: messages per request, 15 to 500.
    :param lookback: moves the interval's start back by this much. Zero or more.
    :param start: first instant to extract (templated). Default: ``data_interval_start``.
    :param end: first instant not to extract (templated). Default: ``data_interval_end``.
    :param convert_timestamps: write timestamps as ISO 8601 in UTC; False keeps the API's strings.
    :param bsg_conn_id: the ``bsg`` connection to use.
    :param compression_level: gzip level for ``.gz`` paths, 1 (fastest) to 9 (smallest); default 6.
    """

    template_fields: Sequence[str] = ("output_path", "start", "end", "campaign_id")
    ui_color = "#eaf6ee"

    def __init__(
        self,
        *,
        campaign_id: int | str | Sequence[int | str] | None = None,
        phone: str = "hash",
        text: str = "drop",
        pii_key_conn_id: str = DEFAULT_PII_KEY_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(resource=MESSAGES, **kwargs)
        self.campaign_id = campaign_id
        self.phone = check_phone_mode(phone)
        self.text = check_text_mode(text)
        self.pii_key_conn_id = pii_key_conn_id
        if not resolved_at_runtime(campaign_id):
            check_campaign_ids(campaign_id)
        self._campaign_ids: list[int] | None = None

    def _check_arguments(self) -> None:
        self._campaign_ids = check_campaign_ids(self.campaign_id)

    def _interval(self, hook: BsgHook, context: Context) -> ExtractionInterval:
        ids = self._campaign_ids
        if ids is None or self.start is not None or self.end is not None:
            return super()._interval(hook, context)
        # One campaign's messages, whenever they were created: from the campaign's creation on.
        convert = TimestampConverter(hook.settings.api_timezone)
        created = min(datetime.fromisoformat(convert(hook.get_campaign(one)["created_at"])) for one in ids)
        interval = resolve_interval(
            start=None,
            end=None,
            data_interval_start=created,
            data_interval_end=datetime.now(timezone.utc),
            lookback=self.lookback,
        )
        return replace(interval, start_source="the campaigns' created_at", end_source="now")

    def _pii_key(self) -> bytes | None:
        if self.phone != "hash":
            return None
        try:
            connection = BaseHook.get_connection(self.pii_key_conn_id)
        except AirflowNotFoundException:
            raise BsgConfigError(
                f"phone='hash' needs the HMAC key from connection {self.pii_key_conn_id!r}, which does "
                "not exist: create it (or a secrets-backend entry) with the key as its password, at "
                f"least {MIN_PII_KEY_LENGTH} characters, or choose phone='drop'."
            ) from None
        key = connection.password or ""
        if key:
            mask_secret(key)
        if len(key) < MIN_PII_KEY_LENGTH:
            raise BsgConfigError(
                f"phone='hash' needs an HMAC key of at least {MIN_PII_KEY_LENGTH} characters in the "
                f"password of connection {self.pii_key_conn_id!r}; it has {len(key)}. Set it to a long "
                "random secret (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
            )
        return key.encode("utf-8")

    def _pages(self, hook: BsgHook, plan: WindowPlan) -> Iterator[list[Any]]:
        return hook.iter_message_pages(plan, campaign_id=self._campaign_ids, page_size=self.page_size)

    def _encoder(self, settings: BsgConnectionSettings, output_format: OutputFormat) -> RecordEncoder:
        personal_data = PersonalData(phone=self.phone, text=self.text, key=self._pii_key())
        shaper = MessageShaper(
            personal_data, api_timezone=settings.api_timezone, convert_timestamps=self.convert_timestamps
        )
        return make_encoder(output_format, shaper)

    def _summary_extra(self) -> dict[str, Any]:
        return {
            "campaigns": None if self._campaign_ids is None else len(self._campaign_ids),
            "phone": self.phone,
            "text": self.text,
        }
