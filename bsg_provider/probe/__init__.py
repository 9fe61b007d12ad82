"""
The probe of the API assumptions (``python -m bsg_provider.check_api``): read-only experiments
against a real account and a verdict for each assumption of docs/api-assumptions.md.

:mod:`.checks` holds the experiments' reasoning and verdicts (pure: answers in, verdicts out);
:mod:`.run` sends the requests through :class:`~bsg_provider.hooks.bsg.BsgHook` and prints the
report. It may import the hooks, :mod:`bsg_provider.client` and :mod:`bsg_provider.extraction`.
"""
