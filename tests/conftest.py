"""Fixtures shared by the whole session.

A session-scoped fixture imported into a test module is set up once per importing module
(pytest registers it anew in each): the serving fixtures, imported by eight modules, built
their toy models and started their servers up to eight times. Registered here instead, each
is made once per run.
"""
from serving_fixtures import any_server, batching_server, hmvae_server, model_repo  # noqa: F401
