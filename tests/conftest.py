"""Fixtures shared by the whole session.

A session-scoped fixture imported into a test module is set up once per importing module
(pytest registers it anew in each): the serving fixtures, imported by eight modules, built
their toy models and started their servers up to eight times. Registered here instead, each
is made once per run.
"""
import pytest

from export_helpers import export_tiny
from serving_fixtures import any_server, batching_server, hmvae_server, model_repo  # noqa: F401


@pytest.fixture(scope="session")
def tiny_melody_export(tmp_path_factory):
    """(config, model, SavedModel path) of export_helpers.export_tiny's melody model, exported
    once for the tfjs and web page tests, which read it (and must not change the model)."""
    return export_tiny(tmp_path_factory.mktemp("tiny_melody"))
