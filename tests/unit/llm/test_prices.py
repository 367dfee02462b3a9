"""The price table of LLM_PRICES_FILE, one call's cost, and a job's usage summed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llm_worker.errors import SettingsError
from llm_worker.llm.prices import ModelPrice, load_prices
from llm_worker.llm.usage import USAGE_OPTION, Usage

pytestmark = pytest.mark.unit


def write(tmp_path, text):
    path = tmp_path / "prices.json"
    path.write_text(text)
    return str(path)


def test_no_file_is_no_table():
    assert load_prices(None) is None
    assert load_prices("") is None


def test_cached_input_defaults_to_input(tmp_path):
    table = load_prices(
        write(
            tmp_path,
            '{"a": {"input": 2, "output": 8}, "b": {"input": 0.15, '
            '"output": 0.6, "cached_input": 0.075}}',
        )
    )

    assert table is not None
    assert table.price("a") == ModelPrice(Decimal(2), Decimal(8), Decimal(2))
    assert table.price("b").cached_input == Decimal("0.075")
    assert table.price("nope") is None
    assert table.price("nope", "b") is table.price("b")  # the name the provider answered with


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1]", "must hold a JSON object"),
        ("{nope", "not JSON"),
        ('{"m": {"input": NaN, "output": 1}}', "not JSON: NaN is not a price"),
        ('{"m": 3}', "the entry of 'm' must be an object of prices"),
        ('{"m": {"input": 1, "output": 1, "cache": 1}}', "unknown keys ['cache'] in the entry"),
        ('{"m": {"input": 1}}', "the entry of 'm' has no 'output' price"),
        ('{"m": {"input": -1, "output": 1}}', "'input' of 'm' must be a non-negative number"),
        ('{"m": {"input": "1", "output": 1}}', "'input' of 'm' must be a non-negative number"),
        ('{"m": {"input": true, "output": 1}}', "'input' of 'm' must be a non-negative number"),
        ('{" ": {"input": 1, "output": 1}}', "a model name is empty"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_the_problem(tmp_path, content, problem):
    path = write(tmp_path, content)

    with pytest.raises(SettingsError) as raised:
        load_prices(path)

    message = str(raised.value)
    assert message.startswith(f"invalid setting LLM_PRICES_FILE ({path}): ")
    assert problem in message and "\n" not in message


def test_an_unreadable_file_is_named(tmp_path):
    missing = str(tmp_path / "missing.json")

    with pytest.raises(SettingsError, match=r"\(.*missing\.json\): cannot read it: No such file"):
        load_prices(missing)


def test_a_call_costs_micro_dollars_with_cached_tokens_at_their_price():
    price = ModelPrice(Decimal("0.15"), Decimal("0.6"), Decimal("0.075"))

    # 200 uncached x 0.15 + 800 cached x 0.075 + 50 x 0.6 = 30 + 60 + 30
    assert price.cost_micro_usd(1000, 50, 800) == 120
    assert price.cost_micro_usd(1000, 50, 0) == 180
    assert price.cost_micro_usd(11, 0, 0) == 2  # 1.65, rounded half up once per call
    assert price.cost_micro_usd(10, 0, 99) == 1  # never more cached than prompt tokens


def test_a_jobs_cost_is_the_exact_sum_of_its_priced_calls():
    usage = Usage().plus(11, 7, model="m", served_by="primary", cost_micro_usd=10_000_001)
    usage = usage.plus(11, 7, model="m", served_by="primary", cached_tokens=4, cost_micro_usd=3)

    assert usage.core_dict() == {
        "prompt_tokens": 22,
        "completion_tokens": 14,
        "cached_tokens": 4,
        "attempts": 2,
        "model": "m",
        "served_by": "primary",
        "cost_usd": 10.000004,
    }
    options: dict = {}
    usage.store(options)
    assert Usage.from_options(options) == usage
    assert options[USAGE_OPTION]["cost_micro_usd"] == 10_000_004


def test_one_unpriced_call_leaves_the_cost_out_and_counts_it():
    usage = Usage().plus(11, 7, model="a", cost_micro_usd=5).plus(11, 7, model="b")

    sent = usage.core_dict()
    assert "cost_usd" not in sent and sent["unpriced_calls"] == 1
    assert Usage().core_dict() == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cached_tokens": 0,
        "attempts": 0,
    }


def test_a_usage_stored_before_costs_were_kept_claims_no_cost():
    old = Usage.from_options({USAGE_OPTION: {"prompt_tokens": 3, "attempts": 1}})

    assert old.plus(1, 1, cost_micro_usd=7).cost_usd is None
