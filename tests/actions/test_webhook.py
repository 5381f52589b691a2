"""The webhook action against a real server on 127.0.0.1, through the guarded client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import httpx2
import pytest
from pydantic import ValidationError

from wakecall.actions import ActionFailed
from wakecall.actions.webhook import WebhookExecutor, validate_webhook
from wakecall.errors import InvalidInput, UnsafeURL
from wakecall.models import WebhookAction
from wakecall.net import OutboundPolicy, build_http_client

from .conftest import BIG_TEXT, MakeContext, WebhookTarget

LOOPBACK = OutboundPolicy(allow_loopback=True)


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with build_http_client(LOOPBACK, timeout=5) as c:
        yield c


def webhook(url: str, **fields: object) -> dict[str, object]:
    return WebhookAction.model_validate({"type": "webhook", "url": url, **fields}).model_dump()


async def test_a_2xx_json_answer_succeeds_with_the_parsed_body(
    client: httpx2.AsyncClient, webhook_target: WebhookTarget, make_context: MakeContext
) -> None:
    action = webhook(
        webhook_target.url("/json"),
        headers={"Authorization": "Bearer t0ken"},
        body={"hello": ["world", 1]},
    )
    with anyio.fail_after(5):
        output = await WebhookExecutor(client).execute(make_context(action, attempt=2))
    assert output["status"] == 200
    assert output["truncated"] is False
    echo = output["body"]
    assert echo["method"] == "POST"
    assert echo["body"] == {"hello": ["world", 1]}
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["authorization"] == "Bearer t0ken"
    assert echo["headers"]["x-wakecall-task-id"] == "tsk_test"
    assert echo["headers"]["x-wakecall-run-id"] == "run_test"
    assert echo["headers"]["x-wakecall-attempt"] == "2"
    assert echo["headers"]["user-agent"].startswith("wakecall")


async def test_a_request_without_a_body_sends_none(
    client: httpx2.AsyncClient, webhook_target: WebhookTarget, make_context: MakeContext
) -> None:
    action = webhook(webhook_target.url("/json"), method="get")
    with anyio.fail_after(5):
        output = await WebhookExecutor(client).execute(make_context(action))
    assert output["body"]["method"] == "GET"
    assert output["body"]["body"] is None
    assert "content-type" not in output["body"]["headers"]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/text", "fine, thanks ✓"), ("/bad-json", "{not json"), ("/empty", "")],
)
async def test_a_2xx_answer_that_is_not_json_succeeds_with_the_text(
    client: httpx2.AsyncClient,
    webhook_target: WebhookTarget,
    make_context: MakeContext,
    path: str,
    body: str,
) -> None:
    with anyio.fail_after(5):
        output = await WebhookExecutor(client).execute(
            make_context(webhook(webhook_target.url(path)))
        )
    assert output["body"] == body
    assert output["truncated"] is False


async def test_a_long_answer_is_cut_to_the_output_limit_and_marked_truncated(
    client: httpx2.AsyncClient, webhook_target: WebhookTarget, make_context: MakeContext
) -> None:
    executor = WebhookExecutor(client, max_output_bytes=1000)
    with anyio.fail_after(5):
        text = await executor.execute(make_context(webhook(webhook_target.url("/big"))))
        big_json = await executor.execute(make_context(webhook(webhook_target.url("/big-json"))))
    assert text == {"status": 200, "body": BIG_TEXT[:1000], "truncated": True}
    assert big_json["truncated"] is True
    assert big_json["body"].startswith('{"items": [0, 1, 2')
    assert len(big_json["body"]) == 1000


async def test_a_5xx_answer_fails_with_the_status_an_excerpt_and_the_output(
    client: httpx2.AsyncClient, webhook_target: WebhookTarget, make_context: MakeContext
) -> None:
    url = webhook_target.url("/fail")
    with anyio.fail_after(5), pytest.raises(ActionFailed) as caught:
        await WebhookExecutor(client).execute(make_context(webhook(url)))
    assert caught.value.message == (
        f'HTTP 503 from {url}: {{"error":"database is down","retry":true}}'
    )
    assert caught.value.output == {
        "status": 503,
        "body": {"error": "database is down", "retry": True},
        "truncated": False,
    }


async def test_a_4xx_answer_fails_with_the_text_excerpt(
    client: httpx2.AsyncClient, webhook_target: WebhookTarget, make_context: MakeContext
) -> None:
    url = webhook_target.url("/missing")
    with anyio.fail_after(5), pytest.raises(ActionFailed, match=r"HTTP 404 from .*: no such hook$"):
        await WebhookExecutor(client).execute(make_context(webhook(url, method="DELETE")))


async def test_a_redirect_is_not_followed_and_fails_saying_where_it_pointed(
    client: httpx2.AsyncClient, webhook_target: WebhookTarget, make_context: MakeContext
) -> None:
    url = webhook_target.url("/redirect")
    with anyio.fail_after(5), pytest.raises(ActionFailed) as caught:
        await WebhookExecutor(client).execute(make_context(webhook(url)))
    assert "HTTP 302" in caught.value.message
    assert "redirects are not followed" in caught.value.message
    assert webhook_target.url("/moved/here") in caught.value.message
    assert caught.value.output["status"] == 302
    assert [r.target for r in webhook_target.requests] == ["/redirect"]


async def test_a_refused_connection_fails_naming_the_url(
    client: httpx2.AsyncClient, make_context: MakeContext
) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens on the port any more
    url = f"http://127.0.0.1:{port}/hook"
    with anyio.fail_after(5), pytest.raises(ActionFailed) as caught:
        await WebhookExecutor(client).execute(make_context(webhook(url)))
    assert caught.value.message.startswith(f"could not connect to {url}: ")
    assert caught.value.output is None


async def test_an_answer_slower_than_the_per_attempt_timeout_fails(
    client: httpx2.AsyncClient, webhook_target: WebhookTarget, make_context: MakeContext
) -> None:
    url = webhook_target.url("/slow")
    with anyio.fail_after(5), pytest.raises(ActionFailed) as caught:
        await WebhookExecutor(client).execute(make_context(webhook(url, timeout=0.2)))
    assert caught.value.message == (
        f"{url} did not answer within 0.2s (the webhook's per-attempt timeout)"
    )


async def test_a_loopback_target_is_refused_when_the_operator_did_not_allow_it(
    webhook_target: WebhookTarget, make_context: MakeContext
) -> None:
    url = webhook_target.url("/json")
    async with build_http_client(OutboundPolicy()) as strict:
        with anyio.fail_after(5), pytest.raises(ActionFailed) as caught:
            await WebhookExecutor(strict).execute(make_context(webhook(url)))
    assert caught.value.message.startswith(f"refused to call {url}: refusing to connect to ")
    assert "--allow-outbound loopback" in caught.value.message
    assert webhook_target.requests == []


async def test_an_invalid_stored_action_fails_without_calling_anything(
    client: httpx2.AsyncClient, make_context: MakeContext
) -> None:
    action = {"type": "webhook", "url": "gopher://example.com/"}
    with anyio.fail_after(5), pytest.raises(ActionFailed, match="webhook action is invalid"):
        await WebhookExecutor(client).execute(make_context(action))


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"url": "ftp://example.com/"}, "http:// or https://"),
        ({"url": "https://user:pw@example.com/"}, "credentials"),
        ({"url": "https://example.com/", "method": "TRACE"}, "method"),
        ({"url": "https://example.com/", "headers": {"Host": "evil"}}, "set by wakecall"),
        ({"url": "https://example.com/", "headers": {"X-Wakecall-Run-Id": "x"}}, "set by wakecall"),
        ({"url": "https://example.com/", "headers": {"bad name": "x"}}, "not a valid HTTP header"),
        ({"url": "https://example.com/", "headers": {"X-A": "a\r\nX-B: b"}}, "line break"),
        ({"url": "https://example.com/", "timeout": 0}, "timeout"),
        ({"url": "https://example.com/", "extra": 1}, "extra"),
    ],
)
def test_the_webhook_model_refuses_what_cannot_be_sent(
    fields: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        WebhookAction.model_validate({"type": "webhook", **fields})


def test_the_webhook_model_has_sensible_defaults() -> None:
    action = WebhookAction.model_validate({"type": "webhook", "url": "https://example.com/h"})
    assert action.method == "POST"
    assert action.headers == {}
    assert action.body is None
    assert action.timeout is None
    assert json.loads(action.model_dump_json())["type"] == "webhook"


def test_validate_webhook_refuses_a_literal_private_address_the_policy_does_not_allow() -> None:
    action = {"type": "webhook", "url": "http://10.0.0.8/hook"}
    with pytest.raises(UnsafeURL) as caught:
        validate_webhook(action, OutboundPolicy())
    assert str(caught.value).startswith("action.url: refusing to connect to 10.0.0.8")
    allowed = validate_webhook(action, OutboundPolicy.parse_allow(["10.0.0.0/8"]))
    assert allowed.url == "http://10.0.0.8/hook"


def test_validate_webhook_turns_a_malformed_action_into_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="url"):
        validate_webhook({"type": "webhook"}, OutboundPolicy())
