"""Walking the decisions over history against a simulated broker; the ledger."""
