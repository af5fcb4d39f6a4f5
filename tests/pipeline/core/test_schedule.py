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


# ---------------------------------------------------------------- intraday rules (issue 19.1)

MINUTES = pd.DatetimeIndex(np.concatenate([
    pd.date_range(f"{day} 09:31", f"{day} {close}", freq="1min", tz="America/New_York").as_unit("ns").asi8
    for day, close in (("2024-11-27", "16:00"), ("2024-11-29", "13:00"))]), tz="UTC")
MINUTES = MINUTES.tz_convert("America/New_York")


def _times(rule):
    return [MINUTES[i].strftime("%m-%d %H:%M") for i in decision_bars(MINUTES, rule)]


def test_19_1_daily_on_intraday_bars_is_each_sessions_last_bar():
    # before: every minute bar was a "daily" decision
    assert _times("daily") == _times("on close") == ["11-27 16:00", "11-29 13:00"]
    assert _times("on open") == ["11-27 09:31", "11-29 09:31"]


def test_19_1_at_a_time_of_day_and_on_a_half_day():
    assert _times("at 15:50") == ["11-27 15:50", "11-29 13:00"]  # the last bar at or before it
    assert _times("at 10:00:30") == ["11-27 10:00", "11-29 10:00"]


def test_19_1_every_duration_counts_from_local_midnight():
    times = _times("every 30min")
    assert times[:3] == ["11-27 10:00", "11-27 10:30", "11-27 11:00"]
    assert times[12:14] == ["11-27 16:00", "11-29 10:00"]
    assert times[-1] == "11-29 13:00" and len(times) == 13 + 7
    assert len(_times("every 90s")) == 260 + 140


@pytest.mark.parametrize("rule, said", [("at 25:99", "not a time of day"), ("every soon", "not a duration"),
                                        ("every 0s", "not a duration")])
def test_19_1_bad_intraday_rules_name_the_key(rule, said):
    with pytest.raises(ConfigError, match=f"schedule.rebalance='{rule}': .*{said}"):
        decision_bars(MINUTES, rule)


def test_19_1_intraday_rules_on_daily_bars_are_an_error():
    with pytest.raises(ConfigError, match="needs intraday bars"):
        decision_bars(INDEX, "every 30min")
