"""A service's Prometheus metrics (its /metrics endpoint), read as numbers."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


class MetricsSnapshot:
    def __init__(self, text: str) -> None:
        self._samples: dict[str, float] = {}
        self._series: dict[str, int] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self._samples[sample.name] = self._samples.get(sample.name, 0.0) + sample.value
                self._series[sample.name] = self._series.get(sample.name, 0) + 1

    def total(self, sample: str) -> float:
        """The sample summed over all its label sets (0 when the service has none yet)."""
        return self._samples.get(sample, 0.0)

    def series(self, sample: str) -> int:
        """How many label sets the sample has (e.g. one per polled entity)."""
        return self._series.get(sample, 0)


async def scrape(http: httpx.AsyncClient, service_url: str) -> MetricsSnapshot:
    response = await http.get(f"{service_url}/metrics")
    response.raise_for_status()
    return MetricsSnapshot(response.text)
