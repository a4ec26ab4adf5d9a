"""Prometheus exposition and API-key checks, in process."""

from __future__ import annotations

import re

from voxloop.serve.auth import ApiKeys
from voxloop.serve.metrics import Metrics

SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? (-?[0-9.e+-]+|\+Inf)$')


def test_exposition_is_valid_prometheus_text() -> None:
    metrics = Metrics()
    metrics.requests.inc(route="/v1/parse", status="200")
    metrics.requests.inc(route="/v1/parse", status="200")
    metrics.latency.observe(0.003, route="/v1/parse")
    metrics.latency.observe(7.0, route="/v1/parse")
    metrics.batch_size.observe(5)
    metrics.gauge("voxloop_queue_depth", "Waiting texts.", lambda: [((), 3.0)])
    metrics.gauge(
        "voxloop_model_active", "Active.", lambda: [((("version", 'we"ird\nname'),), 1.0)]
    )
    text = metrics.render()
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith("# ") or SAMPLE.match(line), line
    assert 'voxloop_requests_total{route="/v1/parse",status="200"} 2' in text
    assert 'voxloop_request_seconds_bucket{route="/v1/parse",le="0.005"} 1' in text
    assert 'voxloop_request_seconds_bucket{route="/v1/parse",le="5"} 1' in text
    assert 'voxloop_request_seconds_bucket{route="/v1/parse",le="+Inf"} 2' in text
    assert 'voxloop_request_seconds_count{route="/v1/parse"} 2' in text
    assert 'voxloop_batch_size_bucket{le="4"} 0' in text
    assert 'voxloop_batch_size_bucket{le="8"} 1' in text
    assert "voxloop_queue_depth 3" in text
    assert 'voxloop_model_active{version="we\\"ird\\nname"} 1' in text


def test_api_keys_refuse_missing_and_wrong_keys() -> None:
    keys = ApiKeys.from_env({"VOXLOOP_ADMIN_KEY": "a", "VOXLOOP_API_KEY": "p"})
    assert keys.check_admin({}).status == 401  # type: ignore[union-attr]
    assert keys.check_admin({"authorization": "Bearer p"}).status == 403  # type: ignore[union-attr]
    assert keys.check_admin({"authorization": "Bearer a"}) is None
    assert keys.check_parse({"x-api-key": "p"}) is None
    assert keys.check_parse({"authorization": "Basic p"}).status == 401  # type: ignore[union-attr]


def test_without_keys_admin_is_disabled_and_parse_is_open() -> None:
    keys = ApiKeys.from_env({})
    failure = keys.check_admin({"authorization": "Bearer anything"})
    assert failure is not None and failure.status == 403
    assert "VOXLOOP_ADMIN_KEY" in failure.message
    assert keys.check_parse({}) is None
