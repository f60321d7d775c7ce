"""The pieces of AI drafting that need no server: the sanitiser, the answer schemas
(strict as Structured Outputs requires), answers turned into API steps, prices,
cache keys and the settings."""
from __future__ import annotations

import pytest

from ai import output_schemas
from ai.answer_cache import cache_key
from ai.budget import Prices
from ai.html_safety import private_host, sanitise_html
from sequencing.steps import validate_steps
from settings import ConfigError, load_settings
from tests.support.fake_openai import strict_schema_problem


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://10.0.0.1/x", "https://192.168.1.5/", "http://[::1]/",
                                 "http://169.254.169.254/latest", "http://localhost:8000/", "http://a.localhost/"])
def test_links_to_private_addresses_are_private(url):
    assert private_host(url)


@pytest.mark.parametrize("url", ["https://example.com/", "http://8.8.8.8/", "{{ unsubscribe_url }}", "mailto:a@b.c",
                                 "/relative", "http://[bad"])
def test_public_and_unparseable_links_are_not_called_private(url):
    assert not private_host(url)


def test_the_sanitiser_removes_scripts_handlers_and_private_links_and_keeps_templates():
    html = ('<p style="color:red;position:fixed" onclick="x()">Hi {{ subscriber.first_name | default("there", true) }}'
            '</p><script>alert(1)</script><style>p{}</style><a href="http://10.0.0.1/">in</a>'
            '<a href="https://example.com/">out</a><iframe src="https://evil.test"></iframe>'
            '{% if subscriber.attributes.plan %}<b>plan</b>{% endif %}')
    cleaned, notes = sanitise_html(html)
    assert cleaned == ('<p style="color:red">Hi {{ subscriber.first_name | default("there", true) }}</p>'
                       '<a rel="noopener noreferrer">in</a><a href="https://example.com/" rel="noopener noreferrer">'
                       'out</a>{% if subscriber.attributes.plan %}<b>plan</b>{% endif %}')
    assert notes == ["removed a link to a private address: http://10.0.0.1/", "removed a script"]


@pytest.mark.parametrize("schema", [output_schemas.SEQUENCE, output_schemas.EMAIL, output_schemas.FIX,
                                    output_schemas.subject_lines(5)])
def test_every_answer_schema_is_strict_as_structured_outputs_requires(schema):
    assert strict_schema_problem(schema) is None
    for option in schema["properties"].get("steps", {}).get("items", {}).get("anyOf", []):
        assert strict_schema_problem(option) is None


def test_a_sequence_answer_becomes_a_body_the_step_validators_accept():
    answer = {"name": "Welcome", "description": "d", "exit_event": "purchase", "steps": [
        {"type": "email", "subject": "Hi", "preheader": "Read me <now>", "html": "<p>x</p>", "text": "x"},
        {"type": "delay", "days": 2}]}
    body = output_schemas.sequence_body(answer)
    assert body["settings"] == {"exit_events": ["purchase"], "goal": {"event": "purchase"}}
    steps = validate_steps(body["steps"])
    assert steps[0]["html"] == ('<div style="display:none;max-height:0;overflow:hidden">Read me &lt;now&gt;</div>'
                                "<p>x</p>")
    assert steps[1] == {"type": "delay", "days": 2}


def test_cost_is_priced_per_thousand_tokens_and_unknown_without_prices():
    assert Prices(0.15, 0.6).cost(2000, 500) == pytest.approx(0.6)
    assert Prices(None, 0.6).cost(2000, 500) == pytest.approx(0.3)
    assert Prices().cost(2000, 500) is None


def test_the_cache_key_changes_with_anything_the_prompt_is_built_from():
    base = cache_key("sequence", {"brief": {"goal": "a"}}, "m", None, ["plan"])
    assert base == cache_key("sequence", {"brief": {"goal": "a"}}, "m", None, ["plan"])
    assert len({base, cache_key("sequence", {"brief": {"goal": "b"}}, "m", None, ["plan"]),
                cache_key("sequence", {"brief": {"goal": "a"}}, "other", None, ["plan"]),
                cache_key("rewrite", {"brief": {"goal": "a"}}, "m", None, ["plan"]),
                cache_key("sequence", {"brief": {"goal": "a"}}, "m", {"subject": "x"}, ["plan"]),
                cache_key("sequence", {"brief": {"goal": "a"}}, "m", None, ["plan", "city"])}) == 6


def test_ai_settings_are_parsed_and_a_model_server_is_either_variable():
    settings = load_settings({"ESEQ_AI_DAILY_TOKENS": "50000", "ESEQ_AI_PRICE_PROMPT_PER_1K": "0.15",
                              "ESEQ_AI_TIMEOUT_SECONDS": "30"})
    assert (settings.ai_daily_tokens, settings.ai_price_prompt_per_1k, settings.ai_price_completion_per_1k,
            settings.ai_timeout_seconds, settings.ai_configured) == (50000, 0.15, None, 30.0, False)
    assert load_settings({"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}).ai_configured
    assert load_settings({"OPENAI_API_KEY": "sk-x"}).ai_configured
    with pytest.raises(ConfigError, match="ESEQ_AI_DAILY_TOKENS"):
        load_settings({"ESEQ_AI_DAILY_TOKENS": "lots"})
