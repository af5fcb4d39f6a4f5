"""Paper and live trading: schedule, planning, execution, reconciliation, journal, safety. No venue facts."""
