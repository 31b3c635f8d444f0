"""What /metrics shows, in Prometheus's text format (prometheus-client).

Each `Metrics` has a registry of its own, so two replicas in one test process
count apart. Topic labels come from the knowledge base, so their number is
bounded by it.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.core.models import Reply

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: answers take a millisecond or two; a store round trip adds about as much
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.questions = Counter("careerbot_questions", "Questions asked",
                                 ["platform"], registry=r)
        self.answers = Counter("careerbot_answers", "Questions answered, by topic",
                               ["platform", "topic"], registry=r)
        self.declines = Counter("careerbot_declines",
                                "Questions declined as outside what careerbot answers",
                                ["platform"], registry=r)
        self.latency = Histogram("careerbot_answer_seconds",
                                 "Time to answer a question (matching and the store)",
                                 ["platform"], buckets=_LATENCY_BUCKETS, registry=r)
        self.rate_limited = Counter("careerbot_rate_limited",
                                    "Questions refused by the per-user rate limit",
                                    ["platform"], registry=r)
        self.reloads = Counter("careerbot_reloads",
                               "Knowledge reloads: by an admin here, or on a notice from "
                               "another replica; and how they went",
                               ["origin", "outcome"], registry=r)
        self.errors = Counter("careerbot_errors", "Errors, by where they happened",
                              ["where"], registry=r)
        self.votes = Counter("careerbot_votes", "Helpful / not helpful votes",
                             ["platform", "vote"], registry=r)
        self.undelivered = Counter("careerbot_undelivered",
                                   "Answers that could not be delivered, after retries, by "
                                   "why (Slack's error code, an HTTP status, a connection "
                                   "error)", ["platform", "reason"], registry=r)
        self.learning_failures = Counter(
            "careerbot_learning_failures",
            "Learning-store calls that failed: a batch of records not written (write), "
            "the admins' stats not read (read)", ["operation"], registry=r)
        self.learning_unrecorded = Counter(
            "careerbot_learning_unrecorded",
            "Questions and votes never recorded: their batch failed, or the queue was full",
            registry=r)
        self.store_ok = Gauge("careerbot_store_ok",
                              "1 while the shared store's calls work (as /healthz last saw)",
                              registry=r)
        self.in_flight = Gauge("careerbot_in_flight", "Requests being handled", registry=r)
        self.ready = Gauge("careerbot_ready", "1 when ready to serve", registry=r)
        self.knowledge = Gauge("careerbot_knowledge_info", "The knowledge version served",
                               ["version"], registry=r)
        self._version = ""

    def asked(self, platform: str, reply: Reply, seconds: float) -> None:
        self.questions.labels(platform).inc()
        self.latency.labels(platform).observe(seconds)
        if reply.kind == "decline":
            self.declines.labels(platform).inc()
        elif reply.topic is not None:
            self.answers.labels(platform, reply.topic).inc()

    def serving(self, version: str) -> None:
        if version != self._version:
            if self._version:
                self.knowledge.remove(self._version)
            self.knowledge.labels(version).set(1)
            self._version = version

    def render(self) -> bytes:
        return generate_latest(self.registry)
