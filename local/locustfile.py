"""Locust load profile for the local platform: ``locust -f local/locustfile.py --host http://127.0.0.1:8080``.

Clients send budgeting, general and compliance questions with the local API key, and poll
health now and then, as Route 53 does.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task

KEY = os.environ.get("FINAI_LOCAL_API_KEY", "local-demo-key")
QUESTIONS = [
    ("general", "What is compound interest?"),
    ("compliance", "What does KYC require when opening an account?"),
    ("product_question", "How does a fixed-rate mortgage work?"),
    ("account_inquiry", "How do I change the address on my account?"),
]


class PlatformUser(HttpUser):
    wait_time = between(0.05, 0.2)

    @task(8)
    def generate(self) -> None:
        use_case, prompt = random.choice(QUESTIONS)  # nosec B311 - load mix, not security
        with self.client.post(
            "/v1/generate",
            json={"use_case": use_case, "prompt": prompt},
            headers={"x-api-key": KEY},
            name="POST /v1/generate",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or "tier" not in response.json():
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(1)
    def health(self) -> None:
        self.client.get("/v1/health", name="GET /v1/health")
