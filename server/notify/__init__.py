"""Telling people about lost laptops: a durable outbox in the database (`outbox`), what a message
says (`messages`, pure), and the sender that drains it with retries (`sender`, run by `background`)."""
