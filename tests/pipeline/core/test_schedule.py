import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.schedule import decision_bars

INDEX = (pd.bdate_range("2024-01-01", "2024-06-30") + pd.Timedelta(hours=16)).tz_localize("America/New_York")


def _days(bars):
    return [INDEX[i].strftime("%Y-%m-%d") for i in bars]


def test_monthly_is_last_bar_of_each_month():
    assert _days(decision_bars(INDEX, "monthly"))[:3] == ["2024-01-31", "2024-02-29", "2024-03-29"]


def test_weekly_is_last_bar_of_each_week():
    days = decision_bars(INDEX, "weekly")
    assert all(INDEX[i].day_name() == "Friday" for i in days)
    assert len(days) == 26


def test_quarterly_yearly_daily_once_every_n():
    assert _days(decision_bars(INDEX, "quarterly")) == ["2024-03-29", "2024-06-28"]
    assert _days(decision_bars(INDEX, "yearly")) == ["2024-06-28"]
    assert len(decision_bars(INDEX, "daily")) == len(INDEX)
    assert list(decision_bars(INDEX, "once", first=4)) == [4]
    assert list(decision_bars(INDEX, 5, first=2)[:3]) == [2, 7, 12]


def test_first_bar_filters_calendar_rules():
    bars = decision_bars(INDEX, "monthly", first=30)
    assert bars.min() >= 30


@pytest.mark.parametrize("rule", ["fortnightly", "0", "-3"])
def test_bad_rule_names_the_key(rule):
    with pytest.raises(ConfigError, match="schedule.rebalance"):
        decision_bars(INDEX, rule)
