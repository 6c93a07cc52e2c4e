"""Common library of the three apps: settings, AWS clients, events, auth, web shell, provisioning."""
