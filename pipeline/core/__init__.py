"""The vocabulary every other package speaks: market data, stage contracts, orders and fills, errors, the signature-as-schema machinery, schedules, numerics. Imports no other pipeline package."""
