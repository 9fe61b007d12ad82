"""Secrets that keep out of ``repr``: tracebacks rendered with local variables must not show them."""

from __future__ import annotations


class Redacted(str):
    """
    A string that is itself everywhere but in ``repr``, which gives ``'***'``.

    Error trackers and rich tracebacks print local variables with ``repr``; the API key, the
    token and the ``Authorization`` header travel as this type so those prints stay clean.
    Airflow's secrets masker still covers logs.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def redacted(value: str | None) -> Redacted | None:
    """``value`` as :class:`Redacted`, None staying None."""
    return None if value is None else Redacted(value)
