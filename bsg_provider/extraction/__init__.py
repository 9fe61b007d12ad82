"""
The extraction engine: from a data interval to an exact file in object storage.

It holds window planning under the API's rules (:mod:`.windows`), the exact cut of each
window's records (:mod:`.window_filter`), the data interval a run extracts (:mod:`.intervals`),
drift-safe paging and pages fetched ahead (:mod:`.paging`, :mod:`.prefetch`), the output records
and formats (:mod:`.records`, :mod:`.message_records`, :mod:`.file_formats`), the local spool,
the atomic write to object storage (:mod:`.storage`) and progress lines (:mod:`.progress`). It
may import :mod:`bsg_provider.client`, :mod:`bsg_provider.errors`, pendulum and msgspec, and
from Airflow only ``ObjectStoragePath`` (:mod:`.storage`); never the hooks, operators, sensors
or triggers.
"""
