"""The operator's tools: provisioning, deploy, the local runner, `make run`, demo data, the mailbox.
No Lambda zip carries them; they may import anything, and nothing imports them."""
