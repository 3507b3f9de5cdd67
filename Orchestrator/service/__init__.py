"""Service glue the daemon calls: systemd notify/watchdog, the metrics and health endpoint, and
the installers for a systemd unit and a Windows service.

Nothing here imports a manager or an engine: the daemon owns those and hands this package
plain callables, so `service install` runs without loading any model.
"""
