"""
The BSG One API client core: what a request is, what an answer means, and the decisions around
sending one, with no Airflow in it.

It holds the requests and their answers (:mod:`.api`), the API's resources and campaign
statuses, the connection's settings as read from its fields (:mod:`.connection`), the token's
lifetime, the retry policy and its waits, the client-side rate limit and shared back-off, the
call flow both hooks drive, the async transport, the poll step of a campaign wait, and the
redaction of secrets. It may import the standard library, requests, httpx/httpcore, tenacity
and :mod:`bsg_provider.errors`; never Airflow, and nothing else of this package.
"""
