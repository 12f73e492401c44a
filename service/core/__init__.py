"""What every feature shares: settings, errors, logs, security, storage access, cache, rate limits,
the upstream HTTP base and the feature declaration itself. Nothing here knows a particular feature."""
