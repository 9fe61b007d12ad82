"""
The BSG One API client core: what a request is, what an answer means, and the decisions around
sending one, with no Airflow in it.

It holds the requests and their answers (:mod:`.api`), the API's resources and campaign
statuses, the connection's settings as read from its fields (:mod:`.connection`), the pure
decisions both hooks share around a call (:mod:`.policy`: what to retry and how long to wait,
the token's renewal, the client-side rate limit and shared back-off), what a campaign wait's
polls mean (:mod:`.campaign_wait`), request counters and the redaction of secrets. No I/O of its
own: the hooks send. It may import the standard library, tenacity, PyJWT, msgspec and
:mod:`bsg_provider.errors`; never Airflow, never an HTTP client, and nothing else of this package.
"""
