"""IB's facts as the broker plugin needs them: error and status codes, and how IB's order status
words map to the broker-neutral states of ``pipeline.core.live_broker``."""

from __future__ import annotations

from pipeline.core.live_broker import CANCELLED, FILLED, PENDING, REJECTED, WORKING

# IB's data-farm status codes: the service the farm provides, and whether it is up (2107/2108:
# idle, but available on demand)
FARMS = {2103: ("market data", False), 2104: ("market data", True), 2108: ("market data", True),
         2105: ("historical data", False), 2106: ("historical data", True), 2107: ("historical data", True),
         2157: ("security definition", False), 2158: ("security definition", True)}
READ_ONLY = "read-only"  # in error 321's text when the API's Read-Only mode refuses an order
# errors about a cancel request of ours, not about the order: never the reason an order ended
CANCEL_REQUEST_ERRORS = (10147, 10148)
# IB error codes that mean the order was refused, not cancelled by us
REJECT_CODES = {103, 104, 105, 106, 107, 109, 110, 111, 113, 114, 115, 116, 117, 118, 119, 200,
                201, 203, 321, 322, 382, 383, 387, 388, 391, 392, 393, 394, 395, 396, 397, 398,
                399, 404, 434, 10147, 10148}

WORKING_WORDS = ("PreSubmitted", "Submitted", "PendingCancel")
OVER_WORDS = ("Cancelled", "ApiCancelled", "Inactive")  # over without a fill of the whole order

# IB's paper accounts: DU... (an individual paper account) and DF... (a paper advisor account)
PAPER_PREFIX = "D"
PAPER_RULE = "paper accounts start with DU or DF"


def state(word: str, error_code: int, filled: float) -> str:
    """The neutral state of an order IB reports with status ``word`` (PendingSubmit, ApiPending
    and words IB adds later are pending: the runner waits for a state it knows)."""
    if word in WORKING_WORDS:
        return WORKING
    if word == "Filled":
        return FILLED
    if word in OVER_WORDS:
        return REJECTED if error_code in REJECT_CODES and filled == 0 else CANCELLED
    return PENDING
