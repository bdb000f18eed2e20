"""The server refuses text with nothing to speak before queueing it, naming the dropped characters, and
reports the characters it dropped from text it spoke (issue 21, section 2)."""

from __future__ import annotations

import time

import pytest

from vcframe.serve.problems import PROBLEM_MEDIA_TYPE


@pytest.mark.parametrize(
    ("text", "needle"),
    [("?!... ;;", "no letter or digit"), ("\U0001f600\U0001f389", "U+1F600"), ("\x07\x01 \x02", "U+0007")],
)
@pytest.mark.parametrize("endpoint", ["/v1/speech", "/v1/jobs"])
def test_text_with_nothing_to_speak_is_refused(client, endpoint: str, text: str, needle: str) -> None:
    response = client.post(endpoint, data={"text": text, "voice": "clara"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body = response.json()
    assert body["detail"].startswith("the text has nothing to speak") and needle in body["detail"]
    assert "\n" not in body["detail"]


def test_a_job_reports_the_characters_it_did_not_speak(client) -> None:
    job = client.post("/v1/jobs", data={"text": "Hello \U0001f389 there.", "voice": "clara", "seed": "1"}).json()
    deadline = time.monotonic() + 10
    while (state := client.get(f"/v1/jobs/{job['id']}").json())["state"] != "done":
        assert time.monotonic() < deadline and state["state"] not in ("failed", "cancelled"), state
        time.sleep(0.02)
    assert state["result"]["dropped_characters"] == ["U+1F389"]
