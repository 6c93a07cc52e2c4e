"""The platform library every app and handler stands on: settings, AWS clients, errors, the web shell,
auth, uploads, signing, database helpers, the event envelope, publisher and outbox. It knows no app and no domain."""
