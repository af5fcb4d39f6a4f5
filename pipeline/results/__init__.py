"""What a finished run is: recorder, metrics, transaction-cost analysis, attribution, provenance."""
