"""The versioned agent API (/api/v1/...)."""
