"""The webhook delivery worker: sends what the outbox holds (services/notifications.py), signed, and records
each attempt. One per server process, started and stopped with the Runtime.

It claims due deliveries in one transaction, sends them outside any transaction (a slow receiver holds no
lock), then records each result in a transaction of its own. A delivery is claimed for two minutes: if this
process dies mid-send, another (or the next start) sends it again, so delivery is at least once: receivers
de-duplicate by the event id (`id` in the body) or the `X-Gpulease-Delivery` header.

Addresses are checked where they are used: a host name is resolved before each attempt, and a delivery to a
loopback, private or link-local address (cloud metadata) is refused unless `webhook_allow_private_targets`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from gpulease import __version__
from gpulease.domain.webhooks import SIGNATURE_HEADER, is_public_address, sign
from gpulease.services import notifications
from gpulease.services.notifications import Job
from gpulease.settings import Settings

log = logging.getLogger("gpulease.webhooks")

BATCH = 20
SENDERS = 8  # deliveries sent at once, so one slow receiver does not hold up everyone else's


@dataclass(frozen=True)
class Attempt:
    status: int | None  # the HTTP status; None when no answer came
    error: str | None
    duration_ms: int


class DeliveryWorker:
    def __init__(self, perform: Callable[..., Any], settings: Settings, clock: Callable[[], datetime]) -> None:
        self.perform, self.settings, self.clock = perform, settings, clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._senders = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="gpulease-webhook")
        self._client = httpx.Client(
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,  # a redirect could lead anywhere, a private address included
            headers={"User-Agent": f"gpulease-webhooks/{__version__}"},
        )

    def wake(self) -> None:
        """Deliveries were queued: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="gpulease-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.webhook_timeout_s + 5)
            self._thread = None
        self._senders.shutdown(wait=True)
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            sent = 0
            try:
                sent = self.run_once()
            except Exception:  # the outbox keeps them: the next round tries again
                log.exception("webhook delivery round failed")
            if sent < BATCH:
                self._wake.wait(self.settings.webhook_poll_s)
                self._wake.clear()

    def run_once(self) -> int:
        """Send every delivery due now (up to a batch) and record the results; returns how many were tried."""
        jobs: list[Job] = self.perform(notifications.claim_due, limit=BATCH)
        for job, attempt in zip(jobs, self._senders.map(self.send, jobs), strict=True):
            self.perform(
                notifications.record_attempt,
                delivery_id=job.delivery_id,
                status=attempt.status,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
            if attempt.error:
                log.info("webhook delivery %s to %s failed: %s", job.delivery_id, job.url, attempt.error)
        return len(jobs)

    def send(self, job: Job) -> Attempt:
        began = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - began) * 1000)

        refused = self._refused_target(job.url)
        if refused:
            return Attempt(None, refused, took())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(job.secret, int(self.clock().timestamp()), job.body),
            "X-Gpulease-Event": job.event,
            "X-Gpulease-Delivery": str(job.delivery_id),
            "X-Gpulease-Delivery-Attempt": str(job.attempt),
        }
        try:
            r = self._client.post(job.url, content=job.body, headers=headers)
        except httpx.HTTPError as e:
            return Attempt(None, f"{type(e).__name__}: {e}"[:500], took())
        if 200 <= r.status_code < 300:
            return Attempt(r.status_code, None, took())
        return Attempt(r.status_code, f"HTTP {r.status_code}: {r.text[:200]}", took())

    def _refused_target(self, url: str) -> str | None:
        if self.settings.webhook_allow_private_targets:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
        except OSError as e:
            return f"cannot resolve {host}: {e}"
        private = sorted({str(i[4][0]) for i in infos if not is_public_address(str(i[4][0]))})
        if private:
            return f"refused: {host} resolves to a private or local address ({private[0]})"
        return None
