"""Locust users for the emotions service: single texts mostly, now and then a small batch.

Used by benchmarks/locust_load.py (which starts the server and reads the results); by hand:

    LOAD_TEXTS=texts.txt EMOTIONS_LOAD_KEY=<key> locust -f benchmarks/locustfile.py --host http://127.0.0.1:8000

$LOAD_TEXTS: a file with one text per line (the test file's texts in the benchmark); $EMOTIONS_LOAD_KEY: the
API key to send (none: no Authorization header). No think time: each user sends its next request as soon as
the last one is answered, so the figures are the service's capacity, not a traffic model.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from locust import HttpUser, constant, task

TEXTS = [t for t in Path(os.environ["LOAD_TEXTS"]).read_text(encoding="utf-8").splitlines() if t.strip()]
KEY = os.environ.get("EMOTIONS_LOAD_KEY", "")
BATCH = 8


class ServiceUser(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        if KEY:
            self.client.headers["Authorization"] = f"Bearer {KEY}"

    @task(9)
    def one_text(self) -> None:
        self.client.post("/predict", json={"text": random.choice(TEXTS)}, name="/predict")

    @task(1)
    def a_batch(self) -> None:
        self.client.post("/predict/batch", json={"texts": random.sample(TEXTS, BATCH)}, name="/predict/batch")
