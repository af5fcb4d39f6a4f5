"""Data and a book to parent orders: targets through the strategies, allocators and risk, written once for the backtest and live trading."""
